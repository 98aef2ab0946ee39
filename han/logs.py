"""Log lines for the journal or a terminal: one line each, on standard error.

Under systemd (``JOURNAL_STREAM`` is set) a line is ``<4>port: message``: the
``<N>`` prefix gives journald the priority, and journald adds the time and
unit.  On a terminal a line is ``2026-11-21 12:00:00 warning port: message``.
No line ever holds a key: nothing that formats a key is logged.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import IO

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class LineFormatter(logging.Formatter):
    def __init__(self, journal: bool) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        component = record.name.removeprefix("han.") if record.name != "han" else "han"
        text = record.getMessage().replace("\n", " ")
        if record.exc_info and os.environ.get("HAN_DEBUG"):
            text += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        if self.journal:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{component}: {text}"
        when = self.formatTime(record, "%Y-%m-%d %H:%M:%S")
        return f"{when} {record.levelname.lower()} {component}: {text}"


def setup(level: int = logging.INFO, stream: IO[str] | None = None) -> logging.Handler:
    """Route the ``han`` loggers to ``stream`` (stderr); returns the handler (to remove it again)."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LineFormatter(journal=bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger("han")
    handler._han_saved = (root.level, root.propagate)  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler


def teardown(handler: logging.Handler) -> None:
    root = logging.getLogger("han")
    root.removeHandler(handler)
    level, propagate = getattr(handler, "_han_saved", (logging.NOTSET, True))
    root.setLevel(level)
    root.propagate = propagate
