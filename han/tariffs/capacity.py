"""Capacity tariff figures of a month: the value, the hours (or quarter) that make it, the headroom.

``top-hours`` (Norway, Sweden)::

    candidates  every hour in the rule's window with a known import (kWh in the hour = mean kW)
    distinct_days: only each local day's highest hour is a candidate
    value_kw    the mean of the `count` highest candidates (of those there are, early in a month)

``peak-quarter`` (Belgium): the month's highest 15-minute mean import power, from the
store's minute series (the mean of the minute means of each local quarter hour),
at least ``floor_kw``; ``billed_kw`` is the mean of the last ``mean_months``
monthly figures the store can compute.

Headroom (only for the month holding the meter's newest hour, the "current hour"):
how many more kWh in that hour (in that quarter, for ``peak-quarter``) before the
figure rises; 0 when the hour already makes the figure; None when the hour is
outside the rule's window.  With a step table, ``step_headroom_kwh`` is how many
more kWh in the hour would move the figure into the next step.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from ..store.extend import ExtensionError, ReportContext
from ..store.hours import Hour, hours
from .rules import Rule, TariffError, load_rules


@dataclass(frozen=True, slots=True)
class Peak:
    start: datetime  #: local, aware
    kwh: float  #: import in the hour (quarter)
    kw: float  #: mean power


@dataclass(frozen=True, slots=True)
class Figure:
    value_kw: float | None
    peaks: tuple[Peak, ...]
    headroom_kwh: float | None = None
    step_headroom_kwh: float | None = None


def _kth(values: list[float], k: int) -> float:
    """The k-th highest of values, 0 when there are fewer."""
    s = sorted(values, reverse=True)
    return s[k - 1] if len(s) >= k else 0.0


def top_hours(rule: Rule, month_hours: list[Hour], current: Hour | None = None) -> Figure:
    """The ``top-hours`` figure of a month's hours; headroom for ``current`` (an hour of them)."""
    cands = [h for h in month_hours if h.import_wh is not None and h.quality != "missing"
             and rule.in_window(h.start_local.isoweekday(), h.start_local.hour, h.start_local.month)]

    def day(h: Hour) -> date:
        return h.start_local.date()

    def best(hs: list[Hour]) -> list[Hour]:
        if rule.distinct_days:
            per_day: dict[date, Hour] = {}
            for h in hs:
                if day(h) not in per_day or h.import_wh > per_day[day(h)].import_wh:  # type: ignore[operator]
                    per_day[day(h)] = h
            hs = list(per_day.values())
        return sorted(hs, key=lambda h: (-h.import_wh, h.start_utc))[: rule.count]  # type: ignore[operator]

    top = best(cands)
    if not top:
        value = None
    else:
        value = sum(h.import_wh for h in top) / len(top) / 1000  # type: ignore[misc]
    peaks = tuple(Peak(h.start_local, h.import_wh / 1000, h.import_wh / 1000) for h in top)  # type: ignore[operator]
    if current is None:
        return Figure(value, peaks)
    cur_in = rule.in_window(current.start_local.isoweekday(), current.start_local.hour, current.start_local.month)
    if not cur_in:
        return Figure(value, peaks, None, None)
    x = (current.import_wh or 0.0) / 1000
    others = [h for h in cands if h.start_utc != current.start_utc]
    if rule.distinct_days:
        same_day = [h.import_wh / 1000 for h in others if day(h) == day(current)]  # type: ignore[operator]
        m_d = max(same_day, default=0.0)
        per_day: dict[date, float] = {}
        for h in others:
            if day(h) != day(current):
                per_day[day(h)] = max(per_day.get(day(h), 0.0), h.import_wh / 1000)  # type: ignore[operator]
        other_vals = list(per_day.values())
        threshold = max(m_d, _kth(other_vals, rule.count))
    else:
        other_vals = [h.import_wh / 1000 for h in others]  # type: ignore[operator]
        threshold = _kth(other_vals, rule.count)
    headroom = max(0.0, threshold - x)
    step_headroom = None
    step = rule.step(value) if value is not None and rule.steps else None
    if step is not None and step.to_kw is not None:
        # once the hour is in the top set: figure = (sum of the best count-1 others + v) / k
        rest = sorted(other_vals, reverse=True)[: rule.count - 1]
        k = len(rest) + 1
        need = step.to_kw * k - sum(rest)
        step_headroom = max(0.0, need - x, threshold - x)
    return Figure(value, peaks, round(headroom, 4), None if step_headroom is None else round(step_headroom, 4))


def quarters(db: sqlite3.Connection, meter: str, t0: int, t1: int) -> dict[int, float]:
    """Mean import power (W) of each quarter hour (Unix start) in [t0, t1) with minute samples."""
    out: dict[int, list[float]] = {}
    for minute, s, n in db.execute(
        "SELECT minute, p_import_sum, n FROM minutes WHERE meter = ? AND minute >= ? AND minute < ?"
        " AND n > 0 AND p_import_sum IS NOT NULL", (meter, t0 // 60, t1 // 60)
    ):
        q = minute * 60 - (minute * 60) % 900  # every zone's offset is a whole quarter hour
        out.setdefault(q, []).append(s / n)
    return {q: sum(v) / len(v) for q, v in out.items()}


#: the meter's own maximum demand register (P1 / DLMS 1-0:1.6.0): the month's highest quarter-hour mean
DEMAND_OBIS = "1.0.1.6.0.255"
_UNIT = {"kW": 1.0, "W": 0.001}


def register_peak(db: sqlite3.Connection, meter: str, t0: int, t1: int) -> tuple[int, float] | None:
    """(push time, kW) of the highest 1-0:1.6.0 value the meter sent in [t0, t1), or None.

    The register restarts each month; pushes in the month's first quarter hour may still show the
    month before's, so they are left out.
    """
    from sinks.base import iso_utc

    try:
        spots = db.execute("SELECT layout, idx, unit FROM layout_registers WHERE obis = ?", (DEMAND_OBIS,)).fetchall()
    except sqlite3.OperationalError:  # a store without raw pushes
        return None
    lo = iso_utc(datetime.fromtimestamp(t0 + 900, timezone.utc))
    hi = iso_utc(datetime.fromtimestamp(t1, timezone.utc))
    best: tuple[int, float] | None = None
    for layout, idx, unit in spots:
        scale = _UNIT.get(unit or "kW")
        if scale is None:
            continue
        for value, when in db.execute(
            "SELECT json_extract(vals, ?), time_utc FROM pushes WHERE meter = ? AND layout = ?"
            " AND time_utc >= ? AND time_utc < ? ORDER BY time_utc", (f"$[{idx}]", meter, layout, lo, hi)
        ):
            if isinstance(value, (int, float)) and (best is None or value * scale > best[1]):
                t = int(datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp())
                best = (t, value * scale)
    return best


def peak_quarter(rule: Rule, qs: dict[int, float], tz: tzinfo, current_q: int | None = None,
                 register: tuple[int, float] | None = None) -> Figure:
    """The ``peak-quarter`` figure from quarter means (W) or the meter's register; headroom for ``current_q``."""
    if not qs and register is None:
        return Figure(None, ())
    if not qs:
        qs = {0: 0.0}
    q, w = max(qs.items(), key=lambda kv: (kv[1], -kv[0]))
    kw = w / 1000
    if register is not None:  # the meter's own figure; the peak is the quarter that ended before it rose
        q, kw = register[0] - register[0] % 900 - 900, register[1]
    value = max(kw, rule.floor_kw)
    peak = Peak(datetime.fromtimestamp(q, tz), kw * 0.25, kw)
    headroom = None
    if current_q is not None:
        cur = qs.get(current_q, 0.0) / 1000
        headroom = round(max(0.0, value - cur) * 0.25, 4)
    return Figure(value, (peak,), headroom)


def _month_bounds(d: date) -> tuple[date, date]:
    start = d.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _midnight(d: date, tz: tzinfo) -> int:
    from sinks.store.localtime import local_midnight

    return local_midnight(d, tz)


def _newest(db: sqlite3.Connection, meter: str) -> int | None:
    row = db.execute("SELECT max(start_utc) FROM hours WHERE meter = ?", (meter,)).fetchone()
    return row[0] if row else None


def _newest_minute(db: sqlite3.Connection, meter: str) -> int | None:
    row = db.execute("SELECT max(minute) FROM minutes WHERE meter = ?", (meter,)).fetchone()
    return row[0] if row and row[0] is not None else None


def figure_for_month(db: sqlite3.Connection, meter: str, rule: Rule, month: date, tz: tzinfo) -> dict[str, Any]:
    """The ``capacity`` dict of a report row for the local month holding ``month``."""
    start, end = _month_bounds(month)
    t0, t1 = _midnight(start, tz), _midnight(end, tz)
    out: dict[str, Any] = {"rule": rule.name}
    if rule.method == "top-hours":
        hs = hours(db, meter, start, end)
        newest = _newest(db, meter)
        current = next((h for h in hs if h.start_utc == newest), None) if newest is not None else None
        f = top_hours(rule, hs, current)
    else:
        qs = quarters(db, meter, t0, t1)
        nm = _newest_minute(db, meter)
        cur_q = nm * 60 - (nm * 60) % 900 if nm is not None and t0 <= nm * 60 < t1 else None
        reg = register_peak(db, meter, t0, t1)
        f = peak_quarter(rule, qs, tz, cur_q, reg)
        out["from"] = "register 1-0:1.6.0" if reg is not None else "minute series"
    out["value_kw"] = None if f.value_kw is None else round(f.value_kw, 4)
    out["hours"] = [{"start": p.start.isoformat(), "import_kwh": round(p.kwh, 4)} for p in f.peaks]
    out["headroom_kwh"] = f.headroom_kwh
    if rule.method == "peak-quarter":
        out["hours"] = [{"start": p.start.isoformat(), "import_kwh": round(p.kwh, 4), "kw": round(p.kw, 4)}
                        for p in f.peaks]
        if rule.mean_months > 1:
            vals = [] if f.value_kw is None else [f.value_kw]
            m = start
            for _ in range(rule.mean_months - 1):
                m = (m - timedelta(days=1)).replace(day=1)
                ms, me = _month_bounds(m)
                a, b = _midnight(ms, tz), _midnight(me, tz)
                prev = peak_quarter(rule, quarters(db, meter, a, b), tz, None, register_peak(db, meter, a, b))
                if prev.value_kw is not None:
                    vals.append(prev.value_kw)
            out["billed_kw"] = round(sum(vals) / len(vals), 4) if vals else None
            out["billed_months"] = len(vals)
    if rule.steps and f.value_kw is not None:
        s = rule.step(f.value_kw)
        out["step"] = None if s is None else {"from_kw": s.from_kw, "to_kw": s.to_kw, "price": s.price,
                                                "currency": rule.currency}
        if f.headroom_kwh is not None:
            out["step_headroom_kwh"] = f.step_headroom_kwh
    return out


def rules_for(ctx: ReportContext) -> dict[str, Rule]:
    opts = ctx.options or {}
    try:
        return load_rules(opts.get("tariffs"), opts.get("tariffs_file", "tariffs"))
    except TariffError as exc:
        raise ExtensionError(str(exc)) from None


def add_capacity(db: sqlite3.Connection, rows: list[dict], ctx: ReportContext) -> None:
    """The ``han report`` hook: ``capacity`` on monthly rows when ``--capacity RULE`` is given."""
    if not ctx.capacity or ctx.by != "month":
        return
    rules = rules_for(ctx)
    rule = rules.get(ctx.capacity)
    if rule is None:
        raise ExtensionError(f"--capacity {ctx.capacity!r}: no such rule; known: {', '.join(sorted(rules))}"
                             " (or add [capacity.NAME] to your tariff file)")
    for row, period in zip(rows, ctx.periods):
        row["capacity"] = figure_for_month(db, ctx.meter, rule, period.start_local.date(), ctx.timezone)
