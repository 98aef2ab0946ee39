"""Where the daemon's bytes come from: sources (one shape, :mod:`.base`) and their URLs (:mod:`.spec`).

``serial`` (a port or ``socket://`` for ser2net), ``replay`` (a capture file),
``mqtt`` (raw frames that edge bridges publish; :mod:`.payload` unpacks their formats).
"""

from __future__ import annotations

from .base import Feeds, Source, StreamFeed
from .replay import ReplaySource
from .serial import SerialSource, SettingRefused, is_device, is_pty, open_serial
from .spec import SourceSpec, parse_source

__all__ = [
    "Feeds",
    "ReplaySource",
    "SerialSource",
    "SettingRefused",
    "Source",
    "SourceSpec",
    "StreamFeed",
    "is_device",
    "is_pty",
    "open_serial",
    "parse_source",
]
