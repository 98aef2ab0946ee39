"""Raw frames from edge bridges through an MQTT broker: one stream per topic, acknowledged once journaled.

::

    broker ──PUBLISH (QoS 1)──▶ paho's network thread ──▶ queue ──▶ this task, a run of messages at a time:
        unpack each payload (han.sources.payload) ─▶ its topic's stream (decoder, identity)
        ─▶ journal (one transaction for the run)
        ─▶ PUBACK for each              (only now: a worker killed before it gets them again)

At least once from the broker: QoS 1, a persistent session (clean start off,
a session expiry interval, a stable client id), and manual acknowledgements
sent only when every push the message carried is in the journal.  A message
redelivered after a crash is then refused by the journal's push identity
(the invocation counter per meter; see han.replay), so each push reaches
each sink exactly once.

Why paho-mqtt here and aiomqtt for the MQTT sink: aiomqtt 2.5 has no manual
acknowledgement (paho acknowledges as soon as its message callback returns,
before the push is journaled).  paho-mqtt 2.2's public ``manual_ack=True`` and
``Client.ack(mid, qos)`` are the closest public API; paho runs its network
loop on its own thread (``loop_start``, which also reconnects with backoff)
and hands messages to the event loop with ``call_soon_threadsafe``.

With ``share=GROUP`` the subscription is ``$share/GROUP/FILTER`` (MQTT 5
shared subscriptions): the workers of one group split the messages.  The
broker keeps a stopped worker's session (and the messages queued for it)
for ``session_expiry`` seconds, and redelivers its unacknowledged messages
to it when it comes back under the same client id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from .base import Feeds
from .payload import PayloadError, unpack
from .spec import SourceSpec

log = logging.getLogger("han.mqtt")

#: messages taken from the queue at once (journaled in one transaction, then acknowledged); the
#: broker's in-flight window (mosquitto's max_inflight_messages, 20 by default) usually bounds it
MAX_RUN = 500


def default_client_id(state_dir: str) -> str:
    """A stable client id per worker: this host and its state directory (a restart resumes the session)."""
    digest = hashlib.sha256(f"{socket.gethostname()}\0{os.path.abspath(state_dir)}".encode()).hexdigest()
    return f"han-{digest[:12]}"


class MqttSource:
    kind = "mqtt"

    def __init__(
        self,
        spec: SourceSpec,
        feeds: Feeds,
        journaled: Callable[[], bool],
        *,
        batch: Callable[[], AbstractContextManager] = contextlib.nullcontext,
        client_id: str,
        retry_min: float = 1.0,
        retry_max: float = 30.0,
    ) -> None:
        self.spec = spec
        self.feeds = feeds
        self.journaled = journaled  #: every accepted push is in the journal (then the message is acknowledged)
        self.batch = batch  #: what is fed inside is journaled at its end, in one transaction
        self.client_id = client_id
        self.retry_min = max(1, int(retry_min))
        self.retry_max = max(self.retry_min, int(retry_max))
        self.name = spec.describe()
        self.state = "connecting"
        self.since = time.time()
        self.connects = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.connected = asyncio.Event()
        self.messages = 0  #: messages taken (acknowledged) this run
        self.streams: set[str] = set()
        self._generation = 0  #: connections so far: a message from an earlier one is redelivered, not acked
        self._queue: asyncio.Queue | None = None
        self._client = None
        self._stopping = False

    # -- paho's thread -> the event loop ---------------------------------------------------------
    def _make_client(self, loop: asyncio.AbstractEventLoop):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        spec = self.spec
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=spec.qos > 0,
        )
        if spec.username is not None:
            client.username_pw_set(spec.username, spec.password)
        if spec.tls:
            client.tls_set(ca_certs=spec.ca, certfile=spec.cert, keyfile=spec.key)
        client.reconnect_delay_set(self.retry_min, self.retry_max)
        client.max_queued_messages_set(0)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = spec.session_expiry
        queue = self._queue
        assert queue is not None
        # the connection count as paho's thread sees it; the event loop learns it in the same order
        # (call_soon_threadsafe keeps order), so each message carries the connection it came on
        thread = {"generation": 0}

        def on_connect(c, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                loop.call_soon_threadsafe(self._refused, str(reason_code))
                return
            thread["generation"] += 1
            c.subscribe(spec.subscription, qos=spec.qos)
            loop.call_soon_threadsafe(self._up, bool(flags.session_present), thread["generation"])

        def on_connect_fail(c, userdata):
            loop.call_soon_threadsafe(self._refused, "cannot connect")

        def on_disconnect(c, userdata, flags, reason_code, properties):
            thread["generation"] += 1
            loop.call_soon_threadsafe(self._down, str(reason_code), thread["generation"])

        def on_message(c, userdata, message):
            loop.call_soon_threadsafe(queue.put_nowait, (thread["generation"], message))

        client.on_connect = on_connect
        client.on_connect_fail = on_connect_fail
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        return client, props

    def _up(self, session_present: bool, generation: int) -> None:
        self.connects += 1
        self._generation = generation
        if self.connects > 1:
            self.reconnects += 1
            log.warning("%s: connected again (%s)", self.name, "session resumed" if session_present else "new session")
        else:
            log.info(
                "%s: subscribed as %s (%s, QoS %d)",
                self.name,
                self.client_id,
                "session resumed" if session_present else "new session",
                self.spec.qos,
            )
        self.state, self.since, self.last_error = "connected", time.time(), None
        self.connected.set()

    def _down(self, why: str, generation: int) -> None:
        self._generation = generation  # what is queued is redelivered on the next connection: not taken now
        if self.state == "connected" and not self._stopping:
            log.warning("%s: lost (%s); reconnecting", self.name, why)
        self.state, self.since, self.last_error = "waiting", time.time(), why
        self.connected.clear()

    def _refused(self, why: str) -> None:
        if why != self.last_error:
            log.warning("%s: %s; retrying every %d s at most", self.name, why, self.retry_max)
        self.state, self.since, self.last_error = "waiting", time.time(), why

    # -- the event loop ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        client, props = self._make_client(loop)
        self._client = client
        spec = self.spec
        try:
            client.connect_async(spec.host, spec.port, spec.keepalive, clean_start=False, properties=props)
        except (OSError, ValueError) as exc:
            self._refused(str(exc))
        client.loop_start()
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                getter = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                run = [getter.result()]
                while len(run) < MAX_RUN:
                    try:
                        run.append(self._queue.get_nowait())
                    except asyncio.QueueEmpty:
                        break
                await self._take(run, stop)
        finally:
            stopper.cancel()
            self._stopping = True
            client.disconnect()
            await loop.run_in_executor(None, client.loop_stop)
            self.connected.clear()
            self.state, self.since = "stopped", time.time()

    async def _take(self, run: list, stop: asyncio.Event) -> None:
        """A run of messages into their topics' streams; acknowledged once what they carried is journaled."""
        taken = []
        with self.batch():
            for generation, message in run:
                if generation != self._generation:
                    continue  # the connection it came on is gone: the broker sends it again
                self._feed(message)
                taken.append((generation, message))
        if not taken:
            return
        while not self.journaled():  # the journal cannot be written (a full disk): no PUBACK yet
            if stop.is_set() or taken[-1][0] != self._generation:
                return
            await asyncio.sleep(0.2)
        for generation, message in taken:
            if generation != self._generation:
                continue
            if self.spec.qos > 0:
                self._client.ack(message.mid, message.qos)
            self.messages += 1

    def _feed(self, message) -> None:
        topic = message.topic
        self.streams.add(topic)
        feed = self.feeds(topic)
        try:
            payload = unpack(message.payload, self.spec.format)
        except PayloadError as exc:
            feed.failed(exc.reason, f"a message that carries no meter data: {exc}")
        else:
            if payload.kind == "ignored":
                feed.failed("ignored_message", payload.note)
            else:
                feed.feed(payload.data, redelivered=bool(message.dup))
                feed.end_message()
