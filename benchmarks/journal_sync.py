"""What ``PRAGMA synchronous=FULL`` costs the daemon's journal: one append transaction per push, NORMAL vs FULL.

``python -m benchmarks.journal_sync [--dir DIR]`` (DIR on the disk the state directory lives on).
Printed, never asserted.  In WAL mode NORMAL survives a crash of the process (kill -9) but a power
cut may lose the last commits; FULL adds one fsync per commit, so a power cut loses nothing the
daemon accepted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from han.journal import Journal, Record


def measure(directory: str | None = None, n: int = 300) -> dict[str, float]:
    out = {}
    for sync in ("NORMAL", "FULL"):
        d = tempfile.mkdtemp(prefix="han-sync-", dir=directory)
        try:
            j = Journal(os.path.join(d, "journal.db"))
            j.db.execute(f"PRAGMA synchronous={sync}")
            rec = Record(time.time(), b"KAMEXXXX", "k", 1, 0x30, 0xDB, True, os.urandom(480))
            t = time.perf_counter()
            for _ in range(n):
                j.append([rec])
            out[sync] = (time.perf_counter() - t) / n * 1e3
            j.close()
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", help="where to put the test journal (default: the temporary directory)")
    args = ap.parse_args()
    for sync, ms in measure(args.dir).items():
        print(f"synchronous={sync:<6} {ms:.3f} ms per push (one append transaction each)")
