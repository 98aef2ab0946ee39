"""A deterministic crash sweep of the store: kill -9 at every write, sync, rename and truncate.

``python -m benchmarks.crash_sweep`` replays a capture of encrypted Kamstrup pushes
(distinct invocation counters) through a real ``han run --replay --pace`` into the
SQLite and JSON-lines sinks, under Debian's strace::

    strace -f -e trace=SYSCALL -e inject=SYSCALL:signal=KILL:when=N han run ...

For each of the syscalls the store makes (``write``, ``pwrite64``, ``fsync``,
``fdatasync``, ``rename``, ``ftruncate``, ``unlink``: what ``strace -f -c`` shows
SQLite and Python calling here; no ``pwritev``, ``renameat`` or ``unlinkat``), with
N = 1, 2, ... until N is past the calls a run without a crash makes and a run
completes without reaching its Nth call: the daemon is
killed on entering its Nth call (the call is not made), then ``han run --replay``
is started again on the same state directory and capture until it exits 0.  Then
every push must be in each sink exactly once (counted per system title and
invocation counter in SQLite's ``pushes`` table, with its 33 readings, and in the
JSONL file), the journal must have given exactly one position per push (its last
position is the number of pushes), and the daemon's log must show no traceback,
no internal error and no journal position a sink held that the journal had lost.

What a crash point is: strace counts ``when=`` per syscall *and per tracee*
(thread); ``-f`` traces the event loop (the journal), one thread per sink and the
``file`` child pycryptodome runs at import.  So crash point (SYSCALL, N) is "the
first thread to reach its Nth SYSCALL" (which thread that is can vary when two
threads both make N calls); a kill that hits only the helper child is counted
apart and the sweep goes on.  ``--seccomp-bpf`` is not used: with it strace 6.1
does not inject.

The capture's meter clock stands still (all pushes carry the same meter second),
so ``--pace`` feeds the pushes one at a time without waiting: one journal commit
per push, and the sink threads catch up in batches of every size, as in a real
logger (one push every few seconds), at replay speed.

``--pushes 200`` and every crash point is the full sweep (docs/soak.md has its
report); ``tests/app/test_crash_sweep.py`` runs a sample of crash points.

``--fault enospc`` makes the disk full instead: ``-e inject=SYSCALL:error=ENOSPC:when=...``
at ``--sample K`` calls (default 12) of ``write``, ``pwrite64``, ``fsync``, ``fdatasync``
and ``ftruncate``, each three ways: full for that one call, full for 25 calls
(``when=N..N+24``; the run goes on and ends by itself), and full from that call on until
a kill -9 (by pid, once the daemon logged that it keeps pushes in memory; each refused
call then also takes 50 ms, ``delay_enter``, so the pushes pile up).  After a restart
without a fault the same check runs, except that pushes no sink holds count as
``lost_in_memory`` after a kill (the documented limit: pushes the journal never took);
the journal's last position must then equal the number of pushes the sinks hold, so a
position given twice still fails.  Python's own "Logging error" (the log on the full
disk) and the daemon's "could not be written to the journal" line are allowed.

``--fault tmpfs`` makes the disk really full (root: ``mount -t tmpfs``): the state
directory (journal, SQLite, JSONL file, checkpoints) is a small tmpfs filled by a ballast
file to ``--sample K`` levels of free space spread from 0 to what a run without a fault
needs at its peak, in 4 KiB pages.  The run then meets a real full disk wherever its data
reaches it: short writes (a WAL frame of 4,120 bytes is cut at a page boundary), ENOSPC on
the WAL, the database, SQLite's ``-shm`` and the checkpoint files, writes into space already
allocated that succeed.  Each level runs three ways: room again 0.3 s after the daemon's
first full-disk error (the ballast removed; the run goes on); kill -9 while the disk is
full, then room and a restart; kill -9, a restart on the still full disk that is killed
again after 1 s, then room and a restart.  Then the check above (``lost_in_memory`` after a
kill).  ``--fault fsize`` is the soak's stand-in when mounting is not allowed: the daemon
runs under ``RLIMIT_FSIZE`` (``prlimit``) at K file sizes up to the largest file a run makes,
so every write past it fails with EFBIG and a write across it is short (Python ignores
SIGXFSZ); the same three shapes, the limit lifted for room.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from daemonkit import AK, EK, simulator  # noqa: E402 - the tests' keys and simulated meter

SYSCALLS = ("write", "pwrite64", "fsync", "fdatasync", "rename", "ftruncate", "unlink")
#: the calls a full disk fails (rename and unlink free space or need none)
ENOSPC_SYSCALLS = ("write", "pwrite64", "fsync", "fdatasync", "ftruncate")
#: ENOSPC faults: (calls the disk stays full for, kill -9 while pushes wait in memory);
#: 0 calls: full from the Nth call on, until the kill
ENOSPC_SHAPES = ((1, False), (25, False), (0, True))
REGISTERS = 33  #: readings per Kamstrup push (32 registers and the list identifier)
GUARD = 120.0  #: seconds one han run may take (a failure guard, never a timing assertion)
#: log lines that must never appear
BAD_LOG = re.compile(r"Traceback|internal error|holds position|dropped|could not be written to the journal")
#: what Python's logging prints when the log's own write fails (the log is on the full disk too)
LOGGING_ERROR = re.compile(r"--- Logging error ---\n(?:.*\n)*?(?:Message: .*\nArguments: .*\n)", re.M)
#: the daemon keeps pushes in memory: the journal could not be written
JOURNAL_FULL = "pushes in memory and retrying"


class SweepError(Exception):
    pass


def strace_problem() -> str | None:
    """Why strace cannot inject here (not installed, ptrace not permitted), or None."""
    strace = shutil.which("strace")
    if strace is None:
        return "strace is not installed (Debian package strace; CI installs it from .ci/apt-packages)"
    try:
        out = subprocess.run(
            [strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=getppid", "-e", "inject=getppid:signal=KILL",
             sys.executable, "-c", "import os; os.getppid()"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"strace does not run: {exc}"
    if out.returncode != -9:
        err = out.stderr.decode(errors="replace").strip().splitlines()
        return f"strace cannot inject a kill here (ptrace not permitted?): {err[-1] if err else out.returncode}"
    return None


# -- the capture ------------------------------------------------------------------------------------
def build_capture(path: Path, pushes: int, seed: int = 1) -> list[tuple[str, int]]:
    """``pushes`` encrypted, authenticated Kamstrup pushes with one meter second; their (system title, counter)."""
    sim = simulator(seed=seed, counter_start=1000)
    when = datetime(2026, 1, 15, 12, 0, 0)
    idents = []
    with open(path, "wb") as fh:
        for _ in range(pushes):
            idents.append((sim.system_title.hex().upper(), sim.counter))
            fh.write(sim.frame(when))
    return idents


# -- one han run --------------------------------------------------------------------------------------
@dataclass
class Setup:
    work: Path
    capture: Path
    idents: list[tuple[str, int]]

    @property
    def state(self) -> Path:
        return self.work / "state"

    @property
    def jsonl(self) -> Path:
        return self.work / "pushes.jsonl"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "han", "run", "--replay", str(self.capture), "--pace",
            "--state-dir", str(self.state),
            "--sink", f"sqlite:{self.state / 'han.db'}", "--sink", f"jsonl:{self.jsonl}",
        ]  # fmt: skip

    def env(self) -> dict:
        e = dict(os.environ)
        e.pop("JOURNAL_STREAM", None)
        e.update(HAN_KEY=EK.hex(), HAN_AUTH_KEY=AK.hex(), PYTHONPATH=str(ROOT))
        return e

    def run(self, prefix: list[str], log: Path) -> int:
        with open(log, "ab") as fh:
            proc = subprocess.run(
                prefix + self.command(), stdout=subprocess.DEVNULL, stderr=fh, env=self.env(), cwd=self.work,
                timeout=GUARD,
            )  # fmt: skip
        return proc.returncode


def strace_prefix(syscalls: str, trace_out: Path, inject: str | None = None) -> list[str]:
    cmd = ["strace", "-f", "-qq", "-o", str(trace_out), "-e", f"trace={syscalls}"]
    if inject:
        cmd += ["-e", f"inject={inject}"]
    return cmd


def calls_per_tracee(trace: Path) -> dict[str, list[int]]:
    """syscall -> its count in each tracee (strace -f -o output)."""
    counts: dict[str, Counter] = {}
    with open(trace, errors="replace") as fh:
        for line in fh:
            m = re.match(r"(\d+)\s+(\w+)\(", line)
            if m:
                counts.setdefault(m.group(2), Counter())[m.group(1)] += 1
    return {name: sorted(c.values(), reverse=True) for name, c in counts.items()}


# -- what the sinks hold ---------------------------------------------------------------------------------
@dataclass
class Check:
    lost: dict[str, int] = field(default_factory=dict)
    duplicated: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: pushes no sink holds and the journal never gave a position: accepted while the journal
    #: could not be written and still in memory at a kill -9 (the documented limit; not a failure)
    lost_in_memory: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not any(self.lost.values()) and not any(self.duplicated.values())


def check(setup: Setup, *, memory_loss: bool = False) -> Check:
    """Every push in every sink once, one journal position per push.

    ``memory_loss``: pushes that no sink holds are counted as ``lost_in_memory`` (a kill -9
    while they waited for a full disk), as long as the journal gave exactly one position
    to each push the sinks hold (its last position is their number): a position given
    twice would leave a push in one sink only, or the journal's last position short.
    """
    want = Counter(setup.idents)
    result = Check()
    db = sqlite3.connect(f"file:{setup.state / 'han.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT id, meter, invocation_counter FROM pushes").fetchall()
        readings = dict(db.execute("SELECT push_id, count(*) FROM readings GROUP BY push_id").fetchall())
        position = db.execute("SELECT seq FROM han_position").fetchone()
    finally:
        db.close()
    short = sum(1 for pid, _, _ in rows if readings.get(pid) != REGISTERS)
    if short:
        result.problems.append(f"sqlite: {short} push(es) without their {REGISTERS} readings")
    held = {"sqlite": Counter((m, ic) for _, m, ic in rows)}
    with open(setup.jsonl, encoding="utf-8") as fh:
        lines = [json.loads(line) for line in fh]
    held["jsonl"] = Counter((d["security"]["system_title"], d["security"]["invocation_counter"]) for d in lines)
    expected = len(setup.idents)
    if memory_loss:
        anywhere = set(held["sqlite"]) | set(held["jsonl"])
        result.lost_in_memory = sum(1 for k in want if k not in anywhere)
        want = Counter({k: n for k, n in want.items() if k in anywhere})
        expected = len(anywhere & set(setup.idents))
    for sink, got in held.items():
        result.lost[sink] = sum((want - got).values())
        result.duplicated[sink] = sum(n - 1 for n in got.values() if n > 1) + sum(
            n for k, n in got.items() if k not in want
        )
    last = journal_last_seq(setup.state)
    if last != expected:
        result.problems.append(f"journal: last position {last} for {expected} pushes")
    if position is None or position[0] != last:
        result.problems.append(f"sqlite: holds position {position and position[0]}, the journal ends at {last}")
    for ckpt in (setup.state / "sinks").glob("*.json"):
        seq = json.loads(ckpt.read_text()).get("seq")
        if seq != last:
            result.problems.append(f"{ckpt.name}: checkpoint at {seq}, the journal ends at {last}")
    return result


def journal_last_seq(state: Path) -> int:
    db = sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
    finally:
        db.close()
    return int(row[0]) if row else 0


# -- one crash point ----------------------------------------------------------------------------------------
@dataclass
class Point:
    syscall: str
    n: int
    outcome: str = ""  #: killed | helper (the kill hit only pycryptodome's child) | completed | exit N
    restarts: int = 0
    check: Check | None = None
    log: str = ""
    fault: str = "kill"  #: kill | enospc
    span: int = 0  #: enospc: the calls the disk stays full for (0: from the Nth call on)
    kill: bool = False  #: enospc: a kill -9 while pushes waited in memory for the journal
    journal_full: bool = False  #: enospc: the journal refused a commit (pushes waited in memory)
    log_errors: int = 0  #: enospc: log lines the full disk refused (Python's "Logging error")


def crash_point(base: Path, capture: Path, idents, syscall: str, n: int, *, keep: bool = False) -> Point:
    work = Path(tempfile.mkdtemp(prefix=f"{syscall}-{n}-", dir=base))
    setup = Setup(work, capture, idents)
    log = work / "daemon.log"
    trace = work / "strace.out"
    point = Point(syscall, n)
    rc = setup.run(strace_prefix(syscall, trace, f"{syscall}:signal=KILL:when={n}"), log)
    killed = "killed by SIGKILL" in trace.read_text(errors="replace")
    if rc == -9:
        point.outcome = "killed"
    elif rc == 0:
        point.outcome = "helper" if killed else "completed"
    else:
        point.outcome = f"exit {rc}"
    while rc != 0:
        if point.restarts >= 3:
            break
        point.restarts += 1
        rc = setup.run([], log)
    text = log.read_text(errors="replace")
    point.check = check(setup) if rc == 0 else Check(problems=[f"han run exited with {rc} after a restart"])
    bad = sorted({m.group(0) for m in BAD_LOG.finditer(text)})
    if bad:
        point.check.problems.append("log: " + ", ".join(bad))
    if not point.check.ok:
        point.log = text[-4000:]
    if not keep and point.check.ok:
        shutil.rmtree(work, ignore_errors=True)
    return point


def enospc_point(
    base: Path, capture: Path, idents, syscall: str, n: int, span: int, kill: bool, *, keep: bool = False
) -> Point:
    """A full disk from the ``n``th ``syscall`` of each thread on, for ``span`` calls (0: until a kill -9).

    Without ``kill`` the run goes on and ends by itself (the disk has room again once the
    fault stops); with it, once the daemon has logged that it keeps pushes in memory, the
    daemon is killed (SIGKILL, by pid) a moment later while the disk is still full (a daemon
    that ends first, because its journal never failed, is restarted all the same).  Then
    ``han run --replay`` starts again without a fault until it exits 0, and the sinks are
    checked: pushes only a kill can lose are counted as ``lost_in_memory``.
    """
    tag = f"{span}" if span else "kill"
    work = Path(tempfile.mkdtemp(prefix=f"enospc-{syscall}-{n}-{tag}-", dir=base))
    setup = Setup(work, capture, idents)
    log = work / "daemon.log"
    trace = work / "strace.out"
    point = Point(syscall, n, fault="enospc", span=span, kill=kill)
    when = f"{n}.." + str(n + span - 1) if span > 1 else (str(n) if span == 1 else f"{n}+")
    # until the kill, each refused call also takes 50 ms (strace's delay_enter), as a commit into a full
    # disk is slow: the replay's pushes then pile up in memory while the journal fails, and the kill
    # (SIGKILL by pid, 0.3 s after the daemon said so) finds them there
    slow = ":delay_enter=50000" if kill else ""
    prefix = strace_prefix(syscall, trace, f"{syscall}:error=ENOSPC{slow}:when={when}")
    sent = False  #: the kill was sent
    if not kill:
        rc = setup.run(prefix, log)
    else:
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                prefix + setup.command(), stdout=subprocess.DEVNULL, stderr=fh, env=setup.env(), cwd=setup.work
            )  # fmt: skip
        deadline = time.monotonic() + GUARD
        killed_at: float | None = None
        while proc.poll() is None and time.monotonic() < deadline:
            if killed_at is None and JOURNAL_FULL in log.read_text(errors="replace"):
                killed_at = time.monotonic() + 0.3  # a few more pushes join those in memory
            if killed_at is not None and time.monotonic() >= killed_at:
                for pid in _children(proc.pid):
                    os.kill(pid, 9)
                    sent = True
                killed_at = float("inf")
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
        rc = proc.wait()
    text = log.read_text(errors="replace")
    point.journal_full = JOURNAL_FULL in text
    if kill and sent:
        point.outcome = "killed"
    else:
        point.outcome = "completed" if rc == 0 else f"exit {rc}"
    while rc != 0 and point.restarts < 3:
        point.restarts += 1
        rc = setup.run([], log)
    text = log.read_text(errors="replace")
    point.log_errors = len(LOGGING_ERROR.findall(text))
    clean = LOGGING_ERROR.sub("", text)
    point.check = (
        check(setup, memory_loss=kill) if rc == 0 else Check(problems=[f"han run exited with {rc} after a restart"])
    )
    # han stopping while the disk is full loses what waits in memory (and says so); the check
    # above counts what the restart could not take again
    allowed = {"could not be written to the journal"}
    bad = sorted({m.group(0) for m in BAD_LOG.finditer(clean)} - allowed)
    if bad:
        point.check.problems.append("log: " + ", ".join(bad))
    if not point.check.ok:
        point.log = text[-4000:]
    if not keep and point.check.ok:
        shutil.rmtree(work, ignore_errors=True)
    return point


#: real full disk faults: what "room again" means, and what the check allows
DISK_SHAPES = ("room again", "kill -9 while full", "kill -9, restart while full")
#: the daemon's log names a full disk (any layer: journal, sink, checkpoint, status, counters)
FULL_WORDS = re.compile(r"No space left on device|database or disk is full|File too large|disk I/O error")
TMPFS_KB = 16384  #: the state directory's tmpfs (the ballast takes all but the free space asked for)
#: every pwrite64 takes 3 ms (strace's delay_exit), as on a slow SD card: the replay then lasts a few
#: seconds, pushes arrive while the disk is full, and there is time to kill the daemon with pushes in memory
SLOW_DISK = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64", "-e", "inject=pwrite64:delay_exit=3000"]


class TmpfsSetup(Setup):
    """The state directory and the JSONL file on a tmpfs of their own."""

    @property
    def jsonl(self) -> Path:
        return self.state / "pushes.jsonl"


def mount_problem() -> str | None:
    """Why a tmpfs cannot be mounted here (not root, no permission), or None."""
    d = Path(tempfile.mkdtemp(prefix="han-tmpfs-probe-"))
    try:
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True)
        if out.returncode != 0:
            return f"cannot mount a tmpfs ({out.stderr.decode(errors='replace').strip() or out.returncode}; needs root)"
        subprocess.run(["umount", str(d)], capture_output=True)
        return None
    except OSError as exc:
        return f"cannot mount a tmpfs: {exc}"
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Disk:
    """A full disk, really: a tmpfs with a ballast file (``tmpfs``), or RLIMIT_FSIZE (``fsize``)."""

    def __init__(self, kind: str, state: Path, level: int) -> None:
        self.kind, self.state, self.level = kind, state, level  #: level: bytes left free, or the file size limit
        self.ballast = state / "ballast"
        self.full = False
        state.mkdir(parents=True, exist_ok=True)
        if kind == "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_KB}k,mode=0700", "tmpfs", str(state)],
                           check=True, capture_output=True)  # fmt: skip

    def fill(self) -> None:
        """Before the run: the tmpfs has ``level`` bytes left (to the page: then the last byte goes)."""
        self.full = True
        if self.kind != "tmpfs":
            return
        with open(self.ballast, "wb", buffering=0) as fh:
            st = os.statvfs(self.state)
            n = st.f_bavail * st.f_frsize - self.level
            if n > 0:
                os.posix_fallocate(fh.fileno(), 0, n)
            if self.level == 0:
                try:
                    while True:
                        fh.write(b"\0" * 4096)
                except OSError:
                    pass

    def prefix(self) -> list[str]:
        """What runs the daemon while the disk is full (prlimit for fsize)."""
        if self.kind == "fsize" and self.full:
            return ["prlimit", f"--fsize={self.level}:unlimited", "--"]
        return []

    def room(self, pids: list[int]) -> None:
        self.full = False
        if self.kind == "tmpfs":
            self.ballast.unlink(missing_ok=True)
        else:
            for pid in pids:
                subprocess.run(["prlimit", "--pid", str(pid), "--fsize=unlimited:unlimited"], capture_output=True)

    def usage(self) -> int:
        return sum(f.stat().st_blocks * 512 for f in self.state.rglob("*") if f.is_file() and f != self.ballast)

    def close(self) -> None:
        if self.kind == "tmpfs":
            subprocess.run(["umount", "-l", str(self.state)], capture_output=True)


def disk_point(base: Path, capture: Path, idents, kind: str, level: int, shape: str, *, keep: bool = False) -> Point:
    """One real full disk at ``level`` (see :class:`Disk`), in one of :data:`DISK_SHAPES`."""
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-{level}-{DISK_SHAPES.index(shape)}-", dir=base))
    setup = TmpfsSetup(work, capture, idents)
    log = work / "daemon.log"  # outside the full disk: the log tells when the disk was hit
    point = Point(kind, level, fault=kind, kill=shape != "room again")
    point.span = DISK_SHAPES.index(shape)
    disk = Disk(kind, setup.state, level)
    try:
        disk.fill()

        def start() -> subprocess.Popen:
            with open(log, "ab") as fh:
                return subprocess.Popen(disk.prefix() + SLOW_DISK + setup.command(), stdout=subprocess.DEVNULL,
                                        stderr=fh, env=setup.env(), cwd=work)  # fmt: skip

        proc = start()
        deadline = time.monotonic() + GUARD
        hit: float | None = None
        while proc.poll() is None and time.monotonic() < deadline:
            if hit is None and FULL_WORDS.search(log.read_text(errors="replace")):
                hit = time.monotonic()
            if hit is not None and time.monotonic() - hit >= 0.3:
                daemon = _children(proc.pid)  # strace's tracee
                if shape == "room again":
                    disk.room(daemon)
                else:
                    for pid in daemon:
                        os.kill(pid, 9)
                    point.outcome = "killed"
                break
            time.sleep(0.02)
        rc = proc.wait(timeout=GUARD)
        point.journal_full = JOURNAL_FULL in log.read_text(errors="replace")
        if shape == "kill -9, restart while full" and point.outcome == "killed":
            again = start()
            try:
                again.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                for pid in _children(again.pid):
                    os.kill(pid, 9)
                again.wait()
        disk.room([])
        if not point.outcome:
            point.outcome = "completed" if rc == 0 else f"exit {rc}"
        while rc != 0 and point.restarts < 3:
            point.restarts += 1
            rc = setup.run([], log)
        text = log.read_text(errors="replace")
        point.log_errors = len(LOGGING_ERROR.findall(text))
        clean = LOGGING_ERROR.sub("", text)
        point.check = (
            check(setup, memory_loss=point.kill) if rc == 0
            else Check(problems=[f"han run exited with {rc} after a restart"])
        )  # fmt: skip
        bad = sorted({m.group(0) for m in BAD_LOG.finditer(clean)} - {"could not be written to the journal"})
        if bad:
            point.check.problems.append("log: " + ", ".join(bad))
        if not point.check.ok:
            point.log = text[-4000:]
    finally:
        if keep or not (point.check and point.check.ok):
            shutil.copytree(setup.state, work / "state-kept", dirs_exist_ok=True, ignore_dangling_symlinks=True)
        disk.close()
    if not keep and point.check.ok:
        shutil.rmtree(work, ignore_errors=True)
    return point


def disk_dry_run(base: Path, capture: Path, idents, kind: str) -> int:
    """The most a run without a fault holds on its disk at once (tmpfs, bytes), or its largest file (fsize)."""
    work = Path(tempfile.mkdtemp(prefix=f"dry-{kind}-", dir=base))
    setup = TmpfsSetup(work, capture, idents)
    disk = Disk("tmpfs" if kind == "tmpfs" else "none", setup.state, 0)
    peak = 0
    try:
        with open(work / "daemon.log", "ab") as fh:
            proc = subprocess.Popen(setup.command(), stdout=subprocess.DEVNULL, stderr=fh, env=setup.env(), cwd=work)
        while proc.poll() is None:
            try:
                if kind == "tmpfs":
                    peak = max(peak, disk.usage())
                else:
                    peak = max([peak] + [f.stat().st_size for f in setup.state.rglob("*") if f.is_file()])
            except OSError:
                pass
            time.sleep(0.01)
        if proc.wait() != 0:
            raise SweepError(f"han run without a fault exited with {proc.returncode} (see {work / 'daemon.log'})")
        c = check(setup)
        if not c.ok:
            raise SweepError(f"han run without a fault: {c}")
    finally:
        disk.close()
    shutil.rmtree(work, ignore_errors=True)
    return peak


def sweep_disk(
    base: Path,
    kind: str = "tmpfs",
    *,
    pushes: int = 200,
    levels: int = 24,
    shapes: tuple[str, ...] = DISK_SHAPES,
    jobs: int = 1,
    keep: bool = False,
    progress=print,
) -> dict:
    """A real full disk at ``levels`` levels spread from 0 to a run's peak (4 KiB pages), in each shape."""
    base.mkdir(parents=True, exist_ok=True)
    capture = base / "capture.bin"
    idents = build_capture(capture, pushes)
    t0 = time.monotonic()
    peak = disk_dry_run(base, capture, idents, kind)
    pages = max(1, peak // 4096)
    # free space 0 .. peak (tmpfs), or a file size limit 4 KiB .. the largest file (fsize)
    at = [(n - 1) * 4096 for n in sample(pages + 1, levels)] if kind == "tmpfs" else \
        [n * 4096 for n in sample(pages, levels)]  # fmt: skip
    points: list[Point] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for shape in shapes:
            points += pool.map(lambda lv, sh=shape: disk_point(base, capture, idents, kind, lv, sh, keep=keep), at)
            done = [p for p in points if p.span == DISK_SHAPES.index(shape)]
            bad = [p for p in done if not p.check.ok]
            progress(f"{kind} sweep: {shape}: {len(done)} levels, {len(bad)} failed, {time.monotonic() - t0:.0f} s")
    rows = []
    for shape in shapes:
        mine = [p for p in points if p.span == DISK_SHAPES.index(shape)]
        rows.append(
            {
                "shape": shape,
                "levels": len(mine),
                "journal_full": sum(p.journal_full for p in mine),
                "killed": sum(p.outcome == "killed" for p in mine),
                "restarted": sum(p.restarts > 0 for p in mine),
                "log_errors": sum(p.log_errors for p in mine),
                "lost_in_memory": sum(p.check.lost_in_memory for p in mine),
                **_tally(mine),
            }
        )
    return {
        "fault": kind,
        "pushes": pushes,
        "peak_bytes": peak,
        "levels": at,
        "rows": rows,
        "fault_points": len(points),
        "journal_full": sum(r["journal_full"] for r in rows),
        "lost_in_memory": sum(r["lost_in_memory"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "duplicated": sum(r["duplicated"] for r in rows),
        "failed": sum(len(r["failed"]) for r in rows),
        "wall_s": round(time.monotonic() - t0, 1),
    }


def table_disk(r: dict) -> str:
    what = ("a real full tmpfs (free space 0 to the run's peak of {:,} bytes)" if r["fault"] == "tmpfs"
            else "RLIMIT_FSIZE (file size limits up to the largest file, {:,} bytes)").format(r["peak_bytes"])  # fmt: skip
    lines = [
        f"{r['fault']} sweep: {what}, {r['pushes']}-push han run --replay (SQLite + JSONL sinks)",
        "  shape                          levels  journal-full  killed  restarted  in-memory  lost  dup  failed",
    ]
    for v in r["rows"]:
        lines.append(
            f"  {v['shape']:<29}  {v['levels']:>6}  {v['journal_full']:>12}  {v['killed']:>6}  {v['restarted']:>9}"
            f"  {v['lost_in_memory']:>9}  {v['lost']:>4}  {v['duplicated']:>3}  {len(v['failed']):>6}"
        )
    lines.append(
        f"  total: {r['fault_points']} fault points ({r['journal_full']} with pushes waiting in memory),"
        f" {r['lost_in_memory']} lost in memory at a kill, {r['lost']} lost, {r['duplicated']} duplicated,"
        f" {r['failed']} failed; wall time {r['wall_s']} s"
    )
    for v in r["rows"]:
        for f in v["failed"][:3]:
            lines.append(f"  FAILED level={f['n']} {v['shape']} ({f['outcome']}): lost {f['lost']}"
                         f" dup {f['duplicated']} {f['problems']}")  # fmt: skip
    return "\n".join(lines)


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (strace's tracee: the daemon)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid):  # state, ppid, ...
            found.append(int(stat.parent.name))
    return found


def dry_run(base: Path, capture: Path, idents) -> dict[str, list[int]]:
    """The calls of a run without a crash, per syscall and tracee (and it must deliver everything)."""
    work = Path(tempfile.mkdtemp(prefix="dry-", dir=base))
    setup = Setup(work, capture, idents)
    trace = work / "strace.out"
    rc = setup.run(strace_prefix(",".join(SYSCALLS), trace), work / "daemon.log")
    if rc != 0:
        raise SweepError(f"han run without a crash exited with {rc} (see {work / 'daemon.log'})")
    c = check(setup)
    if not c.ok:
        raise SweepError(f"han run without a crash: {c}")
    counts = calls_per_tracee(trace)
    shutil.rmtree(work, ignore_errors=True)
    return counts


def sample(total: int, k: int) -> list[int]:
    """``k`` crash points spread over 1..total, always with the first two and the last (deterministic)."""
    if total <= k:
        return list(range(1, total + 1))
    picks = {1, 2, total}
    for i in range(1, k - 2):
        picks.add(1 + round(i * (total - 1) / (k - 2)))
    return sorted(picks)


# -- the sweep -------------------------------------------------------------------------------------------------
def sweep(
    base: Path,
    *,
    pushes: int = 200,
    syscalls: tuple[str, ...] = SYSCALLS,
    per_syscall: int | None = None,
    jobs: int = 1,
    keep: bool = False,
    progress=print,
) -> dict:
    """Every crash point (``per_syscall`` None), or that many per syscall spread over the dry run's calls."""
    base.mkdir(parents=True, exist_ok=True)
    capture = base / "capture.bin"
    idents = build_capture(capture, pushes)
    t0 = time.monotonic()
    calls = dry_run(base, capture, idents)
    points: list[Point] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for sc in syscalls:
            most = max(calls.get(sc, [0]), default=0)
            if per_syscall is not None:
                ns = sample(most, per_syscall)
                points += pool.map(lambda n, sc=sc: crash_point(base, capture, idents, sc, n, keep=keep), ns)
            else:
                # N = 1, 2, ... until a run completes without reaching its Nth call (in batches of `jobs`)
                n = 1
                while True:
                    batch = list(pool.map(lambda n, sc=sc: crash_point(base, capture, idents, sc, n, keep=keep),
                                          range(n, n + max(1, jobs))))  # fmt: skip
                    points += batch
                    n += len(batch)
                    # past every call the run without a crash made, and a run completed
                    if n > most and any(p.outcome == "completed" for p in batch):
                        break
            done = [p for p in points if p.syscall == sc]
            bad = [p for p in done if not p.check.ok]
            progress(f"crash sweep: {sc}: {len(done)} crash points, {len(bad)} failed, {time.monotonic() - t0:.0f} s")
    return report(points, calls, pushes, time.monotonic() - t0)


def sweep_enospc(
    base: Path,
    *,
    pushes: int = 200,
    syscalls: tuple[str, ...] = ENOSPC_SYSCALLS,
    per_syscall: int | dict[str, int] = 12,
    shapes: tuple[tuple[int, bool], ...] = ENOSPC_SHAPES,
    jobs: int = 1,
    keep: bool = False,
    progress=print,
) -> dict:
    """A full disk at ``per_syscall`` calls of each syscall (or per syscall name, default 3) spread over
    the dry run's calls (the busiest thread's), in each shape."""
    base.mkdir(parents=True, exist_ok=True)
    capture = base / "capture.bin"
    idents = build_capture(capture, pushes)
    t0 = time.monotonic()
    calls = dry_run(base, capture, idents)
    points: list[Point] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for sc in syscalls:
            k = per_syscall.get(sc, 3) if isinstance(per_syscall, dict) else per_syscall
            ns = sample(max(calls.get(sc, [0]), default=0), k)
            for span, kill in shapes:
                points += pool.map(
                    lambda n, sc=sc, span=span, kill=kill: enospc_point(
                        base, capture, idents, sc, n, span, kill, keep=keep
                    ),
                    ns,
                )
            done = [p for p in points if p.syscall == sc]
            bad = [p for p in done if not p.check.ok]
            progress(f"enospc sweep: {sc}: {len(done)} fault points, {len(bad)} failed, {time.monotonic() - t0:.0f} s")
    return report_enospc(points, calls, pushes, time.monotonic() - t0)


def shape_name(span: int, kill: bool) -> str:
    return "full until kill -9" if kill else f"full {span} call{'s' if span > 1 else ''}"


def _tally(mine: list[Point]) -> dict:
    """Lost and duplicated pushes of some fault points, and the points that failed their check."""
    return {
        "lost": sum(sum(p.check.lost.values()) for p in mine),
        "duplicated": sum(sum(p.check.duplicated.values()) for p in mine),
        "failed": [
            {"n": p.n, "outcome": p.outcome, "lost": p.check.lost, "duplicated": p.check.duplicated,
             "problems": p.check.problems, "log": p.log}
            for p in mine if not p.check.ok
        ],  # fmt: skip
    }

def report_enospc(points: list[Point], calls: dict, pushes: int, wall: float) -> dict:
    rows = []
    for sc in dict.fromkeys(p.syscall for p in points):
        for shape in dict.fromkeys((p.span, p.kill) for p in points if p.syscall == sc):
            mine = [p for p in points if p.syscall == sc and (p.span, p.kill) == shape]
            rows.append(
                {
                    "syscall": sc,
                    "shape": shape_name(*shape),
                    "calls_per_thread": calls.get(sc, []),
                    "fault_points": len(mine),
                    "journal_full": sum(p.journal_full for p in mine),
                    "killed": sum(p.outcome == "killed" for p in mine),
                    "completed": sum(p.outcome == "completed" for p in mine),
                    "restarted": sum(p.restarts > 0 for p in mine),
                    "log_errors": sum(p.log_errors for p in mine),
                    "lost_in_memory": sum(p.check.lost_in_memory for p in mine),
                    **_tally(mine),
                }
            )
    return {
        "fault": "enospc",
        "pushes": pushes,
        "rows": rows,
        "fault_points": len(points),
        "journal_full": sum(r["journal_full"] for r in rows),
        "lost_in_memory": sum(r["lost_in_memory"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "duplicated": sum(r["duplicated"] for r in rows),
        "failed": sum(len(r["failed"]) for r in rows),
        "wall_s": round(wall, 1),
    }


def table_enospc(r: dict) -> str:
    lines = [
        f"enospc sweep: a full disk (ENOSPC) at calls of a {r['pushes']}-push han run --replay (SQLite + JSONL sinks)",
        "  syscall     shape                points  journal-full  killed  restarted  in-memory  lost  dup  failed",
    ]
    for v in r["rows"]:
        lines.append(
            f"  {v['syscall']:<10}  {v['shape']:<19}  {v['fault_points']:>6}  {v['journal_full']:>12}  {v['killed']:>6}"
            f"  {v['restarted']:>9}  {v['lost_in_memory']:>9}  {v['lost']:>4}  {v['duplicated']:>3}  {len(v['failed']):>6}"
        )
    lines.append(
        f"  total: {r['fault_points']} fault points ({r['journal_full']} with pushes waiting in memory),"
        f" {r['lost_in_memory']} lost in memory at a kill, {r['lost']} lost, {r['duplicated']} duplicated,"
        f" {r['failed']} failed; wall time {r['wall_s']} s"
    )
    for v in r["rows"]:
        for f in v["failed"][:3]:
            lines.append(
                f"  FAILED {v['syscall']} N={f['n']} {v['shape']} ({f['outcome']}): lost {f['lost']}"
                f" dup {f['duplicated']} {f['problems']}"
            )
    return "\n".join(lines)


def report(points: list[Point], calls: dict, pushes: int, wall: float) -> dict:
    by = {}
    for sc in dict.fromkeys(p.syscall for p in points):
        mine = [p for p in points if p.syscall == sc]
        by[sc] = {
            "calls_per_thread": calls.get(sc, []),
            "crash_points": len(mine),
            "killed": sum(p.outcome == "killed" for p in mine),
            "helper_only": sum(p.outcome == "helper" for p in mine),
            "completed": sum(p.outcome == "completed" for p in mine),
            "n_max": max(p.n for p in mine),
            **_tally(mine),
        }
    return {
        "pushes": pushes,
        "syscalls": by,
        "crash_points": len(points),
        "lost": sum(v["lost"] for v in by.values()),
        "duplicated": sum(v["duplicated"] for v in by.values()),
        "failed": sum(len(v["failed"]) for v in by.values()),
        "wall_s": round(wall, 1),
    }


def table(r: dict) -> str:
    lines = [
        f"crash sweep: kill -9 at each call of a {r['pushes']}-push han run --replay (SQLite + JSONL sinks)",
        "  syscall     calls/thread         points  killed  helper  lost  duplicated  failed",
    ]
    for sc, v in r["syscalls"].items():
        per = "/".join(str(c) for c in v["calls_per_thread"][:4]) or "0"
        lines.append(
            f"  {sc:<10}  {per:<19}  {v['crash_points']:>6}  {v['killed']:>6}  {v['helper_only']:>6}"
            f"  {v['lost']:>4}  {v['duplicated']:>10}  {len(v['failed']):>6}"
        )
    lines.append(
        f"  total: {r['crash_points']} crash points, {r['lost']} lost, {r['duplicated']} duplicated,"
        f" {r['failed']} failed; wall time {r['wall_s']} s"
    )
    for sc, v in r["syscalls"].items():
        for f in v["failed"][:3]:
            lines.append(f"  FAILED {sc} N={f['n']} ({f['outcome']}): lost {f['lost']} dup {f['duplicated']} {f['problems']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.crash_sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--pushes", type=int, default=200, help="pushes in the capture (default 200)")
    ap.add_argument("--syscall", action="append", choices=SYSCALLS, help="only these syscalls (repeatable)")
    ap.add_argument("--sample", type=int, metavar="K", help="K crash points per syscall instead of every one")
    ap.add_argument("--jobs", type=int, default=1, help="crash points run at the same time (default 1)")
    ap.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep every crash point's state directory")
    ap.add_argument("--json", type=Path, help="the report as JSON (default crash-sweep-report.json,"
                    " enospc-sweep-report.json with --fault enospc)")  # fmt: skip
    ap.add_argument(
        "--fault", choices=("kill", "enospc", "tmpfs", "fsize"), default="kill",
        help="kill: kill -9 at each call (default); enospc: a full disk at K sampled calls per syscall"
        " (--sample, default 12), for 1 call, for 25 calls, and until a kill -9 while pushes wait in memory;"
        " tmpfs: a real full tmpfs at K levels of free space (root; --sample, default 24), fsize: RLIMIT_FSIZE"
        " at K file size limits; each with room again, a kill -9 while full, and a restart while full",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.fault in ("tmpfs", "fsize"):
        problem = mount_problem() if args.fault == "tmpfs" else (None if shutil.which("prlimit") else "no prlimit")
        if problem:
            print(f"crash sweep: {problem}", file=sys.stderr)
            return 2
        base = args.work or Path(tempfile.mkdtemp(prefix=f"han-{args.fault}-sweep-"))
        r = sweep_disk(
            base, args.fault, pushes=args.pushes, levels=args.sample or 24, jobs=args.jobs, keep=args.keep,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
        )  # fmt: skip
        (args.json or Path(f"{args.fault}-sweep-report.json")).write_text(json.dumps(r, indent=1) + "\n")
        print(table_disk(r))
        if args.work is None and not r["failed"]:
            shutil.rmtree(base, ignore_errors=True)
        return 0 if r["failed"] == 0 else 1
    problem = strace_problem()
    if problem:
        print(f"crash sweep: {problem}", file=sys.stderr)
        return 2
    base = args.work or Path(tempfile.mkdtemp(prefix="han-crash-sweep-"))
    if args.fault == "enospc":
        bad = sorted(set(args.syscall or ()) - set(ENOSPC_SYSCALLS))
        if bad:
            print(f"crash sweep: a full disk does not fail {', '.join(bad)}", file=sys.stderr)
            return 2
        r = sweep_enospc(
            base,
            pushes=args.pushes,
            syscalls=tuple(args.syscall or ENOSPC_SYSCALLS),
            per_syscall=args.sample or 12,
            jobs=args.jobs,
            keep=args.keep,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
        )
        (args.json or Path("enospc-sweep-report.json")).write_text(json.dumps(r, indent=1) + "\n")
        print(table_enospc(r))
        if args.work is None and not r["failed"]:
            shutil.rmtree(base, ignore_errors=True)
        return 0 if r["failed"] == 0 else 1
    r = sweep(
        base,
        pushes=args.pushes,
        syscalls=tuple(args.syscall or SYSCALLS),
        per_syscall=args.sample,
        jobs=args.jobs,
        keep=args.keep,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    (args.json or Path("crash-sweep-report.json")).write_text(json.dumps(r, indent=1) + "\n")
    print(table(r))
    if args.work is None and not r["failed"]:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if r["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
