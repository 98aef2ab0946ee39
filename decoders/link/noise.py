"""Counting the bytes a framer skips, so noise is reported once per run, not once per byte."""

from __future__ import annotations

from ..errors import NotAFrame


class NoiseRun:
    """A run of bytes that belong to no frame; reported as one :class:`NotAFrame`.

    ``what`` names the unit ("HDLC frame"), ``hint`` the likely causes.
    """

    __slots__ = ("what", "hint", "count", "start")

    def __init__(self, what: str, hint: str) -> None:
        self.what = what
        self.hint = hint
        self.count = 0
        self.start = 0

    def add(self, offset: int, n: int) -> None:
        if n <= 0:
            return
        if self.count == 0:
            self.start = offset
        self.count += n

    def report(self, out: list) -> None:
        """Append the pending run (if any) to ``out`` as a NotAFrame and start over."""
        if self.count:
            out.append(
                NotAFrame(
                    f"{self.count} byte(s) at offset {self.start} are not part of any {self.what} ({self.hint})",
                    offset=self.start,
                    length=self.count,
                )
            )
            self.count = 0
