"""Home Assistant discovery for P1 meters, through the MQTT sink and a real mosquitto: gas, water, heat, tariffs, kW.

Simulated Fluvius telegrams (gas on channel 1 as 0-1:24.2.3, water on channel 2 as 0-2:24.2.1, both
tariffs, kW power) are parsed into pushes and published by the real sink; a subscriber on the real
broker checks every discovery config against the state messages.  A heat meter (GJ) and registers
whose keys the sensor table does not know are built by hand: the sensors come from OBIS and unit.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
from daemonkit import wait_until
from mqttkit import Subscriber, check_discovery
from servers import mosquitto  # noqa: F401 - session fixture

from decoders.xdlms.dsmr import parse_telegram
from han.p1sim import P1Simulator
from obis.code import Obis
from obis.interpret import InterpretOptions
from obis.interpret.dsmr import telegram_push
from obis.push import Push, Register
from sinks.base import Checkpoint, Entry, create_sink
from sinks.homeassistant import channel_sensors
from sinks.mqtt import MqttPlan

UTC = timezone.utc
T0 = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)


def publish(port: int, pushes: list[Push], prefix: str) -> Subscriber:
    async def main():
        sub = Subscriber(port, topics=(f"{prefix}/#", f"{prefix}_han/#"), name=f"sub-{prefix}")
        await wait_until(sub.subscribed.is_set, "the subscriber")
        sink = create_sink(f"mqtt://127.0.0.1:{port}?prefix={prefix}&topic={prefix}_han")
        await sink.open(Checkpoint("j", 0))
        await sink.write([Entry(i + 1, p.timestamp_utc or T0, p) for i, p in enumerate(pushes)])
        await sink.flush()
        await wait_until(lambda: len(sub.states()) == len(pushes), "a state per push")
        await sink.close()
        await sub.close()
        return sub

    return asyncio.run(main())


def configs_and_states(sub: Subscriber, prefix: str) -> tuple[dict[str, dict], list[dict]]:
    configs: dict[str, dict] = {}
    states: list[dict] = []
    for topic, payload, retained in sub.messages:
        if topic.startswith(f"{prefix}/sensor/"):
            configs[topic.split("/")[3]] = json.loads(payload)
        elif topic.endswith("/state") and not retained:
            state = json.loads(payload)
            for key, c in configs.items():
                node = c["device"]["identifiers"][0]
                check_discovery(f"{prefix}/sensor/{node}/{key}/config", json.dumps(c).encode(), state)
            states.append(state)
    return configs, states


def test_fluvius_gas_water_tariffs_and_kw(mosquitto):
    sim = P1Simulator("fluvius", seed=8)
    pushes = [telegram_push(parse_telegram(t), InterpretOptions()) for t in sim.frames(T0, 60.0, 12)]
    configs, states = configs_and_states(publish(mosquitto.port, pushes, "ha_p1"), "ha_p1")
    gas, water = configs["gas"], configs["water"]
    assert (gas["device_class"], gas["unit_of_measurement"], gas["state_class"]) == ("gas", "m³", "total_increasing")
    assert (water["device_class"], water["unit_of_measurement"], water["state_class"]) == (
        "water", "m³", "total_increasing")
    assert gas["enabled_by_default"] and water["enabled_by_default"] and gas["name"] == "Gas"
    for t in ("active_energy_import_t1", "active_energy_import_t2", "active_energy_export_t1", "active_energy_export_t2"):
        c = configs[t]
        assert (c["device_class"], c["unit_of_measurement"], c["state_class"]) == ("energy", "kWh", "total_increasing")
        assert c["enabled_by_default"]
    power = configs["active_power_import"]
    assert (power["device_class"], power["unit_of_measurement"], power["state_class"]) == ("power", "kW", "measurement")
    last = states[-1]
    assert last["gas"] == pushes[-1].register("0-1:24.2.3").value
    assert last["water"] == pushes[-1].register("0-2:24.2.1").value
    assert last["active_energy_import_t1"] == pushes[-1].register("1-0:1.8.1").value
    assert "gas_reading" not in last  # the water meter is not published as gas
    assert len({s["gas"] for s in states}) >= 2  # a new reading every 5 minutes


def _reg(i: int, code: str, value, unit: str | None, key: str | None = None) -> Register:
    return Register(Obis.parse(code), None, value, unit, str(value), "p1", None, i, key)


def test_heat_in_gj_and_unknown_keys_by_obis(mosquitto):
    """A heat meter on channel 1 (device type 4, GJ) and electricity registers named by a table of their own."""
    pushes = []
    for n in range(3):
        regs = [
            _reg(0, "0-0:96.1.1", "HEATLINK0001", None, "equipment_identifier"),
            _reg(1, "1-0:1.8.1", 100.0 + n, "kWh", "electricity_used_tariff_1"),
            _reg(2, "1-0:1.8.2", 50.0 + n, "kWh", "electricity_used_tariff_2"),
            _reg(3, "1-0:1.7.0", 0.75, "kW", None),
            _reg(4, "0-1:24.1.0", 4, None, "mbus_device_type"),
            _reg(5, "0-1:24.2.1", 240.86 + n / 100, "GJ", "hourly_reading"),
        ]
        pushes.append(Push(registers=tuple(regs), list_id=None, profile=None, meter_time=None,
                           invoke_id_and_priority=0, security=None, meter_id="HEATLINK0001",
                           timestamp_utc=T0 + timedelta(seconds=10 * n)))
    configs, states = configs_and_states(publish(mosquitto.port, pushes, "ha_heat"), "ha_heat")
    heat = configs["heat"]
    assert (heat["device_class"], heat["unit_of_measurement"], heat["state_class"]) == ("energy", "GJ", "total_increasing")
    assert configs["active_energy_import_t1"]["unit_of_measurement"] == "kWh"
    assert configs["active_power_import"]["unit_of_measurement"] == "kW"
    last = states[-1]
    assert last["heat"] == pytest.approx(240.88) and last["active_energy_import_t2"] == 52.0 and last["active_power_import"] == 0.75
    assert last["mbus_device_type"] == 4  # other values are in the state as before
    assert "hourly_reading" not in last and "electricity_used_tariff_1" not in last


def test_channel_media_come_from_the_device_type_table():
    def push(*regs):
        return Push(registers=tuple(_reg(i, *r) for i, r in enumerate(regs)), list_id=None, profile=None,
                    meter_time=None, invoke_id_and_priority=0, security=None)

    two_water = push(("0-1:24.1.0", 7, None), ("0-1:24.2.1", 1.0, "m3"), ("0-2:24.1.0", 7, None),
                     ("0-2:24.2.1", 2.0, "m3"))
    assert {k for k, _ in channel_sensors(two_water).values()} == {"water_1", "water_2"}
    no_type = push(("0-1:24.2.1", 1.0, "m3", "gas_reading"), ("0-2:24.2.3", 2.0, "m3"))
    kinds = {k: kind.device_class for k, kind in channel_sensors(no_type).values()}
    assert kinds == {"gas_reading": None, "gas": "gas"}  # no device type: only e-MUCS's 24.2.3 names its medium
    plan = MqttPlan(prefix="ha", topic="t")
    msgs = plan.messages([Entry(1, T0, no_type, "M", "M")])
    config = next(json.loads(m.payload) for m in msgs if m.topic == "ha/sensor/han_M/gas_reading/config")
    assert "device_class" not in config and config["unit_of_measurement"] == "m³"
