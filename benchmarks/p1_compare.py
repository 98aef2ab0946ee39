"""P1 telegrams: han against dsmr_parser on the same telegrams (../shared/vectors/p1_vectors.jsonl).

``python -m benchmarks.p1_compare [--peer-python /work/peers-venv/bin/python]``

han's figure is the whole way a telegram takes in the daemon: framing (CRC
checked), syntax and meaning (a :class:`~obis.push.Push` with named registers)
through :class:`han.pipeline.PushDecoder`.  dsmr_parser's is its
``TelegramParser.parse`` with the CRC checked, for each telegram's own
specification; it runs in the peers' interpreter (never a dependency of han),
as :mod:`benchmarks.peers` does.  Two han figures: the vectors decoded again
and again (a live meter repeats most lines from one second to the next), and
"fresh" telegrams whose every number changes each time (no line repeats).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "p1_vectors.jsonl"
if not VECTORS.exists():
    VECTORS = Path("/work/shared/vectors/p1_vectors.jsonl")

_PEER = r'''
import json, sys, time
from dsmr_parser import telegram_specifications as ts
from dsmr_parser.parsers import TelegramParser
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if r["expect"] == "values"]
n = int(sys.argv[2])
out = {}
for r in recs:
    spec = getattr(ts, r["spec"], None)
    if spec is None:
        continue
    parser = TelegramParser(spec)
    text = r["telegram"]
    try:
        parser.parse(text)
    except Exception:  # its own example it does not parse with this specification: not measured
        continue
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            parser.parse(text)
        best = min(best, time.perf_counter() - t0)
    out[r["id"]] = n / best
print(json.dumps(out))
'''


def _records() -> list[dict]:
    recs = [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]
    return [r for r in recs if r["expect"] == "values"]


def _fresh(telegram: bytes, k: int) -> bytes:
    """The telegram with every digit before a '*' unit shifted by ``k``, CRC recomputed."""
    from decoders.link.crc import crc16_arc

    out = bytearray(telegram)
    i = out.find(b"*")
    while i != -1:
        j = i - 1
        if 0x30 <= out[j] <= 0x39:
            out[j] = 0x30 + (out[j] - 0x30 + k) % 10
        i = out.find(b"*", i + 1)
    bang = out.find(b"!")
    if out[bang + 1 : bang + 2] not in (b"\r", b""):
        end = out.find(b"\r\n", bang)
        out[bang + 1 : end] = b"%04X" % crc16_arc(bytes(out[: bang + 1]))
    return bytes(out)


def han_rates(n: int) -> dict[str, dict[str, float]]:
    from han.pipeline import PushDecoder
    from obis.push import Push

    out: dict[str, dict[str, float]] = {}
    for r in _records():
        wire = r["telegram"].encode("latin-1")
        fresh = [_fresh(wire, k) for k in range(10)]
        rates = {}
        for label, stream in (("repeated", [wire] * 10), ("fresh", fresh)):
            d = PushDecoder(None, transport="p1")
            got = [x for t in stream for x in d.feed(t)]
            assert sum(isinstance(x, Push) for x in got) == len(stream), r["id"]
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(n // 10):
                    for t in stream:
                        d.feed(t)
                best = min(best, time.perf_counter() - t0)
            rates[label] = (n // 10) * 10 / best
        out[r["id"]] = rates
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", default="/work/peers-venv/bin/python")
    ap.add_argument("-n", type=int, default=2000, help="telegrams per measurement")
    args = ap.parse_args(argv)
    ours = han_rates(args.n)
    try:
        done = subprocess.run([args.peer_python, "-c", _PEER, str(VECTORS), str(max(args.n // 4, 50))],
                              capture_output=True, text=True, check=True, timeout=600)  # fmt: skip
        theirs = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        print(f"dsmr_parser not measured: {exc}", file=sys.stderr)
        theirs = {}
    print(f"{'telegram':44} {'dsmr_parser/s':>13} {'han rep./s':>11} {'han fresh/s':>11} {'x rep.':>7} {'x fresh':>7}")
    for rid, rates in ours.items():
        peer = theirs.get(rid)
        ratio = (f"{rates['repeated'] / peer:7.1f} {rates['fresh'] / peer:7.1f}") if peer else f"{'-':>7} {'-':>7}"
        print(f"{rid.removeprefix('dsmr_parser_TELEGRAM_'):44} {peer or 0:13.0f} {rates['repeated']:11.0f}"
              f" {rates['fresh']:11.0f} {ratio}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
