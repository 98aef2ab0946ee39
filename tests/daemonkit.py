"""Helpers for the daemon tests: a real pseudo terminal as the meter's port, pushes from the simulator.

No hardware and no mocks: the daemon opens the pty's slave through a symlink
(like a udev name such as /dev/ttyHAN) with pyserial-asyncio; the test writes
frames into the master.  "Unplugging" closes both ends, "replugging" makes a
new pty and points the symlink at it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import termios
import time
import tty
from collections import Counter
from datetime import datetime, timedelta, timezone

from decoders.ciphering.security import Keys
from han.config import RunConfig, SerialSettings, SinkSpec
from han.daemon import Daemon
from han.keyring import KeyRing
from han.simulator import KamstrupSimulator

EK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
AK = bytes.fromhex("FFEEDDCCBBAA99887766554433221100")
KEYS = Keys(ek=EK, ak=AK)
START = datetime(2026, 1, 15, 12, 0, 0)
#: START in UTC seconds: the simulated meter's clock is local time (Europe/Copenhagen, +01:00 in January)
UTC_START = int(START.replace(tzinfo=timezone(timedelta(hours=1))).timestamp())
#: failure guard for every wait (never a timing assertion)
GUARD = 30.0


class Pty:
    def __init__(self, link: str) -> None:
        self.link = link
        self.master = self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        tmp = self.link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(self.slave), tmp)
        os.replace(tmp, self.link)

    def unplug(self) -> None:
        os.close(self.slave)
        os.close(self.master)
        self.master = self.slave = -1

    def drop_input(self) -> None:
        """Throw away what the port holds unread (the kernel does so when a USB adapter's only reader dies)."""
        termios.tcflush(self.slave, termios.TCIFLUSH)

    def write_now(self, data: bytes) -> None:
        """Blocking write (for tests that do not share the loop with the reader)."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                time.sleep(0.001)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                await asyncio.sleep(0.001)
        await asyncio.sleep(0)

    def close(self) -> None:
        if self.master >= 0:
            self.unplug()
        if os.path.lexists(self.link):
            os.unlink(self.link)


def simulator(seed: int = 1, counter_start: int = 1000, keys: Keys | None = KEYS) -> KamstrupSimulator:
    return KamstrupSimulator(keys, meter_number=31415926, counter_start=counter_start, seed=seed)


async def wait_until(cond, what: str, guard: float = GUARD) -> None:
    deadline = time.monotonic() + guard
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


def wait_until_sync(cond, what: str, guard: float = GUARD) -> None:
    deadline = time.monotonic() + guard
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def sqlite_counters(db: str) -> Counter:
    """invocation counter -> number of push rows (all must be 1)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT invocation_counter FROM pushes").fetchall()
        readings = con.execute("SELECT push_id, count(*) FROM readings GROUP BY push_id").fetchall()
    finally:
        con.close()
    assert all(n == 33 for _, n in readings), "every push has its 33 readings (the list id and 32 registers)"
    assert len(readings) == len(rows)
    return Counter(r[0] for r in rows)


def jsonl_counters(path: str) -> Counter:
    if not os.path.exists(path):
        return Counter()
    with open(path, encoding="utf-8") as fh:
        return Counter(json.loads(line)["security"]["invocation_counter"] for line in fh)


def journal_last_seq(state_dir: str) -> int:
    path = os.path.join(state_dir, "journal.db")
    if not os.path.exists(path):
        return 0
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()
    return row[0] if row else 0


def caught_up(daemon) -> bool:
    last = daemon.journal.last_seq
    return all(w.position == last for w in daemon.workers)


def run_config(tmp_path, link: str, *sinks: str, **kw) -> RunConfig:
    """A daemon configuration for tests: fast retries, the pty as the port; sqlite + jsonl unless sinks are given."""
    base = dict(
        state_dir=str(tmp_path / "state"),
        serial=SerialSettings(port=link),
        keyring=KeyRing(KEYS),
        sinks=tuple(SinkSpec(s) for s in sinks)
        or (SinkSpec(f"sqlite:{tmp_path / 'han.db'}"), SinkSpec(f"jsonl:{tmp_path / 'pushes.jsonl'}")),
        idle_flush=0.2,
        retry_min=0.05,
        retry_max=0.2,
        sink_retry_max=0.2,
        status_interval=0.2,
    )
    base.update(kw)
    return RunConfig(**base)


async def start(cfg: RunConfig) -> tuple[Daemon, asyncio.Future]:
    """Start the daemon in this event loop and wait until it has opened the port."""
    d = Daemon(cfg)
    task = asyncio.ensure_future(d.run())
    await wait_until(lambda: task.done() or (d.source is not None and d.source.connected.is_set()), "the port to open")
    assert not task.done(), task.result()
    return d, task


async def stop(d: Daemon, task) -> int:
    d.request_stop()
    return await asyncio.wait_for(task, 30)


def accepted(d: Daemon) -> int:
    return d.ingest.outcomes.counts["accepted"]
