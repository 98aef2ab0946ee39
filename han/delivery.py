"""One worker per sink: an asyncio task that feeds the sink from the journal at its own pace.

The worker reads the journal after the sink's checkpoint, rebuilds the
pushes, awaits the sink's ``write`` and ``flush``, and stores the checkpoint
the sink returns (``<state-dir>/sinks/<name>.json``, atomically).  A failing
sink is closed and reopened with back-off (1 s doubling up to ``retry_max``);
meanwhile its backlog waits in the journal, and the port reader and the other
sinks go on.

The worker's blocking work (journal reads on its own SQLite connection,
rebuilding pushes, writing checkpoint files) runs in the worker's own thread
(a daemon thread); the sink's calls are awaited on the event loop, and a sink
whose work blocks runs it in a thread of its own (``sinks.threaded``).  A sink
call that never returns holds up only its own worker: at a stop the daemon
waits ``stop_timeout`` for it, then exits without it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone

from obis.push import Push
from sinks.base import Checkpoint, Entry, Sink
from sinks.threaded import CallThread

from .atomic import read_json, write_json
from .journal import JournalReader, Record

log = logging.getLogger("han.sink")

BATCH = 200


def checkpoint_path(state_dir: str, sink_name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", sink_name)[-60:].strip("_")
    digest = hashlib.sha256(sink_name.encode()).hexdigest()[:8]
    return os.path.join(state_dir, "sinks", f"{slug}-{digest}.json")


class SinkWorker:
    def __init__(
        self,
        sink: Sink,
        *,
        journal_path: str,
        journal_id: str,
        state_dir: str,
        rebuild: Callable[[Record], Push],
        live_start: int = 0,
        retry_min: float = 1.0,
        retry_max: float = 60.0,
        batch: int = BATCH,
        holds: Callable[[str, int], None] | None = None,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.journal_path = journal_path
        self.journal_id = journal_id
        self.rebuild = rebuild
        self.live = bool(sink.live)
        self.live_start = live_start
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.batch = batch
        self.holds = holds  #: told the position the sink says it holds, when it opens (see Journal.ensure_after)
        #: told the entries the sink took, after its flush (the live page follows the store this way)
        self.on_stored: Callable[[list[Entry]], None] | None = None
        self.ckpt_path = checkpoint_path(state_dir, self.name)
        self.position = live_start if self.live else self._stored().seq  #: last journal position the sink holds
        self.state = "starting"  # starting | ok | failing | stopped
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.delivered = 0
        self.dropped = 0  #: pushes the journal lost before this sink got them (spool limit)
        self.unreadable = 0
        self._opened = False
        self._reader: JournalReader | None = None
        self._wake = asyncio.Event()
        self._draining = False
        self._online: bool | None = None  #: the source's state to tell the sink (None: nothing said yet)
        self._told: bool | None = None  #: what the open sink was told
        self._thread = CallThread(f"worker {self.name}")  #: journal reads, rebuilds, checkpoint files

    # -- called from the event loop ---------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def source_status(self, online: bool) -> None:
        """The port is up with pushes arriving (True), or lost or quiet (False): the sink is told."""
        self._online = online
        self._wake.set()

    def backlog(self, last_seq: int) -> int:
        return max(0, last_seq - self.position)

    async def run(self) -> None:
        delay = self.retry_min
        while True:
            # a drain ends on an empty read that *began* after it was asked for: a read already
            # under way may have missed the last pushes the journal took before the drain
            draining = self._draining
            try:
                n = await self._step()
            except Exception as exc:  # noqa: BLE001 - a sink failure never stops the daemon
                await self._close_quietly()
                self._failed(exc)
                if self._draining:
                    break
                try:
                    await asyncio.wait_for(self._wait_drain(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, self.retry_max)
                continue
            delay = self.retry_min
            if self.state != "ok":
                self._recovered()
            if n:
                continue  # more may be waiting
            if draining:
                break
            if self._draining:
                continue  # asked to drain while reading: read once more
            await self._wake.wait()
            self._wake.clear()
        await self._close()

    async def _wait_drain(self) -> None:
        while not self._draining:
            await self._wake.wait()
            self._wake.clear()

    def drain(self) -> None:
        """Deliver what is in the journal, then close (a failing sink closes at once)."""
        self._draining = True
        self._wake.set()

    # -- one batch ------------------------------------------------------------------------
    async def _step(self) -> int:
        if not self._opened:
            await self._open()
        if self._online is not None and self._online != self._told:
            online = self._online
            await self.sink.status(online)
            self._told = online
        rows, entries = await self._thread.call(self._read)
        if not rows:
            return 0
        if entries:
            await self.sink.write(entries)
        ckpt = await self.sink.flush()
        # the sink holds every row read, including skipped ones
        ckpt = Checkpoint(ckpt.journal, rows[-1].seq, ckpt.mark)
        if not self.live:
            await self._thread.call(self._store, ckpt)
        self.position = ckpt.seq
        self.delivered += len(entries)
        if entries and self.on_stored is not None:
            try:
                self.on_stored(entries)
            except Exception as exc:  # noqa: BLE001 - a listener's bug never holds up the sink
                log.error("%s: listener failed: %s: %s (a bug: please report it)", self.name, type(exc).__name__, exc)
        return len(rows)

    def _read(self) -> tuple[list[Record], list[Entry]]:
        """The next batch after ``position``, rebuilt into entries (in the worker's thread)."""
        if self._reader is None:
            self._reader = JournalReader(self.journal_path)
        rows = self._reader.read_after(self.position, self.batch)
        if not rows:
            return rows, []
        if rows[0].seq > self.position + 1 and self.position > 0:
            missed = rows[0].seq - self.position - 1
            self.dropped += missed
            log.error(
                "%s: %d push(es) were dropped from the journal before this sink got them"
                " (it failed longer than the spool limit allows)",
                self.name,
                missed,
            )
        entries = []
        for r in rows:
            try:
                push = self.rebuild(r)
            except Exception as exc:  # noqa: BLE001 - a journal row that no longer decodes is skipped, loudly
                self.unreadable += 1
                log.error("%s: journal position %d cannot be rebuilt (%s); skipped", self.name, r.seq, exc)
                continue
            received = datetime.fromtimestamp(r.received, timezone.utc)
            entries.append(Entry(r.seq, received, push, r.meter or "", r.meter_id))
        # the journal first: a sink must never hold a push durably that the journal could still lose
        self._reader.make_durable(rows[-1].seq)
        return rows, entries

    async def _open(self) -> None:
        resume = Checkpoint(self.journal_id, max(self.position, self.live_start)) if self.live else None
        if resume is None:
            resume = await self._thread.call(self._stored)
        ckpt = await self.sink.open(resume)
        if self.holds is not None and ckpt.journal == self.journal_id:
            self.holds(self.name, ckpt.seq)
        self.position = ckpt.seq
        if not self.live:
            await self._thread.call(self._store_opened, ckpt)
        self._opened = True

    def _store(self, ckpt: Checkpoint) -> None:
        # a sink that keeps its own position needs no fsync here (spares SD cards: one push every 10 s)
        write_json(self.ckpt_path, ckpt.to_json(), sync=not self.sink.keeps_position)

    def _store_opened(self, ckpt: Checkpoint) -> None:
        os.makedirs(os.path.dirname(self.ckpt_path), mode=0o700, exist_ok=True)
        write_json(self.ckpt_path, ckpt.to_json())

    def _stored(self) -> Checkpoint:
        """The checkpoint stored after the last flush (position 0 for a new sink or another journal)."""
        try:
            data = read_json(self.ckpt_path)
            stored = Checkpoint.from_json(data) if data else None
        except (ValueError, OSError) as exc:
            log.warning(
                "%s: checkpoint %s unreadable (%s); starting from the journal's beginning",
                self.name,
                self.ckpt_path,
                exc,
            )
            stored = None
        if stored is None or stored.journal != self.journal_id:
            return Checkpoint(self.journal_id, 0)
        return stored

    async def _close_quietly(self) -> None:
        self._opened = False
        self._told = None  # a reopened sink is told again
        try:
            await self.sink.close()
        except Exception:  # noqa: BLE001 - best effort after a failure
            pass

    async def _close(self) -> None:
        if self._opened:
            try:
                await self.sink.flush()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: flush at exit failed: %s", self.name, exc)
        await self._close_quietly()
        await self._thread.call(self._close_reader)
        self.state = "stopped"
        self._thread.stop()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- bookkeeping (event loop) -------------------------------------------------------
    def _failed(self, exc: Exception) -> None:
        message = str(exc).replace("\n", " ") or type(exc).__name__
        message = message.removeprefix(f"{self.sink.scheme} sink: ")  # the log line names the sink already
        if self.state != "failing":
            self.failing_since = time.time()
            log.error("%s: %s; its pushes wait in the journal, retrying with back-off", self.name, message)
        elif message != self.last_error:
            log.error("%s: %s", self.name, message)
        self.state = "failing"
        self.last_error = message

    def _recovered(self) -> None:
        if self.state == "failing" and self.failing_since is not None:
            log.warning("%s: writing again after %.0f s", self.name, time.time() - self.failing_since)
        self.state = "ok"
        self.last_error = None
        self.failing_since = None
