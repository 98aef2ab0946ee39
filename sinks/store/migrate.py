"""Convert a version-2 store (one ``readings`` row per register) to the packed raw schema, add the
columns later versions gave the hours (version 4: tariffs 1 and 2), and rebuild the hour
accounting from raw pushes.

The conversion runs when ``han run`` first opens an old database, in chunks of
:data:`CHUNK` pushes, one transaction each, so it can be interrupted and
resumed.  Pushes arriving meanwhile wait in the journal (nothing is lost).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any, NamedTuple

from .accounting import Meter, reading_of
from .writer import save

CHUNK = 5000


class _Reg(NamedTuple):
    obis: str | None
    key: str | None
    value: Any
    unit: str | None
    type: str | None
    scaler: int | None


def add_hour_columns(db: sqlite3.Connection) -> bool:
    """Give an existing ``hours`` table the columns added since it was made; True when any was added.

    The hours accounted before keep NULL there: their raw pushes may be pruned already, so they
    are not recomputed (the totals they hold stay as they were).
    """
    from .schema import ADDED_HOUR_COLUMNS

    have = {r[1] for r in db.execute("PRAGMA table_info(hours)")}
    if not have:
        return False  # no hours table yet: DERIVED creates it whole
    added = False
    for name, kind in ADDED_HOUR_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE hours ADD COLUMN {name} {kind}")
            added = True
    return added


def migrate_v2(db: sqlite3.Connection) -> None:
    """Pack the old ``readings`` table into ``pushes.vals``, drop it, and account every push's hours."""
    from sinks.sqlite import layout_id  # the one place layouts are written

    cols = {r[1] for r in db.execute("PRAGMA table_info(pushes)")}
    if "layout" not in cols:
        db.execute("ALTER TABLE pushes ADD COLUMN layout INTEGER")
    if "vals" not in cols:
        db.execute("ALTER TABLE pushes ADD COLUMN vals TEXT")
    layouts: dict[tuple, int] = {}
    while True:
        db.execute("BEGIN IMMEDIATE")
        ids = [r[0] for r in db.execute("SELECT id FROM pushes WHERE vals IS NULL ORDER BY id LIMIT ?", (CHUNK,))]
        if not ids:
            db.execute("COMMIT")
            break
        rows: dict[int, list] = {i: [] for i in ids}
        for pid, obis, name, key, value, unit, position in db.execute(
            "SELECT push_id, obis, name, key, value, unit, position FROM readings"
            f" WHERE push_id BETWEEN ? AND ? ORDER BY push_id, position", (ids[0], ids[-1])
        ):
            if pid in rows:
                rows[pid].append((obis, name, key, unit, position, value))
        updates = []
        for pid, regs in rows.items():
            fields = tuple((o, n, k, u, p, None, None) for o, n, k, u, p, _ in regs)
            lid = layouts.get(fields)
            if lid is None:
                lid = layouts[fields] = layout_id(db, fields)
            updates.append((lid, json.dumps([r[5] for r in regs], separators=(",", ":")), pid))
        db.executemany("UPDATE pushes SET layout = ?, vals = ? WHERE id = ?", updates)
        db.execute("COMMIT")
    db.execute("DROP INDEX IF EXISTS readings_obis_time")
    db.execute("DROP TABLE IF EXISTS readings")
    rebuild_hours(db)


def raw_readings(db: sqlite3.Connection, meter: str) -> Iterator[tuple[float, str | None, list[_Reg]]]:
    """(Unix time, meter number, registers) of the meter's raw pushes, in arrival order."""
    from datetime import datetime

    layouts: dict[int, list[tuple]] = {}
    for lid, obis, key, unit, typ, scaler in db.execute(
        "SELECT layout, obis, key, unit, type, scaler FROM layout_registers ORDER BY layout, idx"
    ):
        layouts.setdefault(lid, []).append((obis, key, unit, typ, scaler))
    for time_utc, meter_id, lid, vals in db.execute(
        "SELECT time_utc, meter_id, layout, vals FROM pushes WHERE meter = ? ORDER BY id", (meter,)
    ):
        lay = layouts.get(lid) or []
        values = json.loads(vals) if vals else []
        t = datetime.fromisoformat(time_utc.replace("Z", "+00:00")).timestamp()
        yield t, meter_id, [_Reg(o, k, v, u, ty, sc) for (o, k, u, ty, sc), v in zip(lay, values)]


def rebuild_hours(db: sqlite3.Connection, tz_of: dict[str, str | None] | None = None) -> None:
    """Recompute hours, minutes and meters from the raw pushes (for a store whose raw pushes are complete)."""
    from .localtime import zone

    db.execute("BEGIN IMMEDIATE")
    try:
        known = dict(db.execute("SELECT meter, timezone FROM meters"))
        if tz_of:
            known.update(tz_of)
        # a converted version-2 store has no meters table rows: the zone of the meter's profile
        from obis.profiles import profile_by_name, timezone_name

        for meter, profile in db.execute("SELECT meter, max(profile) FROM pushes GROUP BY meter").fetchall():
            if not known.get(meter) and profile:
                known[meter] = timezone_name(None, profile_by_name(profile))
        db.execute("DELETE FROM hours")
        db.execute("DELETE FROM minutes")
        db.execute("DELETE FROM meters")
        for (meter,) in db.execute("SELECT DISTINCT meter FROM pushes").fetchall():
            tz = known.get(meter)
            m = Meter(zone(tz))
            n = 0
            for t, meter_id, regs in raw_readings(db, meter):
                r = reading_of(t, regs, meter_id)
                if r is not None:
                    m.add(r)
                    n += 1
                    if n % 50_000 == 0:
                        save(db, meter, tz, m)
            save(db, meter, tz, m)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
