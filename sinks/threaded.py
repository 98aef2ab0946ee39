"""Blocking sinks behind the async interface: their work runs in one dedicated thread per sink.

sqlite3 connections, files and influxdb-client's synchronous writer block, and a
sqlite3 connection may be used only by the thread that opened it.  So a
:class:`ThreadedSink` is written as plain blocking methods (``open_sync``,
``write_sync``, ``flush_sync``, ``close_sync``), and every call of one
open ... close session runs in the same :class:`CallThread`, one at a time and
in order, while the event loop (the port reader, the other sinks) goes on.

A hung call (a network file system, a server that never answers) is given up
on after ``call_timeout`` seconds: the awaiting call raises :class:`SinkError`
and the daemon retries with back-off.  Until the hung call returns, every new
call fails at once, except ``close``, which is queued behind it; nothing runs
twice or out of order, so a late call is followed by its close, and the next
open resumes from the daemon's checkpoint as after any failure.  The thread is
a daemon thread: a call that never returns cannot keep the process from exiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from .base import Checkpoint, Entry, Sink, SinkError


class _Call:
    __slots__ = ("fn", "args", "fut", "loop", "abandoned")

    def __init__(self, fn: Callable[..., Any], args: tuple, fut: asyncio.Future | None, loop: Any) -> None:
        self.fn, self.args, self.fut, self.loop = fn, args, fut, loop
        self.abandoned = fut is None  #: nobody waits for the result (given up on, or posted)


class CallThread:
    """A daemon thread that runs calls one at a time, in order: ``await thread.call(fn, *args)``.

    Single use: after :meth:`stop` it runs what is queued, then ends.
    """

    def __init__(self, name: str) -> None:
        self._queue: deque[_Call | None] = deque()
        self._cv = threading.Condition()
        self._running: _Call | None = None
        self._started_at = 0.0
        self.stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                item = self._queue.popleft()
                if item is None:
                    return
                self._running, self._started_at = item, time.monotonic()
            try:
                result, exc = item.fn(*item.args), None
            except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
                result, exc = None, e
            with self._cv:
                self._running = None
            if item.fut is not None:
                try:
                    item.loop.call_soon_threadsafe(_settle, item.fut, result, exc)
                except RuntimeError:  # the event loop is gone (the daemon stopped without this call)
                    pass
            del item, result, exc

    async def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Run ``fn(*args)`` in the thread and return its result; TimeoutError after ``timeout`` s.

        After a timeout the call goes on in the thread, unawaited (see :attr:`busy`).
        """
        loop = asyncio.get_running_loop()
        item = _Call(fn, args, loop.create_future(), loop)
        self._put(item)
        try:
            return await asyncio.wait_for(item.fut, timeout)
        except BaseException:
            item.abandoned = True
            raise

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` without waiting for it."""
        self._put(_Call(fn, args, None, None))

    def stop(self) -> None:
        """End the thread once everything queued has run."""
        if not self.stopped:
            self.stopped = True
            self._put(None)

    @property
    def busy(self) -> float | None:
        """Seconds the thread has been busy with work nobody awaits (a call given up on), else None."""
        with self._cv:
            running = self._running
            if running is not None and running.abandoned:
                return time.monotonic() - self._started_at
            if any(item is not None for item in self._queue):
                return 0.0
        return None

    def _put(self, item: _Call | None) -> None:
        with self._cv:
            self._queue.append(item)
            self._cv.notify()


def _settle(fut: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


class ThreadedSink(Sink):
    """A sink whose work blocks: subclasses write ``*_sync`` methods; they run in the sink's own thread."""

    #: seconds a call may take before the sink counts as hung (a call normally ends far sooner)
    call_timeout: float = 60.0

    def __init__(self, target: str, **options: Any) -> None:
        super().__init__(target, **options)
        self._thread: CallThread | None = None

    # -- the async interface the daemon awaits ------------------------------------------
    async def open(self, resume: Checkpoint) -> Checkpoint:
        return await self._call(self.open_sync, resume)

    async def write(self, entries: Sequence[Entry]) -> None:
        await self._call(self.write_sync, entries)

    async def flush(self) -> Checkpoint:
        return await self._call(self.flush_sync)

    async def close(self) -> None:
        thread = self._thread
        if thread is None or thread.stopped:
            return
        try:
            if thread.busy is not None:
                thread.post(self.close_sync)  # runs when the hung call returns
            else:
                await self._call(self.close_sync)
        finally:
            thread.stop()

    # -- the blocking methods a subclass writes (same contract as the async ones) ----------
    def open_sync(self, resume: Checkpoint) -> Checkpoint:
        self._journal, self._seq = resume.journal, resume.seq
        return resume

    @abstractmethod
    def write_sync(self, entries: Sequence[Entry]) -> None:
        """Write a batch (may buffer until :meth:`flush_sync`).  Raise on failure; the batch is re-sent."""

    def flush_sync(self) -> Checkpoint:
        return Checkpoint(self._journal, self._seq)

    def close_sync(self) -> None:
        pass

    # -- the thread -----------------------------------------------------------------------
    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        thread = self._thread
        if thread is not None:
            busy = thread.busy
            if busy is not None:
                raise SinkError(
                    f"{self.scheme} sink: an earlier call has not returned for {busy:.0f} s; waiting for it"
                )
        if thread is None or thread.stopped:
            thread = self._thread = CallThread(f"sink {self.name}")
        try:
            return await thread.call(fn, *args, timeout=self.call_timeout)
        except TimeoutError:
            raise SinkError(
                f"{self.scheme} sink: no answer within {self.call_timeout:g} s (hung?); it is given up on"
            ) from None
