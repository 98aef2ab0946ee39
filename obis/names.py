"""Names for common OBIS codes, as data.

A name is looked up first by the exact code (with B = any channel), then by
the electricity pattern C.D (D = 7 instantaneous value, 8 cumulative energy)
with E = tariff.  Each entry also gives a stable snake-case ``key`` that
sinks use as a field name.  An unknown code simply has no name; it is still
output with its OBIS code.
"""

from __future__ import annotations

from typing import NamedTuple

from .code import Obis


class ObisName(NamedTuple):
    name: str
    key: str


#: (A, C, D, E) with any B and F -> name   (abstract and list objects)
_EXACT: dict[tuple[int, int, int, int], tuple[str, str]] = {
    (0, 1, 0, 0): ("Clock", "clock"),
    (0, 42, 0, 0): ("Logical device name", "logical_device_name"),
    (0, 96, 1, 0): ("Meter ID", "meter_id"),
    (0, 96, 1, 1): ("Meter ID 2", "meter_id_2"),
    (0, 96, 1, 7): ("Meter type", "meter_type"),
    (0, 96, 3, 10): ("Disconnector state", "disconnector_state"),
    (0, 96, 14, 0): ("Current tariff", "tariff"),
    (0, 25, 9, 0): ("Push setup", "push_setup"),
    (1, 0, 2, 129): ("List version identifier", "list_id"),
    (1, 0, 0, 1): ("Meter number", "meter_number"),
    (1, 0, 0, 5): ("Meter ID (GS1)", "meter_id"),
    (1, 96, 1, 1): ("Meter type", "meter_type"),
    (1, 0, 2, 0): ("Firmware version", "firmware_version"),
    (1, 0, 2, 8): ("Version information", "version"),
    (0, 96, 1, 2): ("Meter ID 3", "meter_id_3"),
    (0, 96, 1, 3): ("Meter ID 4", "meter_id_4"),
    (0, 96, 1, 4): ("Meter ID 5", "meter_id_5"),
    (0, 96, 7, 21): ("Number of power failures", "power_failures"),
    (0, 96, 7, 9): ("Number of long power failures", "long_power_failures"),
    (0, 96, 13, 0): ("Text message", "text_message"),
    (0, 96, 13, 1): ("Message code", "message_code"),
    (0, 17, 0, 0): ("Limiter threshold", "limiter_threshold"),
    (1, 99, 97, 0): ("Power failure event log", "power_failure_log"),
    (0, 24, 2, 1): ("Gas meter reading", "gas_reading"),
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
