"""The one shape of every source: serial, socket (ser2net), replay and MQTT.

A source reads bytes from somewhere and hands them to *streams*.  A stream
is what one meter (or one bridge) sends: a serial port is one stream, an
MQTT source makes one stream per topic.  Each stream has its own framer
state and meter identity in the daemon (:class:`han.ingest.StreamFeed`)::

    source ──bytes──▶ feeds(stream name) ─▶ StreamFeed.feed / flush / end_message / failed
                                             (Ingest: decoder per stream → counters → journal)

A source is an object with::

    name, kind                   for logs and the status (never a password)
    state, since, reconnects,    connecting | connected | waiting | replaying | done | stopped
    last_error, connected        (an asyncio.Event set while connected)
    async run(stop)              read until ``stop`` is set (a replay ends by itself)

:func:`han.sources.make_source` builds one from a :class:`~han.sources.spec.SourceSpec`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from obis.push import Push


class StreamFeed(Protocol):
    """One stream's way into the daemon (han.ingest.StreamFeed)."""

    def feed(self, data: bytes, *, redelivered: bool = False) -> list[Push]: ...

    def flush(self) -> list[Push]: ...

    def end_message(self) -> list[Push]: ...

    def failed(self, reason: str, text: str) -> None: ...


#: stream name -> its feed (the daemon's Ingest.feed_for)
Feeds = Callable[[str | None], StreamFeed]


class Source(Protocol):
    name: str
    kind: str
    state: str
    since: float
    reconnects: int
    last_error: str | None
    connected: asyncio.Event

    async def run(self, stop: asyncio.Event) -> None: ...
