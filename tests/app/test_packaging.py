"""Packaging: the distribution's name, ``han --version``, pipx, and the Debian package.

The pipx and Debian tests install for real, as the README says, and run the installed ``han``:
pipx into a temporary PIPX_HOME (where pipx is installed), the .deb with dpkg on this machine
(as root, where debhelper is installed; purged afterwards).  Both skip with the reason otherwise.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import han
from han.version import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PRE_DEB_STATE = {p: os.path.lexists(p) for p in ("/opt/han", "/etc/han", "/var/lib/han", "/var/lib/private/han")}


def readme_decode_args() -> list[str]:
    """The README's example: decode the published Radius push with its published keys."""
    line = next(x for x in README.splitlines() if "han decode samples/kamstrup_dk_radius.hex" in x)
    args = shlex.split(line)
    return args[args.index("decode") :]


def check_decodes(han_cmd: list[str], **kw) -> None:
    out = subprocess.run(han_cmd + readme_decode_args(), capture_output=True, text=True, cwd=ROOT, timeout=60, **kw)
    assert out.returncode == 0, out.stderr
    assert "tag verified" in out.stdout and "Active energy A14" in out.stdout and "866636 Wh" in out.stdout


def test_distribution_name():
    assert DISTRIBUTION == "han-logger"
    assert metadata.version(DISTRIBUTION) == han.__version__
    assert metadata.distribution(DISTRIBUTION).entry_points.select(group="console_scripts", name="han")


def test_version_prints_the_distribution():
    out = subprocess.run([sys.executable, "-m", "han", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout == f"han-logger {han.__version__}\n"


def test_no_place_names_the_old_distribution():
    """Install hints name han-logger: `pip install han` would fetch PyPI's unrelated project."""
    old = re.compile(r"(?<![\w-])han\[(?:mqtt|test)\]|pip(?:x)? install (?:-\S+ )*han(?![\w-])")
    files = [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / "constraints.txt"]
    for folder in ("docs", "samples", "han", "sinks", "packaging"):
        files += [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in {".md", ".py", ".toml", ".service", ""}]
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files for m in old.finditer(p.read_text(errors="replace"))]
    assert hits == []


def test_readme_states_python_and_os():
    install = README[README.index("## Install") : README.index("## `han decode`")]
    assert "Python 3.11 or newer" in install and "Bookworm" in install and "Bullseye" in install
    assert "pipx" in install and "apt install ./dist/han-logger_" in install and "amshan" in install
    assert 'requires-python = ">=3.11"' in (ROOT / "pyproject.toml").read_text()


def _readme_pipx_line() -> str:
    block = README[README.index("<!-- pipx-command -->") :]
    return next(x.split("#")[0].strip() for x in block.splitlines() if x.startswith("pipx install"))


@pytest.mark.skipif(shutil.which("pipx") is None, reason="pipx is not installed (Debian package pipx)")
def test_pipx_install(tmp_path):
    """The README's pipx line, into a temporary PIPX_HOME; then the installed han runs."""
    home, bindir = tmp_path / "pipx", tmp_path / "bin"
    env = {**os.environ, "PIPX_HOME": str(home), "PIPX_BIN_DIR": str(bindir)}
    try:
        out = subprocess.run(
            ["bash", "-c", _readme_pipx_line()], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stdout + out.stderr
        han_exe = bindir / "han"
        version = subprocess.run([str(han_exe), "--version"], capture_output=True, text=True)
        assert version.stdout == f"han-logger {han.__version__}\n", version.stderr
        check_decodes([str(han_exe)])
        # the mqtt extra is there (Home Assistant), from the pinned set
        py = home / "venvs" / "han-logger" / "bin" / "python"
        pins = dict(x.split("==") for x in (ROOT / "constraints.txt").read_text().splitlines() if "==" in x)
        got = subprocess.run([str(py), "-c", "import importlib.metadata as m; print(m.version('aiomqtt'))"],
                             capture_output=True, text=True)
        assert got.stdout.strip() == pins["aiomqtt"]
        # the README's unit for a system-wide pipx install: ExecStart pointed at that han
        if shutil.which("systemd-analyze"):
            unit = tmp_path / "han.service"
            unit.write_text((ROOT / "samples" / "han.service").read_text().replace("/opt/han/bin/han", str(han_exe)))
            verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
            assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    finally:
        # the installed metadata holds the README (and its example keys): leave nothing behind
        shutil.rmtree(home, ignore_errors=True)


def _deb_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "installing the .deb needs root (CI runs as root)"
    for tool, package in (("dpkg-buildpackage", "dpkg-dev"), ("dh", "debhelper"), ("dpkg-deb", "dpkg")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package {package})"
    if subprocess.run(["/usr/bin/python3", "-c", "import ensurepip"], capture_output=True).returncode != 0:
        return "Debian's python3 cannot make virtual environments (Debian package python3-venv)"
    installed = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "han-logger"], capture_output=True, text=True)
    if "installed" in installed.stdout or "config-files" in installed.stdout:
        return "han-logger is installed on this machine: not touching it"
    taken = [p for p, there in PRE_DEB_STATE.items() if there]
    if taken:
        return f"{taken[0]} exists on this machine: not touching it"
    return None


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _unit_setting(unit: str, name: str, default: str) -> str:
    found = re.findall(rf"^{name}=(.*)$", unit, re.MULTILINE)
    return found[-1].strip() if found else default


@pytest.mark.skipif(_deb_skip_reason() is not None, reason=str(_deb_skip_reason()))
def test_deb_build_install_remove_purge(tmp_path):
    """packaging/build-deb, then dpkg -i, the installed han and unit, dpkg -r, dpkg --purge."""
    out_dir = tmp_path / "dist"
    # the staging tree lives under tmp_path, so a leaked staging path is findable below
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    build = subprocess.run(
        [str(ROOT / "packaging" / "build-deb"), "--out", str(out_dir)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert build.returncode == 0, build.stderr
    deb = Path(build.stdout.strip())
    assert deb.parent == out_dir and re.fullmatch(rf"han-logger_{re.escape(han.__version__)}_\w+\.deb", deb.name)
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends", "Architecture"], capture_output=True, text=True)
    assert re.search(r"python3\.\d+", fields.stdout) and "adduser" in fields.stdout
    try:
        def dpkg(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=300)

        for _ in range(2):  # a second install runs the maintainer scripts over an existing installation
            done = dpkg("-i", str(deb))
            assert done.returncode == 0, done.stderr
        assert dpkg("--verify", "han-logger").stdout == ""

        # the command, the venv, the interpreter
        assert os.path.realpath("/usr/bin/han") == "/opt/han/bin/han"
        version = subprocess.run(["/usr/bin/han", "--version"], capture_output=True, text=True)
        assert version.stdout == f"han-logger {han.__version__}\n", version.stderr
        assert Path("/opt/han/bin/han").read_text().startswith("#!/opt/han/bin/python")
        assert re.fullmatch(r"/usr/bin/python3\.\d+", os.path.realpath("/opt/han/bin/python3"))
        assert not os.path.exists("/opt/han/bin/pip")
        leak = subprocess.run(["grep", "-rlF", str(tmp_path), "/opt/han"], capture_output=True, text=True)
        assert leak.stdout == "", "the build directory is named in " + leak.stdout

        # the user: system account han, in dialout, no login
        ids = subprocess.run(["id", "-nG", "han"], capture_output=True, text=True)
        assert ids.returncode == 0 and "dialout" in ids.stdout.split()
        passwd = subprocess.run(["getent", "passwd", "han"], capture_output=True, text=True).stdout.strip().split(":")
        assert int(passwd[2]) < 1000 and passwd[6].endswith("nologin")
        # ...who can run the installed han (every file readable)
        if shutil.which("setpriv"):
            check_decodes(["setpriv", "--reuid=han", "--regid=han", "--init-groups", "/usr/bin/han"])
        else:
            check_decodes(["/usr/bin/han"])

        # /etc/han: the mode the unit expects, the config a conffile, the keys root's alone
        unit_path = "/lib/systemd/system/han.service"
        unit = Path(unit_path).read_text()
        assert unit == (ROOT / "samples" / "han.service").read_text()
        assert _mode("/etc/han") == int(_unit_setting(unit, "ConfigurationDirectoryMode", "0755"), 8)
        assert _mode("/etc/han/han.toml") == 0o644
        assert _mode("/etc/han/keys.toml") == 0o600 and os.stat("/etc/han/keys.toml").st_uid == 0
        conffiles = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", "han-logger"], capture_output=True, text=True)
        assert "/etc/han/han.toml" in conffiles.stdout
        assert "ExecStart=/opt/han/bin/han " in unit
        # not enabled by installing: it needs a port and keys first
        assert not list(Path("/etc/systemd/system").glob("*.wants/han.service"))
        if shutil.which("systemd-analyze"):
            verify = subprocess.run(["systemd-analyze", "verify", unit_path], capture_output=True, text=True)
            assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr

        # remove: the program goes, the configuration stays
        Path("/etc/han/han.toml").write_text(Path("/etc/han/han.toml").read_text() + "\n# edited\n")
        done = dpkg("-r", "han-logger")
        assert done.returncode == 0, done.stderr
        assert not os.path.lexists("/opt/han") and not os.path.lexists("/usr/bin/han")
        assert not os.path.lexists(unit_path)
        assert Path("/etc/han/han.toml").read_text().endswith("# edited\n") and os.path.exists("/etc/han/keys.toml")
        # purge: the configuration, the keys and the data go; the system user stays
        os.makedirs("/var/lib/private/han", mode=0o700)
        os.symlink("private/han", "/var/lib/han")
        Path("/var/lib/han/han.db").write_bytes(b"")
        done = dpkg("--purge", "han-logger")
        assert done.returncode == 0, done.stderr
        for gone in ("/etc/han", "/var/lib/han", "/var/lib/private/han"):
            assert not os.path.lexists(gone), gone
        assert subprocess.run(["getent", "passwd", "han"], capture_output=True).returncode == 0
    finally:
        subprocess.run(["dpkg", "--purge", "han-logger"], capture_output=True)
        for path, there in PRE_DEB_STATE.items():
            if not there and os.path.lexists(path):
                subprocess.run(["rm", "-rf", path])
        deb.unlink(missing_ok=True)
