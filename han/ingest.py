"""From received bytes to journaled pushes: decode, check the counter, append to the journal.

This is the daemon's hot path, with no I/O of its own except the journal
append (one SQLite transaction per chunk of bytes).  It never raises on bad
data: every failed frame is counted by its reason and logged once per burst.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
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


@dataclass
class Outcomes:
    """Counts by outcome: ``accepted``, ``replayed``, and each decode failure's reason."""

    counts: Counter = field(default_factory=Counter)
    last_push: float | None = None  #: time of the last accepted push
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
    ) -> None:
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
        #: this source's meter: every push is stamped with it before the journal (see han.identity)
        self.identity = SourceIdentity(meter)
        self.identity.resume(*journal.held())
        #: a release of held rows already in the journal, applied with the next append
        self._stamp_due: Stamp | None = None

    def feed(self, data: bytes) -> list[Push]:
        self.outcomes.bytes_in += len(data)
        return self._handle(self.decoder.feed(data))

    def flush(self) -> list[Push]:
        """The line went idle or the port closed: report a torn frame now, not glued to the next."""
        return self._handle(self.decoder.flush())

    def _handle(self, items: list) -> list[Push]:
        now = self.clock()
        accepted: list[Push] = []
        for item in items:
            if isinstance(item, DecodeError):
                self._failed(item, now)
                continue
            push: Push = item
            s = push.security
            record_st: bytes | None = None
            kid: str | None = None
            if s is not None:
                record_st = s.system_title or self.system_title or b""
                kid = self.keyring.key_id(record_st or None)
                last = self.counters.check(record_st, kid, s.invocation_counter)
                if last is not None:
                    self._failed(
                        ReplayedFrame(
                            f"invocation counter {s.invocation_counter} of meter {record_st.hex().upper() or '?'}"
                            f" is not above the last accepted {last}: a replayed or duplicated frame, rejected"
                            " (a meter that was reset keeps its keys but restarts its counter: han state reset-counter)"
                        ),
                        now,
                    )
                    continue
                key = (record_st, kid)
                if key not in self.unjournaled:
                    self.unjournaled[key] = self.counters.counters.get(key)
                self.counters.accept(record_st, kid, s.invocation_counter)
            own = record_st.hex().upper() if record_st else push.meter_id
            stamp, release = self.identity.stamp(own, push.meter_id, now)
            if release is not None:
                self._release(release)
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
                )
            )
            accepted.append(push)
            self._note(push, stamp.meter if stamp else None, kid, now)
        if accepted:
            self.burst.success(now)
        if self.pending or self._stamp_due:
            self.commit()
        return accepted

    @property
    def held(self) -> int:
        """Pushes waiting for their source to name its meter (in the journal, not yet given to the sinks)."""
        return self.identity.held

    def tick(self, now: float) -> None:
        """Once a second: pushes held too long for their meter go on under the fallback name."""
        release = self.identity.expire(now)
        if release is not None:
            self._release(release)
            self.commit()

    def release(self) -> None:
        """han stops: every held push goes on now (under the fallback when its meter is still unknown)."""
        release = self.identity.release()
        if release is not None:
            self._release(release)
            self.commit()

    def _release(self, release: Release) -> None:
        """Stamp the held pushes: those still in memory here, those in the journal with the next append."""
        stamp = release.stamp
        in_memory = 0
        for i, r in enumerate(self.pending):
            if r.held:
                self.pending[i] = replace(r, meter=stamp.meter, meter_id=stamp.meter_id, held=False)
                in_memory += 1
        # the journal's held rows all arrived before anything still in memory, so a release that
        # is still due (the journal failing) already covers them: the first one stays
        if in_memory < release.count and self._stamp_due is None:
            self._stamp_due = stamp
        self._note_meter(stamp.meter, release.count, self.clock())

    def commit(self) -> bool:
        """Append the pending pushes to the journal; True when nothing is left pending."""
        due = self._stamp_due
        if not self.pending and due is None:
            return True
        batch = list(self.pending)
        try:
            seqs = self.journal.append(batch, (due.meter, due.meter_id) if due else None)
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
        self._stamp_due = None
        self.outcomes.counts["accepted"] += len(batch)
        if due is not None and self.on_release is not None:
            self.on_release()
        if self.on_append is not None and seqs:
            self.on_append(seqs[-1])
        return True

    def _failed(self, err: DecodeError, now: float) -> None:
        consequence = err.consequence  # of a damaged frame counted already
        if not consequence:
            self.outcomes.counts[err.reason] += 1
        text = advise(err).one_line()
        offset = err.offset
        if offset is not None and "offset" not in text:
            text += f" (frame at stream offset {offset})"
        self.burst.failure(err.reason, text, now, consequence=consequence)

    def _note(self, push: Push, meter: str | None, kid: str | None, now: float) -> None:
        o = self.outcomes
        o.last_push = now
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
