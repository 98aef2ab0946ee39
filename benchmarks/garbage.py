"""Garbage throughput of each framer, at two sizes: ``python -m benchmarks.garbage``.

A line full of noise (wrong baud rate, a meter that is not DLMS, an
attacker) must cost time in proportion to its length.  This feeds the same
kinds of garbage as ``tests/decoders/test_bounded_memory_and_work.py`` (where the work is
counted, not timed) through each framer in 1 KiB chunks at N and 4N bytes
and prints MB/s: equal rates at both sizes mean linear time; a quadratic
framer would show the larger size four times slower per byte.

Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_fuzz_bounds import GARBAGE  # noqa: E402  (the cases live with the tests that count their work)

from decoders.link.hdlc import HdlcFramer  # noqa: E402
from decoders.link.mbus import MbusFramer  # noqa: E402
from decoders.link.raw import RawFramer  # noqa: E402
from decoders.ciphering.security import Keys  # noqa: E402
from han.pipeline import PushDecoder  # noqa: E402

DECODERS = {
    "hdlc": HdlcFramer,
    "mbus": MbusFramer,
    "raw": RawFramer,
    "pipeline(auto)": lambda: PushDecoder(Keys(ek=bytes(16), ak=bytes(16))),
}


def rate(make, data: bytes, chunk: int) -> float:
    """MB/s of ``data`` through a fresh decoder, best of three."""
    best = float("inf")
    for _ in range(3):
        dec = make()
        t0 = time.perf_counter()
        for i in range(0, len(data), chunk):
            dec.feed(data[i : i + chunk])
        dec.flush()
        best = min(best, time.perf_counter() - t0)
    return len(data) / best / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256 * 1024, help="the smaller size N in bytes (default 256 KiB)")
    ap.add_argument("--chunk", type=int, default=1024, help="bytes per feed (default 1024)")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    n = args.size
    print(f"garbage through each decoder in {args.chunk}-byte chunks, MB/s at {n // 1024} KiB and {4 * n // 1024} KiB")
    print(f"{'garbage':34} {'decoder':15} {'N':>9} {'4N':>9}")
    for name, unit in GARBAGE.items():
        small = (unit * (n // len(unit) + 1))[:n]
        big = (unit * (4 * n // len(unit) + 1))[: 4 * n]
        for kind, make in DECODERS.items():
            print(f"{name:34} {kind:15} {rate(make, small, args.chunk):9.2f} {rate(make, big, args.chunk):9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
