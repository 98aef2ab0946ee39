"""Retention: raw pushes and minute series older than ``keep_raw_days`` go, in the background.

"Older" is relative to the newest push in the store, not to the machine's clock,
so a store copied elsewhere is not emptied; and a push goes only when it is that
much older both by its meter time and by when han received it, so a meter clock
that jumps ahead (a year, by mistake) or a replayed old capture prunes nothing
that arrived recently.  The
hour accounting is written with each push (same transaction), so every push is
rolled up before it can be pruned; hours, days and months are kept for ever.

The :class:`Pruner` runs in its own thread with its own connection and deletes
in chunks of :data:`CHUNK` rows, one short transaction each, pausing between
them: the sink's writer waits at most one chunk's transaction (milliseconds)
for the lock, and its pushes wait in the journal meanwhile.  Freed pages are
reused by new pushes, so the file stops growing once the window is full.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone

KEEP_RAW_DAYS = 90.0
PRUNE_EVERY = 600.0  #: seconds between pruning runs
CHUNK = 2000  #: rows per delete transaction
PAUSE = 0.05  #: seconds between chunks


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _text(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def cutoff(db: sqlite3.Connection, keep_days: float) -> tuple[datetime, datetime] | None:
    """(meter time, receive time) before which raw pushes are pruned (None for an empty store)."""
    newest = db.execute("SELECT max(time_utc) FROM pushes").fetchone()
    last = db.execute("SELECT received_utc FROM pushes ORDER BY id DESC LIMIT 1").fetchone()
    if not newest or not newest[0] or not last:
        return None
    keep = timedelta(days=keep_days)
    return _parse(newest[0]) - keep, _parse(last[0]) - keep


def prune(db: sqlite3.Connection, keep_days: float, *, chunk: int = CHUNK, pause: float = 0.0,
          stop: threading.Event | None = None) -> tuple[int, int]:
    """Delete raw pushes and minute rows older than ``keep_days`` before the newest push.

    Returns (pushes deleted, minute rows deleted).  ``db`` must be in autocommit mode.
    """
    limits = cutoff(db, keep_days)
    if limits is None:
        return 0, 0
    limit, received = limits
    text, received_text = _text(limit), _text(received)
    minute = int(limit.timestamp() // 60)
    pushes = minutes = 0
    while stop is None or not stop.is_set():
        n = db.execute(
            "DELETE FROM pushes WHERE id IN (SELECT id FROM pushes WHERE time_utc < ? AND received_utc < ?"
            " ORDER BY time_utc LIMIT ?)",
            (text, received_text, chunk),
        ).rowcount
        pushes += n
        if n < chunk:
            break
        if pause and stop is not None and stop.wait(pause):
            break
    while stop is None or not stop.is_set():
        n = db.execute(
            "DELETE FROM minutes WHERE (meter, minute) IN (SELECT meter, minute FROM minutes WHERE minute < ? LIMIT ?)",
            (minute, chunk),
        ).rowcount
        minutes += n
        if n < chunk:
            break
        if pause and stop is not None and stop.wait(pause):
            break
    return pushes, minutes


class Pruner:
    """A thread that prunes the store at ``path`` every ``every`` seconds until :meth:`stop`."""

    def __init__(self, path: str, keep_days: float, *, every: float = PRUNE_EVERY, busy_timeout: float = 5.0) -> None:
        self.path, self.keep_days, self.every, self.busy_timeout = path, keep_days, every, busy_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="han store pruner", daemon=True)
        self.runs = 0
        self.pruned = 0
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self.busy_timeout + 5)

    def _run(self) -> None:
        import logging

        log = logging.getLogger("han.store")
        while not self._stop.is_set():
            try:
                db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
                try:
                    n, _ = prune(db, self.keep_days, pause=PAUSE, stop=self._stop)
                finally:
                    db.close()
                self.runs += 1
                self.pruned += n
                if n:
                    log.info("store: pruned %d raw pushes older than %g days", n, self.keep_days)
                self.error = None
            except sqlite3.Error as exc:  # busy, full disk ...: try again next time, logging goes on
                if self.error != str(exc):
                    log.warning("store: pruning %s failed: %s (retried in %g s)", self.path, exc, self.every)
                self.error = str(exc)
            self._stop.wait(self.every)
