"""A bounded, append-only spool of messages on disk, for the edge bridge (``han bridge``).

Every frame the bridge reads is appended here first and taken out in order
once the broker acknowledged it, so the order is the serial port's and a
frame survives the bridge being killed (kill -9) while the broker is away.
Files in the spool directory::

    seg-0000000000000001.spool   records 1, 2, 3 ...   (named by its first record's number)
    seg-0000000000004711.spool   records 4711 ...      (the newest: appended to)
    cursor                       the last record the broker acknowledged
    lock                         held (flock) by the one bridge using the directory

A record::

    | length (4, big-endian) | CRC-32 of the payload (4) | payload (length bytes) |

The cursor file is 16 bytes, rewritten in place: ``record number (8) | CRC-32
of those 8 bytes (4) | "HANS"``.  A cursor that does not check out counts as
0 (everything still in the spool is sent again: duplicates, never a loss).

Durability.  A record is in the kernel's page cache as soon as ``append``
returns, so killing the process (kill -9, an out-of-memory kill) loses
nothing.  Only a power cut can lose what was not written to the medium: the
newest segment is fsync'ed when records wait in it unacknowledged, at most
once per ``sync_every`` seconds (0: after every record).  Records the broker
acknowledged before that are never synced, so a bridge whose broker is up
does not wear the SD card with syncs.  A torn record at the end of a segment
(the power went mid-write) is cut off when the spool is opened.  The cursor
is never fsync'ed: after a power cut the broker may get a few frames again
(the head-end removes duplicates by the push's identity).

Bound.  The spool holds at most ``max_bytes`` (segments of ``max_bytes / 8``);
when an append would pass it, the oldest segment is dropped whole, and its
records not yet acknowledged are counted in :attr:`Spool.dropped` (and logged).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import time
import zlib
from dataclasses import dataclass

log = logging.getLogger("han.bridge")

_HEADER = struct.Struct(">II")
_CURSOR = struct.Struct(">QI4s")
_MAGIC = b"HANS"
_SEGMENT = re.compile(r"^seg-(\d{16})\.spool$")
#: the default bound of a spool (bytes on disk)
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: the largest record accepted (a frame is at most a few KiB; unframed runs are cut at 4 KiB)
MAX_RECORD = 1 << 20


class SpoolError(Exception):
    """The spool directory cannot be used (one line)."""


@dataclass
class _Segment:
    first: int  #: number of its first record
    path: str
    size: int  #: bytes
    count: int  #: records


class Spool:
    """Append, peek, acknowledge: a FIFO of byte strings on disk, bounded by size (see the module docstring)."""

    def __init__(self, directory: str, *, max_bytes: int = DEFAULT_MAX_BYTES, sync_every: float = 5.0) -> None:
        if max_bytes < 64 * 1024:
            raise SpoolError("the spool needs at least 64 KiB (--spool-max)")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = max(16 * 1024, max_bytes // 8)
        self.sync_every = sync_every
        self.dropped = 0  #: records dropped unacknowledged because the spool was full
        self.appended = 0  #: records appended by this process
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self._lock = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"spool {directory}: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock)
            raise SpoolError(f"spool {directory} is in use by another han bridge") from None
        self._cursor_fd = os.open(os.path.join(directory, "cursor"), os.O_RDWR | os.O_CREAT, 0o600)
        self.acked = self._read_cursor()  #: the last record number the broker acknowledged
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # the newest segment, open for appending
        self._unsynced_since: float | None = None  # monotonic time of the oldest record not yet fsync'ed
        self._pos: tuple[int, int, int] | None = None  # (acked, segment's first record, byte offset) of acked + 1
        self._load()

    # -- state ------------------------------------------------------------------------------------
    @property
    def next(self) -> int:
        """The number the next appended record gets."""
        if not self._segments:
            return self.acked + 1
        last = self._segments[-1]
        return last.first + last.count

    @property
    def pending(self) -> int:
        """Records not yet acknowledged."""
        return self.next - 1 - self.acked

    @property
    def size(self) -> int:
        """Bytes on disk in segments."""
        return sum(s.size for s in self._segments)

    # -- writing ----------------------------------------------------------------------------------
    def append(self, payload: bytes) -> int:
        """Append one record; its number.  Raises OSError when the disk refuses (full, read-only)."""
        if len(payload) > MAX_RECORD:
            raise ValueError(f"a spool record is at most {MAX_RECORD} bytes")
        n = self.next
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        while self._segments and self.size + len(record) > self.max_bytes:
            self._drop_oldest()
        if self._fd is None or self._segments[-1].size + len(record) > self.segment_bytes:
            self._new_segment(n)
        seg = self._segments[-1]
        fd = self._fd
        assert fd is not None
        written = 0
        try:
            while written < len(record):
                written += os.write(fd, record[written:])
        except OSError:
            if written:  # a torn record: cut it off so the segment stays readable
                try:
                    os.ftruncate(fd, seg.size)
                    os.lseek(fd, seg.size, os.SEEK_SET)
                except OSError:
                    pass
            raise
        seg.size += len(record)
        seg.count += 1
        self.appended += 1
        if self._unsynced_since is None:
            self._unsynced_since = time.monotonic()
        if self.sync_every <= 0:
            self.sync()
        return n

    def sync(self) -> None:
        """fsync the newest segment (when records wait unacknowledged in it)."""
        if self._fd is not None and self._unsynced_since is not None and self.pending:
            os.fsync(self._fd)
        self._unsynced_since = None

    def maybe_sync(self) -> None:
        """Called now and then: fsync when unacknowledged records have waited ``sync_every`` seconds."""
        if self._unsynced_since is not None and time.monotonic() - self._unsynced_since >= self.sync_every:
            if self.pending:
                self.sync()
            else:
                self._unsynced_since = None

    # -- reading ----------------------------------------------------------------------------------
    def peek(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` records after the acknowledged one, oldest first, as (number, payload)."""
        out: list[tuple[int, bytes]] = []
        n = self.acked + 1
        pos = self._locate()
        if pos is None:
            return out
        i, offset = pos
        while len(out) < limit and i < len(self._segments):
            seg = self._segments[i]
            with open(seg.path, "rb") as fh:
                fh.seek(offset)
                while len(out) < limit and n < seg.first + seg.count:
                    length, _crc = _HEADER.unpack(fh.read(_HEADER.size))
                    out.append((n, fh.read(length)))
                    n += 1
            i, offset = i + 1, 0
        return out

    def ack(self, number: int) -> None:
        """Records up to ``number`` reached the broker: move the cursor, delete segments wholly behind it."""
        number = min(number, self.next - 1)
        if number <= self.acked:
            return
        pos = self._locate()
        assert pos is not None
        i, offset = pos
        n = self.acked + 1
        while n <= number:
            seg = self._segments[i]
            with open(seg.path, "rb") as fh:
                fh.seek(offset)
                while n <= number and n < seg.first + seg.count:
                    length, _crc = _HEADER.unpack(fh.read(_HEADER.size))
                    fh.seek(length, os.SEEK_CUR)
                    offset += _HEADER.size + length
                    n += 1
            if n <= number:
                i, offset = i + 1, 0
        self.acked = number
        self._pos = (number, self._segments[i].first, offset)
        self._write_cursor()
        # segments wholly acknowledged, except the newest (still appended to), are done with
        while len(self._segments) > 1 and self._segments[0].first + self._segments[0].count - 1 <= self.acked:
            self._remove(0)

    def close(self) -> None:
        for fd in (self._fd, self._cursor_fd, self._lock):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fd = None

    # -- internals --------------------------------------------------------------------------------
    def _locate(self) -> tuple[int, int] | None:
        """(segment index, byte offset) of record ``acked + 1``, or None when nothing is pending."""
        n = self.acked + 1
        if n >= self.next:
            return None
        if self._pos is not None and self._pos[0] == self.acked:
            for i, seg in enumerate(self._segments):
                if seg.first == self._pos[1]:
                    if self._pos[2] < seg.size:
                        return i, self._pos[2]
                    break
        for i, seg in enumerate(self._segments):  # walk to it (after opening, or a dropped segment)
            if seg.first <= n < seg.first + seg.count:
                offset = 0
                with open(seg.path, "rb") as fh:
                    for _ in range(n - seg.first):
                        length, _crc = _HEADER.unpack(fh.read(_HEADER.size))
                        fh.seek(length, os.SEEK_CUR)
                        offset += _HEADER.size + length
                self._pos = (self.acked, seg.first, offset)
                return i, offset
        return None

    def _read_cursor(self) -> int:
        raw = os.pread(self._cursor_fd, _CURSOR.size, 0)
        if len(raw) != _CURSOR.size:
            return 0
        number, crc, magic = _CURSOR.unpack(raw)
        if magic != _MAGIC or zlib.crc32(raw[:8]) != crc:
            log.warning(
                "spool %s: the cursor file does not check out; frames still spooled are sent again", self.directory
            )
            return 0
        return number

    def _write_cursor(self) -> None:
        head = struct.pack(">Q", self.acked)
        os.pwrite(self._cursor_fd, _CURSOR.pack(self.acked, zlib.crc32(head), _MAGIC), 0)

    def _load(self) -> None:
        """Read the segments on disk: cut a torn tail, count records, drop what was acknowledged."""
        names = sorted(
            (int(m[1]), name) for name in os.listdir(self.directory) if (m := _SEGMENT.match(name)) is not None
        )
        for first, name in names:
            path = os.path.join(self.directory, name)
            if self._segments and first != self._segments[-1].first + self._segments[-1].count:
                # a gap or overlap (a file deleted or copied by hand): renumber from here on is not possible,
                # so the older files are given up (counted as dropped)
                log.warning("spool %s: %s does not follow the file before it; the older files are dropped",
                            self.directory, name)
                for seg in self._segments:
                    self.dropped += seg.count
                    os.unlink(seg.path)
                self._segments.clear()
            count, good = _scan(path)
            size = os.path.getsize(path)
            if good < size:
                log.warning(
                    "spool %s: %s ends in a torn record (%d bytes, the power went mid-write?); cut off",
                    self.directory, name, size - good,
                )
                with open(path, "r+b") as fh:
                    fh.truncate(good)
            self._segments.append(_Segment(first, path, good, count))
        if self._segments:
            first = self._segments[0].first
            last = self._segments[-1].first + self._segments[-1].count - 1
            self.acked = min(max(self.acked, first - 1), last)
            while len(self._segments) > 1 and self._segments[0].first + self._segments[0].count - 1 <= self.acked:
                self._remove(0)
            self._fd = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND)

    def _new_segment(self, first: int) -> None:
        if self._fd is not None:
            if self.pending:
                os.fsync(self._fd)  # a full segment with records waiting: on the medium before the next one
            os.close(self._fd)
        path = os.path.join(self.directory, f"seg-{first:016d}.spool")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments.append(_Segment(first, path, 0, 0))
        _sync_dir(self.directory)

    def _drop_oldest(self) -> None:
        if len(self._segments) == 1:  # the only segment: start a new one so that the old one can go
            self._new_segment(self.next)
        seg = self._segments[0]
        lost = min(seg.count, max(0, seg.first + seg.count - 1 - self.acked))
        self._remove(0)
        if lost:
            self.dropped += lost
            self.acked = self._segments[0].first - 1
            self._write_cursor()
            log.warning(
                "spool %s: full (%d KiB); dropped the %d oldest frame(s) not yet sent (%d dropped so far)",
                self.directory, self.max_bytes // 1024, lost, self.dropped,
            )

    def _remove(self, i: int) -> None:
        seg = self._segments.pop(i)
        try:
            os.unlink(seg.path)
        except FileNotFoundError:
            pass


def _scan(path: str) -> tuple[int, int]:
    """(records, bytes) of the good records at the start of a segment file (the rest is a torn tail)."""
    count = good = 0
    with open(path, "rb") as fh:
        while True:
            head = fh.read(_HEADER.size)
            if len(head) < _HEADER.size:
                return count, good
            length, crc = _HEADER.unpack(head)
            if length > MAX_RECORD:
                return count, good
            payload = fh.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                return count, good
            count += 1
            good += _HEADER.size + length


def _sync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["DEFAULT_MAX_BYTES", "Spool", "SpoolError"]
