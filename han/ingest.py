"""From received bytes to journaled pushes: decode, check the counter, append to the journal.

Each stream (the one port; or each of several sources, each MQTT topic) has
its own decoder (framer state) and its own meter identity
(:mod:`han.identity`); the invocation counters (replay protection, per meter)
and the journal are shared.  The default stream is ``None`` (one source).

This is the daemon's hot path, with no I/O of its own except the journal
append (one SQLite transaction per chunk of bytes).  It never raises on bad
data: every failed frame is counted by its reason and logged once per burst.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from decoders.errors import DecodeError
from obis.push import Push

from .advice import advise
from .burstlog import BurstLog
from .identity import Release, SourceIdentity, Stamp
from .journal import Journal, JournalError, Record
from .keyring import KeyRing
from .pipeline import PushDecoder
from .replay import CounterStore, ReplayedFrame

log = logging.getLogger("han.decode")

#: pushes kept in memory while the journal cannot be written (a full disk); the oldest go first
MAX_PENDING = 10_000


@dataclass
class MeterStats:
    key_id: str
    pushes: int = 0
    last_counter: int | None = None
    last_seen: float = 0.0


class _Stream:
    """One stream's decoder and meter identity."""

    __slots__ = ("name", "decoder", "identity", "system_title")

    def __init__(
        self, name: str | None, decoder: PushDecoder, identity: SourceIdentity, system_title: bytes | None
    ) -> None:
        self.name, self.decoder, self.identity = name, decoder, identity
        self.system_title = system_title  #: for APDUs that carry none


class StreamFeed:
    """What a source holds for one stream: bytes in, accepted pushes out (see :mod:`han.sources.base`)."""

    __slots__ = ("ingest", "stream")

    def __init__(self, ingest: "Ingest", stream: str | None) -> None:
        self.ingest, self.stream = ingest, stream

    def feed(self, data: bytes, *, redelivered: bool = False) -> list[Push]:
        return self.ingest.feed(data, self.stream, redelivered=redelivered)

    def flush(self) -> list[Push]:
        return self.ingest.flush(self.stream)

    def end_message(self) -> list[Push]:
        return self.ingest.end_message(self.stream)

    def failed(self, reason: str, text: str) -> None:
        self.ingest.failed_input(reason, text, self.stream)


@dataclass
class Outcomes:
    """Counts by outcome: ``accepted``, ``replayed``, and each decode failure's reason."""

    counts: Counter = field(default_factory=Counter)
    last_push: float | None = None  #: time of the last accepted push
    #: stream -> time of its last accepted push (the live page's quiet warning per source)
    stream_push: dict[str | None, float] = field(default_factory=dict)
    last_meter_time: str | None = None
    last_meter: str | None = None
    meters: dict[str, MeterStats] = field(default_factory=dict)
    bytes_in: int = 0


class Ingest:
    def __init__(
        self,
        decoder: PushDecoder,
        keyring: KeyRing,
        counters: CounterStore,
        journal: Journal,
        *,
        system_title: bytes | None = None,
        meter: str | None = None,
        clock: Callable[[], float] = time.time,
        on_append: Callable[[int], None] | None = None,
        on_release: Callable[[], None] | None = None,
        burst: BurstLog | None = None,
        decoders: Callable[[str], PushDecoder] | None = None,
        meters: Callable[[str], str | None] | None = None,
        on_unknown: Callable[[str | None, DecodeError], None] | None = None,
        on_outcome: Callable[[str | None, str, float], None] | None = None,
    ) -> None:
        """``decoder`` decodes the default stream; ``decoders(name)`` makes the decoder of a named stream
        (default: like ``decoder``), ``meters(name)`` gives its configured meter name.
        ``on_unknown(stream, error)`` gets each frame refused for want of its meter's keys;
        ``on_outcome(stream, reason, now)`` each counted outcome of a stream (``accepted`` for a push,
        noted before the journal has it): the daemon's watchdog per source."""
        self.decoder = decoder
        self.keyring = keyring
        self.counters = counters
        self.journal = journal
        self.system_title = system_title
        self.clock = clock
        self.on_append = on_append
        self.on_release = on_release  #: held journal rows were handed on (the sinks have more to read)
        self.burst = burst or BurstLog(lambda m: log.warning("%s", m))
        self.outcomes = Outcomes()
        self.pending: deque[Record] = deque(maxlen=MAX_PENDING)
        self._journal_failing = False
        self.lost = 0  #: pushes dropped from the in-memory pending list (disk full for too long)
        #: per meter and key, its counter before the pushes not yet in the journal (None: none before)
        self.unjournaled: dict[tuple[bytes, str], int | None] = {}
        self._decoders = decoders
        self._meters = meters
        self.on_unknown = on_unknown
        self.on_outcome = on_outcome
        #: each stream's meter: every push is stamped with it before the journal (see han.identity)
        self.identity = SourceIdentity(meter)
        self.identity.resume(*journal.held())
        #: the held rows of the last run, by stream: a stream made later resumes its own
        self._held_at_start = journal.held_streams()
        self._streams: dict[str | None, _Stream] = {None: _Stream(None, decoder, self.identity, system_title)}
        #: releases of held rows already in the journal, by stream, applied with the next append
        self._stamps_due: dict[str | None, Stamp] = {}
        self._redelivered = False
        self._batching = False  #: inside batch(): the journal is written once at its end
        #: keys come from --keys FILE: a missing key is advised as "add the meter's keys to the --keys file"
        self.keys_file = False

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Everything fed inside goes to the journal in one transaction when it ends.

        A head-end takes a run of MQTT messages at once: one commit for the run instead of one
        per message (the acknowledgements are sent after it, so the journal still comes first).
        Nothing inside may wait on I/O: the pushes are in memory only until the end."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            if self.pending or self._stamps_due:
                self.commit()

    def stream(self, name: str | None) -> _Stream:
        s = self._streams.get(name)
        if s is None:
            assert name is not None
            decoder = self._decoders(name) if self._decoders else PushDecoder(self.keyring, system_title=self.system_title)
            identity = SourceIdentity(self._meters(name) if self._meters else None)
            identity.resume(*self._held_at_start.pop(name, (0, None)))
            st = getattr(decoder.stream, "system_title", None) or self.system_title
            s = self._streams[name] = _Stream(name, decoder, identity, st)
        return s

    def feed_for(self, name: str | None) -> StreamFeed:
        self.stream(name)
        return StreamFeed(self, name)

    def feed(self, data: bytes, stream: str | None = None, *, redelivered: bool = False) -> list[Push]:
        """``redelivered``: the bytes came again (an MQTT message with DUP set, not acknowledged before):
        a push already in the journal is counted as ``redelivered``, not taken twice, and not logged."""
        self.outcomes.bytes_in += len(data)
        strm = self._streams.get(stream) or self.stream(stream)
        self._redelivered = redelivered
        try:
            return self._handle(strm.decoder.feed(data), strm)
        finally:
            self._redelivered = False

    def flush(self, stream: str | None = None) -> list[Push]:
        """The line went idle or the port closed: report a torn frame now, not glued to the next."""
        s = self._streams.get(stream) or self.stream(stream)
        return self._handle(s.decoder.flush(), s)

    def end_message(self, stream: str | None = None) -> list[Push]:
        """A message ended (MQTT): its unfinished frame is reported now; segments and blocks wait for the next."""
        s = self._streams.get(stream) or self.stream(stream)
        return self._handle(s.decoder.end_message(), s)

    def failed_input(self, reason: str, text: str, stream: str | None = None) -> None:
        """A message that carried no meter data (a malformed payload): counted, logged once per burst."""
        self.outcomes.counts[reason] += 1
        if self.on_outcome is not None:
            self.on_outcome(stream, reason, self.clock())
        where = f"{stream}: " if stream else ""
        self.burst.failure(reason, where + text, self.clock())

    @property
    def _stamp_due(self) -> Stamp | None:  # the default stream's (tests read it)
        return self._stamps_due.get(None)

    def _handle(self, items: list, strm: _Stream | None = None) -> list[Push]:
        if strm is None:
            strm = self._streams[None]
        now = self.clock()
        accepted: list[Push] = []
        for item in items:
            if isinstance(item, DecodeError):
                self._failed(item, now, strm.name)
                continue
            push: Push = item
            s = push.security
            record_st: bytes | None = None
            kid: str | None = None
            if s is not None:
                record_st = s.system_title or strm.system_title or b""
                kid = self.keyring.key_id(record_st or None)
                last = self.counters.check(record_st, kid, s.invocation_counter)
                if last is not None and self._redelivered:
                    self.outcomes.counts["redelivered"] += 1  # journaled before the worker stopped
                    continue
                if last is not None:
                    self._failed(
                        ReplayedFrame(
                            f"invocation counter {s.invocation_counter} of meter {record_st.hex().upper() or '?'}"
                            f" is not above the last accepted {last}: a replayed or duplicated frame, rejected"
                            " (a meter that was reset keeps its keys but restarts its counter: han state reset-counter)"
                        ),
                        now,
                        strm.name,
                    )
                    continue
                key = (record_st, kid)
                if key not in self.unjournaled:
                    self.unjournaled[key] = self.counters.counters.get(key)
                self.counters.accept(record_st, kid, s.invocation_counter)
            elif self._redelivered and self._plain_seen(strm.name, push.apdu):
                self.outcomes.counts["redelivered"] += 1
                continue
            own = record_st.hex().upper() if record_st else push.meter_id
            stamp, release = strm.identity.stamp(own, push.meter_id, now)
            if release is not None:
                self._release(release, strm.name)
            if len(self.pending) == MAX_PENDING:  # the journal has failed for a long time: the oldest goes
                self.lost += 1
                self.outcomes.counts["lost"] += 1
            self.pending.append(
                Record(
                    received=now,
                    system_title=record_st,
                    key_id=kid,
                    invocation_counter=s.invocation_counter if s else None,
                    security_control=s.security_control if s else None,
                    tag=s.tag if s else None,
                    verified=bool(s and s.verified),
                    apdu=push.apdu,
                    meter=stamp.meter if stamp else None,
                    meter_id=stamp.meter_id if stamp else None,
                    held=stamp is None,
                    stream=strm.name,
                )
            )
            accepted.append(push)
            self._note(push, stamp.meter if stamp else None, kid, now, strm.name)
        if accepted:
            self.burst.success(now)
        if (self.pending or self._stamps_due) and not self._batching:
            self.commit()
        return accepted

    def _plain_seen(self, stream: str | None, apdu: bytes) -> bool:
        if any(r.stream == stream and r.invocation_counter is None and r.apdu == apdu for r in self.pending):
            return True
        try:
            return self.journal.has_plain(stream, apdu)
        except Exception:  # noqa: BLE001 - a journal that cannot be read: take the push (at least once)
            return False

    @property
    def held(self) -> int:
        """Pushes waiting for their source to name its meter (in the journal, not yet given to the sinks)."""
        return sum(s.identity.held for s in self._streams.values())

    @property
    def streams(self) -> list[str | None]:
        return list(self._streams)

    def tick(self, now: float) -> None:
        """Once a second: pushes held too long for their meter go on under the fallback name."""
        released = False
        for s in list(self._streams.values()):
            release = s.identity.expire(now)
            if release is not None:
                self._release(release, s.name)
                released = True
        if released:
            self.commit()

    def release(self) -> None:
        """han stops: every held push goes on now (under the fallback when its meter is still unknown)."""
        released = False
        for s in list(self._streams.values()):
            release = s.identity.release()
            if release is not None:
                self._release(release, s.name)
                released = True
        if released:
            self.commit()

    def _release(self, release: Release, stream: str | None = None) -> None:
        """Stamp the held pushes: those still in memory here, those in the journal with the next append."""
        stamp = release.stamp
        in_memory = 0
        for i, r in enumerate(self.pending):
            if r.held and r.stream == stream:
                self.pending[i] = replace(r, meter=stamp.meter, meter_id=stamp.meter_id, held=False)
                in_memory += 1
        # the journal's held rows all arrived before anything still in memory, so a release that
        # is still due (the journal failing) already covers them: the first one stays
        if in_memory < release.count and stream not in self._stamps_due:
            self._stamps_due[stream] = stamp
        self._note_meter(stamp.meter, release.count, self.clock())

    def commit(self) -> bool:
        """Append the pending pushes to the journal; True when nothing is left pending."""
        due = dict(self._stamps_due)
        if not self.pending and not due:
            return True
        batch = list(self.pending)
        try:
            seqs = self.journal.append(batch, stamps=[(st, d.meter, d.meter_id) for st, d in due.items()])
        except JournalError as exc:
            if not self._journal_failing:
                log.error("%s; keeping up to %d pushes in memory and retrying", exc, MAX_PENDING)
                self._journal_failing = True
            self.outcomes.counts["journal_error"] += 1
            return False
        if self._journal_failing:
            log.warning("journal writable again; %d push(es) kept in memory written", len(batch))
            self._journal_failing = False
        self.pending.clear()
        self.unjournaled.clear()
        self._stamps_due.clear()
        self.outcomes.counts["accepted"] += len(batch)
        if due and self.on_release is not None:
            self.on_release()
        if self.on_append is not None and seqs:
            self.on_append(seqs[-1])
        return True

    def _failed(self, err: DecodeError, now: float, stream: str | None = None) -> None:
        consequence = err.consequence  # of a damaged frame counted already
        if not consequence:
            self.outcomes.counts[err.reason] += 1
            if self.on_outcome is not None:
                self.on_outcome(stream, err.reason, now)
        if err.reason == "no_key" and self.on_unknown is not None:
            self.on_unknown(stream, err)
        text = advise(err, keys_file=self.keys_file).one_line()
        if stream:
            text = f"{stream}: {text}"
        offset = err.offset
        if offset is not None and "offset" not in text:
            text += f" (frame at stream offset {offset})"
        self.burst.failure(err.reason, text, now, consequence=consequence)

    def _note(self, push: Push, meter: str | None, kid: str | None, now: float, stream: str | None = None) -> None:
        o = self.outcomes
        o.last_push = o.stream_push[stream] = now
        if self.on_outcome is not None:
            self.on_outcome(stream, "accepted", now)
        o.last_meter_time = push.timestamp
        if meter is None:
            return  # held: counted for its meter when it is released
        m = o.meters.get(meter)
        if m is None or m.key_id != (kid or "none"):
            m = o.meters[meter] = MeterStats(kid or "none")
        m.pushes += 1
        m.last_seen = now
        if push.security is not None:
            m.last_counter = push.security.invocation_counter
        o.last_meter = meter

    def _note_meter(self, meter: str, pushes: int, now: float) -> None:
        m = self.outcomes.meters.setdefault(meter, MeterStats("none"))
        m.pushes += pushes
        m.last_seen = max(m.last_seen, now)
        self.outcomes.last_meter = meter
