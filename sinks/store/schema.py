"""The SQL of the store's derived tables: meters, hours, minutes, and the days/months views.

Written in the same transaction as the raw push that caused it (see
:mod:`sinks.sqlite`), so the hour accounting is exactly-once like the raw rows.
Times are Unix seconds (UTC) in INTEGER columns: compact and exact; a local time
is ``start_utc + utc_offset``.  ``docs/sinks.md`` documents every column.

::

    meters   one row per meter (the sink's ``meter`` identity)
      meter      TEXT PRIMARY KEY   system title (hex), else meter number, else the configured name
      timezone   TEXT               IANA zone its hours are local to (from the push / profile; else UTC)
      meter_id   TEXT               the meter number last seen (a change is a meter swap)
      state      TEXT               JSON: the accounting state (last reading time and registers)

    hours    one row per meter and local hour that any reading touched
      meter       TEXT, start_utc INTEGER    PRIMARY KEY; start_utc = the local hour's start, Unix seconds
      utc_offset  INTEGER   seconds east of UTC at the hour's start (+3600 CET, +7200 CEST)
      seconds     INTEGER   the hour's length (3600)
      import_wh, export_wh                    REAL  active energy in the hour (Wh)
      reactive_import_varh, reactive_export_varh  REAL  reactive energy, NULL when not sent
      covered     REAL      seconds of the hour spanned by two consecutive readings
      bounds      INTEGER   bit 1: the start boundary's value is known, bit 2: the end boundary's
      events      INTEGER   bits: 1 reset, 2 rollover, 4 clock set back, 8 meter swap, 16 absurd jump
      p_import_max, p_import_sum, p_export_max, p_export_sum  REAL   power samples (W)
      p_count     INTEGER   number of power samples (mean = sum / count)
      import_t1_wh, import_t2_wh, export_t1_wh, export_t2_wh   REAL   active energy of tariffs 1 and 2 on
                            their own (the 1.8.1/1.8.2, 2.8.1/2.8.2 registers; NULL when the meter sends none,
                            and in hours accounted before schema version 4)

    minutes  one row per meter and UTC minute with a power sample (kept like the raw pushes)
      meter TEXT, minute INTEGER (Unix seconds / 60)   PRIMARY KEY
      p_import_sum, p_import_max, p_export_sum, p_export_max REAL,  n INTEGER

    days, months   views: hours grouped by local date / month (for SQL users; han report groups in Python)

Quality of an hour (see :func:`han.store.hours.quality`): ``measured`` when both
boundary bits are set and no event other than a rollover touched it;
``missing`` when no row exists (or nothing covered it); ``estimated`` otherwise.
"""

from __future__ import annotations

#: columns added to ``hours`` after its first version, with their types (see :func:`sinks.store.migrate.add_hour_columns`)
ADDED_HOUR_COLUMNS = (
    ("import_t1_wh", "REAL"), ("import_t2_wh", "REAL"), ("export_t1_wh", "REAL"), ("export_t2_wh", "REAL"),
)

DERIVED = """
CREATE TABLE IF NOT EXISTS meters (
    meter    TEXT PRIMARY KEY,
    timezone TEXT,
    meter_id TEXT,
    state    TEXT
);
CREATE TABLE IF NOT EXISTS hours (
    meter                 TEXT    NOT NULL,
    start_utc             INTEGER NOT NULL,
    utc_offset            INTEGER NOT NULL,
    seconds               INTEGER NOT NULL DEFAULT 3600,
    import_wh             REAL,
    export_wh             REAL,
    reactive_import_varh  REAL,
    reactive_export_varh  REAL,
    covered               REAL    NOT NULL DEFAULT 0,
    bounds                INTEGER NOT NULL DEFAULT 0,
    events                INTEGER NOT NULL DEFAULT 0,
    p_import_max          REAL,
    p_import_sum          REAL,
    p_export_max          REAL,
    p_export_sum          REAL,
    p_count               INTEGER NOT NULL DEFAULT 0,
    import_t1_wh          REAL,
    import_t2_wh          REAL,
    export_t1_wh          REAL,
    export_t2_wh          REAL,
    PRIMARY KEY (meter, start_utc)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minutes (
    meter        TEXT    NOT NULL,
    minute       INTEGER NOT NULL,
    p_import_sum REAL,
    p_import_max REAL,
    p_export_sum REAL,
    p_export_max REAL,
    n            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (meter, minute)
) WITHOUT ROWID;
DROP VIEW IF EXISTS days;
CREATE VIEW days AS
    SELECT meter, date(start_utc + utc_offset, 'unixepoch') AS day, min(start_utc) AS start_utc,
           count(*) AS hours, sum(bounds = 3 AND (events & ~2) = 0) AS measured_hours,
           sum(import_wh) AS import_wh, sum(export_wh) AS export_wh,
           sum(reactive_import_varh) AS reactive_import_varh, sum(reactive_export_varh) AS reactive_export_varh,
           max(p_import_max) AS p_import_max, max(p_export_max) AS p_export_max,
           sum(import_t1_wh) AS import_t1_wh, sum(import_t2_wh) AS import_t2_wh,
           sum(export_t1_wh) AS export_t1_wh, sum(export_t2_wh) AS export_t2_wh
    FROM hours GROUP BY meter, day;
DROP VIEW IF EXISTS months;
CREATE VIEW months AS
    SELECT meter, strftime('%Y-%m', start_utc + utc_offset, 'unixepoch') AS month, min(start_utc) AS start_utc,
           count(*) AS hours, sum(bounds = 3 AND (events & ~2) = 0) AS measured_hours,
           sum(import_wh) AS import_wh, sum(export_wh) AS export_wh,
           sum(reactive_import_varh) AS reactive_import_varh, sum(reactive_export_varh) AS reactive_export_varh,
           max(p_import_max) AS p_import_max, max(p_export_max) AS p_export_max,
           sum(import_t1_wh) AS import_t1_wh, sum(import_t2_wh) AS import_t2_wh,
           sum(export_t1_wh) AS export_t1_wh, sum(export_t2_wh) AS export_t2_wh
    FROM hours GROUP BY meter, month;
"""

#: hours.events bits
RESET, ROLLOVER, CLOCK_BACK, SWAP, ABSURD = 1, 2, 4, 8, 16
EVENT_NAMES = {RESET: "reset", ROLLOVER: "rollover", CLOCK_BACK: "clock_set_back", SWAP: "meter_swap", ABSURD: "absurd_jump"}
#: events that make an hour estimated (a rollover is exact: the register's modulus is known)
INEXACT = RESET | CLOCK_BACK | SWAP | ABSURD
