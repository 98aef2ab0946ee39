"""What syncing the daemon's journal costs per push: NORMAL, NORMAL + make_durable (what han does), FULL.

``python -m benchmarks.journal_sync [--dir DIR]`` (DIR on the disk the state directory lives on).
Printed, never asserted.  In WAL mode NORMAL survives a crash of the process (kill -9) but a power
cut may lose the last commits; FULL adds one fsync per commit, so a power cut loses nothing the
daemon accepted.  ``make_durable`` is what the sink workers do before a sink stores a batch: one
fdatasync of the WAL (at a push every few seconds, a batch is one push, so one fdatasync per push).
The fdatasync latencies (median, 99th percentile, worst) are what a push waits at meter pace.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from han.journal import Journal, JournalReader, Record


def measure(directory: str | None = None, n: int = 300) -> dict[str, float]:
    """ms per push for each mode, and the make_durable fdatasync's median/p99/max (ms)."""
    out: dict[str, float] = {}
    for mode in ("NORMAL", "NORMAL+make_durable", "FULL"):
        d = tempfile.mkdtemp(prefix="han-sync-", dir=directory)
        try:
            j = Journal(os.path.join(d, "journal.db"))
            j.db.execute(f"PRAGMA synchronous={mode.split('+')[0]}")
            reader = JournalReader(j.path) if "make_durable" in mode else None
            rec = Record(time.time(), b"KAMEXXXX", "k", 1, 0x30, 0xDB, True, os.urandom(480))
            syncs = []
            t = time.perf_counter()
            for _ in range(n):
                (seq,) = j.append([rec])
                if reader is not None:
                    s0 = time.perf_counter()
                    reader.make_durable(seq)
                    syncs.append((time.perf_counter() - s0) * 1e3)
            out[mode] = (time.perf_counter() - t) / n * 1e3
            if syncs:
                syncs.sort()
                out["fdatasync median"] = syncs[len(syncs) // 2]
                out["fdatasync p99"] = syncs[int(len(syncs) * 0.99)]
                out["fdatasync max"] = syncs[-1]
                reader.close()
            j.close()
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", help="where to put the test journal (default: the temporary directory)")
    args = ap.parse_args()
    for what, ms in measure(args.dir).items():
        if what.startswith("fdatasync"):
            print(f"  make_durable's {what:<17} {ms:.3f} ms")
        else:
            print(f"synchronous={what:<20} {ms:.3f} ms per push (one append transaction each)")
