"""``cost`` in ``han report`` rows: energy at the configured prices, plus fixed fees.

Per local hour: the hour's import (kWh) times the price of each price slot
covering it, the energy split evenly over the hour (a 15-minute price gets a
quarter of the hour's energy); ``[fees] per_kwh`` on every kWh imported;
``[fees] per_month`` spread over the month by time (a whole month carries it
all, a day its share of the month's hours).  A row gets ``cost`` only when every
hour with imported energy in it has a price (or when only fees are configured)::

    "cost": {"energy": 1.234, "fees": 0.567, "total": 1.801, "currency": "EUR"}
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import date, timedelta, tzinfo
from typing import Any

from ..store.extend import ExtensionError, ReportContext
from ..store.hours import Hour, hours
from .a44 import Price
from .prices import PriceConfig, PriceError, cached, fetch_a44, price_config, read_csv, store
from .rules import TariffError


def _fees(doc: dict[str, Any] | None, where: str) -> tuple[float, float, str | None] | None:
    t = (doc or {}).get("fees")
    if t is None:
        return None
    w = f"{where}: [fees]"
    if not isinstance(t, dict) or set(t) - {"per_kwh", "per_month", "currency"}:
        raise TariffError(f"{w}: keys per_kwh, per_month, currency")
    vals = []
    for k in ("per_kwh", "per_month"):
        v = t.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TariffError(f"{w}: {k} must be a number")
        vals.append(float(v))
    return vals[0], vals[1], t.get("currency")


def _month_seconds(h: Hour, tz: tzinfo) -> int:
    """Length of the local month holding the hour, in seconds."""
    from sinks.store.localtime import local_midnight

    d = h.start_local.date().replace(day=1)
    nxt = (d + timedelta(days=32)).replace(day=1)
    return local_midnight(nxt, tz) - local_midnight(d, tz)


def hour_price(h: Hour, slots: list[Price]) -> float | None:
    """The hour's energy cost per kWh (the time-weighted mean of the slots covering it), per kWh; None if not covered."""
    covered = 0
    acc = 0.0
    for p in slots:
        a, b = max(p.start_utc, h.start_utc), min(p.start_utc + p.seconds, h.end_utc)
        if b > a:
            covered += b - a
            acc += (b - a) * p.price / 1000  # per MWh -> per kWh
    span = h.end_utc - h.start_utc
    return acc / span if covered >= span else None


def _prices(db: sqlite3.Connection, cfg: PriceConfig, need: list[Hour], ctx: ReportContext) -> list[Price]:
    t0, t1 = need[0].start_utc, need[-1].end_utc
    if cfg.source == "csv":
        try:
            return read_csv(cfg.file or "", cfg.per_mwh, cfg.currency or "")
        except PriceError as exc:
            raise ExtensionError(str(exc)) from None
    area = cfg.area or ""
    have = cached(db, area, t0, t1)
    missing = [h for h in need if hour_price(h, have) is None]
    if not missing:
        return have
    try:
        got = fetch_a44(cfg, missing[0].start_utc, missing[-1].end_utc)
    except PriceError as exc:
        print(f"han report: {exc}; rows without prices have no cost", file=sys.stderr)
        return have
    path = (ctx.options or {}).get("db_path")
    try:
        cache = sqlite3.connect(path, timeout=5) if path else None
        if cache is not None:
            try:
                store(cache, area, got)
            finally:
                cache.close()
    except sqlite3.Error as exc:
        print(f"han report: prices not cached in the store ({exc})", file=sys.stderr)
    merged = {p.start_utc: p for p in have}
    merged.update({p.start_utc: p for p in got})
    return [merged[t] for t in sorted(merged)]


def add_cost(db: sqlite3.Connection, rows: list[dict], ctx: ReportContext) -> None:
    """The ``han report`` hook: ``cost`` on each row whose hours all have prices."""
    opts = ctx.options or {}
    doc, where = opts.get("tariffs"), opts.get("tariffs_file", "tariffs")
    try:
        cfg = price_config(doc, where)
        fees = _fees(doc, where)
    except TariffError as exc:
        raise ExtensionError(str(exc)) from None
    if cfg is None and fees is None:
        return
    hs = hours(db, ctx.meter, ctx.start, ctx.end)
    if not hs:
        return
    need = [h for h in hs if h.import_wh]
    slots = _prices(db, cfg, need, ctx) if cfg is not None and need else []
    per_kwh, per_month, fee_currency = fees if fees else (0.0, 0.0, None)
    currency = (cfg.currency if cfg else None) or fee_currency or (slots[0].currency if slots else None)
    month_s: dict[date, int] = {}
    by_row: list[list[Hour]] = [[] for _ in rows]
    j = 0
    for h in hs:
        while j < len(ctx.periods) and h.start_utc >= int(ctx.periods[j].end_local.timestamp()):
            j += 1
        if j < len(ctx.periods):
            by_row[j].append(h)
    for row, group in zip(rows, by_row):
        if not group:
            continue
        energy = fee = 0.0
        known = True
        for h in group:
            kwh = (h.import_wh or 0.0) / 1000
            if cfg is not None and kwh:
                p = hour_price(h, slots)
                if p is None:
                    known = False
                    break
                energy += kwh * p
            fee += kwh * per_kwh
            if per_month:
                key = h.start_local.date().replace(day=1)
                if key not in month_s:
                    month_s[key] = _month_seconds(h, ctx.timezone)
                fee += per_month * (h.end_utc - h.start_utc) / month_s[key]
        if not known:
            continue
        row["cost"] = {"energy": round(energy, 4), "fees": round(fee, 4), "total": round(energy + fee, 4),
                       "currency": currency}
