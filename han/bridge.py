"""``han bridge``: raw frames from a serial port to an MQTT broker, for a small computer at the meter.

::

    serial port --bytes--> FrameSplitter --pieces--> Spool (disk) --QoS 1--> broker, topic han/raw/<name>
    (han.sources)          (decoders.link.split)     (han.spool)    (aiomqtt)

Each MQTT message is one whole frame (HDLC with its flags, an M-Bus long
frame, a bare APDU), or a run of bytes no framer accepted (counted, sent so
that the head-end reports it).  Payloads are the bytes (``format=binary``,
the default) or upper-case hex text (``format=hex``, as amsreader's "HEX
dump" mode).  A frame is appended to the spool before it is published and
taken out when the broker's PUBACK arrives, so frames reach the broker in
the port's order, wait on disk while the broker is away (bounded: the
oldest are dropped and counted when the spool is full) and survive the
bridge being killed.  QoS 1 is at least once: a PUBACK lost with the
connection, or a kill between the PUBACK and the cursor's update, sends a
frame again; the head-end removes such duplicates by the push's identity.

The target URL::

    mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC[?format=binary|hex&client_id=ID&ca=FILE&cert=FILE&key=FILE]

It is parsed by :mod:`han.mqtturl`, as ``han run --source`` URLs are: the
password may also come from ``password_file=``, ``password_env=``,
``HAN_MQTT_PASSWORD`` or the systemd credential ``han-mqtt-password``; it is
never logged (the URL is logged redacted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
import time
from dataclasses import dataclass, field

from .config import SerialSettings
from .mqtturl import parse_mqtt_url
from .spool import Spool

log = logging.getLogger("han.bridge")

FORMATS = ("binary", "hex")
#: messages published at once, each awaiting its PUBACK (order is kept: one connection, one topic)
WINDOW = 32


@dataclass(frozen=True)
class Target:
    """Where the frames go: broker, topic, credentials and TLS files (the password is never shown)."""

    host: str
    port: int
    topic: str
    tls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    format: str = "binary"
    client_id: str = ""
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def describe(self) -> str:
        """The target for logs and status: no password, no user."""
        scheme = "mqtts" if self.tls else "mqtt"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.topic}"


def parse_target(url: str, *, format: str | None = None, environ=None) -> Target:  # noqa: A002
    """``mqtt://HOST:PORT/han/raw/NAME`` as a :class:`Target` (parsed by :mod:`han.mqtturl`, as ``--source``);
    ConfigError in one line (never the password)."""
    from sinks.base import redact

    options = {"format": format} if format else None
    u = parse_mqtt_url(
        url, options, where=f"--to {redact(url)}", formats=FORMATS, default_format="binary", publish=True,
        environ=environ,
    )  # fmt: skip
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", u.topic.rsplit("/", 1)[-1])[:40]
    return Target(
        host=u.host,
        port=u.port,
        topic=u.topic,
        tls=u.tls,
        user=u.username,
        password=u.password,
        format=u.format,
        client_id=u.client_id or f"han-bridge-{name}-{socket.gethostname()[:20]}",
        ca=u.ca,
        cert=u.cert,
        key=u.key,
    )


def encode(data: bytes, fmt: str) -> bytes:
    """A piece as the message's payload: the bytes, or upper-case hex text."""
    return data.hex().upper().encode("ascii") if fmt == "hex" else data


@dataclass
class Counts:
    frames: int = 0  #: whole frames read from the port
    unframed: int = 0  #: runs of bytes no framer accepted (sent as they are)
    unframed_bytes: int = 0
    published: int = 0  #: messages the broker acknowledged
    reconnects: int = 0


class Bridge:
    """The serial reader and the publisher, sharing a :class:`Spool` (see the module docstring)."""

    def __init__(
        self,
        serial: SerialSettings,
        target: Target,
        spool: Spool,
        *,
        transport: str = "auto",
        idle: float = 1.0,
        status_interval: float = 300.0,
        timeout: float = 10.0,
        retry_max: float = 30.0,
    ) -> None:
        from decoders.link.split import FrameSplitter

        from .sources import SerialSource

        self.serial = serial
        self.target = target
        self.spool = spool
        self.splitter = FrameSplitter(transport)
        self.source = SerialSource(serial, self._on_data, self._on_break, idle=idle)
        self.status_interval = status_interval
        self.timeout = timeout
        self.retry_max = retry_max
        self.counts = Counts()
        self.connected = asyncio.Event()  #: set while the broker is connected (tests wait on it)
        self._more = asyncio.Event()  # records were appended
        self._disk_error: str | None = None
        self._away_since: float | None = None
        self._draining = False
        self._stopped = False

    # -- the reader side: bytes -> pieces -> spool -----------------------------------------------
    def _on_data(self, data: bytes) -> list:
        self._store(self.splitter.feed(data))
        return []

    def _on_break(self) -> list:
        self._store(self.splitter.flush())
        return []

    def _store(self, pieces: list) -> None:
        for piece in pieces:
            if piece.framed:
                self.counts.frames += 1
            else:
                self.counts.unframed += 1
                self.counts.unframed_bytes += len(piece.data)
                log.info("%d byte(s) at offset %d are not a whole frame; sent as they are", len(piece.data), piece.offset)
            try:
                self.spool.append(encode(piece.data, self.target.format))
            except OSError as exc:
                if self._disk_error != exc.strerror:
                    log.error("spool %s: cannot write (%s); frames are lost until it can", self.spool.directory,
                              exc.strerror)
                self._disk_error = exc.strerror
                continue
            if self._disk_error is not None:
                log.warning("spool %s: writing again", self.spool.directory)
                self._disk_error = None
        if pieces:
            self._more.set()

    # -- the publisher side: spool -> broker ------------------------------------------------------
    def _client(self):
        import aiomqtt

        tls_context = None
        if self.target.tls:
            import ssl

            tls_context = ssl.create_default_context(cafile=self.target.ca)
            if self.target.cert:
                tls_context.load_cert_chain(self.target.cert, self.target.key)
        from sinks.mqtt import loop_safe_client  # sockets reach the event loop only while open

        return loop_safe_client(aiomqtt)(
            self.target.host,
            self.target.port,
            username=self.target.user,
            password=self.target.password,
            identifier=self.target.client_id,
            timeout=self.timeout,
            tls_context=tls_context,
            logger=logging.getLogger("han.bridge.client"),
        )

    async def publish(self, stop: asyncio.Event) -> None:
        """Connect, drain the spool in order, reconnect with capped back-off; until ``stop``."""
        import aiomqtt

        delay = 1.0
        last_error: str | None = None
        while not stop.is_set():
            made = None
            try:
                async with contextlib.AsyncExitStack() as stack:
                    made = self._client()
                    async with asyncio.timeout(self.timeout + 5.0):
                        client = await stack.enter_async_context(made)
                    self.connected.set()
                    if self._away_since is not None:
                        log.warning(
                            "broker %s back after %.0f s; sending %d spooled frame(s)",
                            self.target.describe(), time.monotonic() - self._away_since, self.spool.pending,
                        )
                        self.counts.reconnects += 1
                        self._draining = self.spool.pending > 0
                    else:
                        log.info("connected to %s; %d frame(s) waiting in the spool", self.target.describe(),
                                 self.spool.pending)
                    self._away_since, last_error, delay = None, None, 1.0
                    await self._drain(client, stop)
            except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
                reason = _reason(exc)
                if self._away_since is None:
                    self._away_since = time.monotonic()
                    log.warning("broker %s away (%s); spooling frames to %s", self.target.describe(), reason,
                                self.spool.directory)
                elif reason != last_error:
                    log.warning("broker %s still away (%s)", self.target.describe(), reason)
                last_error = reason
            finally:
                self.connected.clear()
                if made is not None:
                    made.abandon()  # a failed or timed-out attempt's socket is closed here, on the loop
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            delay = min(delay * 2, self.retry_max)

    async def _drain(self, client, stop: asyncio.Event) -> None:
        # the bridge subscribes to nothing: the message iterator ends (raises) only when the connection is lost
        watcher = asyncio.ensure_future(_until_disconnected(client))
        try:
            await self._drain_until_lost(client, stop, watcher)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _drain_until_lost(self, client, stop: asyncio.Event, watcher: asyncio.Future) -> None:
        topic = self.target.topic
        while not stop.is_set():
            self._more.clear()
            batch = self.spool.peek(WINDOW)
            if not batch:
                waiter = asyncio.ensure_future(self._more.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper, watcher}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if watcher.done():
                    watcher.result()  # raises the lost connection's MqttError
                    raise ConnectionError("the broker closed the connection")
                continue
            tasks = [
                asyncio.ensure_future(client.publish(topic, payload, qos=1, timeout=self.timeout))
                for _n, payload in batch
            ]
            try:
                for (n, _payload), task in zip(batch, tasks):
                    await task
                    self.spool.ack(n)
                    self.counts.published += 1
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if self._draining and self.spool.pending == 0:
                log.warning("spool drained: every spooled frame reached %s", self.target.describe())
                self._draining = False

    # -- status -------------------------------------------------------------------------------------
    def status_line(self) -> str:
        c = self.counts
        state = "stopped" if self._stopped else "connected" if self.connected.is_set() else "broker away"
        return (
            f"{self.source.name} -> {self.target.describe()}: {state}; {c.frames} frame(s) read"
            f" ({c.unframed} unframed run(s), {c.unframed_bytes} bytes), {c.published} published;"
            f" spool {self.spool.pending} frame(s), {self.spool.size // 1024} KiB, {self.spool.dropped} dropped"
        )

    async def _housekeeping(self, stop: asyncio.Event) -> None:
        next_status = time.monotonic() + self.status_interval
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await stop.wait()
            try:
                self.spool.maybe_sync()
            except OSError as exc:
                log.error("spool %s: cannot sync (%s)", self.spool.directory, exc.strerror)
            if self.status_interval and time.monotonic() >= next_status:
                log.info("%s", self.status_line())
                next_status = time.monotonic() + self.status_interval

    async def run(self, stop: asyncio.Event, *, drain: float = 5.0) -> None:
        """Read and publish until ``stop``; then give the publisher ``drain`` seconds for what is spooled."""
        log.info(
            "bridge %s (%s) -> %s, %s payloads, spool %s (%d KiB at most)",
            self.source.name, self.serial.describe(), self.target.describe(), self.target.format,
            self.spool.directory, self.spool.max_bytes // 1024,
        )
        stop_publisher = asyncio.Event()
        reader = asyncio.ensure_future(self.source.run(stop))
        publisher = asyncio.ensure_future(self.publish(stop_publisher))
        house = asyncio.ensure_future(self._housekeeping(stop_publisher))
        try:
            await reader
            # the port is closed: what was read goes out while the broker answers, up to ``drain`` seconds
            deadline = time.monotonic() + drain
            while self.spool.pending and self.connected.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            stop_publisher.set()
            await asyncio.gather(publisher, house, return_exceptions=True)
            with contextlib.suppress(OSError):
                self.spool.sync()
            self._stopped = True
            log.info("%s", self.status_line())


async def _until_disconnected(client) -> None:
    async for _message in client.messages:
        pass


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer"
    text = str(exc) or type(exc).__name__
    return re.sub(r"\s+", " ", text)[:200]


def run_bridge(bridge: Bridge) -> int:
    """Run until SIGTERM or SIGINT (exit 0)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await bridge.run(stop)

    try:
        asyncio.run(main())
    finally:
        bridge.spool.close()
    return 0


__all__ = ["Bridge", "Counts", "FORMATS", "Target", "encode", "parse_target", "run_bridge"]
