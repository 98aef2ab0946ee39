"""P1 telegrams: han against dsmr_parser on the same telegrams (../shared/vectors/p1_vectors.jsonl).

``python -m benchmarks.p1_compare [--peer-python /work/p1peer-venv/bin/python] [--rounds 12]``

han's figure is the whole way a telegram takes in the daemon: framing (CRC
checked), syntax and meaning (a :class:`~obis.push.Push` with named registers)
through :class:`han.pipeline.PushDecoder`.  dsmr_parser's is its
``TelegramParser.parse`` with the CRC checked, for each telegram's own
specification; it runs in the peers' interpreter (never a dependency of han),
as :mod:`benchmarks.peers` does.  Two han figures: the vectors decoded again
and again (a live meter repeats most lines from one second to the next), and
"fresh" telegrams whose every number changes each time (ten variants in turn).

The two sides take turns, round after round (the peer's process waits for its
turn on a pipe), each timing short batches; each figure is the best batch of
all rounds.  On a machine shared with other jobs a side slowed down by them
in one round has its figure from another, and both sides meet the same load.
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
#: batches per telegram per round, and the time one batch should take
BATCHES = 5
BATCH_SECONDS = 0.004

_PEER = r'''
import json, sys, time
from dsmr_parser import telegram_specifications as ts
from dsmr_parser.parsers import TelegramParser
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if r["expect"] == "values"]
batches, seconds = int(sys.argv[2]), float(sys.argv[3])
cases = []
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
    t0 = time.perf_counter()
    parser.parse(text)
    k = max(1, int(seconds / max(time.perf_counter() - t0, 1e-7)))
    cases.append((r["id"], parser, text, k))
print(json.dumps([c[0] for c in cases]), flush=True)
for _ in sys.stdin:  # one line: one round
    out = {}
    for rid, parser, text, k in cases:
        best = float("inf")
        for _ in range(batches):
            t0 = time.perf_counter()
            for _ in range(k):
                parser.parse(text)
            best = min(best, (time.perf_counter() - t0) / k)
        out[rid] = best
    print(json.dumps(out), flush=True)
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


def _han_cases() -> list[tuple[str, str, object, list[bytes], int]]:
    """(id, label, decoder, telegrams fed in turn, telegrams per batch) for each record and figure."""
    from han.pipeline import PushDecoder
    from obis.push import Push

    cases = []
    for r in _records():
        wire = r["telegram"].encode("latin-1")
        for label, stream in (("repeated", [wire]), ("fresh", [_fresh(wire, k) for k in range(10)])):
            d = PushDecoder(None, transport="p1")
            got = [x for t in stream for x in d.feed(t)]
            assert sum(isinstance(x, Push) for x in got) == len(stream), r["id"]
            t0 = time.perf_counter()
            for t in stream:
                d.feed(t)
            each = (time.perf_counter() - t0) / len(stream)
            k = max(len(stream), int(BATCH_SECONDS / max(each, 1e-7)) // len(stream) * len(stream))
            cases.append((r["id"], label, d, stream, k))
    return cases


def _han_round(cases, best: dict[tuple[str, str], float]) -> None:
    for rid, label, d, stream, k in cases:
        feed = d.feed
        reps = k // len(stream)
        for _ in range(BATCHES):
            t0 = time.perf_counter()
            for _ in range(reps):
                for t in stream:
                    feed(t)
            s = (time.perf_counter() - t0) / k
            if s < best.get((rid, label), float("inf")):
                best[(rid, label)] = s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", default="/work/p1peer-venv/bin/python")
    ap.add_argument("--rounds", type=int, default=12, help="turns each side takes (default 12)")
    args = ap.parse_args(argv)
    cases = _han_cases()
    ours: dict[tuple[str, str], float] = {}
    theirs: dict[str, float] = {}
    peer = None
    try:
        peer = subprocess.Popen([args.peer_python, "-c", _PEER, str(VECTORS), str(BATCHES), str(BATCH_SECONDS)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        json.loads(peer.stdout.readline())  # type: ignore[union-attr]
    except (OSError, ValueError) as exc:
        print(f"dsmr_parser not measured: {exc}", file=sys.stderr)
        peer = None
    for _ in range(max(args.rounds, 1)):
        _han_round(cases, ours)
        if peer is not None:
            peer.stdin.write("round\n")  # type: ignore[union-attr]
            peer.stdin.flush()  # type: ignore[union-attr]
            for rid, s in json.loads(peer.stdout.readline()).items():  # type: ignore[union-attr]
                theirs[rid] = min(s, theirs.get(rid, float("inf")))
    if peer is not None:
        peer.stdin.close()  # type: ignore[union-attr]
        peer.wait(timeout=60)
    print(f"{'telegram':44} {'dsmr_parser/s':>13} {'han rep./s':>11} {'han fresh/s':>11} {'x rep.':>7} {'x fresh':>7}")
    for rid in dict.fromkeys(rid for rid, _label in ours):
        rep, fresh = 1 / ours[(rid, "repeated")], 1 / ours[(rid, "fresh")]
        peer_rate = 1 / theirs[rid] if rid in theirs else None
        ratio = f"{rep / peer_rate:7.1f} {fresh / peer_rate:7.1f}" if peer_rate else f"{'-':>7} {'-':>7}"
        print(f"{rid.removeprefix('dsmr_parser_TELEGRAM_'):44} {peer_rate or 0:13.0f} {rep:11.0f} {fresh:11.0f} {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
