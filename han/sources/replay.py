"""A capture file (hex text or binary) fed through the daemon's pipeline, then the run ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .serial import OnBreak, OnData, _sleep_or_stop


class ReplaySource:
    """Feeds a capture (hex text or binary) through the same pipeline, then ends.

    As fast as the sinks take it (the reader waits while a working sink is
    more than ``max_backlog`` pushes behind, so a replay never outruns the
    journal's limit), or with ``pace`` at the meter's own pace: each push
    waits as long after the previous one as its meter time says (at most an hour).
    """

    CHUNK = 1 << 16
    kind = "replay"

    def __init__(
        self,
        path: str,
        on_data: OnData,
        on_break: OnBreak,
        *,
        pace: bool = False,
        backlog: Callable[[], int] | None = None,
        max_backlog: int = 5000,
        wait: Callable[[asyncio.Event, float], Awaitable[None]] | None = None,
    ) -> None:
        self.path = path
        self.on_data = on_data
        self.on_break = on_break
        self.pace = pace
        self.backlog = backlog
        self.max_backlog = max_backlog
        self.wait = wait or _sleep_or_stop  #: how a paced replay waits (stop, seconds)
        self.state = "replaying"
        self.since = time.time()
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.last_error: str | None = None
        self.name = path
        self._last_meter_time = None

    def chunks(self):
        """The capture as byte chunks: hex text is parsed whole, binary is streamed."""
        from ..inputs import InputError, looks_like_hex_text, parse_hex

        if self.path == "-":
            import sys

            data = sys.stdin.buffer.read()
            yield parse_hex(data.decode("ascii")) if looks_like_hex_text(data) else data
            return
        try:
            fh = open(self.path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror}") from None
        with fh:
            head = fh.read(self.CHUNK)
            if _starts_like_hex(head) and (len(head) < self.CHUNK or _all_ascii(fh)):
                fh.seek(0)
                data = parse_hex(fh.read().decode("ascii"))
                for i in range(0, len(data), self.CHUNK):
                    yield data[i : i + self.CHUNK]
                return
            while head:
                yield head
                head = fh.read(self.CHUNK)

    async def run(self, stop: asyncio.Event) -> None:
        self.connected.set()
        for chunk in self.chunks():
            step = 512 if self.pace else len(chunk)  # pacing needs pushes one by one
            for i in range(0, len(chunk), step):
                if stop.is_set():
                    break
                pushes = self.on_data(chunk[i : i + step])
                if self.pace:
                    for push in pushes:
                        await self._pace(push, stop)
                await self._throttle(stop)
            if stop.is_set():
                break
        self.on_break()
        self.connected.clear()
        self.state, self.since = "done", time.time()

    async def _throttle(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(0)
        while self.backlog is not None and self.backlog() > self.max_backlog and not stop.is_set():
            await asyncio.sleep(0.05)

    async def _pace(self, push, stop: asyncio.Event) -> None:
        when = push.meter_time
        try:
            now = when.naive() if when is not None else None
        except ValueError:
            now = None
        if now is None:
            return
        if self._last_meter_time is not None:
            gap = (now - self._last_meter_time).total_seconds()
            if 0 < gap <= 3600:
                await self.wait(stop, gap)
        self._last_meter_time = now


def _starts_like_hex(head: bytes) -> bool:
    """Whether the first block of a file reads as hex text (the block may end inside a hex pair)."""
    from ..inputs import looks_like_hex_text

    if not head.isascii():
        return False
    cut = max(head.rfind(sep) for sep in (b" ", b"\n", b"\r", b"\t", b",", b":", b";", b"-"))
    return looks_like_hex_text(head[:cut] if cut > 0 else head[: len(head) // 2 * 2])


def _all_ascii(fh) -> bool:
    pos = fh.tell()
    try:
        while True:
            block = fh.read(1 << 20)
            if not block:
                return True
            if not block.isascii():
                return False
    finally:
        fh.seek(pos)


