"""Record ``han decode`` output over every capture we hold, and check it later is byte-identical.

A refactoring must not change what users see.  This runs the real command (a
subprocess per case, so start-up, argument parsing and output encoding are
covered) over every record of ``../shared/vectors/real_vectors.jsonl`` and
``p1_vectors.jsonl`` and over ``samples/*.hex``, in every output format and in
``--explain`` and ``--summary`` modes, with and without the record's country,
and stores stdout, stderr and the exit status of each case::

    python -m benchmarks.compare_decode record /tmp/decode-before
    ... change the code ...
    python -m benchmarks.compare_decode check /tmp/decode-before

``check`` prints each case that differs (with the first differing line) and
exits 1 if any does.  Keys travel in the environment (``HAN_KEY``,
``HAN_AUTH_KEY``), never on a command line, and the recorded outputs are
han's own output, which never contains them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(os.environ.get("HAN_VECTORS_DIR", ROOT.parent / "shared" / "vectors"))
FORMATS = ("table", "json", "jsonl", "csv", "xml")
MODES = tuple(("--format", f) for f in FORMATS) + (("--explain",), ("--summary", "--format", "jsonl"))
COUNTRIES = {"no": "NO", "dk": "DK", "se": "SE", "at": "AT", "ch": "CH", "si": "SI", "pl": "PL", "lu": "LU"}


def _inputs() -> list[tuple[str, str, dict[str, str], list[str]]]:
    """(name, hex input, environment, extra arguments) for every capture."""
    cases: list[tuple[str, str, dict[str, str], list[str]]] = []
    real = VECTORS / "real_vectors.jsonl"
    if real.exists():
        for line in real.read_text().splitlines():
            rec = json.loads(line)
            env: dict[str, str] = {}
            keys = rec.get("keys") or {}
            if keys.get("ek"):
                env["HAN_KEY"] = keys["ek"]
            if keys.get("ak"):
                env["HAN_AUTH_KEY"] = keys["ak"]
            extra = ["--system-title", rec["system_title"]] if rec.get("system_title") else []
            country = COUNTRIES.get(rec["id"].split("_")[1], None) if "_" in rec["id"] else None
            countries = [None] + ([country] if country else [])
            sources = [("", rec["hex"])]
            plain = (rec.get("expected") or {}).get("plaintext_apdu")
            if plain and not keys:
                sources.append(("-plain", plain))
            for suffix, hx in sources:
                for cc in countries:
                    args = extra + (["--country", cc] if cc else [])
                    cases.append((f"{rec['id']}{suffix}{'-' + cc if cc else ''}", hx, env, args))
    p1 = VECTORS / "p1_vectors.jsonl"
    if p1.exists():
        for line in p1.read_text().splitlines():
            rec = json.loads(line)
            cases.append((rec["id"], rec["telegram"].encode("latin-1").hex(), {}, []))
    for sample in sorted((ROOT / "samples").glob("*.hex")):
        cases.append((f"sample-{sample.stem}", sample.read_text(), {}, []))
    return cases


def _run(case: tuple[str, str, dict[str, str], list[str]], mode: tuple[str, ...]) -> tuple[str, bytes]:
    name, hx, env, extra = case
    full_env = {k: v for k, v in os.environ.items() if k not in ("HAN_KEY", "HAN_AUTH_KEY")}
    full_env.update(env)
    full_env["PYTHONHASHSEED"] = "0"
    cmd = [sys.executable, "-m", "han", "decode", "-", *extra, *mode]
    proc = subprocess.run(cmd, input=hx.encode(), capture_output=True, env=full_env, cwd=ROOT, timeout=120)
    key = f"{name}{''.join(' ' + m for m in mode)}"
    blob = b"status %d\n--- stdout\n%s--- stderr\n%s" % (proc.returncode, proc.stdout, proc.stderr)
    return key, blob


def _file_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16] + ".out"


def collect() -> dict[str, bytes]:
    jobs = [(case, mode) for case in _inputs() for mode in MODES]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(pool.map(lambda job: _run(*job), jobs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare_decode", description=__doc__.split("\n")[0])
    ap.add_argument("action", choices=("record", "check"))
    ap.add_argument("directory", type=Path)
    args = ap.parse_args(argv)
    outputs = collect()
    if args.action == "record":
        args.directory.mkdir(parents=True, exist_ok=True)
        index = {}
        for key, blob in outputs.items():
            (args.directory / _file_name(key)).write_bytes(blob)
            index[key] = _file_name(key)
        (args.directory / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True))
        print(f"recorded {len(outputs)} cases in {args.directory}")
        return 0
    index = json.loads((args.directory / "index.json").read_text())
    differ = 0
    for key in sorted(set(index) | set(outputs)):
        if key not in index or key not in outputs:
            print(f"{'new' if key in outputs else 'gone'}: {key}")
            differ += 1
            continue
        before = (args.directory / index[key]).read_bytes()
        after = outputs[key]
        if before != after:
            differ += 1
            a, b = before.splitlines(), after.splitlines()
            i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            print(f"differs: {key}\n  line {i + 1} before: {a[i] if i < len(a) else '<end>'!r}"
                  f"\n  line {i + 1} after:  {b[i] if i < len(b) else '<end>'!r}")
    print(f"{len(outputs) - differ} of {len(outputs)} cases identical, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
