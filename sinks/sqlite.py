"""``sqlite:PATH``: the embedded default sink (stdlib sqlite3, WAL mode).

Schema (``han run`` creates it; readable with the ``sqlite3`` shell while the
daemon runs, WAL lets readers and the writer work at the same time).  Raw pushes
are stored compactly, one row per push with its values packed; the registers'
names and units are stored once per list layout::

    pushes    one row per push
      id                 INTEGER PRIMARY KEY
      meter              TEXT     the meter: system title in hex (e.g. 4B414D4501A4DC52), else meter number, else the
                                  configured name; a list without either is filed under the meter of its port
      push_key           TEXT     what makes the push unique for its meter: ic:<invocation counter>:<digest> or
                                  time:<meter time>:<digest> (digest: of the plain APDU)
      time_utc           TEXT     meter time in UTC, ISO 8601 with Z (the receive time when the meter time cannot be placed)
    reading_times      (push_id, idx) -> time_utc: a value's own time stamp (P1 gas readings), when it has one
      meter_time         TEXT     the meter's own time stamp: local time, with its UTC offset when known
      received_utc       TEXT     when han accepted the push
      meter_id           TEXT     the meter number register, when this push sent it
      list_id, profile   TEXT
      invocation_counter INTEGER
      security           TEXT     authenticated+encrypted | encrypted | authenticated | none
      verified           INTEGER  1 when a GCM tag was checked
      layout             INTEGER  -> layouts.id: the names and units of the values
      vals               TEXT     the values, a JSON array in register order (numbers scaled, text as strings)
      UNIQUE (meter, push_key)

    layouts            one row per distinct register layout of a list (id, fingerprint)
    layout_registers   (layout, idx) -> obis, name, key, unit, position: the meaning of vals[idx]

    readings  VIEW: one row per register reading, as before (push_id, meter, time_utc, obis, name, key,
              value, unit, position), unpacked from pushes.vals with json_each
    latest    VIEW: the newest reading per meter and OBIS code, from all the meter's lists
    han_position  the journal position this database holds (exactly-once delivery)

    meters, hours, minutes, days, months: the hour accounting (:mod:`sinks.store.schema`)

Exactly once: the rows of a batch, the hour accounting they cause and the
journal position go into one transaction; pushes are also unique by (meter,
push_key), so a push that arrives again (a journal that was reset) is ignored,
never duplicated or counted twice.

Retention: with ``keep_raw_days`` (default 90) a background thread with its own
connection deletes raw pushes (and minute rows) older than that, relative to the
newest push, in small transactions that never hold the write lock for long;
hours, days and months stay for ever.

sqlite3 blocks, and a connection belongs to the thread that opened it, so the
sink is a :class:`~sinks.threaded.ThreadedSink`: every call of one open ... close
runs in the sink's own thread.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from .store import retention
from .store.accounting import Meter, reading_of
from .store.schema import DERIVED
from .store.writer import load_meter, save

from .base import Checkpoint, Entry, SinkError, iso_utc, push_key, time_utc
from .threaded import ThreadedSink

SCHEMA_VERSION = 4  # 4: reading_times (values with their own time stamp), the hours' tariff columns

SCHEMA = """
CREATE TABLE IF NOT EXISTS pushes (
    id                 INTEGER PRIMARY KEY,
    meter              TEXT NOT NULL,
    push_key           TEXT NOT NULL,
    time_utc           TEXT NOT NULL,
    meter_time         TEXT,
    received_utc       TEXT NOT NULL,
    meter_id           TEXT,
    list_id            TEXT,
    profile            TEXT,
    invocation_counter INTEGER,
    security           TEXT,
    verified           INTEGER NOT NULL DEFAULT 0,
    layout             INTEGER,
    vals               TEXT,
    UNIQUE (meter, push_key)
);
CREATE INDEX IF NOT EXISTS pushes_time ON pushes (time_utc);
CREATE INDEX IF NOT EXISTS pushes_list ON pushes (meter, list_id, profile, id);
CREATE TABLE IF NOT EXISTS layouts (
    id          INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS layout_registers (
    layout   INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    obis     TEXT,
    name     TEXT,
    key      TEXT,
    unit     TEXT,
    position INTEGER NOT NULL,
    type     TEXT,
    scaler   INTEGER,
    PRIMARY KEY (layout, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reading_times (
    push_id  INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    time_utc TEXT NOT NULL,
    PRIMARY KEY (push_id, idx)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS reading_times_of_pruned AFTER DELETE ON pushes
    BEGIN DELETE FROM reading_times WHERE push_id = old.id; END;
CREATE TABLE IF NOT EXISTS han_position (
    sink    TEXT PRIMARY KEY,
    journal TEXT NOT NULL,
    seq     INTEGER NOT NULL
);
"""

#: readings, unpacked: one row per value of each push
READINGS = """
DROP VIEW IF EXISTS readings;
CREATE VIEW readings AS
    SELECT p.id AS push_id, p.meter AS meter, coalesce(t.time_utc, p.time_utc) AS time_utc, l.obis AS obis,
           l.name AS name, l.key AS key, j.value AS value, l.unit AS unit, l.position AS position
    FROM pushes p JOIN json_each(p.vals) j JOIN layout_registers l ON l.layout = p.layout AND l.idx = j.key
         LEFT JOIN reading_times t ON t.push_id = p.id AND t.idx = j.key;
"""

#: the newest reading per meter and OBIS code: a meter that pushes several lists (Aidon, Kaifa: power
#: every 2 s, energy hourly) shows the registers of all of them.  Only the newest push of each of the
#: meter's lists is looked at (an index scan of pushes), then the newest of those per code; a value
#: sent without a code is told apart by its list and position.  (Version 1 showed the newest push only.)
LATEST = """
DROP VIEW IF EXISTS latest;
CREATE VIEW latest AS
    WITH newest AS (SELECT max(id) AS id FROM pushes GROUP BY meter, list_id, profile),
    unpacked AS (
        SELECT p.id AS push_id, p.meter, coalesce(t.time_utc, p.time_utc) AS time_utc, p.list_id, l.obis, l.name,
               j.value, l.unit, l.position
        FROM newest JOIN pushes p ON p.id = newest.id JOIN json_each(p.vals) j
             JOIN layout_registers l ON l.layout = p.layout AND l.idx = j.key
             LEFT JOIN reading_times t ON t.push_id = p.id AND t.idx = j.key
    ),
    ranked AS (
        SELECT *, row_number() OVER (
                   PARTITION BY meter, obis,
                       CASE WHEN obis IS NULL THEN coalesce(list_id, '') || '#' || position END
                   ORDER BY push_id DESC
               ) AS newest_first
        FROM unpacked
    )
    SELECT meter, obis, name, value, unit, time_utc FROM ranked WHERE newest_first = 1
    ORDER BY meter, push_id, position;
"""


class SqliteSink(ThreadedSink):
    scheme = "sqlite"
    keeps_position = True

    def __init__(
        self,
        target: str,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        keep_raw_days: float | None = retention.KEEP_RAW_DAYS,
        prune_every: float = retention.PRUNE_EVERY,
    ) -> None:
        super().__init__(target)
        if not target:
            raise SinkError("sqlite sink: give a database file, e.g. sqlite:/var/lib/han/han.db")
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise SinkError("sqlite sink: synchronous must be OFF, NORMAL, FULL or EXTRA")
        if keep_raw_days is not None and not (isinstance(keep_raw_days, (int, float)) and keep_raw_days >= 0):
            raise SinkError("sqlite sink: keep_raw_days must be a number of days >= 0 (0 keeps raw pushes for ever)")
        self.synchronous = synchronous.upper()
        self.busy_timeout = float(busy_timeout)
        self.keep_raw_days = float(keep_raw_days) if keep_raw_days else None
        self.prune_every = float(prune_every)
        # a call may wait busy_timeout for another writer's lock before it writes
        self.call_timeout = max(ThreadedSink.call_timeout, 3 * self.busy_timeout)
        self.db: sqlite3.Connection | None = None
        self._meters: dict[str, tuple[Meter, str | None]] = {}
        self._layouts: dict[tuple, int] = {}
        self._pruner: retention.Pruner | None = None

    def open_sync(self, resume: Checkpoint) -> Checkpoint:
        path = self.target
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise SinkError(f"sqlite sink: directory {parent} does not exist")
        try:
            db = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a crash of han (kill -9); a power cut may
            # lose the last commits but never corrupts the database.
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            open_store(db)
            row = db.execute("SELECT journal, seq FROM han_position WHERE sink = 'han'").fetchone()
        except sqlite3.Error as exc:
            raise SinkError(f"sqlite sink: cannot open {path}: {exc}") from None
        self.db = db
        self._meters.clear()
        self._layouts.clear()
        self._journal = resume.journal
        if row is not None and row[0] == resume.journal:
            # the database's own record is written with the data: it wins over the daemon's
            self._seq = int(row[1])
        else:
            # a new database, or a new journal: deliver from the daemon's checkpoint; a push
            # that is already here is recognised by (meter, push_key) and ignored
            self._seq = resume.seq
        if self.keep_raw_days and self._pruner is None:
            self._pruner = retention.Pruner(path, self.keep_raw_days, every=self.prune_every,
                                            busy_timeout=self.busy_timeout)
            self._pruner.start()
        return Checkpoint(self._journal, self._seq)

    def write_sync(self, entries: Sequence[Entry]) -> None:
        db = self.db
        if db is None:
            raise SinkError("sqlite sink: not open")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                touched: set[str] = set()
                for e in entries:
                    if e.seq and e.seq <= self._seq:
                        continue  # already held (re-sent after a failure)
                    self._insert(db, e, touched)
                for meter in touched:
                    m, tz = self._meters[meter]
                    save(db, meter, tz, m)
                if entries:
                    db.execute(
                        "INSERT INTO han_position (sink, journal, seq) VALUES ('han', ?, ?)"
                        " ON CONFLICT (sink) DO UPDATE SET journal = excluded.journal, seq = excluded.seq",
                        (self._journal, max(self._seq, entries[-1].seq)),
                    )
                db.execute("COMMIT")
            except BaseException:
                # the accounting in memory ran ahead of what is stored: read it back next time
                self._meters.clear()
                self._layouts.clear()
                if db.in_transaction:  # SQLite rolls back by itself after some errors (a full disk)
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise SinkError(f"sqlite sink: cannot write {self.target}: {exc}") from None
        self._advance(entries)

    def _insert(self, db: sqlite3.Connection, e: Entry, touched: set[str]) -> None:
        p = e.push
        s = p.security
        meter = e.meter
        t = time_utc(p, e.received)
        key = push_key(p) or f"seq:{self._journal}:{e.seq}"
        regs = p.registers
        cur = db.execute(
            "INSERT OR IGNORE INTO pushes (meter, push_key, time_utc, meter_time, received_utc, meter_id, list_id,"
            " profile, invocation_counter, security, verified, layout, vals) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                meter,
                key,
                iso_utc(t),
                p.timestamp,
                iso_utc(e.received),
                p.meter_id,
                p.list_id,
                p.profile,
                s.invocation_counter if s else None,
                s.mode if s else "none",
                int(bool(s and s.verified)),
                self._layout(db, regs),
                pack(regs),
            ),
        )
        if cur.rowcount == 0:
            return  # this push is already stored (and accounted)
        own = [(cur.lastrowid, i, iso_utc(r.time_utc)) for i, r in enumerate(regs) if r.time_utc is not None]
        if own:  # values with their own time stamp (a P1 gas reading): the readings view shows that time
            db.executemany("INSERT OR REPLACE INTO reading_times (push_id, idx, time_utc) VALUES (?,?,?)", own)
        reading = reading_of(t.timestamp(), regs, e.meter_id or p.meter_id)
        if reading is None:
            return
        state = self._meters.get(meter)
        if state is None:
            state = self._meters[meter] = load_meter(db, meter, p.timezone)
        state[0].add(reading)
        touched.add(meter)

    def _layout(self, db: sqlite3.Connection, regs: Sequence[Any]) -> int:
        fields = tuple((r.obis.dotted if r.obis else None, r.name, r.key, r.unit, r.position, r.type, r.scaler)
                       for r in regs)
        lid = self._layouts.get(fields)
        if lid is None:
            lid = layout_id(db, fields)
            if len(self._layouts) > 256:
                self._layouts.clear()
            self._layouts[fields] = lid
        return lid

    def flush_sync(self) -> Checkpoint:
        # every write() committed its transaction: nothing is buffered
        return Checkpoint(self._journal, self._seq)

    def close_sync(self) -> None:
        if self._pruner is not None:
            self._pruner.stop()
            self._pruner = None
        if self.db is not None:
            try:
                self.db.close()
            except sqlite3.Error:
                pass
            self.db = None


def open_store(db: sqlite3.Connection) -> None:
    """Create or upgrade the schema (a version-2 database is converted, a version-3 one gets the hours'
    tariff columns: see :mod:`sinks.store.migrate`)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    old_readings = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'readings'").fetchone()
    db.executescript(SCHEMA)
    from .store.migrate import add_hour_columns

    add_hour_columns(db)  # before DERIVED: its views name the new columns
    db.executescript(DERIVED)
    if old_readings:
        from .store.migrate import migrate_v2

        migrate_v2(db)
    if version != SCHEMA_VERSION or old_readings:
        db.executescript(READINGS + LATEST)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def layout_id(db: sqlite3.Connection, fields: tuple) -> int:
    """The id of a register layout (its rows are written the first time it is seen)."""
    fingerprint = json.dumps(fields, separators=(",", ":"))
    row = db.execute("SELECT id FROM layouts WHERE fingerprint = ?", (fingerprint,)).fetchone()
    if row is not None:
        return int(row[0])
    lid = db.execute("INSERT INTO layouts (fingerprint) VALUES (?)", (fingerprint,)).lastrowid
    db.executemany(
        "INSERT INTO layout_registers (layout, idx, obis, name, key, unit, position, type, scaler)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        [(lid, i, *f) for i, f in enumerate(fields)],
    )
    return int(lid)


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def pack(regs: Sequence[Any]) -> str:
    """The values of a push as a JSON array (a scaled float rounded to its scaler's digits)."""
    out = []
    for r in regs:
        v = r.value
        tv = type(v)
        if tv is float:
            if v != v or v in (float("inf"), float("-inf")):
                v = str(v)
            elif r.scaler is not None and r.scaler < 0:
                v = round(v, -r.scaler)
        elif tv is list or tv is tuple or tv is dict:
            v = _structured(v)  # a P1 power-failure log, a Belgian peak history: kept as JSON, not as text
        elif not (v is None or tv is int or tv is str or tv is bool):
            v = str(v)
        out.append(v)
    return _dumps(out)


def _structured(v: Any) -> Any:
    """A list or mapping value as JSON types (times as ISO 8601 text, bytes as hex, anything else as text)."""
    if isinstance(v, dict):
        return {str(k): _structured(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_structured(x) for x in v]
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    iso = getattr(v, "isoformat", None)
    return iso() if iso is not None else str(v)
