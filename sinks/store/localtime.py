"""Local hours in a meter's time zone, as Unix seconds: where an hour starts, how a day is cut.

An hour is local: it starts where the local wall clock (at that moment's UTC
offset) shows a whole hour.  So a spring day has 23 hours (02:00-03:00 does not
exist) and an autumn day 25 (02:00-03:00 comes twice, first at +02:00, then at
+01:00).  Everything here works on integer Unix seconds, the store's time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

UTC = timezone.utc


@lru_cache(maxsize=64)
def zone(name: str | None) -> tzinfo:
    """The zone named ``name`` (IANA), UTC when None or unknown."""
    if not name:
        return UTC
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 - unknown zone or no tz data: UTC, said in the docs
        return UTC


def offset(t: float, tz: tzinfo) -> int:
    """Seconds east of UTC at Unix time ``t`` in ``tz``."""
    off = datetime.fromtimestamp(t, tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def hour_start(t: float, tz: tzinfo) -> tuple[int, int]:
    """(start of the local hour holding ``t``, the UTC offset there), both in seconds."""
    off = offset(t, tz)
    it = int(t // 1)
    return it - (it + off) % 3600, off


def next_hour(start: int, tz: tzinfo) -> int:
    """The start of the local hour after the one starting at ``start``."""
    nxt, _ = hour_start(start + 3600, tz)
    if nxt <= start:  # an offset change inside the hour that is not a whole hour (Lord Howe): cut there
        nxt = start + 3600
    return nxt


def local_midnight(d: date, tz: tzinfo) -> int:
    """Unix seconds of the start of local date ``d`` (the first instant of that date)."""
    t = int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())
    # a zone whose clock skips midnight: the day starts at the first local instant of d
    while datetime.fromtimestamp(t, tz).date() < d:
        t += 900
    return t


def local(t: int, off: int) -> datetime:
    """Aware datetime of ``t`` at the fixed offset ``off`` (prints as local ISO 8601 with the offset)."""
    return datetime.fromtimestamp(t, timezone(timedelta(seconds=off)))


def hour_grid(start: int, end: int, tz: tzinfo) -> list[tuple[int, int, int]]:
    """Every local hour starting in [start, end): (start, end, utc offset) each."""
    out = []
    t, off = hour_start(start, tz)
    if t < start:
        t = next_hour(t, tz)
    while t < end:
        off = offset(t, tz)
        nxt = next_hour(t, tz)
        out.append((t, nxt, off))
        t = nxt
    return out
