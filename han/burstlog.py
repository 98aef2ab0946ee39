"""Failed frames are logged once per burst, not once per frame.

A loose cable or wrong serial settings can produce a failed frame every
second for hours.  The first failure of a burst is logged in full; the ones
after it are only counted (by reason), and one summary line follows when the
burst ends: at the next good push, after ``quiet`` seconds without failures,
or every ``every`` seconds while the failures go on.  Sans-IO: the caller
passes the time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class BurstLog:
    def __init__(self, log: Callable[[str], None], *, quiet: float = 60.0, every: float = 600.0) -> None:
        self.log = log
        self.quiet = quiet
        self.every = every
        self._start: float | None = None  # time of the burst's first failure
        self._last = 0.0
        self._suppressed: Counter[str] = Counter()

    @property
    def in_burst(self) -> bool:
        return self._start is not None

    def failure(self, reason: str, message: str, now: float, *, consequence: bool = False) -> None:
        """``consequence``: the result of the failure before it (a push lost to a damaged segment).

        It is logged when the failure it follows was (the two lines tell one
        story), and never counted as another failed frame.
        """
        if consequence:
            if self._start is not None and not self._suppressed:
                self.log(message)
            return
        if self._start is None:
            self._start = self._last = now
            self.log(message)
            return
        self._suppressed[reason] += 1
        self._last = now
        if now - self._start >= self.every:
            self._summary(now, going_on=True)
            self._start = now

    def success(self, now: float) -> None:
        if self._start is not None:
            self._summary(now)
            self._start = None

    def tick(self, now: float) -> None:
        if self._start is not None and now - self._last >= self.quiet:
            self._summary(now)
            self._start = None

    def _summary(self, now: float, going_on: bool = False) -> None:
        n = sum(self._suppressed.values())
        if n:
            kinds = ", ".join(f"{reason} {count}" for reason, count in self._suppressed.most_common())
            tail = " and still failing" if going_on else ""
            self.log(f"{n} more frame(s) failed in the last {now - self._start:.0f} s ({kinds}){tail}")
        self._suppressed.clear()
