"""Frames from meters han has no keys for, kept (bounded) until their keys are added.

A head-end meets a new meter before its keys arrive.  Its frames are
refused (``no_key``), counted, and kept here as they came (the ciphered APDU:
no key, no plain reading), so ``han state replay-unknown`` can decode them
once the key file names the meter::

    <state-dir>/unknown/000001.jsonl   {"received": 1767225600.0, "stream": "han/raw/flat12",
    <state-dir>/unknown/000002.jsonl    "system_title": "4B414D...", "apdu": "DB08..."}   one frame a line
    <state-dir>/unknown/dropped        how many frames the bound pushed out (oldest segment first)

The store is a ring of segment files of ``max_bytes / SEGMENTS`` each; when
the whole passes ``max_bytes`` the oldest segment goes and its frames are
counted as dropped (one log line each time).  The directory is private (0700).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger("han.unknown")

DIRECTORY = "unknown"
SEGMENTS = 8
DEFAULT_MAX_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    received: float
    stream: str | None
    system_title: str  #: hex, upper case
    apdu: bytes  #: the ciphered APDU as it came (after the link layer)


class UnknownStore:
    def __init__(self, state_dir: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.dir = os.path.join(state_dir, DIRECTORY)
        self.max_bytes = max_bytes
        self.segment_bytes = max(4096, max_bytes // SEGMENTS)
        self.kept = 0  #: frames kept this run
        self.failing: str | None = None

    # -- writing (the daemon) -------------------------------------------------------------------------
    def add(self, frame: UnknownFrame) -> None:
        line = json.dumps(
            {"received": frame.received, "stream": frame.stream, "system_title": frame.system_title,
             "apdu": frame.apdu.hex().upper()},  # fmt: skip
            separators=(",", ":"),
        ).encode() + b"\n"
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            segments = self.segments()
            path = segments[-1] if segments else self._name(1)
            if segments and os.path.getsize(path) + len(line) > self.segment_bytes:
                path = self._name(self._number(path) + 1)
                segments.append(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            self._bound(segments)
        except OSError as exc:
            if self.failing != exc.strerror:
                log.error("cannot keep a frame of an unknown meter in %s: %s", self.dir, exc.strerror)
                self.failing = exc.strerror
            return
        self.failing = None
        self.kept += 1

    def _bound(self, segments: list[str]) -> None:
        sizes = [os.path.getsize(p) for p in segments]
        while len(segments) > 1 and sum(sizes) > self.max_bytes:
            oldest = segments.pop(0)
            sizes.pop(0)
            with open(oldest, "rb") as fh:
                n = sum(1 for _ in fh)
            os.unlink(oldest)
            total = self.dropped() + n
            self._write_dropped(total)
            log.error(
                "unknown meters: the store of their frames reached %d bytes: %d oldest frame(s) dropped (%d in all);"
                " add their keys and run han state replay-unknown",
                self.max_bytes,
                n,
                total,
            )

    # -- reading (han state replay-unknown, status) --------------------------------------------------
    def segments(self) -> list[str]:
        try:
            names = sorted(n for n in os.listdir(self.dir) if n.endswith(".jsonl"))
        except FileNotFoundError:
            return []
        return [os.path.join(self.dir, n) for n in names]

    def frames(self, path: str) -> Iterator[UnknownFrame]:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                try:
                    d = json.loads(line)
                    yield UnknownFrame(float(d["received"]), d.get("stream"), str(d["system_title"]),
                                       bytes.fromhex(d["apdu"]))  # fmt: skip
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash while it was written

    def count(self) -> int:
        n = 0
        for path in self.segments():
            with open(path, "rb") as fh:
                n += sum(1 for _ in fh)
        return n

    def dropped(self) -> int:
        try:
            with open(os.path.join(self.dir, "dropped"), encoding="ascii") as fh:
                return int(fh.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_dropped(self, n: int) -> None:
        path = os.path.join(self.dir, "dropped")
        with open(path + ".tmp", "w", encoding="ascii") as fh:
            fh.write(f"{n}\n")
        os.replace(path + ".tmp", path)

    def replace_all(self, remaining: list[UnknownFrame]) -> None:
        """Keep only ``remaining`` (the frames whose keys are still missing): one new segment, then the old go."""
        old = self.segments()
        if remaining:
            path = self._name((self._number(old[-1]) if old else 0) + 1)
            with open(path + ".tmp", "w", encoding="ascii") as fh:
                for f in remaining:
                    fh.write(json.dumps({"received": f.received, "stream": f.stream, "system_title": f.system_title,
                                         "apdu": f.apdu.hex().upper()}, separators=(",", ":")) + "\n")  # fmt: skip
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(path + ".tmp", path)
        for p in old:
            os.unlink(p)

    def _name(self, number: int) -> str:
        return os.path.join(self.dir, f"{number:06d}.jsonl")

    @staticmethod
    def _number(path: str) -> int:
        return int(os.path.basename(path).split(".")[0])
