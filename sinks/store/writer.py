"""Write a :class:`~sinks.store.accounting.Meter`'s deltas into the hours, minutes and meters tables.

Called inside the SQLite sink's write transaction, so the hours move with the
raw pushes and the journal position (exactly once).
"""

from __future__ import annotations

import json
import sqlite3

from .accounting import Meter

_HOUR_UPSERT = """
INSERT INTO hours (meter, start_utc, utc_offset, import_wh, export_wh, reactive_import_varh, reactive_export_varh,
                   covered, bounds, events, p_import_max, p_import_sum, p_export_max, p_export_sum, p_count,
                   import_t1_wh, import_t2_wh, export_t1_wh, export_t2_wh)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (meter, start_utc) DO UPDATE SET
    import_wh = CASE WHEN excluded.import_wh IS NULL THEN import_wh ELSE coalesce(import_wh, 0) + excluded.import_wh END,
    export_wh = CASE WHEN excluded.export_wh IS NULL THEN export_wh ELSE coalesce(export_wh, 0) + excluded.export_wh END,
    reactive_import_varh = CASE WHEN excluded.reactive_import_varh IS NULL THEN reactive_import_varh
        ELSE coalesce(reactive_import_varh, 0) + excluded.reactive_import_varh END,
    reactive_export_varh = CASE WHEN excluded.reactive_export_varh IS NULL THEN reactive_export_varh
        ELSE coalesce(reactive_export_varh, 0) + excluded.reactive_export_varh END,
    covered = covered + excluded.covered,
    bounds = bounds | excluded.bounds,
    events = events | excluded.events,
    p_import_max = CASE WHEN p_import_max IS NULL OR excluded.p_import_max > p_import_max
        THEN coalesce(excluded.p_import_max, p_import_max) ELSE p_import_max END,
    p_import_sum = CASE WHEN excluded.p_import_sum IS NULL THEN p_import_sum
        ELSE coalesce(p_import_sum, 0) + excluded.p_import_sum END,
    p_export_max = CASE WHEN p_export_max IS NULL OR excluded.p_export_max > p_export_max
        THEN coalesce(excluded.p_export_max, p_export_max) ELSE p_export_max END,
    p_export_sum = CASE WHEN excluded.p_export_sum IS NULL THEN p_export_sum
        ELSE coalesce(p_export_sum, 0) + excluded.p_export_sum END,
    p_count = p_count + excluded.p_count,
    import_t1_wh = CASE WHEN excluded.import_t1_wh IS NULL THEN import_t1_wh ELSE coalesce(import_t1_wh, 0) + excluded.import_t1_wh END,
    import_t2_wh = CASE WHEN excluded.import_t2_wh IS NULL THEN import_t2_wh ELSE coalesce(import_t2_wh, 0) + excluded.import_t2_wh END,
    export_t1_wh = CASE WHEN excluded.export_t1_wh IS NULL THEN export_t1_wh ELSE coalesce(export_t1_wh, 0) + excluded.export_t1_wh END,
    export_t2_wh = CASE WHEN excluded.export_t2_wh IS NULL THEN export_t2_wh ELSE coalesce(export_t2_wh, 0) + excluded.export_t2_wh END
"""

_MINUTE_UPSERT = """
INSERT INTO minutes (meter, minute, p_import_sum, p_import_max, p_export_sum, p_export_max, n) VALUES (?,?,?,?,?,?,?)
ON CONFLICT (meter, minute) DO UPDATE SET
    p_import_sum = CASE WHEN excluded.p_import_sum IS NULL THEN p_import_sum
        ELSE coalesce(p_import_sum, 0) + excluded.p_import_sum END,
    p_import_max = CASE WHEN p_import_max IS NULL OR excluded.p_import_max > p_import_max
        THEN coalesce(excluded.p_import_max, p_import_max) ELSE p_import_max END,
    p_export_sum = CASE WHEN excluded.p_export_sum IS NULL THEN p_export_sum
        ELSE coalesce(p_export_sum, 0) + excluded.p_export_sum END,
    p_export_max = CASE WHEN p_export_max IS NULL OR excluded.p_export_max > p_export_max
        THEN coalesce(excluded.p_export_max, p_export_max) ELSE p_export_max END,
    n = n + excluded.n
"""


def load_meter(db: sqlite3.Connection, meter: str, tzname: str | None) -> tuple[Meter, str | None]:
    """The meter's accounting state from the store (a new one when the store has none)."""
    from .localtime import zone

    row = db.execute("SELECT timezone, state FROM meters WHERE meter = ?", (meter,)).fetchone()
    if row is None:
        return Meter(zone(tzname)), tzname
    tz = row[0] or tzname
    return Meter.from_state(zone(tz), json.loads(row[1]) if row[1] else None), tz


def save(db: sqlite3.Connection, meter: str, tzname: str | None, m: Meter) -> None:
    """Write the meter's deltas and its state (inside the caller's transaction)."""
    hours, minutes = m.take()
    if hours:
        db.executemany(
            _HOUR_UPSERT,
            [(meter, s, d[12], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11],
              d[13], d[14], d[15], d[16])
             for s, d in hours.items()],
        )
    if minutes:
        db.executemany(_MINUTE_UPSERT, [(meter, k, *v) for k, v in minutes.items()])
    db.execute(
        "INSERT INTO meters (meter, timezone, meter_id, state) VALUES (?,?,?,?)"
        " ON CONFLICT (meter) DO UPDATE SET timezone = coalesce(meters.timezone, excluded.timezone),"
        " meter_id = excluded.meter_id, state = excluded.state",
        (meter, tzname, m.meter_id, json.dumps(m.state(), separators=(",", ":"))),
    )
