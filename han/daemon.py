"""``han run``: the long-running logger, a thin asyncio shell around the sans-IO pipeline.

::

    SerialSource / ReplaySource / MqttSource ──bytes per stream──▶ Ingest (PushDecoder → counter check) ──▶ Journal
                                                                                     │ one worker (task) per sink,
                                                                                     ▼ awaiting the async sink
                                                                  sqlite / jsonl / csv / console ...

A bad frame, a lost port, a dead sink or a full disk never ends the process;
only a configuration error does (exit status 2), before anything starts.
SIGTERM and SIGINT stop reading, deliver what the journal holds to every
working sink, flush and close them, save the counters and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import statistics
import time
from collections import deque
from collections.abc import Iterator

from obis.push import Push, SecurityInfo
from sinks.base import SinkError, create_sink, redact

from .atomic import write_json
from .config import ConfigError, RunConfig, ensure_state_dir
from .delivery import SinkWorker
from .identity import HOLD_SECONDS
from .ingest import Ingest
from .journal import Journal, JournalError, Record
from .pipeline import PushDecoder, push_from_apdu, thread_interpreter
from .replay import CounterStore
from .sources import ReplaySource, SerialSource, SourceSpec
from .unknown import UnknownFrame, UnknownStore
from .watchdog import Quiet, SourceWatch
from .watchdog import message as watchdog_message

log = logging.getLogger("han.run")
watch_log = logging.getLogger("han.watchdog")

STATUS_FILE = "status.json"
COUNTERS_FILE = "counters.json"
JOURNAL_FILE = "journal.db"
LOCK_FILE = "lock"
DEFAULT_INTERVAL = 10.0
#: a replay (or --count) ended with pushes a sink did not get (sysexits' EX_TEMPFAIL: they wait in the journal)
EXIT_UNDELIVERED = 75


class StateDirBusy(ConfigError):
    pass


def lock_state_dir(state_dir: str) -> int:
    """Hold ``<state-dir>/lock`` for the life of the process; one daemon per state directory."""
    path = os.path.join(state_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            pid = os.read(fd, 32).decode().strip()
        finally:
            os.close(fd)
        raise StateDirBusy(f"another han run (pid {pid or '?'}) uses the state directory {state_dir}") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        pass  # the pid only names the holder; a full disk must not keep han from taking pushes into memory
    return fd


def state_dir_in_use(state_dir: str) -> int | None:
    """The pid of the daemon holding the state directory, or None."""
    path = os.path.join(state_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.read(fd, 32).decode().strip()
        os.close(fd)
        return int(text) if text.isdigit() else -1
    os.close(fd)
    return None


class Daemon:
    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.started = time.time()
        self.internal_errors = 0  #: errors outside any frame (event loop, ingest); status.json
        self.stop_event: asyncio.Event | None = None
        self.ingest: Ingest | None = None
        self.journal: Journal | None = None
        self.workers: list[SinkWorker] = []
        self.source = None  #: the first source (the status and the watchdog name it)
        self.sources: list = []
        self.unknown: UnknownStore | None = None
        self._interpreter = None  #: shared by the streams' decoders
        self._gaps: deque[float] = deque(maxlen=20)  # seconds between pushes (learns the push interval)
        self._prev_push: float | None = None
        self.watches: list[SourceWatch] = []  #: the watchdog's, one per source (in the order of self.sources)
        self._watch_by_stream: dict[str | None, SourceWatch] = {}  # a port's stream -> its watch
        self._source_failed = False
        self._troubles: dict[str, str] = {}  # state-directory problems already logged
        self._lock_fd: int | None = None
        self._online: bool | None = None  # the port as the sinks were told: up with pushes arriving
        self.web = None  # the live page (han.web.server.WebServer), with --http

    # -- set-up ---------------------------------------------------------------------------
    def _open(self) -> None:
        cfg = self.cfg
        sinks = make_sinks(cfg)  # first: a sink's configuration error leaves nothing behind
        ensure_state_dir(cfg.state_dir)
        self._lock_fd = lock_state_dir(cfg.state_dir)
        try:
            self.journal = Journal(
                os.path.join(cfg.state_dir, JOURNAL_FILE), max_rows=cfg.spool_max_pushes, max_age=cfg.spool_max_age
            )
        except JournalError as exc:
            raise ConfigError(str(exc)) from None
        try:
            counters = CounterStore(os.path.join(cfg.state_dir, COUNTERS_FILE)).load()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        raised = counters.reconcile(self.journal)
        if raised:
            log.info("took %d invocation counter(s) from the journal (the last run ended without saving them)", raised)
        self.unknown = UnknownStore(cfg.state_dir, cfg.unknown_max_bytes)
        self.ingest = Ingest(
            self._decoder(None),
            cfg.keyring,
            counters,
            self.journal,
            system_title=cfg.system_title,
            meter=cfg.meter,
            on_append=self._appended,
            on_release=self._wake_sinks,
            decoders=self._decoder,
            meters=self._stream_meter,
            on_unknown=self._unknown_frame,
            on_outcome=self._outcome,
        )
        self.ingest.keys_file = bool(cfg.keys_file)
        if self.ingest.held:
            log.info(
                "%d push(es) of the last run still wait for the meter's identity (the next push that names"
                " the meter, else %s after %g s)",
                self.ingest.held,
                self.ingest.identity.fallback,
                HOLD_SECONDS,
            )
        live_start = self.journal.last_seq
        self.workers = [
            SinkWorker(
                sink,
                journal_path=self.journal.path,
                journal_id=self.journal.id,
                state_dir=cfg.state_dir,
                rebuild=self.rebuild,
                live_start=live_start,
                retry_min=min(1.0, cfg.sink_retry_max),
                retry_max=min(cfg.sink_retry_max, sink.retry_max or cfg.sink_retry_max),
                holds=self._sink_holds,
            )
            for sink in sinks
        ]
        # before any push is appended: a sink may take long to open (its server down), and the
        # positions its stored checkpoint holds must not be given out meanwhile
        for w in self.workers:
            if not w.live:
                self._sink_holds(w.name, w.position)

    def _stream_transport(self, stream: str | None) -> str:
        spec = self._spec_of(stream) if stream is not None else None
        if spec is not None and spec.transport:
            return spec.transport
        if spec is not None and spec.kind == "mqtt":
            return "auto"  # bridges publish HDLC, M-Bus or bare APDUs
        return self.cfg.transport

    def _decoder(self, stream: str | None) -> PushDecoder:
        """The decoder of one stream (a port; an MQTT topic): its own framer and reassembly state."""
        cfg = self.cfg
        topic = cfg.topics.get(stream) if stream is not None else None
        if self._interpreter is None:
            from obis.interpret import Interpreter

            self._interpreter = Interpreter(cfg.decode_options)
        return PushDecoder(
            cfg.keyring,
            transport=self._stream_transport(stream),
            system_title=(topic.system_title if topic else None) or cfg.system_title,
            allow_unauthenticated=cfg.allow_unauthenticated,
            allow_unverified=cfg.unverified,
            options=cfg.decode_options,
            interpreter=self._interpreter,  # one for every stream: its plan caches are kept once
        )

    def _stream_meter(self, stream: str) -> str | None:
        topic = self.cfg.topics.get(stream)
        return topic.meter if topic and topic.meter else self.cfg.meter

    def _spec_of(self, stream: str) -> SourceSpec | None:
        """The spec of the source a stream comes from (an MQTT source names its streams by topic).

        Asked once per new stream: a look-up per source, not a table of every stream (a head-end
        has tens of thousands of topics)."""
        found = None
        for src in self.sources:
            spec = getattr(src, "spec", None)
            if spec is None:
                continue
            if stream in (getattr(src, "streams", ()) or ()):
                return spec
            if found is None and getattr(src, "stream_name", None) == stream:
                found = spec
        return found

    def _unknown_frame(self, stream: str | None, err) -> None:
        """A frame refused for want of its meter's keys: kept raw for han state replay-unknown."""
        partial = getattr(err, "partial", None)
        ciphered = getattr(partial, "ciphered", None) if partial is not None else None
        wire = getattr(partial, "wire", b"") if partial is not None else b""
        if self.unknown is None or not wire or ciphered is None:
            return
        st = (ciphered.system_title or b"").hex().upper()
        self.unknown.add(UnknownFrame(time.time(), stream, st, bytes(wire)))

    async def _open_web(self) -> None:
        """The live page (imported only now: a daemon without it stays light); it follows the store's worker."""
        from .web.server import start_for, store_path

        self.web = await start_for(self)
        path = store_path(self.cfg)
        for w in self.workers:
            if w.sink.scheme == "sqlite" and os.path.abspath(os.path.expanduser(getattr(w.sink, "target", ""))) == path:
                w.on_stored = self.web.stored
                break

    def _sink_holds(self, name: str, seq: int) -> None:
        """A sink holds position ``seq``: the journal never gives it (or any before it) again."""
        assert self.journal is not None
        try:
            skipped = self.journal.ensure_after(seq)
        except JournalError as exc:
            log.error("%s", exc)
            return
        if skipped:
            log.error(
                "journal: %s holds position %d but the journal ends at %d: its last %d push(es) were lost after"
                " that sink got them (a power cut?); those positions are not given again, and the sinks that"
                " lacked them report them as dropped",
                name,
                seq,
                seq - skipped,
                skipped,
            )

    def rebuild(self, r: Record) -> Push:
        """A journal row back into the push it was (called in the sink workers' threads)."""
        security = None
        if r.security_control is not None:
            security = SecurityInfo(
                system_title=r.system_title,
                invocation_counter=r.invocation_counter or 0,
                security_control=r.security_control,
                verified=r.verified,
                tag=r.tag if r.tag is not None else 0xDB,
            )
        return push_from_apdu(r.apdu, security, thread_interpreter(self.cfg.decode_options))

    # -- running --------------------------------------------------------------------------
    async def run(self) -> int:
        try:
            self._open()
            if self.cfg.http is not None:
                await self._open_web()
        except BaseException:
            self._close_state()
            raise
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_exception)
        self.stop_event = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests)
        cfg = self.cfg
        assert self.ingest is not None and self.journal is not None
        self.sources = self._make_sources()
        self.source = self.sources[0]
        self._watch(self.sources)
        sinks = ", ".join(w.name for w in self.workers)
        log.info("state directory %s; sinks: %s; %s", cfg.state_dir, sinks, self._keys_summary())
        worker_tasks = [asyncio.ensure_future(w.run()) for w in self.workers]
        for w in self.workers:
            w.wake()  # deliver a backlog left from the last run
        ticker = asyncio.ensure_future(self._tick())
        source_task = asyncio.ensure_future(self._read())
        exit_code = 0
        try:
            await self.stop_event.wait()
        finally:
            exit_code = await self._shutdown(source_task, ticker, worker_tasks)
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        return exit_code

    def _make_sources(self) -> list:
        """The sources to read: the replay, else --source / [[source]], else the serial port."""
        from dataclasses import replace

        from .sources.mqtt import MqttSource, default_client_id

        cfg = self.cfg
        if cfg.replay:
            return [ReplaySource(cfg.replay, self._feed, self._flush, pace=cfg.pace, backlog=self._working_backlog)]
        specs = cfg.sources or (SourceSpec("serial", cfg.serial.port or ""),)
        several = len(specs) > 1
        sources: list = []
        for i, spec in enumerate(specs):
            if spec.kind == "mqtt":
                client_id = spec.client_id or default_client_id(cfg.state_dir) + (f"-{i}" if several else "")
                src = MqttSource(
                    spec,
                    self._feeds,
                    self._journaled,
                    batch=self._batch,
                    client_id=client_id,
                    retry_min=cfg.retry_min,
                    retry_max=cfg.retry_max,
                )
            else:
                stream = spec.target if several else None
                src = SerialSource(
                    replace(cfg.serial, port=spec.target),
                    lambda data, stream=stream: self._feed(data, stream),
                    lambda stream=stream: self._flush(stream),
                    idle=cfg.idle_flush,
                    retry_min=cfg.retry_min,
                    retry_max=cfg.retry_max,
                )
                src.spec, src.stream_name = spec, stream
            sources.append(src)
        return sources

    def _watch(self, sources: list) -> None:
        """A watch per source; a port's stream leads to its watch (an MQTT source's topics: by its streams)."""
        self.watches = [SourceWatch(src) for src in sources]
        self._watch_by_stream = {
            getattr(w.source, "stream_name", None): w for w in self.watches if w.source.kind != "mqtt"
        }

    def _watch_of(self, stream: str | None) -> SourceWatch | None:
        watches = self.watches
        if len(watches) == 1:
            return watches[0]
        w = self._watch_by_stream.get(stream)
        if w is not None:
            return w
        for w in watches:
            if stream in (getattr(w.source, "streams", None) or ()):
                return w
        return None

    def _outcome(self, stream: str | None, reason: str, now: float) -> None:
        """A push or a failure of a stream: its source's watch takes it (han.ingest on_outcome)."""
        w = self._watch_of(stream)
        if w is None:
            return
        if reason == "accepted":
            w.pushed(now)
        else:
            w.failed(reason)

    def _feeds(self, stream: str | None):
        """A stream's feed for a source (han.sources.base.StreamFeed), guarded: reading goes on whatever happens."""
        return _GuardedFeed(self, stream)

    @contextlib.contextmanager
    def _batch(self) -> Iterator[None]:
        """Pushes fed inside go to the journal in one transaction at the end (a run of MQTT messages)."""
        assert self.ingest is not None
        try:
            with self.ingest.batch():
                yield
        except Exception as exc:  # noqa: BLE001 - the last guard: reading goes on whatever happens
            self._internal(exc)

    def _journaled(self) -> bool:
        """Every accepted push is in the journal (an MQTT message may be acknowledged)."""
        return self.ingest is not None and not self.ingest.pending

    def _feed(self, data: bytes, stream: str | None = None, *, redelivered: bool = False) -> list[Push]:
        w = self._watch_of(stream)
        if w is not None:
            w.received(len(data), time.time())
        try:
            return self.ingest.feed(data, stream, redelivered=redelivered)
        except Exception as exc:  # noqa: BLE001 - the last guard: reading goes on whatever happens
            self._internal(exc)
            return []

    def _flush(self, stream: str | None = None) -> list[Push]:
        try:
            return self.ingest.flush(stream)
        except Exception as exc:  # noqa: BLE001
            self._internal(exc)
            return []

    def _internal(self, exc: BaseException, where: str = "") -> None:
        """An error of the daemon or of a library outside any frame: one line, counted as ``internal_errors``.

        Push outcomes are for frames (a frame the decoder failed on is the outcome
        ``internal_error``, han.pipeline); this count is the daemon's own (status.json).
        """
        log.error(
            "internal error: %s: %s%s (a bug: please report it; HAN_DEBUG=1 shows the traceback)",
            type(exc).__name__,
            exc,
            f" [{where}]" if where else "",
            exc_info=exc if os.environ.get("HAN_DEBUG") else None,
        )
        self.internal_errors += 1

    def _loop_exception(self, loop, context: dict) -> None:
        # where it happened, by name only ("Exception in callback BaseSelectorEventLoop.add_writer"):
        # the arguments in the rest of asyncio's message are not for the log
        where = str(context.get("message") or "event loop error").split("(", 1)[0].strip()
        exc = context.get("exception")
        if exc is None:
            log.error("internal error: %s (a bug: please report it)", where)
            self.internal_errors += 1
        else:
            self._internal(exc, where)

    async def _read(self) -> None:
        assert self.sources and self.stop_event is not None
        await asyncio.gather(*(self._read_one(src) for src in self.sources))
        if self.cfg.replay:
            self.request_stop()

    async def _read_one(self, source) -> None:
        assert self.stop_event is not None
        try:
            await source.run(self.stop_event)
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable replay file
            log.error("%s: %s", source.name, str(exc) or type(exc).__name__)
            self._source_failed = True

    def request_stop(self, sig: int | None = None) -> None:
        if sig is not None:
            if self.stop_event is not None and self.stop_event.is_set():
                # a second signal: stop now; what the sinks have not got stays in the journal
                log.warning("%s again: exiting at once", signal.Signals(sig).name)
                os._exit(1)
            log.info(
                "%s: stopping (delivering what the journal holds; again to exit at once)", signal.Signals(sig).name
            )
        if self.stop_event is not None:
            self.stop_event.set()

    async def _shutdown(self, source_task, ticker, worker_tasks) -> int:
        assert self.ingest is not None and self.journal is not None
        try:
            await asyncio.wait_for(source_task, 5.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            source_task.cancel()
        ticker.cancel()
        if self.web is not None:
            await self.web.close()
        self.ingest.release()  # pushes still waiting for the meter's identity go on under the fallback
        self.ingest.commit()
        for w in self.workers:
            w.drain()
        done, pending = await asyncio.wait(worker_tasks, timeout=self.cfg.stop_timeout) if worker_tasks else ((), ())
        for w, t in zip(self.workers, worker_tasks):
            if t in pending:
                log.error("%s: still busy after %g s; its backlog stays in the journal", w.name, self.cfg.stop_timeout)
        undelivered = self._undelivered() if (self.cfg.replay or self.cfg.count) else 0
        self._save_counters()
        self._trim()
        self._write_status(final=True)
        self._close_state()
        lost = self.ingest.lost + len(self.ingest.pending)
        if lost:
            log.error(
                "%d accepted push(es) could not be written to the journal and are lost%s",
                lost,
                "; their invocation counters were not saved: replaying the same capture again takes them"
                if self.cfg.replay
                else "",
            )
        if self._source_failed:
            return 1
        # a replay run again takes the lost ones (their counters were not saved): try again later
        return EXIT_UNDELIVERED if undelivered or (lost and self.cfg.replay) else 0

    def _undelivered(self) -> int:
        """A run that ends by itself (a replay, --count): one line per sink that lacks pushes; how many sinks."""
        assert self.journal is not None
        last = self.journal.last_seq
        short = [w for w in self.workers if w.backlog(last)]
        for w in short:
            log.error(
                "%s: %d push(es) not delivered%s; they wait in the journal: the next han run with the state"
                " directory %s delivers them",
                w.name,
                w.backlog(last),
                f" ({w.last_error})" if w.last_error else "",
                self.cfg.state_dir,
            )
        return len(short)

    def _close_state(self) -> None:
        if self.journal is not None:
            self.journal.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _wake_sinks(self) -> None:
        for w in self.workers:
            w.wake()

    def _appended(self, last_seq: int) -> None:
        self._wake_sinks()
        now = time.time()
        if self._prev_push is not None:
            self._gaps.append(now - self._prev_push)
        self._prev_push = now
        several = len(self.watches) > 1
        for w in self.watches:
            if w.committed():
                watch_log.warning("%spushes arrive again", f"{w.source.name}: " if several else "")
        if not self.cfg.replay:
            self._tell_sinks(True)
        if self.web is not None:
            self.web.ports_changed()
        assert self.ingest is not None
        if self.cfg.count and self.ingest.outcomes.counts["accepted"] >= self.cfg.count:
            self.request_stop()

    def _working_backlog(self) -> int:
        last = self.journal.last_seq if self.journal else 0
        return max((w.backlog(last) for w in self.workers if w.state != "failing"), default=0)

    # -- the once-a-second chores ----------------------------------------------------------
    async def _tick(self) -> None:
        last_status = last_counters = 0.0
        while True:
            await asyncio.sleep(min(1.0, self.cfg.status_interval))
            now = time.time()
            ingest = self.ingest
            assert ingest is not None
            ingest.burst.tick(now)
            ingest.tick(now)
            if ingest.pending:
                ingest.commit()
            if not self.cfg.replay:
                self._watchdog(now)
                self._tell_sinks(self._source_online(now))
            if self.web is not None:
                self.web.ports_changed()
            if now - last_counters >= self.cfg.counters_every:
                self._save_counters()
                self._trim()
                last_counters = now
            if now - last_status >= self.cfg.status_interval:
                self._write_status()
                last_status = now

    @property
    def push_interval(self) -> float:
        if self.cfg.push_interval:
            return self.cfg.push_interval
        if len(self._gaps) >= 3:
            return max(1.0, statistics.median(self._gaps))
        return DEFAULT_INTERVAL

    def interval_of(self, w: SourceWatch) -> float:
        """A source's push interval: the configured one, else its own learned one, else the daemon's."""
        if len(self.watches) == 1:
            return self.push_interval
        return w.interval(self.cfg.push_interval, self.push_interval)

    def watch_for(self, source) -> SourceWatch | None:
        return next((w for w in self.watches if w.source is source), None)

    def silent_topics(self, source, now: float) -> tuple[int, float]:
        """How many of an MQTT source's topics sent no push for three push intervals (the configured
        one, else 10 s), and that limit: for han status, never a warning (a head-end has thousands)."""
        assert self.ingest is not None
        limit = 3 * (self.cfg.push_interval or DEFAULT_INTERVAL)
        pushed, since = self.ingest.outcomes.stream_push, now - limit
        return sum(1 for t in list(source.streams) if pushed.get(t, self.started) < since), limit

    def _watchdog(self, now: float) -> None:
        """Each source on its own: warn when it sent no push for three of its push intervals (again
        every three more), naming the source (with several) and the fault.

        A lost port, a silent line (then the port is reopened: a USB adapter that stopped
        talking), or bytes that make no push: what they look like comes from the outcome
        counts since its last push (han.watchdog).  An MQTT source is watched as a whole: no
        message from any of its topics (one quiet bridge among thousands is no warning).
        """
        for w in self.watches:
            self._watch_one(w, now)

    def _watch_one(self, w: SourceWatch, now: float) -> None:
        quiet_since = w.last_push or self.started
        interval = self.interval_of(w)
        if now - max(quiet_since, w.warned_at or 0.0) < 3 * interval:
            return
        w.warned_at = now
        source = w.source
        several = len(self.watches) > 1
        name = f"{source.name}: " if several else ""
        if source.kind == "mqtt":
            watch_log.warning(
                "%sno push for %.0f s from any topic: %s",
                name,
                now - quiet_since,
                ("the broker is unreachable" + ("" if several else f" ({source.name})"))
                if source.state != "connected"
                else "no bridge publishes (or the topic filter matches none of their topics)",
            )
            return
        lost = None
        if isinstance(source, SerialSource) and source.state != "connected":
            lost = source.last_error or "not open"
        quiet = Quiet(
            quiet_for=now - quiet_since,
            since_start=w.last_push is None,
            interval=interval,
            port_lost=lost,
            silent_for=None if w.last_byte is None else now - w.last_byte,
            bytes_since_push=w.bytes_in - w.bytes_at_push,
            window=w.window,
            transport=self._stream_transport(getattr(source, "stream_name", None)),
            serial=self.cfg.serial.describe(),
        )
        watch_log.warning("%s%s", name, watchdog_message(quiet))
        if lost is None and not quiet.bytes_arrive and isinstance(source, SerialSource):
            source.reopen("the port has been silent")

    def _source_online(self, now: float) -> bool:
        """Some source is open and sent a push within three of its push intervals (the watchdog's limit).

        One online status for all sources: a silent meter beside others that push leaves them
        online (its power values expire by themselves)."""
        return any(
            w.source.state == "connected" and now - (w.last_push or self.started) < 3 * self.interval_of(w)
            for w in self.watches
        )

    def _tell_sinks(self, online: bool) -> None:
        """Sinks that show availability (MQTT's status topic) follow the port: told on every change."""
        if online == self._online:
            return
        self._online = online
        if online:
            log.info("status for the sinks: online (the port is open and pushes arrive)")
        else:
            log.info(
                "status for the sinks: offline (%s)",
                "every source is lost or quiet"
                if len(self.watches) > 1
                else f"the port is lost, or no push for 3 × {self.push_interval:g} s",
            )
        for w in self.workers:
            w.source_status(online)

    def _save_counters(self) -> None:
        """The counters file then covers the journal up to its last position (memory holds every accepted counter)."""
        assert self.ingest is not None and self.journal is not None
        try:
            self.ingest.counters.save(self.journal.id, self.journal.last_seq, unjournaled=self.ingest.unjournaled)
        except OSError as exc:
            self._trouble("counters", f"cannot save invocation counters: {exc.strerror}")
        else:
            self._trouble("counters", None)

    def _trim(self) -> None:
        assert self.journal is not None and self.ingest is not None
        upto = min([w.position for w in self.workers] + [self.ingest.counters.seq])
        try:
            dropped = self.journal.trim(upto)
            too_old = self.journal.trim_age(time.time())
        except JournalError as exc:
            self._trouble("trim", str(exc))
            return
        self._trouble("trim", None)
        if dropped:
            log.error(
                "journal limit (%d pushes) reached: %d old push(es) removed before every sink had them",
                self.cfg.spool_max_pushes,
                dropped,
            )
        if too_old:
            log.error(
                "journal age limit (%g days) reached: %d push(es) older than that removed before every sink had them",
                self.cfg.spool_max_age / 86400,
                too_old,
            )

    # -- status ------------------------------------------------------------------------------
    def _keys_summary(self) -> str:
        ring = self.cfg.keyring
        if ring.empty:
            return "no keys (plain pushes only)"
        parts = []
        if ring.default.ek or ring.default.ak:
            parts.append("default keys")
        if ring.meters:
            parts.append(f"keys for {len(ring.meters)} meter(s)")
        return " and ".join(parts)

    def status(self) -> dict:
        from .status import snapshot

        return snapshot(self)

    def _write_status(self, final: bool = False) -> None:
        try:
            data = self.status()
            if final:
                data["running"] = False
            write_json(os.path.join(self.cfg.state_dir, STATUS_FILE), data, sync=False)
        except OSError as exc:
            self._trouble("status", f"cannot write the status file: {exc.strerror}")
        else:
            self._trouble("status", None)

    def _trouble(self, what: str, message: str | None) -> None:
        """Log a state-directory problem when it starts (or changes) and when it ends, not on every retry."""
        before = self._troubles.get(what)
        if message == before:
            return
        if message is None:
            self._troubles.pop(what, None)
            log.warning(
                "%s works again",
                {"counters": "saving the counters", "trim": "the journal", "status": "the status file"}[what],
            )
        else:
            self._troubles[what] = message
            log.error("%s", message)


class _GuardedFeed:
    """One stream's feed for a source: the daemon's last guard around the ingest (han.sources.base.StreamFeed)."""

    __slots__ = ("daemon", "stream")

    def __init__(self, daemon: Daemon, stream: str | None) -> None:
        self.daemon, self.stream = daemon, stream

    def feed(self, data: bytes, *, redelivered: bool = False) -> list[Push]:
        return self.daemon._feed(data, self.stream, redelivered=redelivered)

    def flush(self) -> list[Push]:
        return self.daemon._flush(self.stream)

    def end_message(self) -> list[Push]:
        try:
            return self.daemon.ingest.end_message(self.stream)
        except Exception as exc:  # noqa: BLE001
            self.daemon._internal(exc)
            return []

    def failed(self, reason: str, text: str) -> None:
        self.daemon.ingest.failed_input(reason, text, self.stream)


def make_sinks(cfg: RunConfig) -> list:
    """The sink objects (not opened yet); a wrong URL, option or missing extra is a ConfigError."""
    sinks = []
    for spec in cfg.sink_specs():
        try:
            sinks.append(create_sink(spec.url, **dict(spec.options)))
        except SinkError as exc:
            raise ConfigError(f"sink {redact(spec.url)}: {exc}") from None
    names = [s.name for s in sinks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"sink {twice[0]} is given twice")
    return sinks


def run_daemon(cfg: RunConfig) -> int:
    """``HAN_PROFILE=FILE`` profiles the run with cProfile and writes the stats to FILE at the end
    (for benchmarks: ``python -m pstats FILE``)."""
    profile = os.environ.get("HAN_PROFILE")
    if not profile:
        return asyncio.run(Daemon(cfg).run())
    import cProfile

    prof = cProfile.Profile()
    try:
        return prof.runcall(asyncio.run, Daemon(cfg).run())
    finally:
        prof.dump_stats(profile)
