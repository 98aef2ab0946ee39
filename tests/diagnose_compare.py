"""Record ``han diagnose`` output over a fixed corpus and compare it with a recording.

The corpus: every ``samples/*.log`` (with and without keys), the shared
vectors' log-diagnosis fixture (read at run time, skipped when absent), every
exchange the diagnose tests build, and deterministic variations of those
exchanges (truncated, bytes altered, seeded random hex), each run through the
CLI in both formats and with every option (keys as flags and from the
environment, ``--hls-secret``/``--hls-secret-hex``, system titles, standard
input, bad arguments).  The CLI runs in this process, so a case is its exit
status, standard output and standard error.

    python tests/diagnose_compare.py record OUT.json   # full outputs (keep outside the repository)
    python tests/diagnose_compare.py compare OUT.json  # exit 1 and show the first differences
    python tests/diagnose_compare.py digests           # rewrite tests/diagnose_outputs.json

``tests/app/test_diagnose_output_unchanged.py`` checks the committed digests, so a change
of wording shows up as a failing test; re-record the digests when intended.
Keys are never stored: a case is named, and only its output is recorded.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import json
import os
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DIGESTS = HERE / "diagnose_outputs.json"
VECTORS_DIR = Path(os.environ.get("HAN_VECTORS_DIR", ROOT.parent / "shared" / "vectors"))


@dataclass(frozen=True)
class Case:
    name: str
    log: str | None  #: text of the log; None: ``path`` is given as is
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    stdin: bool = False
    path: str | None = None
    needs_vectors: bool = False


def _fixture_log() -> str | None:
    path = VECTORS_DIR / "security_vectors.jsonl"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                record = json.loads(line)
                if record.get("category") == "diagnose_fixture":
                    return "\n".join(record["inputs"]["frames"])
    return None


def cases() -> Iterator[Case]:  # noqa: PLR0915 - one flat list of inputs reads best
    from decoders.association import hls
    from decoders.association.acse import Aare, ApplicationContext, Diagnostic
    from decoders.xdlms.error_pdus import ConfirmedServiceError, ExceptionResponse
    from decoders.ciphering.security import Keys, protect
    from diagnosekit import AK, CLIENT_ST, DK, EK, KEYS, SECRET, SERVER_ST, STOC, _k, as_hdlc_log, exchange, hdlc

    def keyargs(keys: Keys | None = None, secret: bytes | None = None) -> tuple[str, ...]:
        out: list[str] = []
        if keys is not None:
            for flag, value in (("--key", keys.ek), ("--auth-key", keys.ak), ("--dedicated-key", keys.dedicated)):
                if value is not None:
                    out += [flag, value.hex()]
        if secret is not None:
            out += ["--hls-secret", secret.decode()]
        return tuple(out)

    # samples, with and without keys (the docs' made-up keys, and wrong ones)
    docs_ek, docs_ak = _k("han docs EK"), _k("han docs AK")
    for path in sorted((ROOT / "samples").glob("*.log")):
        text = path.read_text(encoding="utf-8", errors="replace")
        yield Case(f"sample {path.name}", text)
        yield Case(f"sample {path.name} keys", text, keyargs(Keys(ek=docs_ek, ak=docs_ak)))
        yield Case(f"sample {path.name} wrong keys", text, keyargs(Keys(ek=docs_ak, ak=docs_ak)))
        yield Case(f"sample {path.name} env keys", text, env=(("HAN_KEY", docs_ek.hex()), ("HAN_AUTH_KEY", docs_ak.hex())))
        yield Case(f"sample {path.name} secret", text, ("--hls-secret", "some secret"))
        yield Case(f"sample {path.name} by path", None, path=str(path.relative_to(ROOT)))
    seed = (ROOT / "samples" / "gurux_forum_16477.log").read_text()
    yield Case("seed from stdin", seed, stdin=True)
    yield Case("seed with the keys of the tests", seed, keyargs(KEYS, SECRET))

    fixture = _fixture_log()
    yield Case("vectors diagnose fixture", fixture or "", needs_vectors=True)
    yield Case("vectors diagnose fixture keys", fixture or "", keyargs(KEYS, SECRET), needs_vectors=True)

    # the exchanges of tests/app/test_diagnose_command.py, with the secrets each test gives
    err = ConfirmedServiceError(6, 0, 6).to_bytes()
    get = bytes.fromhex("C001C1000300000100FF0200")
    glo_err = protect(
        ConfirmedServiceError(6, 5, 1).to_bytes(), keys=KEYS, system_title=SERVER_ST, invocation_counter=101, tag=0x2E
    )
    action = hls.reply_to_hls(hls.aes_ecb_response(SECRET, STOC)).to_bytes()
    mislabelled = protect(
        action, keys=Keys(ek=EK, ak=AK, dedicated=EK), system_title=CLIENT_ST, invocation_counter=3, tag=0xD3
    )
    gmac_f = hls.gmac_response(ek=EK, ak=AK, system_title=CLIENT_ST, invocation_counter=2, challenge=STOC)
    suite1 = protect(
        hls.reply_to_hls(gmac_f).to_bytes(),
        keys=KEYS,
        system_title=CLIENT_ST,
        invocation_counter=3,
        security_control=0x31,
        tag=0xCB,
    )
    repeated = exchange(5, after=False) + [
        (True, protect(get, keys=KEYS, system_title=CLIENT_ST, invocation_counter=9, tag=0xD0))
    ] * 2
    glo_after = exchange(5, after=False) + [
        (True, protect(get, keys=KEYS, system_title=CLIENT_ST, invocation_counter=4, tag=0xC8))
    ]
    plain_pass3 = exchange(2, pass4=False, after=False)[:2] + [(True, action)]
    plain_pass4 = plain_pass3 + [
        (False, hls.ActionResponse(0xC1, 0, None, None).to_bytes()),
        (False, hls.ActionResponse(0xC1, 11, None, None).to_bytes()),
    ]
    exchanges: dict[str, list] = {
        "mech5": exchange(5),
        "mech2": exchange(2),
        "mech2 D3 error": exchange(2, pass3_tag=0xD3, error=err),
        "mech2 wrong secret": exchange(2, secret=b"not the secret"),
        "mech5 exception IC": exchange(5, error=ExceptionResponse(1, 6, 4242).to_bytes()),
        "mech5 exception": exchange(5, error=ExceptionResponse(1, 2, None).to_bytes()),
        "mech5 repeated IC": repeated,
        "mech2 GMAC pass3": exchange(2, pass4=False, after=False)[:2] + exchange(5, pass4=False, after=False)[2:],
        "glo after HLS": glo_after,
        "no dedicated key": exchange(5, dedicated=None),
        "ded tag global key": exchange(2, pass4=False, after=False)[:2] + [(True, mislabelled)],
        "glo error reply": exchange(5, error=glo_err),
        "suite 1 pass3": exchange(5, pass4=False, after=False)[:2] + [(True, suite1)],
        "mech5 no pass3": exchange(5)[:2],
        "mech5 no pass4": exchange(5, pass4=False, after=False),
        "mech2 plain pass3": plain_pass3,
        "mech2 plain pass3 pass4": plain_pass4,
        "mech5 D3 error": exchange(5, pass3_tag=0xD3, error=err),
        "mech5 plain error": exchange(5, error=err),
        "mech2 no pass4 after": exchange(2, pass4=False),
        "without AARQ": exchange(5)[2:],
    }
    secrets = {
        "no keys": (),
        "keys": keyargs(KEYS),
        "keys secret": keyargs(Keys(ek=EK, ak=AK), SECRET),
        "wrong key": keyargs(Keys(ek=_k("wrong"), ak=AK)),
        "other dedicated": keyargs(Keys(ek=EK, ak=AK, dedicated=_k("x"))),
        "secret hex": ("--hls-secret-hex", SECRET.hex()),
    }
    for name, pdus in exchanges.items():
        log = as_hdlc_log(pdus)
        for sname, args in secrets.items():
            yield Case(f"exchange {name} / {sname}", log, args)
    titles = ("--client-system-title", CLIENT_ST.hex(), "--server-system-title", SERVER_ST.hex())
    yield Case("without AARQ / titles", as_hdlc_log(exchange(5)[2:]), titles)
    yield Case("without AARQ / titles keys", as_hdlc_log(exchange(5)[2:]), titles + keyargs(KEYS))
    yield Case("D3 without AARQ / titles keys", as_hdlc_log(exchange(2, pass3_tag=0xD3)[2:]), titles + keyargs(KEYS))
    yield Case("only dedicated key", as_hdlc_log(exchange(5)), ("--dedicated-key", DK.hex()))

    # raw APDUs wrapped over lines
    lines = []
    for client, apdu in exchange(5, after=False):
        text = apdu.hex(" ").upper()
        lines.append(("-> " if client else "<- ") + text[:60])
        if text[60:]:
            lines.append(text[60:])
        lines.append("")
    yield Case("raw wrapped", "\n".join(lines))
    yield Case("raw wrapped keys", "\n".join(lines), keyargs(KEYS))
    rejected = [
        Aare(application_context=ApplicationContext.of(1), result=1, diagnostic=Diagnostic(1, v)).to_bytes()
        for v in (13, 11, 12, 2, 1)
    ] + [Aare(application_context=ApplicationContext.of(1), result=2, diagnostic=Diagnostic(2, 1)).to_bytes()]
    for i, aare in enumerate(rejected):
        yield Case(f"rejected {i}", aare.hex(" "))

    # nothing to diagnose, garbage, bad arguments
    yield Case("empty", "")
    yield Case("prose", "just prose, no frames at all\nsecond line")
    yield Case("frame without PDU", "7E A0 10 61 03 52 7C E2 E6 E7 00 0E 06 00 06 DD 49 7E")
    yield Case("garbage then seed", "60 05 A1 09 06 07 60\n\n61 03 A2 01\n\nAB CD EF 01\n" + seed)
    yield Case("garbage only", "AB CD EF 01\n")
    yield Case("missing file", None, path="no/such/file.log")
    yield Case("bad key", seed, ("--key", "12345"))
    yield Case("bad title", seed, ("--client-system-title", "0102"))
    yield Case("both secrets", seed, ("--hls-secret", "a", "--hls-secret-hex", "00"))
    frame = bytes.fromhex(hdlc(err, client=False))
    dump = []
    for off in range(0, len(frame), 16):
        chunk = frame[off : off + 16]
        dump.append(f"{off:08x}  {chunk[:8].hex(' '):<23}  {chunk[8:].hex(' '):<23}  |{'.' * len(chunk)}|")
    yield Case("hexdump -C", "\n".join(dump))

    # deterministic variations: truncations, altered bytes, random hex
    rng = random.Random(13)
    for base_name, base in (("mech5", exchange(5)), ("mech2 D3", exchange(2, pass3_tag=0xD3, error=err))):
        for which in range(len(base)):
            client, apdu = base[which]
            for cut in sorted({1, 2, 5, 17, len(apdu) // 2, len(apdu) - 1}):
                if not 0 < cut < len(apdu):
                    continue
                pdus = list(base)
                pdus[which] = (client, apdu[:cut])
                for sname in ("no keys", "keys"):
                    yield Case(f"cut {base_name} #{which} to {cut} / {sname}", as_hdlc_log(pdus), secrets[sname])
            for n in range(4):
                pos = rng.randrange(len(apdu))
                altered = apdu[:pos] + bytes([apdu[pos] ^ (1 << rng.randrange(8))]) + apdu[pos + 1 :]
                pdus = list(base)
                pdus[which] = (client, altered)
                for sname in ("no keys", "keys secret"):
                    yield Case(f"flip {base_name} #{which} at {pos} ({n}) / {sname}", as_hdlc_log(pdus), secrets[sname])
    for n in range(60):
        chunks = [rng.randbytes(rng.randint(3, 40)) for _ in range(rng.randint(1, 6))]
        if n % 3 == 0:  # start like an ACSE or xDLMS APDU, to go past the first byte
            chunks[0] = bytes([rng.choice((0x60, 0x61, 0x62, 0x63, 0x0E, 0xD8, 0xC3, 0xC7, 0xCB, 0xDB))]) + chunks[0]
        yield Case(f"random {n}", "\n".join(c.hex(" ") for c in chunks), keyargs(KEYS, SECRET))


def run_case(case: Case, fmt: str, workdir: Path) -> dict:
    """Run ``han diagnose`` in this process: exit status, standard output and error."""
    from han.cli import main

    if case.path is not None:
        target = case.path
    elif case.stdin:
        target = "-"
    else:
        target = str(workdir / "case.log")
        Path(target).write_text(case.log or "", encoding="utf-8")
    argv = ["diagnose", target, *case.args, "--format", fmt]
    saved_env = {k: os.environ.pop(k, None) for k in ("HAN_KEY", "HAN_AUTH_KEY", "HAN_DEBUG")}
    os.environ.update(dict(case.env))
    saved_stdin, saved_cwd = sys.stdin, os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(ROOT)
        sys.stdin = io.StringIO(case.log or "")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse
                rc = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        for k in ("HAN_KEY", "HAN_AUTH_KEY"):
            os.environ.pop(k, None)
        os.environ.update({k: v for k, v in saved_env.items() if v is not None})
    return {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue().replace(target, "LOG")}


def record(workdir: Path, include: Callable[[Case], bool] = lambda c: True) -> dict[str, dict]:
    have_vectors = _fixture_log() is not None
    results: dict[str, dict] = {}
    for case in cases():
        if (case.needs_vectors and not have_vectors) or not include(case):
            continue
        for fmt in ("text", "json"):
            key = f"{case.name} [{fmt}]"
            if key in results:
                raise ValueError(f"two cases are named {key!r}")
            results[key] = run_case(case, fmt, workdir)
    return results


def digest(result: dict) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()


def differences(old: dict[str, dict], new: dict[str, dict], limit: int = 5) -> list[str]:
    """Readable differences between two recordings (full outputs or digests)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if a is None or b is None:
            out.append(f"{key}: only in the {'new' if a is None else 'old'} recording")
        elif isinstance(a, str) or isinstance(b, str):
            out.append(f"{key}: output differs (digest)")
        else:
            diff = []
            for field in ("rc", "stdout", "stderr"):
                if a[field] != b[field]:
                    diff += difflib.unified_diff(
                        str(a[field]).splitlines(), str(b[field]).splitlines(), f"old {field}", f"new {field}", lineterm=""
                    )
            out.append(f"{key}:\n" + "\n".join(diff[:40]))
        if len(out) >= limit:
            out.append("...")
            break
    return out


def _main(argv: list[str]) -> int:
    import tempfile

    if not argv or argv[0] not in ("record", "compare", "digests") or (argv[0] != "digests" and len(argv) != 2):
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        results = record(Path(tmp))
    if argv[0] == "record":
        Path(argv[1]).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"{len(results)} outputs recorded in {argv[1]}")
        return 0
    if argv[0] == "digests":
        if _fixture_log() is None:
            print("the shared vectors are absent: the fixture's cases would be dropped", file=sys.stderr)
            return 1
        DIGESTS.write_text(json.dumps({k: digest(v) for k, v in results.items()}, indent=1, sort_keys=True) + "\n")
        print(f"{len(results)} digests written to {DIGESTS}")
        return 0
    old = json.loads(Path(argv[1]).read_text())
    diffs = differences(old, results)
    for d in diffs:
        print(d)
    print(f"{len(results)} outputs compared: " + ("identical" if not diffs else "DIFFERENT"))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
