"""Home Assistant MQTT discovery, as data: which sensor a register becomes, and which device a meter is.

Used by :mod:`sinks.mqtt`; sans-IO (dicts in, dicts out).  The conventions are
Home Assistant's MQTT discovery and sensor documentation: a device class with
the units it accepts, a state class (``measurement`` for power, voltage,
current ...; ``total_increasing`` for the meter's energy registers, which the
Energy dashboard takes), and a device that groups the sensors of one meter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from obis.names import MANUFACTURERS
from obis.profiles import profile_by_name
from obis.push import Push


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

#: the Home Assistant version each device class needs, as han publishes it (README, docs/sinks.md).
#: Every config carries the device's serial number, which MQTT discovery accepts since 2024.2
#: (an older version rejects the whole config); reactive energy became a device class in 2025.6.
NEEDS_HOME_ASSISTANT: dict[str, str] = {
    "energy": "2024.2",
    "power": "2024.2",
    "voltage": "2024.2",
    "current": "2024.2",
    "power_factor": "2024.2",
    "frequency": "2024.2",
    "apparent_power": "2024.2",
    "reactive_power": "2024.2",
    "reactive_energy": "2025.6",
}

#: sensors enabled when Home Assistant first sees them; the rest come disabled (the user may enable them)
MAIN_SENSORS = frozenset(
    {
        "active_energy_import",
        "active_energy_export",
        "active_power_import",
        "active_power_export",
        "voltage",
        "voltage_l1",
        "voltage_l2",
        "voltage_l3",
        "current",
        "current_l1",
        "current_l2",
        "current_l3",
    }
)


def sensor_kind(key: str | None, unit: str | None) -> SensorKind | None:
    if not key:
        return None
    for pattern, kind in SENSORS:
        if pattern.fullmatch(key) and unit in kind.units_in:
            return kind
    return None


def is_total(key: str) -> bool:
    """A cumulative register (Home Assistant counts a lower value as a meter reset)."""
    return any(k.state_class == "total_increasing" and p.fullmatch(key) for p, k in SENSORS)


def sensor_name(key: str) -> str:
    """``active_power_import_l1`` → ``Active power import L1``."""
    words = [w.upper() if re.fullmatch(r"l[123]|q[1-4]", w) else w for w in key.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def value_template(key: str) -> str:
    """Reads one key of the state message; a key the message lacks gives ``unknown``, not a template error."""
    return f"{{{{ value_json.{key} | default(none) }}}}"


# -- the device ------------------------------------------------------------------------------
def manufacturer(push: Push) -> str | None:
    """The maker's name: from the FLAG id of the system title, else the profile's, else the list id.

    A plain Norwegian list has no system title: ``KFM_001`` starts with Kaifa's
    FLAG id, ``AIDON_V0001`` and ``Kamstrup_V0001`` with the maker's name.
    """
    flags: list[str] = []
    s = push.security
    if s is not None and s.manufacturer:
        flags.append(s.manufacturer.upper())
    profile = profile_by_name(push.profile) if push.profile else None
    if profile is not None:
        flags += [f for f in (profile.manufacturer, *profile.manufacturers) if f]
    for flag in flags:
        if flag in MANUFACTURERS:
            return MANUFACTURERS[flag]
    list_id = (push.list_id or "").upper()
    if list_id:
        for flag, name in MANUFACTURERS.items():
            if list_id.startswith(flag) or list_id.startswith(name.upper()):
                return name
    return None


def meter_type(push: Push) -> str | None:
    """The meter type register (0.0.96.1.7.255, 1.0.96.1.1.255), when the list sends it."""
    for r in push.registers:
        if r.key == "meter_type" and isinstance(r.value, (str, int)) and str(r.value).strip():
            return str(r.value).strip()
    return None


@dataclass
class Device:
    """What is known of one meter, from all its lists (a short list names neither maker nor model).

    The model is the meter type once any list sent it, else the first list id seen:
    lists that differ must not rename the device on every push.
    """

    node: str
    name: str
    manufacturer: str | None = None
    meter_type: str | None = None
    list_id: str | None = None
    serial_number: str | None = None

    FIELDS = ("manufacturer", "meter_type", "list_id", "serial_number")

    @property
    def model(self) -> str | None:
        return self.meter_type or self.list_id

    def learn(self, push: Push, meter_id: str | None) -> bool:
        """Take what this push tells; True when the device info changed (its configs go out again)."""
        before = self.info()
        self.manufacturer = manufacturer(push) or self.manufacturer
        self.meter_type = meter_type(push) or self.meter_type
        self.list_id = self.list_id or push.list_id or None
        self.serial_number = meter_id or self.serial_number
        return self.info() != before

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"identifiers": [self.node], "name": self.name}
        for k, v in (("manufacturer", self.manufacturer), ("model", self.model), ("serial_number", self.serial_number)):
            if v:
                info[k] = v
        return info

    def to_json(self) -> dict[str, str]:
        return {k: v for k in self.FIELDS if (v := getattr(self, k))}

    def load(self, data: Any) -> None:
        """Fill in what a checkpoint knew (what this run learned already wins)."""
        if isinstance(data, dict):
            for k in self.FIELDS:
                if isinstance(data.get(k), str) and getattr(self, k) is None:
                    setattr(self, k, data[k])


def sensor_config(
    *,
    node: str,
    key: str,
    kind: SensorKind,
    state_topic: str,
    status_topic: str,
    device: dict[str, Any],
    origin: dict[str, Any],
    expire_after: int | None,
) -> dict[str, Any]:
    """The discovery config of one sensor (``<prefix>/sensor/<node>/<key>/config``)."""
    config: dict[str, Any] = {
        "name": sensor_name(key),
        "unique_id": f"{node}_{key}",
        "default_entity_id": f"sensor.{node}_{key}",
        "state_topic": state_topic,
        "value_template": value_template(key),
        "device_class": kind.device_class,
        "state_class": kind.state_class,
        "availability_topic": status_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
        "enabled_by_default": key in MAIN_SENSORS,
        "device": device,
        "origin": origin,
    }
    if kind.unit:
        config["unit_of_measurement"] = kind.unit
    if kind.device_class == "energy":
        config["suggested_display_precision"] = 3
    if expire_after and kind.state_class == "measurement":
        config["expire_after"] = expire_after
    return config
