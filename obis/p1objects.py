"""The COSEM objects of P1 text telegrams, per specification, as data.

Every object a P1 specification lists (DSMR 2.2 to 5.0.2, Fluvius e-MUCS,
Luxembourg Smarty, the Swedish HAN port, and the variants users meet: EasyMeter
Q3D, Iskra IE, E.ON Hungary, Sagemcom T210-D-r) with the kind of value it
carries; dsmr_parser's specifications were the checklist for completeness.
Names and keys of the electricity quantities (``1-0:C.D.E``) come from
:mod:`obis.names`, so a P1 meter's registers carry the keys a DLMS meter's do.

``n`` in a code stands for an M-Bus channel (1-4).  Kinds (how
:mod:`obis.interpret.dsmr` reads the values):

    num    (001234.567*kWh) or (00015): a number, with the telegram's unit
    text   (0001): kept as text (tariff codes, versions, serial numbers)
    hex    (4B38...): hex-coded text, decoded when it is printable ASCII
    time   (YYMMDDhhmmssX): the meter's local time (X: S summer, W winter)
    timed  (YYMMDDhhmmssX)(value*unit): a value with its own time stamp
    gas3   (time)(00)(60)(1)(0-n:24.2.1)(m3) + (value) on the next line (DSMR 2.2/3)
    log    (count)(buffer OBIS)...(entries): a profile-generic buffer (power failures,
           monthly peaks), or (time)(value)(value)... a billing snapshot
"""

from __future__ import annotations

from typing import NamedTuple

NUM, TEXT, HEX, TIME, TIMED, GAS3, LOG = "num", "text", "hex", "time", "timed", "gas3", "log"


class P1Object(NamedTuple):
    code: str  #: ``A-B:C.D.E``, ``n`` for the M-Bus channel
    kind: str
    name: str | None = None  #: None: the name of :mod:`obis.names`
    key: str | None = None


#: what each object means, whichever specification lists it
OBJECTS: tuple[P1Object, ...] = (
    # -- the telegram and the meter
    P1Object("1-3:0.2.8", TEXT, "Version information", "version"),
    P1Object("0-0:96.1.4", TEXT, "Version information (Belgium)", "version_be"),
    P1Object("0-0:1.0.0", TIME, "Clock", "clock"),
    P1Object("0-0:96.1.1", HEX, "Equipment identifier", "equipment_id"),
    P1Object("0-0:96.1.0", HEX, "Equipment serial number", "serial_number"),
    P1Object("0-0:42.0.0", HEX, "Logical device name", "logical_device_name"),
    P1Object("1-0:0.0.0", TEXT, "Equipment identifier", "device_id"),
    P1Object("0-0:96.1.255", TEXT, "Serial number", "serial_number"),
    P1Object("1-0:96.5.5", TEXT, "Device state", "device_state"),
    P1Object("0-0:96.14.0", TEXT, "Tariff indicator", "tariff"),
    P1Object("0-0:96.3.10", NUM, "Breaker state", "disconnector_state"),
    P1Object("0-0:17.0.0", NUM, "Limiter threshold", "limiter_threshold"),
    P1Object("0-0:96.13.0", HEX, "Text message", "text_message"),
    P1Object("0-0:96.13.1", HEX, "Message code", "message_code"),
    # -- energy registers (Wh/kWh, varh/kvarh): names and keys from obis.names
    *(P1Object(f"1-0:{c}.8.{e}", NUM) for c in (1, 2, 3, 4) for e in (0, 1, 2, 3, 4)),
    *(P1Object(f"1-0:{c}.8.0", NUM) for c in (5, 6, 7, 8, 15)),
    # -- instantaneous values: totals and per phase (DSMR 4/5, Sweden, E.ON Hungary)
    *(P1Object(f"1-0:{c}.7.0", NUM) for c in (1, 2, 3, 4, 5, 6, 7, 8, 13, 14)),
    *(P1Object(f"1-0:{base + c}.7.0", NUM) for base in (20, 40, 60) for c in (1, 2, 3, 4, 11, 12, 13)),
    # -- power quality
    P1Object("0-0:96.7.21", NUM, "Number of power failures", "power_failures"),
    P1Object("0-0:96.7.9", NUM, "Number of long power failures", "long_power_failures"),
    P1Object("1-0:99.97.0", LOG, "Power failure event log", "power_failure_log"),
    *(P1Object(f"1-0:{c}.32.0", NUM) for c in (32, 52, 72)),
    *(P1Object(f"1-0:{c}.36.0", NUM) for c in (32, 52, 72)),
    *(P1Object(f"1-0:{c}.4.0", NUM, f"Fuse threshold L{i}", f"fuse_threshold_l{i}") for i, c in
      ((1, 31), (2, 51), (3, 71))),  # fmt: skip
    # -- Belgian capacity tariff (e-MUCS)
    P1Object("1-0:1.4.0", NUM, "Average import power, current quarter hour", "demand_import_current"),
    P1Object("1-0:1.6.0", TIMED, "Peak quarter-hour import power, this month", "demand_import_max_month"),
    P1Object("0-0:98.1.0", LOG, "Monthly import power peaks (13 months)", "demand_import_max_history"),
    # -- M-Bus channels: gas, water, heat, slave electricity
    P1Object("0-n:24.1.0", NUM, "Device type", "device_type"),
    P1Object("0-n:96.1.0", HEX, "Equipment identifier", "equipment_id"),
    P1Object("0-n:96.1.1", HEX, "Equipment identifier", "equipment_id"),
    P1Object("0-n:24.2.1", TIMED, "Meter reading", "reading"),
    P1Object("0-n:24.2.3", TIMED, "Meter reading (not temperature corrected)", "reading"),
    P1Object("0-n:24.3.0", GAS3, "Meter reading", "reading"),
    P1Object("0-n:24.4.0", NUM, "Valve position", "valve_position"),
)


class Spec(NamedTuple):
    name: str
    timezone: str  #: where the meter's local time is (its time stamps carry only S/W)
    codes: frozenset[str]  #: the objects the specification lists (``n``: any M-Bus channel)
    crc: bool  #: telegrams end in a CRC
    version: str | None = None  #: what its version object 1-3:0.2.8 starts with


def _codes(*groups) -> frozenset[str]:
    out: set[str] = set()
    for g in groups:
        out.update(g.split() if isinstance(g, str) else g)
    return frozenset(out)


_MBUS_NL = "0-n:24.1.0 0-n:96.1.0 0-n:24.2.1 0-n:24.4.0"
_PHASES = [f"1-0:{c}.7.0" for c in (21, 41, 61, 22, 42, 62)]
_QUALITY = [f"1-0:{c}.{d}.0" for c in (32, 52, 72) for d in (32, 36)]
_DSMR4 = _codes(
    "1-3:0.2.8 0-0:1.0.0 0-0:96.1.1 1-0:1.8.1 1-0:1.8.2 1-0:2.8.1 1-0:2.8.2 0-0:96.14.0 1-0:1.7.0 1-0:2.7.0",
    "0-0:96.7.21 0-0:96.7.9 1-0:99.97.0 0-0:96.13.1 0-0:96.13.0 1-0:31.7.0 1-0:51.7.0 1-0:71.7.0",
    _PHASES, _QUALITY, _MBUS_NL,
)  # fmt: skip
_DSMR5 = _DSMR4 | _codes("1-0:32.7.0 1-0:52.7.0 1-0:72.7.0")

#: the specifications (obis.interpret.dsmr takes the one that lists most of a telegram's objects)
SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("DSMR 2.2/3.0", "Europe/Amsterdam", _codes(
            "0-0:96.1.1 1-0:1.8.1 1-0:1.8.2 1-0:2.8.1 1-0:2.8.2 0-0:96.14.0 1-0:1.7.0 1-0:2.7.0 0-0:17.0.0",
            "0-0:96.3.10 0-0:96.13.1 0-0:96.13.0 0-n:24.1.0 0-n:96.1.0 0-n:24.3.0 0-n:24.4.0"), False),  # fmt: skip
        Spec("DSMR 4", "Europe/Amsterdam", _DSMR4 | {"0-0:17.0.0", "0-0:96.3.10"}, True, "4"),
        Spec("DSMR 5", "Europe/Amsterdam", _DSMR5, True, "5"),
        Spec("Fluvius e-MUCS (Belgium)", "Europe/Brussels", _codes(
            "0-0:96.1.4 0-0:96.1.1 0-0:1.0.0 1-0:1.8.1 1-0:1.8.2 1-0:2.8.1 1-0:2.8.2 0-0:96.14.0 1-0:1.4.0",
            "1-0:1.6.0 0-0:98.1.0 1-0:1.7.0 1-0:2.7.0 1-0:21.7.0 1-0:41.7.0 1-0:61.7.0 1-0:22.7.0 1-0:42.7.0",
            "1-0:62.7.0 1-0:32.7.0 1-0:52.7.0 1-0:72.7.0 1-0:31.7.0 1-0:51.7.0 1-0:71.7.0 0-0:96.3.10",
            "0-0:17.0.0 1-0:31.4.0 0-0:96.13.0 0-n:24.1.0 0-n:96.1.1 0-n:24.4.0 0-n:24.2.3 0-n:24.2.1"), True),
        Spec("Smarty (Luxembourg)", "Europe/Luxembourg", _DSMR5 | {"0-0:42.0.0", "1-0:1.8.0", "1-0:2.8.0"}, True),
        Spec("Sweden (Energiföretagen HAN)", "Europe/Stockholm", _codes(
            "1-3:0.2.8 0-0:1.0.0 1-0:1.8.0 1-0:2.8.0 1-0:3.8.0 1-0:4.8.0 1-0:1.7.0 1-0:2.7.0 1-0:3.7.0 1-0:4.7.0",
            [f"1-0:{base + c}.7.0" for base in (20, 40, 60) for c in (1, 2, 3, 4, 11, 12)]), True),  # fmt: skip
        Spec("EasyMeter Q3D", "Europe/Berlin", _codes(
            "1-0:0.0.0 1-0:1.8.0 1-0:2.8.0 1-0:21.7.0 1-0:41.7.0 1-0:61.7.0 1-0:1.7.0 1-0:96.5.5",
            "0-0:96.1.255"), False),  # fmt: skip
        Spec("E.ON (Hungary)", "Europe/Budapest", _codes(
            "0-0:1.0.0 0-0:42.0.0 0-0:96.1.0 0-0:96.14.0 0-0:96.3.10 0-0:17.0.0 0-0:98.1.0 0-0:96.13.0",
            [f"1-0:{c}.8.{e}" for c in (1, 2) for e in range(5)],
            [f"1-0:{c}.8.0" for c in (3, 4, 5, 6, 7, 8, 15)],
            [f"1-0:{c}.7.0" for c in (1, 2, 5, 6, 7, 8, 13, 14, 32, 52, 72, 31, 51, 71, 33, 53, 73)],
            "1-0:31.4.0 1-0:51.4.0 1-0:71.4.0"), True),  # fmt: skip
        Spec("Iskra (Ireland)", "Europe/Dublin", _codes(
            "1-0:0.0.0 0-0:96.1.0 0-0:1.0.0 1-0:1.8.1 1-0:1.8.2 1-0:2.8.1 1-0:2.8.2 0-0:96.14.0 1-0:1.7.0",
            "1-0:2.7.0 1-0:32.7.0 1-0:52.7.0 1-0:72.7.0 1-0:31.7.0 1-0:51.7.0 1-0:71.7.0 0-0:96.3.10",
            "0-0:96.13.0 0-n:96.1.1", _PHASES), True),  # fmt: skip
        Spec("Sagemcom T210-D-r", "Europe/Amsterdam", _codes(
            "1-3:0.2.8 0-0:1.0.0 0-0:42.0.0 1-0:1.8.0 1-0:1.8.1 1-0:1.8.2 1-0:2.8.0 1-0:2.8.1 1-0:2.8.2",
            "1-0:1.7.0 1-0:2.7.0 1-0:3.8.0 1-0:3.8.1 1-0:3.8.2 1-0:4.8.0 1-0:4.8.1 1-0:4.8.2 1-0:3.7.0",
            "1-0:4.7.0"), True),  # fmt: skip
    )
}
#: M-Bus device types (EN 13757-3) -> what the channel's reading is
MBUS_DEVICES: dict[int, tuple[str, str]] = {
    2: ("Electricity", "electricity"),
    3: ("Gas", "gas"),
    4: ("Heat", "heat"),
    7: ("Water", "water"),
    10: ("Cooling", "cooling"),
    11: ("Heat", "heat"),
    12: ("Heat", "heat"),
}
#: a reading's unit when the channel did not say its device type
DEVICE_BY_UNIT: dict[str, int] = {"m3": 3, "GJ": 4, "kWh": 2}


def expand(code: str) -> list[str]:
    """``code`` with its M-Bus channel wildcard spelled out (``0-n:`` -> ``0-1:`` .. ``0-4:``)."""
    return [code.replace("-n:", f"-{n}:") for n in range(1, 5)] if "-n:" in code else [code]


__all__ = ["DEVICE_BY_UNIT", "MBUS_DEVICES", "OBJECTS", "P1Object", "SPECS", "Spec", "expand"]
