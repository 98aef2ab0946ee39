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
from dataclasses import dataclass, field

from decoders.errors import DecodeError
from obis.push import Push

from .burstlog import BurstLog
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
        clock: Callable[[], float] = time.time,
        on_append: Callable[[int], None] | None = None,
        burst: BurstLog | None = None,
    ) -> None:
        self.decoder = decoder
        self.keyring = keyring
        self.counters = counters
        self.journal = journal
        self.system_title = system_title
        self.clock = clock
        self.on_append = on_append
        self.burst = burst or BurstLog(lambda m: log.warning("%s", m))
        self.outcomes = Outcomes()
        self.pending: deque[Record] = deque(maxlen=MAX_PENDING)
        self._journal_failing = False
        self.lost = 0  #: pushes dropped from the in-memory pending list (disk full for too long)

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
                self.counters.accept(record_st, kid, s.invocation_counter)
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
                )
            )
            accepted.append(push)
            self._note(push, record_st, kid, now)
        if accepted:
            self.burst.success(now)
        if self.pending:
            self.commit()
        return accepted

    def commit(self) -> bool:
        """Append the pending pushes to the journal; True when nothing is left pending."""
        if not self.pending:
            return True
        batch = list(self.pending)
        try:
            seqs = self.journal.append(batch)
        except JournalError as exc:
            if not self._journal_failing:
                log.error("%s; keeping up to %d pushes in memory and retrying", exc, MAX_PENDING)
                self._journal_failing = True
            self.outcomes.counts["journal_error"] += 1
            return False
        if self._journal_failing:
            log.warning("journal writable again; %d held push(es) written", len(batch))
            self._journal_failing = False
        self.pending.clear()
        self.outcomes.counts["accepted"] += len(batch)
        if self.on_append is not None:
            self.on_append(seqs[-1])
        return True

    def _failed(self, err: DecodeError, now: float) -> None:
        consequence = bool(getattr(err, "consequence", False))  # of a damaged frame counted already
        if not consequence:
            self.outcomes.counts[err.reason] += 1
        text = err.one_line()
        offset = getattr(err, "offset", None)
        if offset is not None and "offset" not in text:
            text += f" (frame at stream offset {offset})"
        self.burst.failure(err.reason, text, now, consequence=consequence)

    def _note(self, push: Push, st: bytes | None, kid: str | None, now: float) -> None:
        o = self.outcomes
        meter = st.hex().upper() if st else (push.meter_id or "unknown")
        m = o.meters.get(meter)
        if m is None or m.key_id != (kid or "none"):
            m = o.meters[meter] = MeterStats(kid or "none")
        m.pushes += 1
        m.last_seen = now
        if push.security is not None:
            m.last_counter = push.security.invocation_counter
        o.last_push = now
        o.last_meter = meter
        o.last_meter_time = push.timestamp
