"""The crash sweep in its CI form: kill -9 (strace's syscall injection) at a spread of crash points.

``python -m benchmarks.crash_sweep`` kills ``han run --replay`` at every write, pwrite64,
fsync, fdatasync, rename, ftruncate and unlink of a 200-push capture (docs/soak.md).  Here
the same runner takes four crash points per syscall (the first two, the last the run
without a crash made, one between) of a 30-push capture: after each crash and a restart
on the same state directory and capture, every push is in SQLite and in the JSONL file
exactly once, the journal gave one position per push, and the log is clean.  Skips when
strace is absent or ptrace is not permitted.
"""

from __future__ import annotations

import pytest

from benchmarks import crash_sweep
from daemonkit import AK, EK  # noqa: F401 - the keys the runner uses (the key-leak check searches for them)


def test_every_push_reaches_every_sink_once_after_a_kill_at_each_sampled_syscall(tmp_path):
    problem = crash_sweep.strace_problem()
    if problem:
        pytest.skip(problem)
    report = crash_sweep.sweep(tmp_path / "sweep", pushes=30, per_syscall=4, progress=lambda m: None)
    print(crash_sweep.table(report))
    assert report["failed"] == 0, crash_sweep.table(report) + "\n" + repr(report)
    assert report["lost"] == 0 and report["duplicated"] == 0
    for sc in crash_sweep.SYSCALLS:
        v = report["syscalls"][sc]
        assert v["calls_per_thread"], f"han run made no {sc} call"
        assert v["killed"] >= 2, (sc, v)  # the first two calls are always reached
