"""Which meter a push belongs to: one identity per source (a port, a replayed capture).

Norwegian Aidon and Kaifa meters push a short list (active power only, no
meter number) every 2-2.5 s and longer lists with the meter number every 10 s
and every hour.  All of them come from one meter, so all of them are filed
under one meter, in every sink.  The daemon stamps each push with its meter
before the push is appended to the journal; the journal keeps the stamp and
every sink reads it (``sinks.base.Entry.meter``), so no sink guesses.

The rule, for each push in the order it arrived::

    1. its own system title (a ciphered push; or the configured --system-title)
    2. else its own meter number register
    3. else the identity of the last push from the same source that had 1 or 2
    4. else (no push of this source has named its meter yet) the push is held
       until the source's first identified push, and then takes its identity.
       At most HOLD_PUSHES pushes or HOLD_SECONDS are held; past that, and
       when han stops, they (and any later push without an identity, until
       one comes) take the configured name ([serial] meter, --meter), else
       ``unknown``.

``meter_id`` (the meter number) is the push's own number register, else the
number last seen on the source for that meter (a Kamstrup's system title and
its meter number name one meter).

A held push is not kept in memory: it is journaled at once, marked held, and
the sinks read the journal only up to the first held row, so the order stays
the order of arrival and a kill -9 loses nothing (the next start resumes the
hold from the journal).  This module is sans-IO: it counts the held pushes and
says which stamp each push, and each release of the held ones, gets.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the most pushes held while a source has not named its meter yet (Aidon: ~4 short lists per 10 s list)
HOLD_PUSHES = 64
#: the longest a push is held for that (seconds); the meters send their number every 10 s
HOLD_SECONDS = 60.0
#: the meter of a push whose source never named one, when no name was configured
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Stamp:
    meter: str  #: system title (hex), else meter number, else the configured name or ``unknown``
    meter_id: str | None  #: the meter number, when known


@dataclass(frozen=True, slots=True)
class Release:
    """Every held push (all arrived before the push that caused the release) takes ``stamp``."""

    stamp: Stamp
    count: int


class SourceIdentity:
    """The meter of one source, and how many pushes wait for it."""

    def __init__(
        self, name: str | None = None, *, hold_pushes: int = HOLD_PUSHES, hold_seconds: float = HOLD_SECONDS
    ) -> None:
        self.name = name  #: the configured meter name (the last resort)
        self.hold_pushes = hold_pushes
        self.hold_seconds = hold_seconds
        self.current: str | None = None  #: the identity last seen on this source
        self.numbers: dict[str, str] = {}  #: identity -> its meter number, last seen
        self.held = 0
        self.held_since: float | None = None  #: when the oldest held push arrived
        self._gave_up = False  #: the hold ran out: pushes without an identity go out under the fallback

    def resume(self, held: int, since: float | None) -> None:
        """Pushes a previous run left held in the journal (it was killed): they wait on."""
        if held:
            self.held, self.held_since = held, since

    def stamp(self, own: str | None, number: str | None, now: float) -> tuple[Stamp | None, Release | None]:
        """A push arrived; ``own`` is its system title in hex or its meter number, ``number`` its meter number.

        Returns its stamp (None: the push is held) and the release of the pushes held
        before it, if this push ends their wait.
        """
        if own:
            if number:
                self.numbers[own] = number
            self.current = own
            self._gave_up = False
            stamp = Stamp(own, number or self.numbers.get(own))
            return stamp, self._release(stamp)
        if self.current is not None or self._gave_up:
            return self._fallback_stamp(), None
        release = self.expire(now)
        if release is None and self.held >= self.hold_pushes:
            release = self._give_up()
        if self._gave_up:
            return self._fallback_stamp(), release
        if self.held_since is None:
            self.held_since = now
        self.held += 1
        return None, release

    def expire(self, now: float) -> Release | None:
        """The release of the held pushes once the oldest has waited ``hold_seconds``."""
        if self.held and self.held_since is not None and now - self.held_since >= self.hold_seconds:
            return self._give_up()
        return None

    def release(self) -> Release | None:
        """The release of every held push under the fallback (han stops: nothing stays behind)."""
        return self._release(self._fallback_stamp())

    @property
    def fallback(self) -> str:
        return self.current or self.name or UNKNOWN

    def _give_up(self) -> Release | None:
        self._gave_up = True
        return self.release()

    def _release(self, stamp: Stamp) -> Release | None:
        if not self.held:
            return None
        out = Release(stamp, self.held)
        self.held, self.held_since = 0, None
        return out

    def _fallback_stamp(self) -> Stamp:
        meter = self.fallback
        return Stamp(meter, self.numbers.get(meter))
