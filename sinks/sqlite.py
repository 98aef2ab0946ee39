"""``sqlite:PATH``: the embedded default sink (stdlib sqlite3, WAL mode).

Schema (``han run`` creates it; readable with the ``sqlite3`` shell while the
daemon runs, WAL lets readers and the writer work at the same time)::

    pushes    one row per push
      id                 INTEGER PRIMARY KEY
      meter              TEXT     the meter: system title in hex (e.g. 4B414D4501A4DC52), else meter number, else the
                                  configured name; a list without either is filed under the meter of its port
      push_key           TEXT     what makes the push unique for its meter: ic:<invocation counter>:<digest> or
                                  time:<meter time>:<digest> (digest: of the plain APDU)
      time_utc           TEXT     meter time in UTC, ISO 8601 with Z (the receive time when the meter time cannot be placed)
      meter_time         TEXT     the meter's own time stamp: local time, with its UTC offset when known
      received_utc       TEXT     when han accepted the push
      meter_id           TEXT     the meter number register, when this push sent it
      list_id, profile   TEXT
      invocation_counter INTEGER
      security           TEXT     authenticated+encrypted | encrypted | authenticated | none
      verified           INTEGER  1 when a GCM tag was checked
      UNIQUE (meter, push_key)

    readings  one row per register reading
      push_id   INTEGER  -> pushes.id
      meter     TEXT
      time_utc  TEXT
      obis      TEXT     dotted, e.g. 1.1.1.7.0.255 (NULL for a value the list sends without a code)
      name      TEXT     e.g. Actual power P14
      key       TEXT     stable field name, e.g. active_power_import
      value              number (scaler applied) or text
      unit      TEXT     W, Wh, V, A, var, varh ... (NULL when none)
      position  INTEGER  index of the value in the push
      PRIMARY KEY (push_id, position)

    latest    view: the newest reading per meter and OBIS code, from all the meter's lists
    han_position  the journal position this database holds (exactly-once delivery)

Exactly once: the rows of a batch and the journal position go into one
transaction; pushes are also unique by (meter, push_key), so a push that
arrives again (a journal that was reset) is ignored, never duplicated.

sqlite3 blocks, and a connection belongs to the thread that opened it, so the
sink is a :class:`~sinks.threaded.ThreadedSink`: every call of one open ... close
runs in the sink's own thread.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from .base import Checkpoint, Entry, SinkError, iso_utc, push_key, time_utc
from .threaded import ThreadedSink

SCHEMA_VERSION = 2

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
    UNIQUE (meter, push_key)
);
CREATE INDEX IF NOT EXISTS pushes_time ON pushes (time_utc);
CREATE INDEX IF NOT EXISTS pushes_list ON pushes (meter, list_id, profile, id);
CREATE TABLE IF NOT EXISTS readings (
    push_id  INTEGER NOT NULL REFERENCES pushes (id),
    meter    TEXT NOT NULL,
    time_utc TEXT NOT NULL,
    obis     TEXT,
    name     TEXT,
    key      TEXT,
    value,
    unit     TEXT,
    position INTEGER NOT NULL,
    PRIMARY KEY (push_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS readings_obis_time ON readings (obis, time_utc);
CREATE TABLE IF NOT EXISTS han_position (
    sink    TEXT PRIMARY KEY,
    journal TEXT NOT NULL,
    seq     INTEGER NOT NULL
);
"""

#: the newest reading per meter and OBIS code: a meter that pushes several lists (Aidon, Kaifa: power
#: every 2 s, energy hourly) shows the registers of all of them.  Only the newest push of each of the
#: meter's lists is looked at (an index scan of pushes), then the newest of those per code; a value
#: sent without a code is told apart by its list and position.  (Version 1 showed the newest push only.)
LATEST = """
DROP VIEW IF EXISTS latest;
CREATE VIEW latest AS
    WITH newest AS (SELECT max(id) AS id FROM pushes GROUP BY meter, list_id, profile),
    ranked AS (
        SELECT r.meter, r.obis, r.name, r.value, r.unit, r.time_utc, r.push_id, r.position,
               row_number() OVER (
                   PARTITION BY r.meter, r.obis,
                       CASE WHEN r.obis IS NULL THEN coalesce(p.list_id, '') || '#' || r.position END
                   ORDER BY r.push_id DESC
               ) AS newest_first
        FROM newest JOIN pushes p ON p.id = newest.id JOIN readings r ON r.push_id = newest.id
    )
    SELECT meter, obis, name, value, unit, time_utc FROM ranked WHERE newest_first = 1
    ORDER BY meter, push_id, position;
"""


class SqliteSink(ThreadedSink):
    scheme = "sqlite"
    keeps_position = True

    def __init__(self, target: str, *, synchronous: str = "NORMAL", busy_timeout: float = 5.0) -> None:
        super().__init__(target)
        if not target:
            raise SinkError("sqlite sink: give a database file, e.g. sqlite:/var/lib/han/han.db")
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise SinkError("sqlite sink: synchronous must be OFF, NORMAL, FULL or EXTRA")
        self.synchronous = synchronous.upper()
        self.busy_timeout = float(busy_timeout)
        # a call may wait busy_timeout for another writer's lock before it writes
        self.call_timeout = max(ThreadedSink.call_timeout, 3 * self.busy_timeout)
        self.db: sqlite3.Connection | None = None

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
            db.executescript(SCHEMA)
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.executescript(LATEST)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            row = db.execute("SELECT journal, seq FROM han_position WHERE sink = 'han'").fetchone()
        except sqlite3.Error as exc:
            raise SinkError(f"sqlite sink: cannot open {path}: {exc}") from None
        self.db = db
        self._journal = resume.journal
        if row is not None and row[0] == resume.journal:
            # the database's own record is written with the data: it wins over the daemon's
            self._seq = int(row[1])
        else:
            # a new database, or a new journal: deliver from the daemon's checkpoint; a push
            # that is already here is recognised by (meter, push_key) and ignored
            self._seq = resume.seq
        return Checkpoint(self._journal, self._seq)

    def write_sync(self, entries: Sequence[Entry]) -> None:
        db = self.db
        if db is None:
            raise SinkError("sqlite sink: not open")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for e in entries:
                    if e.seq and e.seq <= self._seq:
                        continue  # already held (re-sent after a failure)
                    self._insert(db, e)
                if entries:
                    db.execute(
                        "INSERT INTO han_position (sink, journal, seq) VALUES ('han', ?, ?)"
                        " ON CONFLICT (sink) DO UPDATE SET journal = excluded.journal, seq = excluded.seq",
                        (self._journal, max(self._seq, entries[-1].seq)),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself after some errors (a full disk)
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise SinkError(f"sqlite sink: cannot write {self.target}: {exc}") from None
        self._advance(entries)

    def _insert(self, db: sqlite3.Connection, e: Entry) -> None:
        p = e.push
        s = p.security
        meter = e.meter
        when = iso_utc(time_utc(p, e.received))
        key = push_key(p) or f"seq:{self._journal}:{e.seq}"
        cur = db.execute(
            "INSERT OR IGNORE INTO pushes (meter, push_key, time_utc, meter_time, received_utc, meter_id, list_id,"
            " profile, invocation_counter, security, verified) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                meter,
                key,
                when,
                p.timestamp,
                iso_utc(e.received),
                p.meter_id,
                p.list_id,
                p.profile,
                s.invocation_counter if s else None,
                s.mode if s else "none",
                int(bool(s and s.verified)),
            ),
        )
        if cur.rowcount == 0:
            return  # this push is already stored
        push_id = cur.lastrowid
        db.executemany(
            "INSERT INTO readings (push_id, meter, time_utc, obis, name, key, value, unit, position)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    push_id,
                    meter,
                    when,
                    r.obis.dotted if r.obis else None,
                    r.name,
                    r.key,
                    _value(r.value),
                    r.unit,
                    r.position,
                )
                for r in p.registers
            ],
        )

    def flush_sync(self) -> Checkpoint:
        # every write() committed its transaction: nothing is buffered
        return Checkpoint(self._journal, self._seq)

    def close_sync(self) -> None:
        if self.db is not None:
            try:
                self.db.close()
            except sqlite3.Error:
                pass
            self.db = None


def _value(v: Any) -> Any:
    """SQLite stores ints, floats and text; anything else (a list) as its text."""
    if v is None or isinstance(v, (int, float, str)):
        return v
    return str(v)
