"""Value conversion: A-XDR values for output, scalers, current-transformer factors and meter times."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Mapping

from decoders.xdlms import axdr
from decoders.xdlms.cosem_time import CosemDateTime, looks_like_datetime

from ..code import Obis
from ..profiles import Profile, timezone_name

_OCTET = axdr.OCTET_STRING
INTEGERS = frozenset(
    (
        axdr.DOUBLE_LONG,
        axdr.DOUBLE_LONG_UNSIGNED,
        axdr.INTEGER,
        axdr.LONG,
        axdr.UNSIGNED,
        axdr.LONG_UNSIGNED,
        axdr.LONG64,
        axdr.LONG64_UNSIGNED,
    )
)
NUMBERS = INTEGERS | {axdr.FLOAT32, axdr.FLOAT64}

#: OBIS C groups a current-transformer ratio multiplies (with D = 7 or 8): currents, powers, energies
_CT_CURRENT = frozenset((11, 31, 51, 71, 91))
_CT_POWER_ENERGY = frozenset(range(1, 11)) | {15, 16} | frozenset(
    base + c for base in (20, 40, 60) for c in range(1, 11)
)


def plain_value(d: axdr.Data) -> Any:
    """A JSON-friendly rendering of a raw A-XDR value."""
    tag, v = d
    if tag in (axdr.STRUCTURE, axdr.ARRAY, axdr.COMPACT_ARRAY):
        return [plain_value(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        if tag == _OCTET and len(v) == 12 and looks_like_datetime(v):
            return CosemDateTime.from_bytes(v).isoformat() or v.hex().upper()
        if tag in (axdr.DATE_TIME,):
            return CosemDateTime.from_bytes(v).isoformat() or v.hex().upper()
        if tag == _OCTET and v and all(0x20 <= b < 0x7F for b in v):
            return v.decode("ascii")
        return v.hex().upper()
    return v


def raw_value(d: axdr.Data) -> Any:
    """The raw value for output: ints and strings as they are, bytes as hex."""
    v = d.value
    if isinstance(v, (bytes, bytearray)):
        return v.hex().upper()
    if d.tag in (axdr.STRUCTURE, axdr.ARRAY, axdr.COMPACT_ARRAY):
        return [raw_value(x) for x in v]
    return v


def scale(raw: int, scaler: int) -> int | float:
    if scaler == 0:
        return raw
    if scaler > 0:
        return raw * 10**scaler
    return round(raw * 10.0**scaler, -scaler)


def ct_factor(obis: Obis, ct_ratio: float) -> float | None:
    """The factor a current-transformer ratio applies to ``obis`` (currents, powers, energies), else None."""
    if obis.a != 1 or obis.d not in (7, 8):
        return None
    if obis.d == 7 and obis.c in _CT_CURRENT:
        return ct_ratio
    if obis.c in _CT_POWER_ENERGY:
        return ct_ratio
    return None


def factor(obis: Obis | None, multipliers: Mapping[Obis, float], ct_ratio: float | None) -> float | None:
    """The factor applied to ``obis`` after scaling: its multiplier, else the CT ratio's, else None."""
    if obis is None:
        return None
    if obis in multipliers:
        return multipliers[obis]
    if ct_ratio is not None:
        return ct_factor(obis, ct_ratio)
    return None


def multiply(value: Any, factor: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    result = value * factor
    if isinstance(result, float) and result.is_integer() and isinstance(value, int) and float(factor).is_integer():
        return int(result)
    return round(result, 9) if isinstance(result, float) else result


@lru_cache(maxsize=64)
def zone(name: str):
    """The time zone ``name``, or None when this system has no data for it (no tzdata installed)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def times(
    meter_time: CosemDateTime | None, profile: Profile | None, country: str | None, timezone: str | None
) -> tuple[str | None, datetime | None, str | None]:
    """(local ISO timestamp, UTC datetime, time zone name) of the meter time."""
    tzname = timezone or timezone_name(country, profile)
    if meter_time is None:
        return None, None, tzname
    tz = zone(tzname) if tzname else None
    t = meter_time
    ignore = t.deviation is not None and profile is not None and not profile.trust_deviation and tz is not None
    return (*t.local_and_utc(tz, ignore_deviation=ignore), tzname)
