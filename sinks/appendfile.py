"""An append-only text file as a sink, exactly once (the base of ``jsonl:`` and ``csv:``).

The checkpoint's mark records the file's length after the last flush.  On
open, a longer file means a batch was written but its checkpoint was never
stored (han was killed in between): the tail is cut off and the batch is
written again, so every push is in the file exactly once.  A shorter file
was rotated or truncated by someone else: writing continues at its end.

``PATH`` ``-`` writes to standard output: a live view that keeps no position.
File writes and fsync block, so the sink runs in its own thread (:class:`ThreadedSink`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from .base import Checkpoint, Entry, SinkError
from .threaded import ThreadedSink


class AppendFileSink(ThreadedSink):
    #: text written at the top of a new, empty file (a CSV header)
    header = ""

    def __init__(self, target: str, *, fsync: bool = True) -> None:
        super().__init__(target)
        if not target:
            raise SinkError(
                f"{self.scheme} sink: give a file, e.g. {self.scheme}:/var/lib/han/pushes.{self.scheme}, or - for stdout"
            )
        self.fsync = bool(fsync)
        self.fh: IO[Any] | None = None  # binary for files, text for stdout
        self.stdout = target == "-"

    @property
    def live(self) -> bool:  # type: ignore[override]
        return self.stdout

    def open_sync(self, resume: Checkpoint) -> Checkpoint:
        self._journal, self._seq = resume.journal, resume.seq
        if self.stdout:
            self.fh = sys.stdout
            if self.header:
                sys.stdout.write(self.header)
            return resume
        path = self.target
        try:
            fh = open(path, "a+b")  # noqa: SIM115 - kept open
            size = fh.seek(0, os.SEEK_END)
            mark = resume.mark.get("offset")
            if isinstance(mark, int) and 0 <= mark < size and resume.journal:
                fh.truncate(mark)  # a batch written after the last checkpoint: it is written again
                size = fh.seek(0, os.SEEK_END)
            if size == 0 and self.header:
                fh.write(self.header.encode("utf-8"))
                fh.flush()
        except OSError as exc:
            raise SinkError(f"{self.scheme} sink: cannot open {path}: {exc.strerror}") from None
        self.fh = fh
        return Checkpoint(self._journal, self._seq, {"offset": fh.tell()})

    def write_sync(self, entries: Sequence[Entry]) -> None:
        if self.fh is None:
            raise SinkError(f"{self.scheme} sink: not open")
        text = "".join(self.format(e) for e in entries)
        try:
            self.fh.write(text if self.stdout else text.encode("utf-8"))
        except OSError as exc:
            raise SinkError(f"{self.scheme} sink: cannot write {self.target}: {exc.strerror}") from None
        self._advance(entries)

    def flush_sync(self) -> Checkpoint:
        fh = self.fh
        if fh is None:
            raise SinkError(f"{self.scheme} sink: not open")
        try:
            fh.flush()
            if self.stdout:
                return Checkpoint(self._journal, self._seq)
            if self.fsync:
                os.fsync(fh.fileno())
            offset = fh.tell()
        except OSError as exc:
            raise SinkError(f"{self.scheme} sink: cannot write {self.target}: {exc.strerror}") from None
        return Checkpoint(self._journal, self._seq, {"offset": offset})

    def close_sync(self) -> None:
        fh, self.fh = self.fh, None
        if fh is None or self.stdout:
            return
        try:
            fh.close()
        except OSError:
            pass

    def format(self, entry: Entry) -> str:
        raise NotImplementedError
