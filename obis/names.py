"""Names for common OBIS codes, as data.

A name is looked up first by the exact code (with B = any channel), then by
the electricity pattern C.D (D = 7 instantaneous value, 8 cumulative energy)
with E = tariff.  Each entry also gives a stable snake-case ``key`` that
sinks use as a field name.  An unknown code simply has no name; it is still
output with its OBIS code.
"""

from __future__ import annotations

from typing import NamedTuple

from . import references as ref
from .code import Obis


class ObisName(NamedTuple):
    name: str
    key: str


def _acde(code: Obis) -> tuple[int, int, int, int]:
    return code.a, code.c, code.d, code.e


#: (A, C, D, E) with any B and F -> name   (abstract and list objects)
_EXACT: dict[tuple[int, int, int, int], tuple[str, str]] = {
    _acde(ref.CLOCK): ("Clock", "clock"),
    _acde(ref.LOGICAL_DEVICE_NAME): ("Logical device name", "logical_device_name"),
    _acde(ref.METER_ID): ("Meter ID", "meter_id"),
    _acde(ref.METER_ID_2): ("Meter ID 2", "meter_id_2"),
    _acde(ref.METER_TYPE): ("Meter type", "meter_type"),
    _acde(ref.DISCONNECTOR_STATE): ("Disconnector state", "disconnector_state"),
    _acde(ref.CURRENT_TARIFF): ("Current tariff", "tariff"),
    _acde(ref.PUSH_SETUP): ("Push setup", "push_setup"),
    _acde(ref.LIST_ID): ("List version identifier", "list_id"),
    _acde(ref.METER_NUMBER): ("Meter number", "meter_number"),
    _acde(ref.METER_ID_GS1): ("Meter ID (GS1)", "meter_id"),
    _acde(ref.ELECTRICITY_METER_TYPE): ("Meter type", "meter_type"),
    _acde(ref.FIRMWARE_VERSION): ("Firmware version", "firmware_version"),
    _acde(ref.VERSION_INFORMATION): ("Version information", "version"),
    _acde(ref.METER_ID_3): ("Meter ID 3", "meter_id_3"),
    _acde(ref.METER_ID_4): ("Meter ID 4", "meter_id_4"),
    _acde(ref.METER_ID_5): ("Meter ID 5", "meter_id_5"),
    _acde(ref.POWER_FAILURES): ("Number of power failures", "power_failures"),
    _acde(ref.LONG_POWER_FAILURES): ("Number of long power failures", "long_power_failures"),
    _acde(ref.TEXT_MESSAGE): ("Text message", "text_message"),
    _acde(ref.MESSAGE_CODE): ("Message code", "message_code"),
    _acde(ref.LIMITER_THRESHOLD): ("Limiter threshold", "limiter_threshold"),
    _acde(ref.POWER_FAILURE_LOG): ("Power failure event log", "power_failure_log"),
    _acde(ref.GAS_READING): ("Gas meter reading", "gas_reading"),
}

#: (C, D) of per-phase voltage quality counters (DSMR)
_QUALITY: dict[int, tuple[str, str]] = {32: ("Voltage sags", "voltage_sags"), 36: ("Voltage swells", "voltage_swells")}

#: electricity quantities by C: (words, key stem, phase)
_QUANTITY: dict[int, tuple[str, str]] = {
    1: ("Active {x} import", "active_{x}_import"),
    2: ("Active {x} export", "active_{x}_export"),
    3: ("Reactive {x} import", "reactive_{x}_import"),
    4: ("Reactive {x} export", "reactive_{x}_export"),
    5: ("Reactive {x} QI", "reactive_{x}_q1"),
    6: ("Reactive {x} QII", "reactive_{x}_q2"),
    7: ("Reactive {x} QIII", "reactive_{x}_q3"),
    8: ("Reactive {x} QIV", "reactive_{x}_q4"),
    9: ("Apparent {x} import", "apparent_{x}_import"),
    10: ("Apparent {x} export", "apparent_{x}_export"),
    15: ("Active {x} absolute", "active_{x}_absolute"),
    16: ("Active {x} net", "active_{x}_net"),
}
_PHASE_BASE = {20: "L1", 40: "L2", 60: "L3"}
_INSTANT_ONLY: dict[int, tuple[str, str]] = {
    11: ("Current", "current"),
    12: ("Voltage", "voltage"),
    13: ("Power factor", "power_factor"),
    14: ("Frequency", "frequency"),
    91: ("Neutral current", "current_neutral"),
}
_PHASE_INSTANT = {11: ("Current", "current"), 12: ("Voltage", "voltage"), 13: ("Power factor", "power_factor")}


def _quantity(c: int) -> tuple[str, str, str] | None:
    """(name template, key template, phase suffix) for an electricity C group."""
    if c in _QUANTITY:
        return (*_QUANTITY[c], "")
    for base, phase in _PHASE_BASE.items():
        if base < c <= base + 19 and c - base in _QUANTITY:
            return (*_QUANTITY[c - base], phase)
    return None


def obis_name(obis: Obis) -> ObisName | None:
    """The name and field key of ``obis``, or None when it is not a known code."""
    hit = _EXACT.get((obis.a, obis.c, obis.d, obis.e))
    if hit:
        return ObisName(*hit)
    if obis.a != 1:
        return None
    if obis.d in _QUALITY and obis.c in (32, 52, 72):
        n, k = _QUALITY[obis.d]
        phase = {32: "L1", 52: "L2", 72: "L3"}[obis.c]
        return ObisName(f"{n} {phase}", f"{k}_{phase.lower()}")
    tariff = f" tariff {obis.e}" if obis.e else ""
    tkey = f"_t{obis.e}" if obis.e else ""
    if obis.d == 7:
        if obis.c in _INSTANT_ONLY:
            n, k = _INSTANT_ONLY[obis.c]
            return ObisName(n + tariff, k + tkey)
        for base, phase in _PHASE_BASE.items():
            if obis.c - base in _PHASE_INSTANT:
                n, k = _PHASE_INSTANT[obis.c - base]
                return ObisName(f"{n} {phase}", f"{k}_{phase.lower()}")
    q = _quantity(obis.c)
    if q is None or obis.d not in (7, 8):
        return None
    name_t, key_t, phase = q
    x = "power" if obis.d == 7 else "energy"
    name = name_t.format(x=x) + (f" {phase}" if phase else "") + tariff
    key = key_t.format(x=x) + (f"_{phase.lower()}" if phase else "") + tkey
    return ObisName(name, key)


#: manufacturer FLAG ids (the first three bytes of a system title) of the meters this decoder knows
MANUFACTURERS: dict[str, str] = {
    "KAM": "Kamstrup",
    "KFM": "Kaifa",
    "LGZ": "Landis+Gyr",
    "ISK": "Iskraemeco",
    "SAG": "Sagemcom",
    "ADN": "Aidon",
    "SMS": "Siemens",
}
