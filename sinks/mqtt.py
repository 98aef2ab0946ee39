"""``mqtt://[USER[:PASSWORD]@]HOST[:PORT]?prefix=homeassistant&topic=han``: MQTT with Home Assistant discovery.

Per push, one JSON state message on ``<topic>/<node>/state`` (QoS 1, retained)::

    {"time": "2026-01-15T11:00:00Z", "journal": "9c1f…", "seq": 1042, "invocation_counter": 1041,
     "active_power_import": 297, "active_energy_import": 9643.721, "voltage_l1": 233, ...}

``<node>`` is ``han_<meter number>``, else ``han_<meter>`` (the system title or
the configured name): a short list that sends no meter number belongs to the
device of its port's meter (``Entry.meter_id``, ``Entry.meter``).  The state
carries the latest value of every register the meter sent, from all its lists
(a Norwegian 2.5 s list holds only power; its state has the last voltage and
energy too), so no sensor's template misses its key; ``time``, ``journal``,
``seq`` and ``invocation_counter`` are the push's own.  The merged values are
kept in the checkpoint's mark and recovered from the broker's retained state
on (re)connecting, so a restart publishes no partial state.  Energy in Wh is
sent in kWh.  For every register Home Assistant knows a sensor for, a retained
discovery config goes to ``<prefix>/sensor/<node>/<key>/config``
(:mod:`sinks.homeassistant`: device class, state class, unit, the device in
words, the main sensors enabled and the rest disabled).  Measurement sensors
get ``expire_after``: three push intervals learned per meter from its pushes'
spacing (``expire_after=auto``), or fixed seconds, or 0 (off).
``<topic>/status`` is the availability topic: ``online`` (retained) after
connecting and while the meter's port delivers, ``offline`` when the daemon
says the port is lost or quiet (:meth:`MqttSink.status`), as the last will and
at a clean stop.  ``prefix=`` (empty) turns discovery off.

A cumulative value (``total_increasing``) that is lower than one already
published is left out of the state message with a warning (the state keeps the
last good one): Home Assistant would count it as a meter reset.  The highest
values are kept in the sink's checkpoint, so this holds across restarts.

Delivery, exactly once: a push is acknowledged only after the broker's PUBACK;
until then it waits in the daemon's journal (on disk), and after a lost
connection the sink reconnects with capped back-off and re-publishes the
discovery configs, ``online`` and the backlog in order.  QoS 1 alone is at
least once: a PUBACK lost with the connection, or a kill -9 between the PUBACK
and the checkpoint, would publish a push again.  So every state message is
*retained* and carries its identity (``journal``, ``seq``, and
``invocation_counter`` for ciphered pushes), and :meth:`MqttSink.open` first
reads the broker's retained state messages under ``<topic>/+/state``: the
highest journal position among them (same journal) was delivered, whatever
the local checkpoint says, and delivery resumes after it.  Publishing is
sequential (each message waits for its PUBACK), so every position below it
was delivered too.  What remains: a broker that loses its retained messages
(killed without persistence) falls back to the local checkpoint, and a push
after it may be published twice.
The password may come from ``HAN_MQTT_PASSWORD`` or the systemd credential
``han-mqtt-password``; it is never logged.  Needs ``pip install 'han-logger[mqtt]'`` (aiomqtt).

The message building is sans-IO (:class:`MqttPlan`); :class:`MqttSink` is a thin
asyncio shell on the daemon's own event loop.  It uses aiomqtt through its
public API only: the client is entered as an async context manager (held in an
``AsyncExitStack`` from :meth:`MqttSink.open` to :meth:`MqttSink.close`), and
every wait on the broker has a timeout, so a hung broker (no TCP reset) fails
the call after ``timeout`` seconds instead of hanging the sink.  Every attempt
gets a new client (paho would re-send a connected client's unacknowledged
messages on a new connection: a push published twice), and the sink closes the
socket a failed or timed-out client left open itself, on the event loop.

Two races of aiomqtt 2.5 with paho 2.2 are closed by :func:`loop_safe_client`
(a soak week logged them as "internal error: OSError: [Errno 9] Bad file
descriptor", docs/soak.md):

* paho connects in an executor thread and aiomqtt hands the new socket to the
  loop with ``call_soon_threadsafe(add_reader/add_writer, fd)``; when the
  broker resets the connection in between, the loop has closed the socket
  before it runs them, and ``add_writer`` on the closed descriptor raised
  EBADF in the loop.  The client here registers a socket only while it is
  still open and still the client's.
* a client reused after an unanswered attempt closed the socket of that attempt
  in the executor thread, while the loop was still reading it; its late
  CONNACK also left an "Unexpected disconnection" nobody read.  Clients are no
  longer reused (above).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import re
import statistics
import urllib.parse
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import Checkpoint, Entry, Sink, SinkError, iso_utc, secret, time_utc
from .homeassistant import (  # noqa: F401
    SensorKind, Device, channel_sensors, is_total, sensor_config, sensor_kind, sensor_name, sensor_of,
)

log = logging.getLogger("han.sink")


def node_id(entry: Entry) -> str:
    """``han_<meter number>``, else ``han_<meter>``: one Home Assistant device per meter, for all its lists."""
    return "han_" + re.sub(r"[^A-Za-z0-9_-]+", "_", entry.meter_id or entry.meter)


@dataclass
class Message:
    topic: str
    payload: str
    retain: bool = False


#: keys of a state message that belong to the push, not to the meter's registers
META = frozenset({"time", "journal", "seq", "invocation_counter"})
#: spacing between two pushes of a meter that counts for its push interval (seconds)
GAP_MIN, GAP_MAX = 0.5, 3600.0
#: the learned push interval must move this much before the configs go out again with a new expire_after
EXPIRE_HYSTERESIS = 0.25


@dataclass
class Node:
    """One meter (one Home Assistant device): its merged latest values and what is known of it."""

    device: Device
    values: dict[str, Any] = field(default_factory=dict)  #: key -> latest published value, from all lists
    seq: int = 0  #: journal position of the last state message built for it
    kinds: dict[str, SensorKind] = field(default_factory=dict)  #: key -> sensor (keys seen this run)
    announced: dict[str, int | None] = field(default_factory=dict)  #: key -> expire_after sent (this connection)
    last_time: float | None = None  #: the last push's time (meter time, else arrival), epoch seconds
    gaps: deque[float] = field(default_factory=lambda: deque(maxlen=20))
    interval: float | None = None  #: the learned push interval (median spacing), seconds
    expire: int | None = None  #: expire_after published for its measurement sensors (None: none yet)


class MqttPlan:
    """Sans-IO: which messages a batch of pushes becomes (discovery once per connection, state per push).

    Every state message carries the latest value of every register its meter has
    sent, from all its lists, so a value template never misses a key.
    """

    def __init__(
        self, *, prefix: str, topic: str, expire_after: int | None = None, version: str = ""
    ) -> None:
        self.prefix = prefix.strip("/")
        self.topic = topic.strip("/")
        self.expire_after = expire_after  #: seconds; None = three learned push intervals; 0 = off
        self.version = version
        self.totals: dict[str, dict[str, float]] = {}  #: node -> key -> highest cumulative value published
        self.nodes: dict[str, Node] = {}
        self.warned: set[tuple[str, str]] = set()

    @property
    def status_topic(self) -> str:
        return f"{self.topic}/status"

    def state_topic(self, node: str) -> str:
        return f"{self.topic}/{node}/state"

    def node(self, name: str, meter_id: str | None = None) -> Node:
        n = self.nodes.get(name)
        if n is None:
            label = meter_id or name.removeprefix("han_")
            n = self.nodes[name] = Node(Device(name, f"Electricity meter {label}"))
        return n

    def connected(self) -> None:
        """A new connection: discovery configs are published again (Home Assistant may have restarted too)."""
        for n in self.nodes.values():
            n.announced.clear()

    # -- building messages -----------------------------------------------------------------
    def messages(self, entries: Sequence[Entry], journal: str = "") -> list[Message]:
        out: list[Message] = []
        # what the batch tells of each meter first: a short list's configs then name the maker and model
        for e in entries:
            n = self.node(node_id(e), e.meter_id)
            if n.device.learn(e.push, e.meter_id):
                n.announced.clear()
        for e in entries:
            name = node_id(e)
            n = self.node(name, e.meter_id)
            when = time_utc(e.push, e.received)
            self._learn_interval(n, when.timestamp())
            state: dict[str, Any] = {"time": iso_utc(when)}
            # the push's identity: the journal position (exactly-once after a reconnect) and the meter's counter
            if journal:
                state["journal"] = journal
                state["seq"] = e.seq
            if e.push.security is not None:
                state["invocation_counter"] = e.push.security.invocation_counter
            self._merge(name, n, e)
            state.update(n.values)
            n.seq = e.seq
            out.extend(self._announce(name, n))
            out.append(Message(self.state_topic(name), json.dumps(state, separators=(",", ":")), retain=True))
        return out

    def _merge(self, name: str, n: Node, e: Entry) -> None:
        channels = channel_sensors(e.push)
        for r in e.push.registers:
            if r.value is None:
                continue
            found = sensor_of(r, channels)
            if found is not None:
                key, kind = found
            elif not r.key:
                continue
            else:
                key, kind = r.key, None
            if key == "clock" or key in META:
                continue
            value = r.value
            if kind is not None and isinstance(value, (int, float)) and kind.factor != 1.0:
                value = round(value * kind.factor, 6)
            elif not isinstance(value, (int, float, str)):
                value = str(value)
            if kind is not None and kind.state_class == "total_increasing" and isinstance(value, (int, float)):
                seen = self.totals.setdefault(name, {})
                last = seen.get(key)
                if last is not None and value < last:
                    if (name, key) not in self.warned:
                        self.warned.add((name, key))
                        log.warning(
                            "mqtt: %s %s went down from %s to %s; not published (Home Assistant would count"
                            " a meter reset)",
                            name,
                            key,
                            last,
                            value,
                        )
                    continue  # the state keeps the last good value
                self.warned.discard((name, key))
                seen[key] = value
            n.values[key] = value
            if r.time_utc is not None:  # a value with its own time stamp (a P1 gas reading): when it was read
                n.values[f"{key}_time"] = r.time_utc.isoformat()
            if kind is not None:
                n.kinds[key] = kind

    def _learn_interval(self, n: Node, when: float) -> None:
        if n.last_time is not None:
            gap = when - n.last_time
            if GAP_MIN <= gap <= GAP_MAX:
                n.gaps.append(gap)
                if len(n.gaps) >= 3:
                    n.interval = statistics.median(n.gaps)
        n.last_time = when if n.last_time is None else max(n.last_time, when)

    def expire_for(self, n: Node) -> int | None:
        """expire_after for the meter's measurement sensors: fixed, off, or three learned push intervals."""
        if self.expire_after is not None:
            return self.expire_after or None
        if n.interval is not None:
            want = math.ceil(3 * n.interval)
            if n.expire is None or abs(want - n.expire) > EXPIRE_HYSTERESIS * n.expire:
                n.expire = want
        return n.expire

    def _announce(self, name: str, n: Node) -> list[Message]:
        if not self.prefix:
            return []
        expire = self.expire_for(n)
        out = []
        for key, kind in n.kinds.items():
            want = expire if kind.state_class == "measurement" else None
            if key in n.announced and n.announced[key] == want:
                continue
            config = sensor_config(
                node=name,
                key=key,
                kind=kind,
                state_topic=self.state_topic(name),
                status_topic=self.status_topic,
                device=n.device.info(),
                origin={"name": "han", **({"sw_version": self.version} if self.version else {})},
                expire_after=want,
            )
            out.append(Message(f"{self.prefix}/sensor/{name}/{key}/config", _json(config), retain=True))
            n.announced[key] = want
        return out

    # -- what survives a restart ------------------------------------------------------------
    def mark(self) -> dict[str, Any]:
        """The sink's checkpoint mark: the highest totals, and each meter's latest values and facts."""
        nodes: dict[str, Any] = {}
        for name, n in self.nodes.items():
            d: dict[str, Any] = {"seq": n.seq, "values": dict(n.values), "device": n.device.to_json()}
            if n.interval is not None:
                d["interval"] = round(n.interval, 3)
            nodes[name] = d
        return {"totals": {node: dict(v) for node, v in self.totals.items()}, "nodes": nodes}

    def restore(self, mark: Mapping[str, Any]) -> None:
        """Back to the checkpoint's state (at a start, and at every reconnect: a failed batch may have
        been merged but not published; it is sent again and merged again)."""
        totals = mark.get("totals")
        if isinstance(totals, Mapping):
            for node, values in totals.items():
                if isinstance(values, Mapping):
                    seen = self.totals.setdefault(str(node), {})
                    for k, v in values.items():
                        if isinstance(v, (int, float)) and v > seen.get(str(k), float("-inf")):
                            seen[str(k)] = v
        for n in self.nodes.values():
            n.values, n.seq = {}, 0
        nodes = mark.get("nodes")
        if isinstance(nodes, Mapping):
            for name, d in nodes.items():
                if not isinstance(d, Mapping):
                    continue
                n = self.node(str(name))
                values = d.get("values")
                if isinstance(values, Mapping):
                    n.values = {str(k): v for k, v in values.items() if isinstance(v, (int, float, str))}
                if isinstance(d.get("seq"), int):
                    n.seq = d["seq"]
                n.device.load(d.get("device"))
                interval = d.get("interval")
                if n.interval is None and isinstance(interval, (int, float)) and interval > 0:
                    n.interval = float(interval)

    def recover(self, retained: Sequence[tuple[str, bytes]], journal: str) -> int:
        """Take the broker's retained state messages; return the highest journal position delivered.

        A retained state of this journal at or after the checkpoint's position for its
        meter is the last one published: its values are the meter's latest values.
        """
        best = 0
        for topic, raw in retained:
            try:
                state = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(state, dict) or state.get("journal") != journal or not isinstance(state.get("seq"), int):
                continue
            seq = state["seq"]
            best = max(best, seq)
            parts = topic.split("/")
            if len(parts) < 2 or parts[-1] != "state":
                continue
            name = parts[-2]
            n = self.node(name)
            if seq < n.seq:
                continue
            n.seq = seq
            n.values = {k: v for k, v in state.items() if k not in META and isinstance(v, (int, float, str))}
            seen = self.totals.setdefault(name, {})
            for k, v in n.values.items():
                if is_total(k) and isinstance(v, (int, float)) and v > seen.get(k, float("-inf")):
                    seen[k] = v
        return best

    def delivered(self, payloads: Sequence[bytes], journal: str) -> int:
        """The highest journal position among retained state messages of ``journal`` (0 when none)."""
        best = 0
        for raw in payloads:
            try:
                state = json.loads(raw)
            except ValueError:
                continue
            if isinstance(state, dict) and state.get("journal") == journal and isinstance(state.get("seq"), int):
                best = max(best, state["seq"])
        return best


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("han-logger")
    except Exception:  # noqa: BLE001
        return ""


class MqttSink(Sink):
    scheme = "mqtt"
    retry_max = 5.0

    def __init__(
        self,
        target: str,
        *,
        prefix: str | None = None,
        topic: str | None = None,
        user: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        qos: int | None = None,
        expire_after: int | str | None = None,
        timeout: float = 10.0,
        tls: bool | None = None,
        retry_max: float | None = None,
    ) -> None:
        super().__init__(target)
        parsed = urllib.parse.urlsplit(target if target.startswith("//") else "//" + target)
        if not parsed.hostname:
            raise SinkError("mqtt sink: give a broker, e.g. mqtt://127.0.0.1:1883?prefix=homeassistant&topic=han")
        try:
            self.port = parsed.port or (8883 if (tls or self.scheme == "mqtts") else 1883)
        except ValueError:
            raise SinkError("mqtt sink: the port must be a number") from None
        self.host = parsed.hostname
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        known = {"prefix", "topic", "client_id", "qos", "expire_after"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise SinkError(f"mqtt sink: unknown parameter {unknown[0]!r}; it takes {', '.join(sorted(known))}")

        def pick(name: str, given: Any, default: Any) -> Any:
            return given if given is not None else query.get(name, default)

        prefix = pick("prefix", prefix, "homeassistant")
        topic = pick("topic", topic, "han")
        for what, text in (("prefix", prefix), ("topic", topic)):
            if "#" in text or "+" in text:
                raise SinkError(f"mqtt sink: {what} must not hold MQTT wildcards (# or +)")
        if not topic.strip("/"):
            raise SinkError("mqtt sink: topic must not be empty")
        try:
            self.qos = int(pick("qos", qos, 1))
        except (TypeError, ValueError):
            raise SinkError("mqtt sink: qos must be 0, 1 or 2") from None
        if self.qos not in (0, 1, 2):
            raise SinkError("mqtt sink: qos must be 0, 1 or 2")
        expire = _expire_after(pick("expire_after", expire_after, "auto"))
        self.user = user or (urllib.parse.unquote(parsed.username) if parsed.username else None)
        self._password = (
            password
            or (urllib.parse.unquote(parsed.password) if parsed.password else None)
            or secret("HAN_MQTT_PASSWORD", "han-mqtt-password")
        )
        self.client_id = pick("client_id", client_id, None)
        self.timeout = float(timeout)
        self.tls = bool(tls) if tls is not None else self.scheme == "mqtts"
        if retry_max is not None:
            self.retry_max = float(retry_max)
        self.plan = MqttPlan(prefix=prefix, topic=topic, expire_after=expire, version=_version())
        self._online: bool | None = None  #: the source's state as the daemon told it (None: not told)
        self._stack: contextlib.AsyncExitStack | None = None  #: holds the client's connection while open
        self._client: Any = None  #: the connected client (None while closed)

    @property
    def name(self) -> str:
        parsed = urllib.parse.urlsplit("//" + self.target.removeprefix("//"))
        user = f"{urllib.parse.unquote(parsed.username)}@" if parsed.username else ""
        host = f"{parsed.hostname}:{parsed.port}" if parsed.port else (parsed.hostname or "")
        return f"{self.scheme}://{user}{host}" + (f"?{parsed.query}" if parsed.query else "")

    # -- the sink ---------------------------------------------------------------------
    async def open(self, resume: Checkpoint) -> Checkpoint:
        ckpt = await super().open(resume)
        # the meters' latest values and highest totals as of the checkpoint; the broker's retained
        # state (below) may be newer: then it wins
        self.plan.restore(resume.mark)
        try:
            import aiomqtt
        except ImportError:
            raise SinkError("mqtt sink: needs aiomqtt: pip install 'han-logger[mqtt]'") from None
        await self._connect(aiomqtt)
        self.plan.connected()
        seq = ckpt.seq
        if ckpt.journal:
            retained = await self._retained(aiomqtt)
            seq = max(seq, self.plan.recover(retained, ckpt.journal))
            self._seq = seq
        return Checkpoint(ckpt.journal, seq, self._mark())

    async def status(self, online: bool) -> None:
        """``<topic>/status``: ``online`` while pushes arrive, ``offline`` when the port is lost or quiet."""
        self._online = online
        if self._client is not None:
            await self._publish(self.plan.status_topic, "online" if online else "offline", retain=True)

    async def _retained(self, aiomqtt: Any) -> list[tuple[str, bytes]]:
        """The retained state messages the broker holds under ``<topic>/+/state``.

        Retained messages come right after the SUBACK; a message to a topic of our
        own, subscribed to after them and published by us, comes back after all of
        them (the broker handles one client's packets in order), so it ends the list.
        """
        import secrets as _secrets

        pattern = self.plan.state_topic("+")
        marker = f"{self.plan.topic}/sync/{_secrets.token_hex(8)}"
        found: list[tuple[str, bytes]] = []
        try:
            await self._client.subscribe(pattern, qos=1, timeout=self.timeout)
            await self._client.subscribe(marker, qos=1, timeout=self.timeout)
            await self._client.publish(marker, "sync", qos=1, timeout=self.timeout)
            async with asyncio.timeout(self.timeout):
                async for m in self._client.messages:
                    if str(m.topic) == marker:
                        break
                    if m.retain and isinstance(m.payload, (bytes, bytearray)):
                        found.append((str(m.topic), bytes(m.payload)))
            await self._client.unsubscribe(pattern, timeout=self.timeout)
            await self._client.unsubscribe(marker, timeout=self.timeout)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise SinkError(
                f"mqtt sink: cannot read the retained state from {self.host}:{self.port}: {_reason(exc)}"
            ) from None
        return found

    def _new_client(self, aiomqtt: Any) -> Any:
        tls_context = None
        if self.tls:
            import ssl

            tls_context = ssl.create_default_context()
        return loop_safe_client(aiomqtt)(
            self.host,
            self.port,
            username=self.user,
            password=self._password,
            identifier=self.client_id,
            will=aiomqtt.Will(self.plan.status_topic, "offline", qos=1, retain=True),
            timeout=self.timeout,
            tls_context=tls_context,
            logger=logging.getLogger("han.sink.mqtt.client"),
        )

    async def _connect(self, aiomqtt: Any) -> None:
        client = self._new_client(aiomqtt)
        stack = contextlib.AsyncExitStack()
        try:
            # aiomqtt waits ``timeout`` for the CONNACK itself; this outer bound also covers the TCP connect
            async with asyncio.timeout(self.timeout + 10.0):
                self._client = await stack.enter_async_context(client)
        except aiomqtt.MqttReentrantError:
            raise SinkError(f"mqtt sink: cannot connect to {self.host}:{self.port}: the client is busy") from None
        except aiomqtt.MqttError as exc:
            # the socket of an unanswered attempt (a broker that hangs) is closed here, on the loop
            client.abandon()
            raise SinkError(f"mqtt sink: cannot connect to {self.host}:{self.port}: {_reason(exc)}") from None
        except TimeoutError:
            client.abandon()
            raise SinkError(f"mqtt sink: no answer from {self.host}:{self.port} within {self.timeout:g} s") from None
        self._stack = stack
        _take_disconnect_reason(client)
        # online after connecting, unless the daemon said the port is lost or quiet
        await self._publish(self.plan.status_topic, "offline" if self._online is False else "online", retain=True)

    async def _publish(self, topic: str, payload: str, retain: bool = False) -> None:
        import aiomqtt

        try:
            await self._client.publish(topic, payload, qos=self.qos, retain=retain, timeout=self.timeout)
        except aiomqtt.MqttError as exc:
            raise SinkError(f"mqtt sink: cannot publish to {self.host}:{self.port}: {_reason(exc)}") from None

    async def write(self, entries: Sequence[Entry]) -> None:
        if self._client is None:
            raise SinkError("mqtt sink: not connected")
        # each message waits for its PUBACK (sequential: see the exactly-once note above), at most timeout
        for m in self.plan.messages(entries, self._journal):
            await self._publish(m.topic, m.payload, m.retain)
        self._advance(entries)

    def _mark(self) -> dict[str, Any]:
        return self.plan.mark()

    async def flush(self) -> Checkpoint:
        return Checkpoint(self._journal, self._seq, self._mark())

    async def close(self) -> None:
        stack, client, self._stack, self._client = self._stack, self._client, None, None
        if stack is None:
            return
        # a client that was connected is never reused: paho would re-send its unacknowledged
        # messages on the next connection, and a push must not be published twice
        try:
            async with asyncio.timeout(5.0):
                with contextlib.suppress(Exception):  # best effort: the last will says the same
                    await client.publish(self.plan.status_topic, "offline", qos=1, retain=True, timeout=2.0)
                await stack.aclose()  # disconnects
        except Exception:  # noqa: BLE001 - a hung or lost broker: nothing more to do
            pass
        finally:
            client.abandon()  # a close that timed out leaves the socket open: closed here, on the loop


class MqttsSink(MqttSink):
    """``mqtts://``: MQTT over TLS (port 8883 unless given)."""

    scheme = "mqtts"


def _expire_after(value: Any) -> int | None:
    """``auto`` (three learned push intervals) → None; seconds (0 = off) → int."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    if isinstance(value, bool):
        value = "x"
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = -1
    if seconds < 0 or (isinstance(value, float) and not value.is_integer()):
        raise SinkError(
            f"mqtt sink: expire_after is 'auto' (three push intervals) or whole seconds, 0 = off; got {value!r}"
        )
    return seconds


@functools.cache
def loop_safe_client(aiomqtt: Any) -> type:
    """aiomqtt's ``Client`` with its sockets handed to the event loop only while they are open.

    aiomqtt lets paho connect in an executor thread, whose socket callbacks schedule the loop's
    ``add_reader``/``add_writer`` for the new descriptor.  The loop may close that socket first
    (the broker reset the connection as it was made): registering the closed descriptor then
    raised EBADF in the event loop (module docstring).  Here each registration runs on the loop
    and checks that the socket is still open and still the client's.  :meth:`abandon` closes a
    client's socket on the loop, so that paho never closes it from another thread (a reused
    client in its next connect, or the garbage collector).
    """
    class LoopSafeClient(aiomqtt.Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            _take_disconnect_reason(self)

        def _current(self, sock: Any, fd: int) -> bool:
            return fd >= 0 and sock.fileno() == fd and self._client.socket() is sock

        def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
            fd = sock.fileno()

            def register() -> None:
                if not self._current(sock, fd):
                    return  # closed before the loop got here: nothing to read, no keep-alive to run
                self._loop.add_reader(fd, self._ready, client, sock, False)
                self._misc_task = self._loop.create_task(self._misc_loop())

            self._loop.call_soon_threadsafe(register)

        def _on_socket_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
            fd = sock.fileno()

            def register() -> None:
                if self._current(sock, fd):
                    self._loop.add_writer(fd, self._ready, client, sock, True)

            self._loop.call_soon_threadsafe(register)

        def _ready(self, client: Any, sock: Any, write: bool) -> None:
            """The socket is readable or writable: paho's loop step; a failure ends the connection."""
            try:
                if write:
                    client.loop_write()
                    return
                client.loop_read()
                # a TLS socket may hold decrypted bytes the selector does not see
                while client.socket() is sock and getattr(sock, "pending", lambda: 0)() > 0:
                    client.loop_read()
            except Exception as exc:  # noqa: BLE001 - read by _take_disconnect_reason / __aexit__
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def abandon(self) -> None:
            """Close the socket this client may hold, here on the event loop (idempotent)."""
            if self._client.socket() is not None:
                self._client._sock_close()
            _take_disconnect_reason(self)

    return LoopSafeClient


def _take_disconnect_reason(client: Any) -> None:
    """Read the reason aiomqtt leaves on a client whose broker dropped the connection.

    aiomqtt sets it on a future that only a later publish or the context exit may read, and
    its exit skips it when the connection is already gone (a broker restarted or hanging
    past a close's time limit).  Unread, asyncio reports it when the client is collected, and
    han would log that as an internal error.  The sink has reported the failure already.
    """
    fut = getattr(client, "_disconnected", None)
    if isinstance(fut, asyncio.Future):
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
