"""Stores with hand-chosen hours and minutes for the tariff and cost tests."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

from sinks.store.schema import DERIVED


def new_store(path: str = ":memory:", tz: str = "Europe/Oslo", meter: str = "m1") -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(DERIVED)
    db.execute("INSERT INTO meters (meter, timezone, meter_id) VALUES (?, ?, 'A')", (meter, tz))
    return db


def local_ts(text: str, tz: str) -> int:
    """Unix seconds of a local wall time written 2025-01-03T17:00."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp())


def add_hour(db: sqlite3.Connection, start: str, import_kwh: float, tz: str = "Europe/Oslo", meter: str = "m1",
             export_kwh: float = 0.0) -> None:
    """A measured local hour starting at ``start`` (local wall time)."""
    t = local_ts(start, tz)
    off = int(datetime.fromtimestamp(t, ZoneInfo(tz)).utcoffset().total_seconds())
    db.execute(
        "INSERT INTO hours (meter, start_utc, utc_offset, import_wh, export_wh, covered, bounds)"
        " VALUES (?, ?, ?, ?, ?, 3600, 3)", (meter, t, off, import_kwh * 1000, export_kwh * 1000))


def add_minutes(db: sqlite3.Connection, start: str, watts: list[float], tz: str, meter: str = "m1") -> None:
    """One minute row per value from local ``start`` on, each the mean of 6 samples of that power."""
    m0 = local_ts(start, tz) // 60
    for i, w in enumerate(watts):
        db.execute("INSERT INTO minutes (meter, minute, p_import_sum, p_import_max, n) VALUES (?, ?, ?, ?, 6)",
                   (meter, m0 + i, w * 6, w))
