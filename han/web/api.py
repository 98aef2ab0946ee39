"""The JSON endpoints' reading of the SQLite store: one read-only connection in a thread of its own.

Queries never run on the event loop (the daemon's port reader shares it).  Each
``q_*`` function runs in that thread and returns JSON-ready data or raises
:class:`ApiError` (status and one line naming the parameter).  ``/api/energy``
is ``han report --format json`` (:func:`han.commands.report.report_rows`): one code
path; ``/api/capacity`` is the ``capacity`` object of its monthly rows
(:func:`han.tariffs.capacity.figure_for_month`).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from sinks.threaded import CallThread

#: the country -> its built-in capacity rule, when the config names no rule
COUNTRY_RULES = {"NO": "no", "SE": "se", "BE": "be"}
MAX_MINUTES = 1440


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# -- query parameters (checked on the event loop) ------------------------------------------------
def params(query: Iterable[tuple[str, str]], known: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in query:
        if name not in known:
            hint = f" (known: {', '.join(known)})" if known else " (this endpoint takes none)"
            raise ApiError(400, f"{name}: unknown parameter{hint}")
        if name in out:
            raise ApiError(400, f"{name}: given twice")
        out[name] = value
    return out


def p_date(p: dict[str, str], name: str) -> date | None:
    text = p.get(name)
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name}: {text[:40]!r} is not a date (YYYY-MM-DD, e.g. 2026-03-01)") from None


def p_choice(p: dict[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = p.get(name, default)
    if value not in choices:
        raise ApiError(400, f"{name}: {value[:40]!r} is not one of {', '.join(choices)}")
    return value


def p_int(p: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    text = p.get(name)
    if text is None:
        return default
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise ApiError(400, f"{name}: {text[:40]!r} is not a whole number from {lo} to {hi}")
    return int(text)


def p_month(p: dict[str, str], name: str) -> date | None:
    text = p.get(name)
    if text is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}", text) or not 1 <= int(text[5:]) <= 12:
        raise ApiError(400, f"{name}: {text[:40]!r} is not a month (YYYY-MM, e.g. 2026-03)")
    return date(int(text[:4]), int(text[5:]), 1)


def p_meter(p: dict[str, str], name: str = "meter") -> str | None:
    text = p.get(name)
    if text is None:
        return None
    if not text.strip() or len(text) > 64 or not text.isprintable():
        raise ApiError(400, f"{name}: give a meter as /api/latest names it (at most 64 printable characters)")
    return text


# -- the store --------------------------------------------------------------------------------------
class Store:
    """The SQLite store, read in a thread of its own (opened when it exists, read-only)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._ready = False
        self._thread = CallThread("live page store")

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._thread.call(self._run, fn, args)

    def _run(self, fn: Callable[..., Any], args: tuple) -> Any:
        if self._db is None and os.path.isfile(self.path):
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
        db = self._db
        if db is not None and not self._ready:
            # the sink makes its tables when it opens: until then the store is empty
            self._ready = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meters'").fetchone() is not None
            if not self._ready:
                db = None
        try:
            return fn(db, self.path, *args)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the sink has not made its tables yet
                return fn(None, self.path, *args)
            raise ApiError(503, f"the store {os.path.basename(self.path)} cannot be read now: {exc}") from None

    async def close(self) -> None:
        await self._thread.call(self._close)
        self._thread.stop()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _meter(db: sqlite3.Connection, wanted: str | None) -> str | None:
    """The store's name of ``wanted`` (a name or meter number; ApiError 404 when unknown), else the newest meter."""
    from ..store.hours import meters

    known = meters(db)
    if wanted is not None:
        for m in known:
            if wanted in (m.meter, m.meter_id):
                return m.meter
        raise ApiError(404, f"meter: no meter {wanted!r} in the store")
    newest = max(known, key=lambda m: m.last_utc or 0, default=None)
    return newest.meter if newest else None


def q_latest(db: sqlite3.Connection | None, path: str) -> list[tuple]:
    """The newest push of each list of each meter, as :meth:`Latest.add` takes them, oldest first."""
    if db is None:
        return []
    pushes = db.execute(
        "WITH newest AS (SELECT max(id) AS id FROM pushes GROUP BY meter, list_id, profile)"
        " SELECT p.id, p.meter, coalesce(p.meter_id, m.meter_id), p.time_utc, p.received_utc, p.list_id, p.layout, p.vals"
        " FROM newest JOIN pushes p ON p.id = newest.id LEFT JOIN meters m ON m.meter = p.meter ORDER BY p.id"
    ).fetchall()
    import json

    out = []
    layouts: dict[int, list[tuple]] = {}
    for push_id, meter, number, t, received, list_id, layout, vals in pushes:
        regs = layouts.get(layout)
        if regs is None:
            regs = layouts[layout] = db.execute(
                "SELECT obis, key, name, unit, position FROM layout_registers WHERE layout = ? ORDER BY idx", (layout,)
            ).fetchall()
        values = json.loads(vals or "[]")
        own = dict(db.execute("SELECT idx, time_utc FROM reading_times WHERE push_id = ?", (push_id,)).fetchall())
        out.append((meter, number, t, received, list_id,
                    [(o, k, n, v, u, pos, own.get(i)) for i, ((o, k, n, u, pos), v) in enumerate(zip(regs, values))]))
    return out


def q_energy(db: sqlite3.Connection | None, path: str, by: str, start: date | None, end: date | None,
             meter: str | None, tariffs: str | None) -> list[dict]:
    from ..cli import UsageError
    from ..commands.report import report_rows

    if db is None:
        if meter is not None:
            raise ApiError(404, f"meter: no meter {meter!r} in the store")
        return []
    if meter is not None:
        meter = _meter(db, meter)
    labels = {"from": "from", "to": "to", "meter": "meter", "by": "by", "capacity": "capacity",
              "tariffs": "the tariff file"}
    try:
        return report_rows(db, path, by=by, start=start, end=end, meter=meter, tariffs=tariffs, labels=labels)
    except UsageError as exc:
        raise ApiError(400, str(exc)) from None


def q_minutes(db: sqlite3.Connection | None, path: str, meter: str | None, n: int) -> list[dict]:
    """The last ``n`` minutes up to the meter's newest minute with power samples."""
    from ..store.hours import meter_zone

    if db is None:
        if meter is not None:
            raise ApiError(404, f"meter: no meter {meter!r} in the store")
        return []
    name = _meter(db, meter)
    if name is None:
        return []
    newest = db.execute("SELECT max(minute) FROM minutes WHERE meter = ? AND n > 0", (name,)).fetchone()[0]
    if newest is None:
        return []
    tz = meter_zone(db, name)
    out = []
    for minute, isum, imax, esum, emax, count in db.execute(
        "SELECT minute, p_import_sum, p_import_max, p_export_sum, p_export_max, n FROM minutes"
        " WHERE meter = ? AND minute > ? AND minute <= ? AND n > 0 ORDER BY minute", (name, newest - n, newest)
    ):
        out.append({
            "start": datetime.fromtimestamp(minute * 60, tz).isoformat(),
            "import_w_mean": None if isum is None else round(isum / count, 1),
            "export_w_mean": None if esum is None else round(esum / count, 1),
            "import_w_max": None if imax is None else round(imax, 1),
            "export_w_max": None if emax is None else round(emax, 1),
            "pushes": count,
        })
    return out


def _tariff_doc(path: str, tariffs: str | None) -> dict[str, Any] | None:
    from ..commands.report import tariff_options

    return tariff_options(tariffs, path, "the tariff file").get("tariffs")


def q_capacity(db: sqlite3.Connection | None, path: str, meter: str | None, month: date | None,
               rule_name: str | None, tariffs: str | None) -> dict[str, Any]:
    from ..store.hours import meter_zone, meters
    from sinks.store.localtime import local

    name = None
    if db is not None:
        name = _meter(db, meter)
    elif meter is not None:
        raise ApiError(404, f"meter: no meter {meter!r} in the store")
    if month is None:
        month = date.today().replace(day=1)
        if name is not None:
            info = next(m for m in meters(db) if m.meter == name)
            if info.last_utc is not None:
                month = local(info.last_utc, 0).astimezone(meter_zone(db, name)).date().replace(day=1)
    out: dict[str, Any] = {"meter": name, "month": month.strftime("%Y-%m"), "rule": rule_name, "capacity": None}
    if rule_name is None or name is None:
        return out
    from ..tariffs.capacity import figure_for_month
    from ..tariffs.rules import TariffError, load_rules

    try:
        rule = load_rules(_tariff_doc(path, tariffs), "the tariff file")[rule_name]
    except (TariffError, KeyError) as exc:
        raise ApiError(500, f"capacity rule {rule_name!r}: {exc}") from None
    out["capacity"] = figure_for_month(db, name, rule, month, meter_zone(db, name))
    return out


def capacity_rule(configured: str | None, country: str | None, db_path: str, tariffs: str | None = None) -> str | None:
    """The rule the page shows: ``[http] capacity``, else the tariff file's only rule, else the country's.

    ValueError (one line) for a configured rule that does not exist.
    """
    from ..cli import UsageError
    from ..tariffs.rules import TariffError, load_rules, rules_of

    try:
        doc = _tariff_doc(db_path, tariffs)
        rules = load_rules(doc, "tariffs.toml")
        own = rules_of(doc, "tariffs.toml") if doc else {}
    except (UsageError, TariffError) as exc:
        raise ValueError(str(exc)) from None
    if configured is not None:
        if configured not in rules:
            raise ValueError(f"{configured!r}: no such rule; known: {', '.join(sorted(rules))}"
                             " (or add [capacity.NAME] to tariffs.toml beside the store)")
        return configured
    if len(own) == 1:
        return next(iter(own))
    return COUNTRY_RULES.get((country or "").upper())
