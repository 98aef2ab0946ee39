"""A serial port (or a pyserial URL such as ``socket://HOST:PORT``, as ser2net serves it), reopened until it returns.

It calls ``on_data(bytes)`` as bytes arrive and ``on_break()`` when the
stream breaks (the line went idle, the port closed, the file ended), so the
framer reports a torn frame at once instead of gluing it to the next one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Callable

from ..config import SerialSettings

log = logging.getLogger("han.port")

OnData = Callable[[bytes], list]
OnBreak = Callable[[], list]


class _Protocol(asyncio.Protocol):
    def __init__(self, source: "SerialSource") -> None:
        self.source = source
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.source._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class SerialSource:
    """Reads ``settings.port`` with pyserial-asyncio; never gives up on a lost or missing port.

    After a failure it waits ``retry_min`` seconds, doubling up to
    ``retry_max``, and logs only changes (lost, still failing with a new
    reason, back), not every attempt.
    """

    def __init__(
        self,
        settings: SerialSettings,
        on_data: OnData,
        on_break: OnBreak,
        *,
        idle: float = 1.0,
        retry_min: float = 1.0,
        retry_max: float = 30.0,
    ) -> None:
        self.settings = settings
        self.kind = "socket" if "://" in (settings.port or "") else "serial"
        self.on_data = on_data
        self.on_break = on_break
        self.idle = idle
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.state = "connecting"  # connecting | connected | waiting | stopped
        self.since = time.time()
        self.connects = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.connected = asyncio.Event()  # set while connected (tests wait on it)
        self._transport: asyncio.Transport | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._pending_break = False

    @property
    def name(self) -> str:
        return self.settings.port or "?"

    def _received(self, data: bytes) -> None:
        self.on_data(data)
        if self.idle:
            loop = asyncio.get_running_loop()
            if self._idle_handle is not None:
                self._idle_handle.cancel()
            self._idle_handle = loop.call_later(self.idle, self._went_idle)
        self._pending_break = True

    def _went_idle(self) -> None:
        self._idle_handle = None
        self._break()

    def _break(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        if self._pending_break:
            self._pending_break = False
            self.on_break()

    def reopen(self, why: str) -> None:
        """Close the port so that the run loop opens it again (a USB adapter that stopped talking)."""
        if self._transport is not None:
            log.warning("%s: %s; reopening the port", self.name, why)
            self._transport.close()

    async def _open(self) -> tuple[asyncio.Transport, _Protocol]:
        # the bytes the port took while han had it closed (a reopen, a restart) are the meter's pushes
        return await open_serial(self.settings, lambda: _Protocol(self), keep_input=True)

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.retry_min
        failures = 0
        failing_since: float | None = None
        while not stop.is_set():
            self.state = "connecting"
            try:
                transport, protocol = await self._open()
            except ConnectionError as exc:
                failures += 1
                message = str(exc)
                if failures == 1:
                    failing_since = time.time()
                    log.warning("%s: cannot open (%s); retrying every %g s at most", self.name, message, self.retry_max)
                elif message != self.last_error:
                    log.warning("%s: still cannot open (%s)", self.name, message)
                self.last_error = message
                self.state, self.since = "waiting", time.time()
                await _sleep_or_stop(stop, delay)
                delay = min(delay * 2, self.retry_max)
                continue
            # connected
            self._transport = transport
            self.connects += 1
            if self.connects > 1:
                self.reconnects += 1
            if failing_since is not None:
                log.warning(
                    "%s: open again after %.0f s (%d attempt(s))", self.name, time.time() - failing_since, failures
                )
            else:
                log.info(
                    "%s: %s", self.name, "connected" if self.kind == "socket" else f"reading at {self.settings.describe()}"
                )
            failures, failing_since, delay = 0, None, self.retry_min
            self.state, self.since, self.last_error = "connected", time.time(), None
            self.connected.set()
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({protocol.lost, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            self.connected.clear()
            self._transport = None
            if protocol.lost in done:
                exc = protocol.lost.result()
                self._break()  # a frame torn by the unplug is reported now
                if not stop.is_set():
                    message = _reason(exc) if exc else "closed"
                    log.warning("%s: lost (%s); reopening", self.name, message)
                    self.last_error = message
                    failing_since = time.time()
                    self.state, self.since = "waiting", time.time()
                    await _sleep_or_stop(stop, self.retry_min)
            else:
                transport.close()
                try:
                    await asyncio.wait_for(asyncio.shield(protocol.lost), 2.0)
                except asyncio.TimeoutError:
                    pass
                self._break()
        self.state, self.since = "stopped", time.time()


class SettingRefused(ConnectionError):
    """The port opened but its driver refused the serial setting (a USB adapter without that parity, ...)."""


async def open_serial(
    settings: SerialSettings, protocol_factory: Callable[[], asyncio.Protocol], *, keep_input: bool = False
):
    """Open ``settings.port`` with pyserial-asyncio: (transport, protocol), or ConnectionError in one line.

    pyserial's ``open()`` discards what the port's input queue holds (``tcflush``).  With
    ``keep_input`` (the daemon) a device is opened without that: the bytes a pty bridge or a
    driver kept while han had the port closed -- the watchdog reopening a silent port, a
    restart -- are pushes like any others (the framer resyncs on a partial frame).  ``han
    probe`` keeps the flush: bytes received under the last setting tried are not the next's.

    A pseudo terminal (``han simulate --pty``, a socat bridge) carries bytes, not bits: Linux keeps
    its baud rate and stop bits but only 8 data bits without parity, and refuses (EINVAL) a change
    to parity or data bits alone.  A pty is therefore opened 8N1 at the baud rate asked for.
    """
    import serial  # pyserial
    import serial_asyncio
    import termios

    s = settings
    port = s.port or ""
    kwargs = dict(baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity, stopbits=s.stopbits)
    if "://" not in port:
        kwargs["exclusive"] = True  # a second reader on the same port would steal bytes
        if is_pty(port):
            kwargs.update(bytesize=8, parity="N")
    loop = asyncio.get_running_loop()
    try:
        if keep_input and "://" not in port:
            instance = _keep_input_class()(port, **kwargs)
            return await serial_asyncio.connection_for_serial(loop, protocol_factory, instance)
        return await serial_asyncio.create_serial_connection(loop, protocol_factory, port, **kwargs)
    except termios.error as exc:  # not an OSError: the driver refused a setting
        text = exc.args[1] if len(exc.args) > 1 else str(exc)
        raise SettingRefused(f"the port refuses {s.describe()}: {text}") from None
    except (serial.SerialException, OSError, ValueError) as exc:
        raise ConnectionError(_reason(exc)) from None


@functools.cache
def _keep_input_class() -> type:
    """Built on first use: pyserial is imported only by the commands that open a port."""
    import serial

    class KeepInput(serial.Serial):
        """A serial port whose ``open()`` leaves the input queue alone (pyserial 3.5 flushes it there)."""

        _opening = False

        def open(self) -> None:
            self._opening = True
            try:
                super().open()
            finally:
                self._opening = False

        def _reset_input_buffer(self) -> None:
            if not self._opening:
                super()._reset_input_buffer()

        def reset_input_buffer(self) -> None:  # the name pyserial before 3.5 called in open()
            if not self._opening:
                super().reset_input_buffer()

    return KeepInput


def is_pty(path: str) -> bool:
    """``path`` (or the device a link names) is the slave side of a pseudo terminal (Unix98 majors 136-143)."""
    import stat

    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and 136 <= os.major(st.st_rdev) <= 143


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("\n", " ")


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def is_device(path: str) -> bool:
    import stat

    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False
