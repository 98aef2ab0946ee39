"""Read the hour accounting: hours, days and months of a meter, every local hour included.

The API other parts of han (``han report``, tariffs, cost) read hours through::

    import sqlite3
    from han.store.hours import hours, days, months, meters

    db = sqlite3.connect("han.db")
    for h in hours(db, "4B414D4501A4DC52", date(2025, 3, 1), date(2025, 4, 1)):
        print(h.start_local.isoformat(), h.import_wh, h.quality)

Energies are in Wh (varh) and powers in W whatever the meter sends (kWh and kW from a P1 meter
are converted by the register's unit).  ``import_t1_wh`` ... ``export_t2_wh`` hold tariffs 1 and
2 on their own when the meter sends per-tariff registers; ``import_wh``/``export_wh`` are the
totals (the total register, else the tariffs summed).

``start`` and ``end`` are local dates of the meter's zone (from inclusive, to
exclusive) or aware datetimes (hours *starting* in [start, end)).  Every local
hour of the span comes back, in order: an hour no reading touched is an
``Hour`` with quality ``missing`` and ``None`` energies.  A spring day has 23
hours, an autumn day 25.

Quality (see ``docs/sinks.md`` for the rules):
  ``measured``  both boundary values known (a reading within 60 s of the
                boundary, or the meter's hourly list), nothing inexact happened;
  ``estimated`` spanned by readings, but a boundary was interpolated across a
                gap, or only part of the hour is covered, or a reset, clock set
                back, meter swap or absurd jump touched it;
  ``missing``   no reading spans any of the hour.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sinks.store.localtime import UTC, hour_grid, local, local_midnight, offset, zone
from sinks.store.schema import EVENT_NAMES, INEXACT

MEASURED, ESTIMATED, MISSING = "measured", "estimated", "missing"

#: the accounting's tolerance: a boundary is "read" when a reading lies within this many seconds of it
BOUNDARY_TOLERANCE = 60


@dataclass(frozen=True, slots=True)
class Hour:
    """One local hour of one meter.  Energies in Wh / varh, powers in W; None when not known."""

    meter: str
    start_utc: int  #: Unix seconds
    end_utc: int
    start_local: datetime  #: aware, at the hour's UTC offset (isoformat: 2025-10-26T02:00:00+02:00)
    end_local: datetime
    import_wh: float | None
    export_wh: float | None
    reactive_import_varh: float | None
    reactive_export_varh: float | None
    import_w_max: float | None
    import_w_mean: float | None
    export_w_max: float | None
    export_w_mean: float | None
    quality: str  #: measured | estimated | missing
    covered_s: float  #: seconds of the hour spanned by consecutive readings
    events: tuple[str, ...] = ()  #: reset, rollover, clock_set_back, meter_swap, absurd_jump
    #: active energy of tariffs 1 and 2 on their own (P1: 1.8.1/1.8.2, 2.8.1/2.8.2); None when not sent
    import_t1_wh: float | None = None
    import_t2_wh: float | None = None
    export_t1_wh: float | None = None
    export_t2_wh: float | None = None


@dataclass(frozen=True, slots=True)
class Period:
    """A local day or month of one meter, summed from its hours."""

    meter: str
    start_local: datetime
    end_local: datetime
    import_wh: float | None
    export_wh: float | None
    reactive_import_varh: float | None
    reactive_export_varh: float | None
    import_w_max: float | None
    import_w_mean: float | None
    export_w_max: float | None
    export_w_mean: float | None
    quality: str  #: measured when every hour is, missing when every hour is, else estimated
    hours: int  #: hours in the period (23, 24, 25 for a day)
    measured_hours: int
    missing_hours: int
    events: tuple[str, ...] = ()
    import_t1_wh: float | None = None
    import_t2_wh: float | None = None
    export_t1_wh: float | None = None
    export_t2_wh: float | None = None


@dataclass(frozen=True, slots=True)
class MeterInfo:
    meter: str
    timezone: str | None
    meter_id: str | None
    first_utc: int | None  #: start of its first hour
    last_utc: int | None  #: start of its last hour


def quality(bounds: int, events: int, covered: float) -> str:
    """An hour row's quality (see the module docstring)."""
    if covered <= 0:
        return MISSING
    if bounds == 3 and not events & INEXACT:
        return MEASURED
    return ESTIMATED


def meters(db: sqlite3.Connection) -> list[MeterInfo]:
    """The meters the store holds hours for, by name."""
    rows = db.execute(
        "SELECT m.meter, m.timezone, m.meter_id,"
        " (SELECT min(start_utc) FROM hours h WHERE h.meter = m.meter),"
        " (SELECT max(start_utc) FROM hours h WHERE h.meter = m.meter)"
        " FROM meters m ORDER BY m.meter"
    ).fetchall()
    return [MeterInfo(*r) for r in rows]


def meter_zone(db: sqlite3.Connection, meter: str) -> tzinfo:
    row = db.execute("SELECT timezone FROM meters WHERE meter = ?", (meter,)).fetchone()
    return zone(row[0] if row else None)


def _bound(x: date | datetime, tz: tzinfo) -> int:
    if isinstance(x, datetime):
        if x.tzinfo is None:
            x = x.replace(tzinfo=tz)
        return int(x.timestamp())
    return local_midnight(x, tz)


_COLUMNS = (
    "start_utc, seconds, import_wh, export_wh, reactive_import_varh, reactive_export_varh, covered, bounds, events,"
    " p_import_max, p_import_sum, p_export_max, p_export_sum, p_count,"
    " import_t1_wh, import_t2_wh, export_t1_wh, export_t2_wh"
)


def _events(bits: int) -> tuple[str, ...]:
    return tuple(name for bit, name in EVENT_NAMES.items() if bits & bit)


def hours(db: sqlite3.Connection, meter: str, start: date | datetime, end: date | datetime) -> list[Hour]:
    """Every local hour of ``meter`` starting in [start, end) (see the module docstring)."""
    tz = meter_zone(db, meter)
    t0, t1 = _bound(start, tz), _bound(end, tz)
    rows = {
        r[0]: r
        for r in db.execute(
            f"SELECT {_COLUMNS} FROM hours WHERE meter = ? AND start_utc >= ? AND start_utc < ?", (meter, t0, t1)
        )
    }
    out: list[Hour] = []
    for s, e, off in hour_grid(t0, t1, tz):
        r = rows.get(s)
        if r is None:
            out.append(Hour(meter, s, e, local(s, off), local(e, _offset_after(e, tz)), None, None, None,
                            None, None, None, None, None, MISSING, 0.0))
            continue
        (_, _, imp, exp, rimp, rexp, covered, bounds, events, pimax, pisum, pemax, pesum, n, it1, it2, et1, et2) = r
        q = quality(bounds, events, covered)
        known = q != MISSING
        out.append(
            Hour(
                meter, s, e, local(s, off), local(e, _offset_after(e, tz)),
                imp if known else None, exp if known else None, rimp, rexp,
                pimax, pisum / n if n and pisum is not None else None,
                pemax, pesum / n if n and pesum is not None else None,
                q, covered, _events(events),
                it1 if known else None, it2 if known else None, et1 if known else None, et2 if known else None,
            )
        )
    return out


def _offset_after(t: int, tz: tzinfo) -> int:
    return offset(t, tz)


def _group(meter: str, hs: Iterable[Hour], key) -> list[Period]:
    groups: dict[object, list[Hour]] = {}
    for h in hs:
        groups.setdefault(key(h), []).append(h)
    return [_period(meter, g) for g in groups.values()]


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _period(meter: str, g: list[Hour]) -> Period:
    measured = sum(h.quality == MEASURED for h in g)
    missing = sum(h.quality == MISSING for h in g)
    q = MEASURED if measured == len(g) else MISSING if missing == len(g) else ESTIMATED
    imax = [h.import_w_max for h in g if h.import_w_max is not None]
    emax = [h.export_w_max for h in g if h.export_w_max is not None]
    imean = [h.import_w_mean for h in g if h.import_w_mean is not None]
    emean = [h.export_w_mean for h in g if h.export_w_mean is not None]
    events = tuple(dict.fromkeys(e for h in g for e in h.events))
    return Period(
        meter, g[0].start_local, g[-1].end_local,
        _sum([h.import_wh for h in g]), _sum([h.export_wh for h in g]),
        _sum([h.reactive_import_varh for h in g]), _sum([h.reactive_export_varh for h in g]),
        max(imax) if imax else None, sum(imean) / len(imean) if imean else None,
        max(emax) if emax else None, sum(emean) / len(emean) if emean else None,
        q, len(g), measured, missing, events,
        _sum([h.import_t1_wh for h in g]), _sum([h.import_t2_wh for h in g]),
        _sum([h.export_t1_wh for h in g]), _sum([h.export_t2_wh for h in g]),
    )


def _local_date(h: Hour) -> date:
    return h.start_local.date()


def days(db: sqlite3.Connection, meter: str, start: date, end: date) -> list[Period]:
    """Every local day in [start, end), rolled up from its hours."""
    return _group(meter, hours(db, meter, start, end), _local_date)


def months(db: sqlite3.Connection, meter: str, start: date, end: date) -> list[Period]:
    """Every local month touching [start, end) (cut to the span), rolled up from its hours."""
    return _group(meter, hours(db, meter, start, end), lambda h: (h.start_local.year, h.start_local.month))


__all__ = [
    "Hour", "Period", "MeterInfo", "hours", "days", "months", "meters", "meter_zone", "quality",
    "MEASURED", "ESTIMATED", "MISSING", "BOUNDARY_TOLERANCE", "UTC",
]
