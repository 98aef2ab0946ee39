"""``mqtt://[USER[:PASSWORD]@]HOST[:PORT]?prefix=homeassistant&topic=han``: MQTT with Home Assistant discovery.

Per push, one JSON state message on ``<topic>/<node>/state`` (QoS 1, retained)::

    {"time": "2026-01-15T11:00:00Z", "journal": "9c1f…", "seq": 1042, "invocation_counter": 1041,
     "active_power_import": 297, "active_energy_import": 9643.721, ...}

``<node>`` is ``han_<meter number>``, else ``han_<meter>`` (the system title or
the configured name): a short list that sends no meter number belongs to the
device of its port's meter (``Entry.meter_id``, ``Entry.meter``).  Energy in Wh is sent
in kWh.  For every register Home Assistant knows a sensor for, a retained
discovery config goes to ``<prefix>/sensor/<node>/<key>/config`` with device
info, ``device_class``, ``state_class`` and unit: energy ``total_increasing``
in kWh (the Energy dashboard accepts them), power, voltage, current, power
factor and frequency ``measurement``.  ``<topic>/status`` is the availability
topic: ``online`` (retained) after connecting, ``offline`` as the last will
and at a clean stop.  ``prefix=`` (empty) turns discovery off.

A cumulative value (``total_increasing``) that is lower than one already
published is left out of the state message with a warning: Home Assistant
would count it as a meter reset.  The highest values are kept in the sink's
checkpoint, so this holds across restarts.

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
the call after ``timeout`` seconds instead of hanging the sink.  A client whose
connection attempt went unanswered is reused for the next attempt (aiomqtt's
client is reusable), so that attempt closes the socket the last one left open;
a client that was connected is not (paho would re-send its unacknowledged
messages on a new connection: a push published twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import Checkpoint, Entry, Sink, SinkError, iso_utc, secret, time_utc

log = logging.getLogger("han.sink")


@dataclass(frozen=True)
class SensorKind:
    device_class: str
    state_class: str
    unit: str | None  #: unit published (None: no unit)
    units_in: tuple[str | None, ...]  #: register units accepted
    factor: float = 1.0  #: register value × factor = published value


_ENERGY_KWH = SensorKind("energy", "total_increasing", "kWh", ("Wh",), 0.001)
#: (key pattern, kind); the register's unit must be one of ``units_in``
SENSORS: tuple[tuple[re.Pattern[str], SensorKind], ...] = (
    (re.compile(r"active_energy_.*"), _ENERGY_KWH),
    (re.compile(r"active_energy_.*"), SensorKind("energy", "total_increasing", "kWh", ("kWh",))),
    (re.compile(r"reactive_energy_.*"), SensorKind("reactive_energy", "total_increasing", "kvarh", ("varh",), 0.001)),
    (re.compile(r"reactive_energy_.*"), SensorKind("reactive_energy", "total_increasing", "kvarh", ("kvarh",))),
    (re.compile(r"active_power_.*"), SensorKind("power", "measurement", "W", ("W",))),
    (re.compile(r"active_power_.*"), SensorKind("power", "measurement", "kW", ("kW",))),
    (re.compile(r"reactive_power_.*"), SensorKind("reactive_power", "measurement", "var", ("var",))),
    (re.compile(r"apparent_power_.*"), SensorKind("apparent_power", "measurement", "VA", ("VA",))),
    (re.compile(r"voltage(_l[123])?"), SensorKind("voltage", "measurement", "V", ("V",))),
    (re.compile(r"current(_l[123]|_neutral)?"), SensorKind("current", "measurement", "A", ("A",))),
    (re.compile(r"power_factor(_l[123])?"), SensorKind("power_factor", "measurement", None, (None,))),
    (re.compile(r"frequency"), SensorKind("frequency", "measurement", "Hz", ("Hz",))),
)


def sensor_kind(key: str | None, unit: str | None) -> SensorKind | None:
    if not key:
        return None
    for pattern, kind in SENSORS:
        if pattern.fullmatch(key) and unit in kind.units_in:
            return kind
    return None


def node_id(entry: Entry) -> str:
    """``han_<meter number>``, else ``han_<meter>``: one Home Assistant device per meter, for all its lists."""
    return "han_" + re.sub(r"[^A-Za-z0-9_-]+", "_", entry.meter_id or entry.meter)


def sensor_name(key: str) -> str:
    """``active_power_import_l1`` → ``Active power import L1``."""
    words = [w.upper() if re.fullmatch(r"l[123]|q[1-4]", w) else w for w in key.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


@dataclass
class Message:
    topic: str
    payload: str
    retain: bool = False


class MqttPlan:
    """Sans-IO: which messages a batch of pushes becomes (discovery once per connection, state per push)."""

    def __init__(self, *, prefix: str, topic: str, expire_after: int = 0, version: str = "") -> None:
        self.prefix = prefix.strip("/")
        self.topic = topic.strip("/")
        self.expire_after = expire_after
        self.version = version
        self.totals: dict[str, dict[str, float]] = {}  #: node -> key -> highest cumulative value published
        self.announced: dict[str, set[str]] = {}  #: node -> keys whose discovery config is out (this connection)
        self.warned: set[tuple[str, str]] = set()

    @property
    def status_topic(self) -> str:
        return f"{self.topic}/status"

    def connected(self) -> None:
        """A new connection: discovery configs are published again (Home Assistant may have restarted too)."""
        self.announced.clear()

    def messages(self, entries: Sequence[Entry], journal: str = "") -> list[Message]:
        out: list[Message] = []
        for e in entries:
            node = node_id(e)
            state: dict[str, Any] = {"time": iso_utc(time_utc(e.push, e.received))}
            # the push's identity: the journal position (exactly-once after a reconnect) and the meter's counter
            if journal:
                state["journal"] = journal
                state["seq"] = e.seq
            if e.push.security is not None:
                state["invocation_counter"] = e.push.security.invocation_counter
            new_keys = []
            for r in e.push.registers:
                if not r.key or r.key == "clock" or r.value is None:
                    continue
                kind = sensor_kind(r.key, r.unit)
                value = r.value
                if kind is not None and isinstance(value, (int, float)) and kind.factor != 1.0:
                    value = round(value * kind.factor, 6)
                elif not isinstance(value, (int, float, str)):
                    value = str(value)
                if kind is not None and kind.state_class == "total_increasing" and isinstance(value, (int, float)):
                    seen = self.totals.setdefault(node, {})
                    last = seen.get(r.key)
                    if last is not None and value < last:
                        if (node, r.key) not in self.warned:
                            self.warned.add((node, r.key))
                            log.warning(
                                "mqtt: %s %s went down from %s to %s; not published (Home Assistant would count"
                                " a meter reset)",
                                node,
                                r.key,
                                last,
                                value,
                            )
                        continue
                    self.warned.discard((node, r.key))
                    seen[r.key] = value
                state[r.key] = value
                if kind is not None and self.prefix and r.key not in self.announced.get(node, set()):
                    new_keys.append((r.key, kind))
            for key, kind in new_keys:
                out.append(Message(*self.discovery(e, node, key, kind), retain=True))
                self.announced.setdefault(node, set()).add(key)
            out.append(Message(self.state_topic(node), json.dumps(state, separators=(",", ":")), retain=True))
        return out

    def state_topic(self, node: str) -> str:
        return f"{self.topic}/{node}/state"

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

    def discovery(self, entry: Entry, node: str, key: str, kind: SensorKind) -> tuple[str, str]:
        config: dict[str, Any] = {
            "name": sensor_name(key),
            "unique_id": f"{node}_{key}",
            "default_entity_id": f"sensor.{node}_{key}",
            "state_topic": self.state_topic(node),
            "value_template": f"{{{{ value_json.{key} }}}}",
            "device_class": kind.device_class,
            "state_class": kind.state_class,
            "availability_topic": self.status_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device_info(entry, node),
            "origin": {"name": "han", **({"sw_version": self.version} if self.version else {})},
        }
        if kind.unit:
            config["unit_of_measurement"] = kind.unit
        if kind.device_class == "energy":
            config["suggested_display_precision"] = 3
        if self.expire_after:
            config["expire_after"] = self.expire_after
        return f"{self.prefix}/sensor/{node}/{key}/config", json.dumps(config, separators=(",", ":"))


def device_info(entry: Entry, node: str) -> dict[str, Any]:
    """The device of the push's meter (the same for every list it pushes, so no list's config renames it)."""
    push = entry.push
    info: dict[str, Any] = {"identifiers": [node], "name": f"Electricity meter {entry.meter_id or entry.meter}"}
    st = push.security.system_title if push.security is not None else None
    if st and st[:3].isalpha():
        info["manufacturer"] = st[:3].decode("ascii")  # the FLAG id: KAM (Kamstrup), AIE, KFM, LGZ ...
    if push.meter_id and (push.profile or push.list_id):
        info["model"] = push.profile or push.list_id  # only from a list that names the meter: not a short list's
    if entry.meter_id:
        info["serial_number"] = entry.meter_id
    return info


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
        expire_after: int | None = None,
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
            expire = int(pick("expire_after", expire_after, 0))
        except ValueError:
            raise SinkError("mqtt sink: qos and expire_after are numbers") from None
        if self.qos not in (0, 1, 2):
            raise SinkError("mqtt sink: qos must be 0, 1 or 2")
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
        self._mqtt: Any = None  #: an aiomqtt.Client that never connected, for the next attempt
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
        totals = resume.mark.get("totals")
        if isinstance(totals, Mapping):
            for node, values in totals.items():
                if isinstance(values, Mapping):
                    self.plan.totals.setdefault(str(node), {}).update(
                        {str(k): v for k, v in values.items() if isinstance(v, (int, float))}
                    )
        try:
            import aiomqtt
        except ImportError:
            raise SinkError("mqtt sink: needs aiomqtt: pip install 'han-logger[mqtt]'") from None
        await self._connect(aiomqtt)
        self.plan.connected()
        seq = ckpt.seq
        if ckpt.journal:
            retained = await self._retained(aiomqtt)
            seq = max(seq, self.plan.delivered(retained, ckpt.journal))
            self._seq = seq
        return Checkpoint(ckpt.journal, seq, self._mark())

    async def _retained(self, aiomqtt: Any) -> list[bytes]:
        """The retained state messages the broker holds under ``<topic>/+/state``.

        Retained messages come right after the SUBACK; a message to a topic of our
        own, subscribed to after them and published by us, comes back after all of
        them (the broker handles one client's packets in order), so it ends the list.
        """
        import secrets as _secrets

        pattern = self.plan.state_topic("+")
        marker = f"{self.plan.topic}/sync/{_secrets.token_hex(8)}"
        found: list[bytes] = []
        try:
            await self._client.subscribe(pattern, qos=1, timeout=self.timeout)
            await self._client.subscribe(marker, qos=1, timeout=self.timeout)
            await self._client.publish(marker, "sync", qos=1, timeout=self.timeout)
            async with asyncio.timeout(self.timeout):
                async for m in self._client.messages:
                    if str(m.topic) == marker:
                        break
                    if m.retain and isinstance(m.payload, (bytes, bytearray)):
                        found.append(bytes(m.payload))
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
        return aiomqtt.Client(
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
        client, self._mqtt = self._mqtt or self._new_client(aiomqtt), None
        stack = contextlib.AsyncExitStack()
        try:
            # aiomqtt waits ``timeout`` for the CONNACK itself; this outer bound also covers the TCP connect
            async with asyncio.timeout(self.timeout + 10.0):
                self._client = await stack.enter_async_context(client)
        except aiomqtt.MqttReentrantError:
            raise SinkError(f"mqtt sink: cannot connect to {self.host}:{self.port}: the client is busy") from None
        except aiomqtt.MqttError as exc:
            # never connected, so nothing was published on it: the next attempt reuses this client,
            # and its connect closes the socket this attempt may have left open (a broker that hangs)
            self._mqtt = client
            raise SinkError(f"mqtt sink: cannot connect to {self.host}:{self.port}: {_reason(exc)}") from None
        except TimeoutError:
            raise SinkError(f"mqtt sink: no answer from {self.host}:{self.port} within {self.timeout:g} s") from None
        self._stack = stack
        await self._publish(self.plan.status_topic, "online", retain=True)

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
        return {"totals": {node: dict(v) for node, v in self.plan.totals.items()}}

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


class MqttsSink(MqttSink):
    """``mqtts://``: MQTT over TLS (port 8883 unless given)."""

    scheme = "mqtts"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
