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


def test_no_sink_makes_a_push_durable_before_the_journal_has_it_on_disk(tmp_path):
    """The cause of re-issued positions is a power cut, which strace cannot make: shown by the order of syscalls.

    The journal commits with synchronous=NORMAL (its WAL is not synced at each commit), while
    the JSONL sink fsyncs its file and every checkpoint is fsynced.  After a power cut, a sink
    could hold pushes whose journal rows were lost, and the journal would give their positions
    again.  So every sink's first durable step (fsync, fdatasync or rename in a sink thread)
    must come after an fdatasync of the journal's WAL that follows the journal's commit.
    """
    import re
    import subprocess

    problem = crash_sweep.strace_problem()
    if problem:
        pytest.skip(problem)
    capture = tmp_path / "capture.bin"
    idents = crash_sweep.build_capture(capture, 30)
    setup = crash_sweep.Setup(tmp_path, capture, idents)
    trace = tmp_path / "strace.out"
    cmd = ["strace", "-f", "-qq", "-y", "-o", str(trace), "-e", "trace=pwrite64,write,fsync,fdatasync,rename"]
    setup.command = lambda: [a for a in crash_sweep.Setup.command(setup) if a != "--pace"]  # one journal commit
    assert setup.run(cmd, tmp_path / "daemon.log") == 0
    assert crash_sweep.check(setup).ok
    lines = trace.read_text().splitlines()
    dirty = False  # the journal's WAL has writes not synced yet
    sink_steps = 0
    for ln in lines:
        call = re.match(r"\d+\s+(\w+)\(", ln)
        if call is None:
            continue
        name = call.group(1)
        if "journal.db-wal>" in ln:
            if name == "pwrite64":
                dirty = True
            elif name in ("fsync", "fdatasync"):
                dirty = False
        elif "pushes.jsonl>" in ln and name in ("write", "fsync", "fdatasync"):
            # the JSONL file holds pushes only: each write and sync of it makes pushes durable
            sink_steps += 1
            assert not dirty, f"a sink made pushes durable before the journal's commit was on disk: {ln}"
    assert sink_steps > 0


def test_a_full_disk_at_sampled_calls_loses_and_doubles_nothing_and_never_gives_a_position_twice(tmp_path):
    """``--fault enospc`` in CI form: ENOSPC at spread calls of each syscall a full disk fails.

    Each call point runs three ways: the disk full for one call, for 25 calls (the run goes on
    and ends by itself), and full from there until a kill -9 while pushes wait in memory.  After
    a restart every push the journal gave a position is in SQLite and JSONL once, the journal's
    last position is their number (none given twice), and only a kill loses pushes: those the
    journal never took (the documented limit of a full disk), counted apart.
    """
    problem = crash_sweep.strace_problem()
    if problem:
        pytest.skip(problem)
    # the journal's commits (pwrite64): five points, two among the commits, in every shape; the
    # other syscalls at calls 1, 2 and the last, full for one call and until a kill
    others = tuple(sc for sc in crash_sweep.ENOSPC_SYSCALLS if sc != "pwrite64")
    reports = [
        crash_sweep.sweep_enospc(tmp_path / "journal", pushes=30, syscalls=("pwrite64",), per_syscall=5,
                                 progress=lambda m: None),
        crash_sweep.sweep_enospc(tmp_path / "others", pushes=30, syscalls=others, per_syscall=3,
                                 shapes=((1, False), (0, True)), progress=lambda m: None),
    ]  # fmt: skip
    for report in reports:
        print(crash_sweep.table_enospc(report))
        assert report["failed"] == 0, crash_sweep.table_enospc(report) + "\n" + repr(report)
        assert report["lost"] == 0 and report["duplicated"] == 0 and report["lost_in_memory"] == 0
        for row in report["rows"]:
            assert row["calls_per_thread"], f"han run made no {row['syscall']} call"
    assert reports[0]["fault_points"] == 5 * 3 and reports[1]["fault_points"] == 3 * 2 * len(others)
    for row in reports[0]["rows"]:  # pushes waited in memory, and a kill found them there
        assert row["journal_full"] >= 1, row
        if row["shape"].endswith("kill -9"):
            assert row["killed"] >= 1, row


def test_a_really_full_tmpfs_loses_and_doubles_nothing_and_never_gives_a_position_twice(tmp_path):
    """``--fault tmpfs`` in CI form: the state directory on a real tmpfs, filled to the last byte.

    Where strace refuses whole calls, a real full tmpfs cuts writes short at a page boundary
    (a WAL frame is 4,120 bytes), refuses only growth, and fails SQLite's -shm extension too.
    Two levels of free space that the 30-push run reaches while the journal commits, each with
    room again, a kill -9 while full, and a kill -9 then a restart on the still full disk: every
    push in both sinks once, one journal position per push.  Skips without permission to mount.
    """
    problem = crash_sweep.mount_problem()
    if problem:
        pytest.skip(problem)
    if crash_sweep.strace_problem():
        pytest.skip(crash_sweep.strace_problem())
    base = tmp_path / "sweep"
    base.mkdir()
    capture = base / "capture.bin"
    idents = crash_sweep.build_capture(capture, 30)
    points = [
        crash_sweep.disk_point(base, capture, idents, "tmpfs", level, shape)
        for level in (200_000, 400_000)
        for shape in crash_sweep.DISK_SHAPES
    ]
    for p in points:
        assert p.check.ok, (p.n, p.outcome, p.check, p.log)
    assert any(p.journal_full for p in points), "the full disk never refused a journal commit"
    assert any(p.outcome == "killed" for p in points)
