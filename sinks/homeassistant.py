"""Home Assistant MQTT discovery, as data: which sensor a register becomes, and which device a meter is.

Used by :mod:`sinks.mqtt`; sans-IO (dicts in, dicts out).  The conventions are
Home Assistant's MQTT discovery and sensor documentation: a device class with
the units it accepts, a state class (``measurement`` for power, voltage,
current ...; ``total_increasing`` for the meter's energy registers, which the
Energy dashboard takes), and a device that groups the sensors of one meter.

A register becomes a sensor by its key and unit (:data:`SENSORS`), or by its OBIS code and unit:
the meters on a P1 meter's M-Bus channels (gas and water in m³, heat in GJ: :data:`CHANNEL_SENSORS`,
the medium from the channel's device type) and electricity registers a table named otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from obis.names import MANUFACTURERS, obis_name
from obis.profiles import profile_by_name
from obis.push import Push


@dataclass(frozen=True)
class SensorKind:
    device_class: str | None  #: None: a sensor without a device class (a reading whose medium is not known)
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

# -- meters on the M-Bus channels of a P1 meter (gas, water, heat), by OBIS and unit ---------------------------
#: M-Bus device types (EN 13757-3; the 0-n:24.1.0 object of channel n) -> the medium its reading measures
MBUS_MEDIA: dict[int, str] = {
    2: "electricity", 3: "gas", 4: "heat", 6: "water", 7: "water", 12: "heat", 13: "heat", 21: "water", 22: "water",
}
#: (C, D) of a channel's reading with its own time stamp: 0-n:24.2.E (DSMR 4/5 24.2.1; e-MUCS gas 24.2.3)
CHANNEL_READING = (24, 2)
#: (C, D, E) of a channel's device type
CHANNEL_TYPE = (24, 1, 0)
#: E of a reading whose medium the code itself names, when the channel's device type is not sent (e-MUCS 24.2.3: gas)
READING_MEDIA: dict[int, str] = {3: "gas"}
_M3 = ("m3", "m³", "M3")
#: (medium or None when unknown, register unit) -> the sensor; a heat meter's GJ is heat whatever the channel says
CHANNEL_SENSORS: dict[tuple[str | None, str], SensorKind] = {
    ("gas", "m3"): SensorKind("gas", "total_increasing", "m³", _M3),
    ("water", "m3"): SensorKind("water", "total_increasing", "m³", _M3),
    ("heat", "GJ"): SensorKind("energy", "total_increasing", "GJ", ("GJ",)),
    ("heat", "kWh"): SensorKind("energy", "total_increasing", "kWh", ("kWh",)),
    ("heat", "MWh"): SensorKind("energy", "total_increasing", "MWh", ("MWh",)),
    ("electricity", "kWh"): SensorKind("energy", "total_increasing", "kWh", ("kWh",)),
    (None, "GJ"): SensorKind("energy", "total_increasing", "GJ", ("GJ",)),
    (None, "m3"): SensorKind(None, "total_increasing", "m³", _M3),
}
_UNIT_FORM = {"m³": "m3", "M3": "m3", "gj": "GJ", "kwh": "kWh", "mwh": "MWh"}

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
    "gas": "2024.2",
    "water": "2024.2",
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
        # a P1 meter's tariffs (it sends no total register) and the meters on its M-Bus channels
        "active_energy_import_t1",
        "active_energy_import_t2",
        "active_energy_export_t1",
        "active_energy_export_t2",
        "gas",
        "water",
        "heat",
    }
)


def sensor_kind(key: str | None, unit: str | None) -> SensorKind | None:
    if not key:
        return None
    for pattern, kind in SENSORS:
        if pattern.fullmatch(key) and unit in kind.units_in:
            return kind
    return None


def channel_media(push: Push) -> dict[int, str | None]:
    """M-Bus channel -> its medium (from the 0-n:24.1.0 device type the push sends; None when unknown)."""
    media: dict[int, str | None] = {}
    for r in push.registers:
        o = r.obis
        if o is not None and o.a == 0 and (o.c, o.d, o.e) == CHANNEL_TYPE and o.b:
            v = r.value
            try:
                media[o.b] = MBUS_MEDIA.get(int(v))
            except (TypeError, ValueError):
                media[o.b] = None
    return media


def channel_sensors(push: Push) -> dict[int, tuple[str, SensorKind]]:
    """Register position -> (state key, sensor) of the push's M-Bus channel readings (gas, water, heat).

    Keyed by OBIS and unit through the tables above, whatever the meter: the medium from the
    channel's device type, else from the reading's code (e-MUCS 24.2.3), else from the unit (GJ).
    The state key is the medium (``gas``, ``water``, ``heat``), with the channel when two channels
    of one push share a medium (``water_2``); a reading of an unknown medium keeps its own key.
    """
    readings = []
    media: dict[int, str | None] | None = None
    for r in push.registers:
        o = r.obis
        if o is None or o.a != 0 or (o.c, o.d) != CHANNEL_READING or not o.b:
            continue
        if media is None:
            media = channel_media(push)
        medium = media.get(o.b) or READING_MEDIA.get(o.e)
        unit = _UNIT_FORM.get(r.unit or "", r.unit or "")
        kind = CHANNEL_SENSORS.get((medium, unit))
        if kind is None and medium is not None:
            kind = CHANNEL_SENSORS.get((None, unit))
            medium = "heat" if kind is not None and kind.device_class == "energy" else None
        if kind is None:
            continue
        readings.append((r, o.b, medium, kind))
    out: dict[int, tuple[str, SensorKind]] = {}
    counts: dict[str | None, int] = {}
    for _, _, medium, _ in readings:
        counts[medium] = counts.get(medium, 0) + 1
    for r, channel, medium, kind in readings:
        if medium is None:
            key = r.key or f"mbus_{channel}_reading"
        else:
            key = medium if counts[medium] == 1 else f"{medium}_{channel}"
        out[r.position] = (key, kind)
    return out


def sensor_of(register: Any, channels: dict[int, tuple[str, SensorKind]]) -> tuple[str, SensorKind] | None:
    """(state key, sensor) of one register, or None when it is not a sensor Home Assistant knows.

    An M-Bus channel reading (see :func:`channel_sensors`); else by the register's key and unit; else,
    for an electricity register whose key is not one of the table's, by the generic name of its
    OBIS code (a P1 table's 1-0:1.8.1 in kWh is ``active_energy_import_t1``).
    """
    hit = channels.get(register.position) if channels else None
    if hit is not None:
        return hit
    key = register.key
    kind = sensor_kind(key, register.unit)
    if kind is not None:
        return key, kind
    o = register.obis
    if o is not None and o.a == 1:
        generic = obis_name(o)
        if generic is not None and generic.key != key:
            kind = sensor_kind(generic.key, register.unit)
            if kind is not None:
                return generic.key, kind
    return None


_CHANNEL_KEY = re.compile(rf"({'|'.join(sorted(set(MBUS_MEDIA.values())))})(_\d+)?")


def is_total(key: str) -> bool:
    """A cumulative register (Home Assistant counts a lower value as a meter reset)."""
    if _CHANNEL_KEY.fullmatch(key):  # an M-Bus channel's meter reading: gas, water_2 ...
        return True
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
        "state_class": kind.state_class,
        "availability_topic": status_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
        "enabled_by_default": key in MAIN_SENSORS,
        "device": device,
        "origin": origin,
    }
    if kind.device_class:
        config["device_class"] = kind.device_class
    if kind.unit:
        config["unit_of_measurement"] = kind.unit
    if kind.device_class == "energy":
        config["suggested_display_precision"] = 3
    if expire_after and kind.state_class == "measurement":
        config["expire_after"] = expire_after
    return config
