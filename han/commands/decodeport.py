"""``han decode --port``: decode live from a serial port, each push printed as it arrives.

The same pipeline and output as for files; the port is opened as the daemon
opens it (:func:`han.sources.open_serial`).  Ctrl-C, ``--count N`` or
``--seconds S`` end it; a line idle for a second ends a frame in progress
(reported as cut short), as in the daemon.  The exit status is that of a
file: 0 when pushes decoded and no frame failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

#: seconds of silence after which a frame in progress is reported (the daemon's idle_flush)
IDLE = 1.0


class _Live:
    """Results to the writer and standard error, counted as for a file."""

    def __init__(self, label: str, writer, explain_error) -> None:
        from ..summary import Summary

        self.label = label
        self.writer = writer
        self.explain_error = explain_error
        self.summary = Summary()
        self.decoded = 0
        self.failed = 0
        self.noise: list = []
        self.broken = False  #: standard output was closed by its reader

    def take(self, items) -> None:
        from decoders.errors import NotAFrame
        from obis.push import Push

        for item in items:
            self.summary.add(item)
            if isinstance(item, Push):
                self.writer.write(item)
                self.decoded += 1
                continue
            if self.explain_error is not None:
                self.explain_error(item, self.label)
            if isinstance(item, NotAFrame):
                self.noise.append(item)  # the middle of a frame when the port opened, or noise: reported at the end
            else:
                print(f"han decode: {self.label}: offset {item.offset or 0}: {item.one_line()}", file=sys.stderr)
                self.failed += 1
        sys.stdout.flush()

    def finish(self) -> None:
        for item in self.noise:
            where = f"{self.label}: offset {item.offset or 0}"
            if self.decoded:
                print(f"han decode: {where}: note: {item.one_line()}", file=sys.stderr)
            else:
                print(f"han decode: {where}: {item.one_line()}", file=sys.stderr)
                self.failed += 1


async def _read(settings, make_decoder, live: _Live, count: int | None, seconds: float | None) -> str | None:
    """Read until stopped; the reason the port ended, if it did (None: stopped as asked)."""
    from ..sources import open_serial

    loop = asyncio.get_running_loop()
    decoder = make_decoder()
    stop = asyncio.Event()
    lost = loop.create_future()
    idle: list[asyncio.TimerHandle | None] = [None]

    def went_idle() -> None:
        idle[0] = None
        live.take(decoder.flush())

    class Reader(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            try:
                live.take(decoder.feed(data))
            except BrokenPipeError:  # the reader of our output went away (| head): end, as for files
                live.broken = True
                stop.set()
                return
            if idle[0] is not None:
                idle[0].cancel()
            idle[0] = loop.call_later(IDLE, went_idle)
            if count is not None and live.decoded >= count:
                stop.set()

        def connection_lost(self, exc: Exception | None) -> None:
            if not lost.done():
                lost.set_result(exc)

    transport, _ = await open_serial(settings, Reader)
    print(f"han decode: reading {settings.port} at {settings.describe()} (Ctrl-C ends)", file=sys.stderr)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({stopper, lost}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stopper.cancel()
        if idle[0] is not None:
            idle[0].cancel()
    ended = None
    if lost in done:
        exc = lost.result()
        ended = f"the port was lost ({exc})" if exc else "the port closed"
    transport.close()
    try:
        await asyncio.wait_for(asyncio.shield(lost), 2.0)
    except asyncio.TimeoutError:
        pass
    if live.broken:
        raise BrokenPipeError
    live.take(decoder.flush())
    return ended


def decode_port(args: argparse.Namespace, settings, make_decoder, writer) -> int:
    live = _Live(settings.port, writer, getattr(writer, "error", None))
    try:
        ended = asyncio.run(_read(settings, make_decoder, live, args.count, args.seconds))
    except ConnectionError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        from ..portlist import open_error

        print(f"han decode: {settings.port}: {open_error(str(exc))}", file=sys.stderr)
        return 1
    finally:
        writer.close()
        sys.stdout.flush()
    if ended:
        print(f"han decode: {settings.port}: {ended}", file=sys.stderr)
        live.failed += 1
    live.finish()
    if not live.decoded and not live.summary.frames and not live.noise:
        print(f"han decode: {settings.port}: no data (is the meter's port enabled? 'han probe' checks)", file=sys.stderr)
    if args.summary or (args.format == "table" and live.summary.frames > 1):
        for line in live.summary.render():
            print(line, file=sys.stderr)
    return 0 if live.failed == 0 and live.decoded > 0 else 1
