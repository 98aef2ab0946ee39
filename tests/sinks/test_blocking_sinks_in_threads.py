"""Blocking sinks behind the async interface: one thread per sink, and a hung call given up on.

The hanging sink here is a real ``ThreadedSink`` whose ``write_sync`` blocks until the test
lets it go (a network file system or a server that never answers, without the server).
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from daemonkit import START, accepted, caught_up, simulator, sqlite_counters, start, stop, wait_until, wait_until_sync
from daemonkit import run_config as config

import sinks.base
from sinks.base import Checkpoint, SinkError, create_sink
from sinks.threaded import ThreadedSink

RELEASE = threading.Event()  #: lets a hung write return
CLOSED = threading.Event()  #: set by close_sync


class HangSink(ThreadedSink):
    """``hang:``: writes block until RELEASE is set; records the threads its calls ran in."""

    scheme = "hang"
    call_timeout = 0.3  # seconds before a call counts as hung (short, so the test is quick)

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.threads: list[threading.Thread] = []
        self.written = 0

    def open_sync(self, resume: Checkpoint) -> Checkpoint:
        self.threads.append(threading.current_thread())
        return super().open_sync(resume)

    def write_sync(self, entries) -> None:
        self.threads.append(threading.current_thread())
        RELEASE.wait()
        self.written += len(entries)
        self._advance(entries)

    def close_sync(self) -> None:
        self.threads.append(threading.current_thread())
        CLOSED.set()


@pytest.fixture
def hang(monkeypatch):
    RELEASE.clear()
    CLOSED.clear()
    monkeypatch.setitem(sinks.base.SINKS, "hang", f"{__name__}:HangSink")
    yield
    RELEASE.set()  # whatever happened: no thread stays blocked after the test


def test_blocking_calls_run_in_one_thread_of_their_own(tmp_path, hang):
    from test_embedded_sinks import entries

    RELEASE.set()

    async def main():
        sink = create_sink("hang:")
        await sink.open(Checkpoint("j"))
        await sink.write(entries(2))
        assert await sink.flush() == Checkpoint("j", 2)
        await sink.close()
        return sink

    sink = asyncio.run(main())
    assert len(set(sink.threads)) == 1, "open, write and close in the same thread (sqlite3 needs it)"
    assert sink.threads[0] is not threading.current_thread(), "never on the event loop's thread"
    # the SQLite sink, driven the same way from different event loops, keeps its one connection
    db = create_sink(f"sqlite:{tmp_path / 'han.db'}")
    asyncio.run(db.open(Checkpoint("j")))
    asyncio.run(db.write(entries(3)))
    assert asyncio.run(db.flush()).seq == 3
    asyncio.run(db.close())


def test_a_hung_call_is_given_up_on_and_closed_when_it_returns(hang):
    from test_embedded_sinks import entries

    async def main():
        sink = create_sink("hang:")
        await sink.open(Checkpoint("j"))
        with pytest.raises(SinkError, match=r"hang sink: no answer within 0.3 s \(hung\?\)"):
            await sink.write(entries(1))
        # while the hung write has not returned, a call fails at once instead of queueing behind it
        with pytest.raises(SinkError, match="an earlier call has not returned"):
            await sink.flush()
        await sink.close()  # queued behind the hung write: returns at once
        assert not CLOSED.is_set()
        with pytest.raises(SinkError, match="an earlier call has not returned"):
            await sink.open(Checkpoint("j"))
        RELEASE.set()  # the hung write returns; then its close runs, in order
        await wait_until(CLOSED.is_set, "the queued close")
        await wait_until(lambda: sink._thread.busy is None, "the thread to be idle")
        assert await sink.open(Checkpoint("j", 1)) == Checkpoint("j", 1)  # reopened: a new thread
        await sink.close()
        return sink

    sink = asyncio.run(main())
    assert sink.written == 1 and len(set(sink.threads)) == 2


def test_a_sink_that_hangs_stops_neither_the_reader_nor_the_other_sinks_nor_the_exit(tmp_path, pty, hang):
    sim = simulator(seed=11)
    frames = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(5)]
    db = tmp_path / "han.db"

    async def main():
        d, task = await start(config(tmp_path, pty.link, f"sqlite:{db}", "hang:", stop_timeout=30.0))
        for f in frames:
            await pty.write(f)
        sqlite_worker, hang_worker = d.workers
        await wait_until(lambda: accepted(d) == 5 and sqlite_worker.position == 5, "5 pushes in SQLite")
        await wait_until(lambda: hang_worker.state == "failing", "the hung sink to count as failing")
        assert "no answer within" in hang_worker.last_error or "has not returned" in hang_worker.last_error
        assert not caught_up(d)
        # a stop does not wait for the hung call (nor for stop_timeout): what the sink lacks stays in the journal
        assert await stop(d, task) == 0
        return hang_worker

    worker = asyncio.run(main())
    assert sum(sqlite_counters(str(db)).values()) == 5
    assert worker.position == 0 and worker.sink.written == 0
    threads = [t for t in threading.enumerate() if t.name == "sink hang:"]
    assert threads and all(t.daemon for t in threads), "a hung thread never keeps the process from exiting"
    RELEASE.set()
    wait_until_sync(CLOSED.is_set, "the queued close after the hung write")
