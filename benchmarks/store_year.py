"""A year of 10-second pushes into the SQLite store: time, final size, and ``han report`` for a month.

``python -m benchmarks.store_year [--days 365] [--step 10] [--keep-raw 90] [--db FILE]``

The pushes come from the simulated Kamstrup meter (plain, 33 registers each),
decoded by han's decoder.  They are fed to the SQLite sink's ``write_sync``
directly, 360 at a time (an hour of pushes per transaction), not through the
daemon, its journal and its asyncio shell: the daemon would take a year to
deliver a year.  The store time counts only ``write_sync`` and the pruning;
making and decoding the pushes is timed apart.  Pruning at ``--keep-raw`` days
runs once per simulated day, inline (the daemon runs it in a background thread).

Printed, never asserted: store time, pushes/s, file size and bytes per push
(raw tables and indexes alone, measured before pruning starts), and the time of
``han report --by hour`` for the last full month (in-process and as a command).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone

from decoders.ciphering.security import Keys
from han.pipeline import PushDecoder
from han.simulator import KamstrupSimulator
from sinks.store import retention
from sinks.base import Checkpoint, Entry
from sinks.sqlite import SqliteSink

START = datetime(2025, 1, 1, tzinfo=timezone.utc)  # 01:00 Copenhagen


def raw_bytes(db: sqlite3.Connection) -> int:
    return db.execute(
        "SELECT sum(pgsize) FROM dbstat WHERE name IN ('pushes', 'pushes_time', 'pushes_list')"
        " OR name LIKE 'sqlite_autoindex_pushes%'"
    ).fetchone()[0]


def run(days: float, step: float, keep_raw: float, path: str) -> dict:
    sim = KamstrupSimulator(None, meter_number=12345678, seed=1)
    dec = PushDecoder(Keys())
    sink = SqliteSink(path, keep_raw_days=None)  # pruned inline below
    sink.open_sync(Checkpoint("bench", 0))
    total = int(days * 86400 / step)
    batch = max(1, int(3600 / step))
    made = stored = pruned_s = 0.0
    per_push = None
    seq = 0
    prune_db = sqlite3.connect(path, isolation_level=None)
    next_prune = START + timedelta(days=1)
    t_all = time.perf_counter()
    while seq < total:
        n = min(batch, total - seq)
        t = time.perf_counter()
        times = [START + timedelta(seconds=step * (seq + i)) for i in range(n)]
        pushes = dec.feed(b"".join(sim.frame(w) for w in times))
        entries = [Entry(seq + i + 1, w, p) for i, (w, p) in enumerate(zip(times, pushes))]
        made += time.perf_counter() - t
        t = time.perf_counter()
        sink.write_sync(entries)
        stored += time.perf_counter() - t
        seq += n
        if times[-1] >= next_prune:
            next_prune += timedelta(days=1)
            if per_push is None and keep_raw and times[-1] >= START + timedelta(days=min(keep_raw, days) - 1):
                per_push = raw_bytes(prune_db) / seq
            if keep_raw:
                t = time.perf_counter()
                retention.prune(prune_db, keep_raw)
                pruned_s += time.perf_counter() - t
        if seq % (batch * 24 * 30) == 0:
            print(f"  {seq:,} pushes, store {stored:.0f} s, making {made:.0f} s", file=sys.stderr, flush=True)
    if per_push is None:
        per_push = raw_bytes(prune_db) / seq
    sink.close_sync()
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(path)
    end = (START + timedelta(seconds=step * total)).date()
    month_end = date(end.year, end.month, 1)
    month_start = date(month_end.year - (month_end.month == 1), (month_end.month - 2) % 12 + 1, 1)
    from han.commands.report import rows_for

    t = time.perf_counter()
    rows, _ = rows_for(db, "12345678", "hour", month_start, month_end)
    in_process = time.perf_counter() - t
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "han", "report", "--db", path, "--by", "hour", "--from", str(month_start),
         "--to", str(month_end), "--format", "json"], capture_output=True, text=True)
    command = time.perf_counter() - t
    assert out.returncode == 0, out.stderr
    return {
        "pushes": seq, "store_s": stored, "prune_s": pruned_s, "make_s": made,
        "wall_s": time.perf_counter() - t_all, "pushes_per_s": seq / (stored + pruned_s),
        "size_bytes": size, "raw_bytes_per_push": per_push,
        "hours": db.execute("SELECT count(*) FROM hours").fetchone()[0],
        "raw_pushes_kept": db.execute("SELECT count(*) FROM pushes").fetchone()[0],
        "report_month": f"{month_start}..{month_end}", "report_rows": len(rows),
        "report_in_process_s": in_process, "report_command_s": command,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=365)
    ap.add_argument("--step", type=float, default=10)
    ap.add_argument("--keep-raw", type=float, default=retention.KEEP_RAW_DAYS)
    ap.add_argument("--db", help="the store to create (default: a temporary file, removed after)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="han-year-") as d:
        path = a.db or os.path.join(d, "han.db")
        r = run(a.days, a.step, a.keep_raw, path)
    print(f"{r['pushes']:,} pushes ({a.days:g} days at {a.step:g} s), keep_raw_days {a.keep_raw:g}")
    print(f"store: {r['store_s']:.1f} s writing + {r['prune_s']:.1f} s pruning = {r['pushes_per_s']:,.0f} pushes/s"
          f" (making and decoding the pushes: {r['make_s']:.0f} s, not counted)")
    print(f"size: {r['size_bytes'] / 1e6:.1f} MB on disk; raw pushes {r['raw_bytes_per_push']:.0f} bytes each"
          f" (tables and indexes); {r['raw_pushes_kept']:,} raw pushes kept, {r['hours']:,} hours")
    print(f"han report --by hour for {r['report_month']} ({r['report_rows']} rows):"
          f" {r['report_in_process_s'] * 1e3:.0f} ms in process, {r['report_command_s'] * 1e3:.0f} ms as a command")


if __name__ == "__main__":
    main()
