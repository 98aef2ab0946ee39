"""The daemon's journal: every accepted push, in order, until every sink holds it.

``<state-dir>/journal.db`` (SQLite, WAL).  A push that passed its checks is
appended here *before* anything else happens to it; each gets a position
``seq`` (AUTOINCREMENT: never reused, even after old rows are deleted).  Every
sink has its own checkpoint into the journal and is fed from it by its own
worker, so a slow or dead sink only grows its backlog here; the reader and
the other sinks go on.  Rows every sink holds are deleted; when a sink stays
dead so long that the journal reaches ``max_rows``, the oldest rows go and the
lagging sink reports the pushes it missed.

The journal keeps the *plain* APDU and its security header, and the sink
workers rebuild the push from them (a few hundred microseconds), so a push is
the same whether it comes from memory or from disk after a restart.  Keys are
never stored.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    received           REAL NOT NULL,      -- unix time han accepted the push
    system_title       BLOB,
    key_id             TEXT,
    invocation_counter INTEGER,
    security_control   INTEGER,
    tag                INTEGER,
    verified           INTEGER NOT NULL,
    apdu               BLOB NOT NULL       -- the plain APDU (never a key)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: columns added after the first release (an older journal gets them on open; its rows keep NULL / 0)
UPGRADE = (
    ("meter", "TEXT"),  # the meter the push is filed under (han.identity); NULL: the push's own identity
    ("meter_id", "TEXT"),  # that meter's number, when known
    ("held", "INTEGER NOT NULL DEFAULT 0"),  # 1: waiting for its source to name the meter; sinks stop before it
    ("stream", "TEXT"),  # the stream it came from (an MQTT topic, a port of several); NULL: the one source
)
HELD_INDEX = """
CREATE INDEX IF NOT EXISTS journal_held ON journal (seq) WHERE held = 1;
"""


class JournalError(Exception):
    """The journal cannot be opened or written (disk full, a broken file)."""


@dataclass(frozen=True, slots=True)
class Record:
    received: float
    system_title: bytes | None
    key_id: str | None
    invocation_counter: int | None
    security_control: int | None
    tag: int | None
    verified: bool
    apdu: bytes
    seq: int = 0
    meter: str | None = None  #: the meter stamped on the push (None in rows of an older journal)
    meter_id: str | None = None
    held: bool = False  #: waiting for its source's identity (never handed to a sink)
    stream: str | None = None  #: the stream (topic, port) it came from, when han reads several


_COLUMNS = (
    "seq, received, system_title, key_id, invocation_counter, security_control, tag, verified, apdu,"
    " meter, meter_id, held, stream"
)


def _record(row: tuple) -> Record:
    seq, received, st, kid, ic, sc, tag, verified, apdu, meter, meter_id, held, stream = row
    return Record(received, st, kid, ic, sc, tag, bool(verified), apdu, seq, meter, meter_id, bool(held), stream)


def _upgrade(db: sqlite3.Connection) -> None:
    have = {row[1] for row in db.execute("PRAGMA table_info(journal)")}
    for column, kind in UPGRADE:
        if column not in have:
            db.execute(f"ALTER TABLE journal ADD COLUMN {column} {kind}")
    db.executescript(HELD_INDEX)


def _connect(path: str) -> sqlite3.Connection:
    # the journal holds decrypted readings: private to han (SQLite gives its -wal and -shm
    # files the database file's mode), whatever the umask
    if path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives a crash of the process (kill -9);
    # a power cut may lose the last commits, never the file.
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class Journal:
    """The writer side (the daemon's event loop); readers use :class:`JournalReader`."""

    def __init__(self, path: str, *, max_rows: int = 100_000, max_age: float = 0.0) -> None:
        self.path = path
        self.max_rows = max_rows
        self.max_age = max_age  #: seconds; rows older than this go even when a sink lacks them (0 = no limit)
        try:
            db = _connect(path)
            db.executescript(SCHEMA)
            _upgrade(db)
            row = db.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()
            if row is None:
                journal_id = uuid.uuid4().hex[:16]
                db.execute("INSERT INTO meta (key, value) VALUES ('id', ?)", (journal_id,))
            else:
                journal_id = row[0]
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
                raise JournalError(
                    f"journal {path}: cannot open it, the disk is full ({exc}): make room on the file"
                    f" system of the state directory {os.path.dirname(path) or '.'}, or choose another one"
                ) from None
            raise JournalError(f"journal {path}: {exc}") from None
        self.db = db
        self.id: str = journal_id
        self._lock = threading.Lock()

    def append(
        self,
        records: Sequence[Record],
        stamp_held: tuple[str, str | None] | None = None,
        *,
        stamps: Iterable[tuple[str | None, str, str | None]] = (),
    ) -> list[int]:
        """Append in one transaction; returns the positions.  Raises JournalError.

        ``stamp_held`` (meter, meter_id) first files every held row of the one source under
        that meter and hands it to the sinks (see :mod:`han.identity`); ``stamps`` do the same
        per stream: (stream, meter, meter_id).
        """
        stamps = list(stamps)
        if stamp_held is not None:
            stamps.append((None, *stamp_held))
        with self._lock:
            db = self.db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    for stream, meter, meter_id in stamps:
                        db.execute(
                            "UPDATE journal SET meter = ?, meter_id = ?, held = 0 WHERE held = 1 AND stream IS ?",
                            (meter, meter_id, stream),
                        )
                    seqs = [
                        db.execute(
                            "INSERT INTO journal (received, system_title, key_id, invocation_counter,"
                            " security_control, tag, verified, apdu, meter, meter_id, held, stream)"
                            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                            (
                                r.received,
                                r.system_title,
                                r.key_id,
                                r.invocation_counter,
                                r.security_control,
                                r.tag,
                                int(r.verified),
                                r.apdu,
                                r.meter,
                                r.meter_id,
                                int(r.held),
                                r.stream,
                            ),
                        ).lastrowid
                        for r in records
                    ]
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:  # SQLite rolls back by itself after some errors (a full disk)
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: cannot append: {exc}") from None
        return [int(s) for s in seqs]

    def ensure_after(self, seq: int) -> int:
        """Make the next position come after ``seq``, a position some sink already holds.

        A sink can hold a position the journal no longer has when the journal lost
        its last commits after the sink got them (a power cut under
        ``synchronous=NORMAL``).  Giving those positions again to other pushes would
        make the sinks that follow positions skip them, and the InfluxDB sink, whose
        point time is derived from them, overwrite points.  So they are never given
        again; the sinks that lacked them report them as dropped.  Returns how many
        positions were skipped (0 when the journal is ahead already).
        """
        with self._lock:
            last = self.last_seq
            if seq <= last:
                return 0
            try:
                if self.db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'journal'", (seq,)).rowcount == 0:
                    self.db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('journal', ?)", (seq,))
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: cannot move its positions past {seq}: {exc}") from None
            return seq - last

    @property
    def last_seq(self) -> int:
        """The last position ever given (0 for a new journal)."""
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
        return int(row[0]) if row else 0

    def held(self, stream: str | None = None) -> tuple[int, float | None]:
        """How many rows of a stream wait for their source's identity, and when the oldest arrived."""
        n, since = self.db.execute(
            "SELECT count(*), min(received) FROM journal WHERE held = 1 AND stream IS ?", (stream,)
        ).fetchone()
        return int(n), since

    def held_streams(self) -> dict[str | None, tuple[int, float | None]]:
        """:meth:`held` of every stream that has held rows, in one query (a head-end has thousands of streams)."""
        rows = self.db.execute(
            "SELECT stream, count(*), min(received) FROM journal WHERE held = 1 GROUP BY stream"
        ).fetchall()
        return {stream: (int(n), since) for stream, n, since in rows}

    def has_plain(self, stream: str | None, apdu: bytes) -> bool:
        """A plain push (no invocation counter) with these bytes from this stream is in the journal.

        Asked only for a message the broker delivers again (MQTT's DUP flag: a worker
        stopped before its acknowledgement), so the scan is rare.
        """
        row = self.db.execute(
            "SELECT 1 FROM journal WHERE stream IS ? AND invocation_counter IS NULL AND apdu = ? LIMIT 1",
            (stream, apdu),
        ).fetchone()
        return row is not None

    def rows(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM journal").fetchone()[0])

    def trim(self, upto: int) -> int:
        """Delete rows at or below ``upto`` (every sink holds them), and the oldest rows past ``max_rows``.

        Returns how many rows were deleted past the limit (pushes some sink never got).
        """
        with self._lock:
            try:
                self.db.execute("DELETE FROM journal WHERE seq <= ?", (upto,))
                dropped = 0
                if self.max_rows:
                    limit = self.last_seq - self.max_rows
                    if limit > upto:
                        dropped = self.db.execute("DELETE FROM journal WHERE seq <= ?", (limit,)).rowcount
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: cannot trim: {exc}") from None
        return dropped

    def trim_age(self, now: float) -> int:
        """Delete rows received more than ``max_age`` seconds before ``now``; returns how many went."""
        if not self.max_age:
            return 0
        with self._lock:
            try:
                return self.db.execute("DELETE FROM journal WHERE received < ?", (now - self.max_age,)).rowcount
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: cannot trim: {exc}") from None

    def counters_after(self, seq: int) -> dict[tuple[bytes, str], int]:
        """The highest invocation counter per (system title, key id) in rows after ``seq``."""
        rows = self.db.execute(
            "SELECT system_title, key_id, max(invocation_counter) FROM journal"
            " WHERE seq > ? AND invocation_counter IS NOT NULL GROUP BY system_title, key_id",
            (seq,),
        ).fetchall()
        return {(bytes(st or b""), kid or ""): int(ic) for st, kid, ic in rows}

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass


class _Durable:
    """How far a journal's WAL is known to be on disk (shared by every reader of one file in a process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = 0


_DURABLE: dict[str, _Durable] = {}
_DURABLE_LOCK = threading.Lock()


class JournalReader:
    """A read connection for one sink worker's thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db = _connect(path)
        with _DURABLE_LOCK:
            # per file (a journal made again at the same path starts its positions again)
            key = f"{os.path.abspath(path)}:{os.stat(path).st_ino if path != ':memory:' else 0}"
            self._durable = _DURABLE.setdefault(key, _Durable())

    def make_durable(self, seq: int) -> None:
        """Have the journal on disk up to position ``seq`` before a sink makes a push after it durable.

        The journal commits with ``synchronous=NORMAL``: a commit survives kill -9, not a
        power cut.  A sink that fsyncs (the file sinks, every checkpoint, SQLite at its own
        WAL checkpoints) could otherwise hold pushes, and positions, that a power cut took
        from the journal, which then gave those positions again (docs/soak.md).  One
        fdatasync of the WAL covers every reader: the next sink that reads the same rows
        finds them durable already.  Raises OSError.
        """
        d = self._durable
        with d.lock:
            if seq <= d.seq:
                return
            try:
                fd = os.open(self.path + "-wal", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                pass  # no WAL: every commit is in the database file, synced when it was checkpointed
            else:
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)  # the WAL file carries no POSIX locks (SQLite's are on the -shm file)
            d.seq = seq

    def read_after(self, seq: int, limit: int) -> list[Record]:
        """The rows after ``seq``, up to the first held one (a held push and all after it wait)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM journal WHERE seq > ?"
            " AND seq < coalesce((SELECT min(seq) FROM journal WHERE held = 1), 9223372036854775807)"
            " ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()
        return [_record(r) for r in rows]

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass


def read_all(path: str) -> Iterable[Record]:
    """Every row (tests and tools)."""
    db = _connect(path)
    try:
        for row in db.execute(f"SELECT {_COLUMNS} FROM journal ORDER BY seq").fetchall():
            yield _record(row)
    finally:
        db.close()
