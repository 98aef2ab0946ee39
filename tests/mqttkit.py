"""A real MQTT subscriber and the Home Assistant discovery checker, shared by the MQTT tests."""

from __future__ import annotations

import asyncio
import json
import re

import aiomqtt

TOPIC = re.compile(r"^(?P<prefix>[^/#+]+)/sensor/(?P<node>[a-zA-Z0-9_-]+)/(?P<object>[a-zA-Z0-9_-]+)/config$")
#: device class -> units HA accepts for it
UNITS = {
    "energy": {"Wh", "kWh", "MWh", "GJ"},
    "gas": {"m³"},
    "water": {"m³"},
    "reactive_energy": {"varh", "kvarh"},
    "power": {"W", "kW"},
    "reactive_power": {"var", "kvar"},
    "apparent_power": {"VA"},
    "voltage": {"V", "mV"},
    "current": {"A", "mA"},
    "power_factor": {None, "%"},
    "frequency": {"Hz"},
}
STATE_CLASSES = {"energy": {"total", "total_increasing"}, "reactive_energy": {"total", "total_increasing"},
                 "gas": {"total", "total_increasing"}, "water": {"total", "total_increasing"}}
#: the issue's main sensors: enabled by default; every other sensor comes disabled
MAIN = {"active_energy_import", "active_energy_export", "active_power_import", "active_power_export",
        "voltage", "voltage_l1", "voltage_l2", "voltage_l3", "current", "current_l1", "current_l2", "current_l3",
        # P1 meters: the tariffs (no total is sent) and the M-Bus channels' meters
        "active_energy_import_t1", "active_energy_import_t2", "active_energy_export_t1", "active_energy_export_t2",
        "gas", "water", "heat"}
MAKERS = {"Aidon", "Kaifa", "Kamstrup", "Landis+Gyr", "Iskraemeco", "Sagemcom", "Siemens"}


def check_discovery(topic: str, payload: bytes, state: dict) -> dict:
    m = TOPIC.match(topic)
    assert m, f"discovery topic {topic!r}"
    c = json.loads(payload)
    for k in ("name", "unique_id", "state_topic", "value_template", "device_class", "state_class", "device", "origin"):
        assert k in c, f"{topic}: {k} missing"
    assert "object_id" not in c, "object_id is deprecated since HA 2025.10: default_entity_id"
    assert c["default_entity_id"] == f"sensor.{c['unique_id']}"
    assert c["device_class"] in UNITS, c["device_class"]
    assert c.get("unit_of_measurement") in UNITS[c["device_class"]], (topic, c.get("unit_of_measurement"))
    assert c["state_class"] in STATE_CLASSES.get(c["device_class"], {"measurement"}), (topic, c["state_class"])
    assert c["device"]["identifiers"] == [m["node"]] and c["device"]["name"]
    assert c["origin"]["name"] == "han"
    assert c["availability_topic"] and c["payload_available"] == "online"
    # a key the state lacks renders "None": the sensor shows unknown (no template error)
    key = re.fullmatch(r"\{\{ value_json\.([a-z0-9_]+) \| default\(none\) \}\}", c["value_template"])[1]
    assert key == m["object"] and key in state, f"{topic}: the state message has no {key}"
    assert c["enabled_by_default"] is (key in MAIN), (topic, c["enabled_by_default"])
    if "expire_after" in c:
        assert c["state_class"] == "measurement" and isinstance(c["expire_after"], int) and c["expire_after"] > 0
    if "manufacturer" in c["device"]:
        assert c["device"]["manufacturer"] in MAKERS, c["device"]["manufacturer"]
    return c


class Subscriber:
    """A real MQTT client on the broker, with a persistent session so it survives a broker restart."""

    def __init__(self, port: int, topics=("homeassistant/#", "han/#"), name: str = "han-test-sub") -> None:
        self.port, self.topics, self.name = port, topics, name
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = asyncio.Event()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        clean = True  # the first connection starts a fresh session; reconnections resume it
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, identifier=self.name, clean_session=clean) as c:
                    clean = False
                    for t in self.topics:
                        await c.subscribe(t, qos=1)
                    self.subscribed.set()
                    async for msg in c.messages:
                        self.messages.append((str(msg.topic), bytes(msg.payload), bool(msg.retain)))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    def states(self) -> list[dict]:
        """State messages as published (not the retained copy a (re)subscription brings)."""
        return [json.loads(p) for t, p, r in self.messages if t.endswith("/state") and not r]

    def last(self, topic: str) -> bytes | None:
        found = [p for t, p, _ in self.messages if t == topic]
        return found[-1] if found else None

    async def close(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
