"""Replay protection: the last accepted invocation counter per meter and key.

A meter increments its invocation counter (IC) for every frame it protects,
and the IV is system title ‖ IC, so a frame whose counter is not above the
last accepted one is a replay (or a duplicate) and is rejected and counted.

Which frames count (the choice, also in the README):

* authenticated frames (SC 0x10/0x30) whose GCM tag was verified: the counter
  is enforced and advanced only after the tag check, so a forged frame can
  never move it;
* encryption-only frames (SC 0x20) and frames decrypted unverified: there is
  no tag, but a counter cannot be changed without changing the keystream, so
  a frame with a forged counter decrypts to noise and fails to parse before
  it gets here.  The counter is enforced and advanced for these too: it stops
  replays of captured frames, but it is no integrity check (a bit-flipped
  copy of a frame nobody has seen yet would pass);
* plain frames have no counter: nothing to enforce (the SQLite sink still
  refuses the same meter time twice).

The counters live in ``<state-dir>/counters.json``, replaced atomically
(temp file + fsync + rename).  To spare SD cards the file is written at most
every ``save_every`` seconds and at exit; the journal is the record of
everything after that, and :meth:`CounterStore.reconcile` takes the highest
counters from it at start-up, so a kill -9 never lets a frame in twice.
"""

from __future__ import annotations

from decoders.errors import SecurityError

from .atomic import read_json, write_json


class ReplayedFrame(SecurityError):
    reason = "replayed"


class CounterStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self.counters: dict[tuple[bytes, str], int] = {}
        self.journal = ""  #: the journal the file was last saved against
        self.seq = 0  #: the journal position the file covers
        self.dirty = False

    # -- persistence ------------------------------------------------------
    def load(self) -> "CounterStore":
        try:
            data = read_json(self.path)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{self.path} is unreadable ({exc}); move it away to start with fresh counters") from None
        if data:
            self.journal = str(data.get("journal", ""))
            self.seq = int(data.get("seq", 0))
            for key, ic in (data.get("counters") or {}).items():
                st, _, kid = key.partition("/")
                self.counters[(bytes.fromhex(st), kid)] = int(ic)
        return self

    def reconcile(self, journal) -> int:
        """Take the highest counters from journal rows the file does not cover; returns how many were raised."""
        since = self.seq if self.journal == journal.id else 0
        raised = 0
        for key, ic in journal.counters_after(since).items():
            if ic > self.counters.get(key, -1):
                self.counters[key] = ic
                raised += 1
        if raised or self.journal != journal.id:
            self.dirty = True
        return raised

    def save(
        self, journal_id: str, seq: int, *, unjournaled: dict[tuple[bytes, str], int | None] | None = None
    ) -> None:
        """Write the file (when changed) as covering the journal up to ``seq``.

        ``unjournaled``: the counter each meter had before the pushes that wait in memory
        for the journal (a full disk; None: none before).  The file keeps those, so pushes
        lost with the memory (a kill, or han stopping while the disk is still full) are
        not refused as replays when the same frames come again (``han run --replay`` of
        the capture); none of them is in the journal, so none can be taken twice.
        """
        if not self.dirty and not unjournaled and self.journal == journal_id and self.seq == seq:
            return
        counters = dict(self.counters)
        for key, before in (unjournaled or {}).items():
            if before is None:
                counters.pop(key, None)
            else:
                counters[key] = before
        write_json(
            self.path,
            {
                "journal": journal_id,
                "seq": seq,
                "counters": {f"{st.hex().upper()}/{kid}": ic for (st, kid), ic in sorted(counters.items())},
            },
        )
        self.journal, self.seq, self.dirty = journal_id, seq, bool(unjournaled)

    # -- the check ---------------------------------------------------------
    def check(self, system_title: bytes, key_id: str, ic: int) -> int | None:
        """None when ``ic`` is acceptable, else the last accepted counter it is not above."""
        last = self.counters.get((system_title, key_id))
        return None if last is None or ic > last else last

    def accept(self, system_title: bytes, key_id: str, ic: int) -> None:
        self.counters[(system_title, key_id)] = ic
        self.dirty = True

    def reset(self, system_title: bytes | None = None) -> int:
        """Forget the counters of one meter (every key), or of all meters; returns how many."""
        gone = [k for k in self.counters if system_title is None or k[0] == system_title]
        for k in gone:
            del self.counters[k]
        self.dirty = True
        return len(gone)
