"""The key-leak check: every output of the test run is searched for the test keys.

A pytest plugin (loaded by ``conftest.py``).  Keys must never appear in
logs, error messages, status output or sinks, so instead of trusting each
test to look, the whole run is searched at the end:

* what pytest captured for every test phase (standard output and error at
  the file-descriptor level, so the output of child processes that inherit
  them too, and log records), and the text of every failure;
* what tests read back themselves: ``capsys``/``capfd`` ``readouterr()`` and
  ``subprocess.run(..., capture_output=True)`` (``Popen.communicate``);
* every log record of the ``han`` loggers, formatted, at any level;
* every file the run left under pytest's temporary directory (logs, SQLite
  sinks and journals, JSONL/CSV files, status and checkpoint files, key
  rings...), as raw bytes, and the data directories of the test servers
  (influxd, VictoriaMetrics, mosquitto) before they are removed (as text
  only: their compressed files hold byte runs such as ``00 01 02 … 0F`` by
  their own structure, and a sink sends them text anyway).

Files that are the test's own *inputs* and hold keys by design are skipped:
names ending in ``.toml`` or containing ``key``, ``cred`` or ``secret``.  A
test whose output is key material by design (``han security unwrap-key``
prints the key it unwrapped) is marked ``@pytest.mark.prints_keys``.

The test keys are found, not listed by hand: module-level ``bytes`` of 16,
24 or 32 bytes (and :class:`~decoders.ciphering.security.Keys`) whose name says key
(``EK``, ``AK``, ``KEK``, ``SEED_EK``, ``OTHER_KEY``...) and HLS secrets
(``SECRET``, 8 to 64 bytes) in every test module of the run; the keys and
secrets of the shared vectors; and every key or HLS secret the README, the
docs and the samples show in an example (``--key``, ``HAN_KEY=``,
``key = "..."``, ``--hls-secret``).
A key is searched as upper and lower case hex (also spaced or with colons),
its Python ``bytes`` repr, base64, and raw bytes in files.  Keys with fewer
than six distinct byte values (``00``×16, ``11``×16) are skipped: they match
ordinary data.

A leak fails the run (exit status 1) and names the key (by its name, never
its value) and where it was found.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VECTORS_DIR = Path(os.environ.get("HAN_VECTORS_DIR", ROOT.parent / "shared" / "vectors"))
KEY_NAME = re.compile(r"(?:^|_)(?:E?K|AK|KEK|KEYS?|SECRET|GUEK|GAK|DK|DEDICATED)(?:_|\d|$)", re.IGNORECASE)
KEY_LENGTHS = (16, 24, 32)
MIN_DISTINCT = 6
#: files the tests write as inputs with keys in them (skipped)
INPUT_FILE = re.compile(r"\.toml$|key|cred|secret", re.IGNORECASE)
#: example keys in the user documentation
DOC_KEY = re.compile(
    r"(?:--(?:key|auth-key|dedicated-key|kek|broadcast-key)[ =]|HAN_(?:AUTH_)?KEY=|\b(?:auth_)?key\s*=\s*\")"
    r"\"?([0-9A-Fa-f]{32}(?:[0-9A-Fa-f]{32})?)\b"
)
DOC_SECRET = re.compile(r"--hls-secret[ =]([!-~]{8,64})")
VECTOR_KEY_FIELD = re.compile(r"^(?:ek|ak|kek|key|secret|ek\(guek\)|.*private.*)$", re.IGNORECASE)


@dataclass
class Needles:
    """The forms one key is searched in."""

    name: str
    raw: bytes
    text: tuple[str, ...]  #: case-sensitive text forms (repr, base64)
    hex: tuple[str, ...]  #: lower-case hex forms (searched in lower-cased text)
    ascii: str = ""  #: the repr of a key made of printable characters: the raw bytes themselves

    @classmethod
    def of(cls, name: str, key: bytes) -> "Needles":
        h = key.hex()
        pairs = [h[i : i + 2] for i in range(0, len(h), 2)]
        r = repr(key)[2:-1]
        text = (r, base64.b64encode(key).decode().rstrip("="), base64.urlsafe_b64encode(key).decode().rstrip("="))
        return cls(name, key, tuple(dict.fromkeys(text)), (h, " ".join(pairs), ":".join(pairs)), r if r.encode() == key else "")


@dataclass
class Finding:
    key: str
    form: str
    where: str


@dataclass
class Scanner:
    needles: dict[bytes, Needles] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    texts: int = 0
    files: int = 0
    size: int = 0

    def add(self, name: str, key: bytes) -> None:
        key = bytes(key)
        if len(set(key)) < MIN_DISTINCT or key in self.needles:
            return
        self.needles[key] = Needles.of(name, key)

    def scan_text(self, text: str, where: str) -> None:
        if not text:
            return
        self.texts += 1
        self.size += len(text)
        lower = text.lower()
        for n in self.needles.values():
            for form in n.hex:
                if form in lower:
                    self._found(n, "hex", where)
                    break
            for form in n.text:
                if form in text:
                    self._found(n, "repr/base64", where)
                    break

    def scan_bytes(self, data: bytes, where: str, raw: bool = True) -> None:
        if not data:
            return
        self.files += 1
        self.size += len(data)
        lower = data.lower()
        for n in self.needles.values():
            if raw and n.raw in data:
                self._found(n, "raw bytes", where)
            elif any(form.encode() in lower for form in n.hex):
                self._found(n, "hex", where)
            elif any(form.encode("ascii", "backslashreplace") in data for form in n.text if raw or form != n.ascii):
                self._found(n, "repr/base64", where)

    def scan_tree(self, top: Path, where: str, raw: bool = True) -> None:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not INPUT_FILE.search(d) and d not in (".venv", "__pycache__")]
            for fn in filenames:
                path = Path(dirpath) / fn
                if INPUT_FILE.search(fn) or path.is_symlink() or not path.is_file():
                    continue
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                self.scan_bytes(data, f"{where}/{path.relative_to(top)}", raw)

    def _found(self, n: Needles, form: str, where: str) -> None:
        self.findings.append(Finding(n.name, form, where))


# -- where the keys come from ---------------------------------------------------------------
def keys_of_modules(modules) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for mod in modules:
        modname = getattr(mod, "__name__", "")
        for attr, value in list(vars(mod).items()):
            if not KEY_NAME.search(attr):
                continue
            secret = "SECRET" in attr.upper() and isinstance(value, (bytes, bytearray)) and 8 <= len(value) <= 64
            if isinstance(value, (bytes, bytearray)) and (len(value) in KEY_LENGTHS or secret):
                found[f"{modname}.{attr}"] = bytes(value)
            elif type(value).__name__ == "Keys":
                for part in ("ek", "ak", "broadcast", "dedicated"):
                    k = getattr(value, part, None)
                    if k:
                        found[f"{modname}.{attr}.{part}"] = bytes(k)
    return found


def keys_of_docs(root: Path = ROOT) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    paths = [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted((root / "samples").glob("*"))]
    for path in paths:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in DOC_KEY.finditer(text):
            found[f"{path.relative_to(root)} example key {m.group(1)[:4]}…"] = bytes.fromhex(m.group(1))
        for m in DOC_SECRET.finditer(text):
            found[f"{path.relative_to(root)} example HLS secret"] = m.group(1).encode()
    return found


def keys_of_vectors(folder: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for name in ("real_vectors.jsonl", "security_vectors.jsonl"):
        path = folder / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            tables = [record.get("keys"), record.get("inputs")]
            for table in tables:
                if not isinstance(table, dict):
                    continue
                for fname, value in table.items():
                    if not (isinstance(value, str) and VECTOR_KEY_FIELD.match(fname)):
                        continue
                    try:
                        key = bytes.fromhex(value)
                    except ValueError:
                        if fname.lower() != "secret":
                            continue
                        key = value.encode()  # an HLS secret is a password
                    if len(key) >= 16 or (fname.lower() == "secret" and len(key) >= 8):
                        found[f"vector {record.get('id')} {fname}"] = key
    return found


# -- the plugin -------------------------------------------------------------------------------
class _LogTap(logging.Handler):
    def __init__(self, scanner: Scanner) -> None:
        super().__init__(logging.DEBUG)
        self.scanner = scanner
        self.where = "log"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += " " + repr(record.exc_info[1])
        except Exception:  # noqa: BLE001 - a broken record is the logging module's concern
            return
        self.scanner.scan_text(text, f"{self.where} (log record {record.name})")


class KeyLeakPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.scanner = Scanner()
        self.pending: list[tuple[str, str]] = []  #: (text, where) kept until the keys are known
        self.current = "collection"
        self.exempt = False
        self.started = time.time()
        self.tap = _LogTap(self.scanner)
        self._patch()

    # what the tests read back themselves
    def _patch(self) -> None:
        plugin = self
        original = subprocess.Popen.communicate

        def communicate(proc, *args, **kwargs):
            out, err = original(proc, *args, **kwargs)
            for stream in (out, err):
                if stream:
                    text = stream if isinstance(stream, str) else stream.decode("utf-8", "backslashreplace")
                    plugin.seen(text, f"{plugin.current} (subprocess {_argv0(proc)})")
            return out, err

        subprocess.Popen.communicate = communicate  # type: ignore[method-assign]
        self._restore = [(subprocess.Popen, "communicate", original)]
        try:
            from _pytest.capture import CaptureFixture
        except ImportError:  # pragma: no cover - pytest moved it; the report sections still cover most
            return
        readouterr = CaptureFixture.readouterr

        def read(fixture):
            result = readouterr(fixture)
            for stream in (result.out, result.err):
                if stream:
                    text = stream if isinstance(stream, str) else stream.decode("utf-8", "backslashreplace")
                    plugin.seen(text, f"{plugin.current} (read by the test)")
            return result

        CaptureFixture.readouterr = read  # type: ignore[method-assign]
        self._restore.append((CaptureFixture, "readouterr", readouterr))

    def seen(self, text: str, where: str) -> None:
        if self.exempt:
            return
        if self.scanner.needles:
            self.scanner.scan_text(text, where)
        else:
            self.pending.append((text, where))

    # hooks
    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        folders = {str(Path(str(item.fspath)).parent) for item in session.items} or {str(ROOT / "tests")}
        modules = [m for m in list(sys.modules.values()) if _module_folder(m) in folders]
        for source in (keys_of_modules(modules), keys_of_docs(), keys_of_vectors(VECTORS_DIR)):
            for name, key in source.items():
                self.scanner.add(name, key)
        for text, where in self.pending:
            self.scanner.scan_text(text, where)
        self.pending.clear()
        han = logging.getLogger("han")
        han.addHandler(self.tap)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem):
        self.current = item.nodeid
        self.tap.where = item.nodeid
        self.exempt = item.get_closest_marker("prints_keys") is not None
        yield
        self.exempt = False

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem):
        if nextitem is None:  # the session's servers are still up: look at their data before it is removed
            self._scan_server_dirs()
        yield

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.exempt:
            return
        for title, content in report.sections:
            self.seen(content, f"{report.nodeid} ({title.lower()})")
        if report.failed and report.longrepr is not None:
            self.seen(str(report.longrepr), f"{report.nodeid} (failure text)")

    def _scan_server_dirs(self) -> None:
        tmp = Path(tempfile.gettempdir())
        # only the servers' data directories (tests/servers.py): other han-* folders are not a server's
        for path in tmp.glob("han-server-*"):
            try:
                if path.is_dir() and path.stat().st_mtime >= self.started - 1:
                    # text forms only: a server's files are compressed binary whose own structure
                    # holds byte runs like 00 01 02 ... 0F, and a sink sends text (line protocol, JSON)
                    self.scanner.scan_tree(path, f"server data {path.name}", raw=False)
            except OSError:
                continue

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus) -> None:
        logging.getLogger("han").removeHandler(self.tap)
        for cls, name, original in self._restore:
            setattr(cls, name, original)
        try:
            base = self.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            base = None
        if base is not None and Path(base).is_dir():
            self.scanner.scan_tree(Path(base), "tmp")
        if self.scanner.findings and session.exitstatus == 0:
            session.exitstatus = 1

    def pytest_terminal_summary(self, terminalreporter) -> None:
        s = self.scanner
        if not s.needles:
            return
        if s.findings:
            terminalreporter.section("key leak", sep="=", red=True, bold=True)
            seen = set()
            for f in s.findings:
                line = f"{f.key} ({f.form}) in {f.where}"
                if line not in seen:
                    seen.add(line)
                    terminalreporter.write_line(line)
        else:
            terminalreporter.write_line(
                f"key-leak check: {len(s.needles)} test keys searched in {s.texts} outputs and {s.files} files"
                f" ({s.size / 1e6:.1f} MB): none found"
            )


def _module_folder(mod) -> str | None:
    path = getattr(mod, "__file__", None)
    if not path or path.endswith("keyleak.py"):
        return None
    return os.path.dirname(os.path.abspath(path))


def _argv0(proc) -> str:
    args = proc.args if isinstance(proc.args, (list, tuple)) else str(proc.args).split()
    words = [os.path.basename(str(a)) for a in args[:4]]
    return " ".join(words)[:60]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "prints_keys: the test's output is key material by design (not searched)")
    if not config.getoption("--no-key-leak-check", default=False):
        config.pluginmanager.register(KeyLeakPlugin(config), "han-keyleak")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-key-leak-check", action="store_true", help="skip searching the run's output for the test keys")
