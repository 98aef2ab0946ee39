"""The DSMR mapping: a P1 text telegram (Luxembourg Smarty, inside a ciphered APDU) as a push."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from decoders.xdlms.cosem_time import CosemDateTime
from decoders.xdlms.dsmr import Telegram

from ..code import Obis, ObisError
from ..names import obis_name
from ..profiles import profile_by_name
from ..push import Push, Register, SecurityInfo
from .. import references as ref
from .options import InterpretOptions
from .values import factor, multiply, times

_NUMBER = re.compile(r"^([-+]?\d+(?:\.\d+)?)(?:\*(.+))?$")
_DSMR_TIME = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([WS])$")
#: OBIS (A, C, D, E) of DSMR objects whose value is hex-encoded text
_HEX_TEXT = frozenset(
    (o.a, o.c, o.d, o.e)
    for o in (ref.LOGICAL_DEVICE_NAME, ref.METER_ID, ref.METER_ID_2, ref.TEXT_MESSAGE, ref.MESSAGE_CODE)
)
#: (C, D, E) of the version object (1-3:0.2.8): the telegram's list id
_VERSION = (ref.VERSION_INFORMATION.c, ref.VERSION_INFORMATION.d, ref.VERSION_INFORMATION.e)


def _dsmr_time(text: str) -> CosemDateTime | None:
    m = _DSMR_TIME.match(text)
    if not m:
        return None
    yy, mo, dd, hh, mi, ss, season = m.groups()
    try:
        dt = datetime(2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss))
    except ValueError:
        return None
    return CosemDateTime.from_datetime(dt, clock_status=0x80 if season == "S" else 0)


def _dsmr_value(obis: Obis, text: str) -> tuple[Any, str | None, CosemDateTime | None]:
    """(value, unit, date-time) of one DSMR value."""
    t = _dsmr_time(text)
    if t is not None:
        return t.isoformat() or text, None, t
    if (obis.a, obis.c, obis.d, obis.e) in _HEX_TEXT:
        try:
            raw = bytes.fromhex(text) if len(text) % 2 == 0 else b""
        except ValueError:
            raw = b""
        if raw and all(0x20 <= b < 0x7F for b in raw):
            return raw.decode("ascii"), None, None
        return text, None, None
    m = _NUMBER.match(text)
    if m:
        num, unit = m.groups()
        return (float(num) if "." in num else int(num)), unit, None
    return text, None, None


def telegram_push(
    telegram: Telegram, options: InterpretOptions, security: SecurityInfo | None = None, apdu: bytes = b""
) -> Push:
    """The registers of a DSMR telegram: OBIS, value, and the unit the telegram gives."""
    chosen = options.profile or profile_by_name("dsmr", options.profiles)
    multipliers, ct_ratio = options.multipliers, options.ct_ratio
    registers: list[Register] = []
    notes: list[str] = []
    meter_time: CosemDateTime | None = None
    meter_id: str | None = None
    list_id: str | None = None
    applied: list[str] = []
    for pos, line in enumerate(telegram.lines):
        if line.ident is None:
            registers.append(Register(None, None, line.text, None, line.text, "dsmr_line", None, pos))
            continue
        try:
            obis = Obis.parse(line.ident)
        except ObisError:
            registers.append(Register(None, None, line.text, None, line.text, "dsmr_line", None, pos))
            continue
        generic = obis_name(obis)
        values = line.values
        raw = "".join(f"({v})" for v in values) if len(values) != 1 else values[0]
        value: Any
        unit: str | None = None
        if not values:
            value = None
        elif len(values) == 1:
            value, unit, when = _dsmr_value(obis, values[0])
            if when is not None and (obis.c, obis.d) == (1, 0) and meter_time is None:
                meter_time = when
        elif len(values) == 2 and _dsmr_time(values[0]) is not None:
            value, unit, _ = _dsmr_value(obis, values[1])  # (capture time)(value), e.g. a gas reading
        else:
            value = raw
        f = factor(obis, multipliers, ct_ratio)
        if f is not None and isinstance(value, (int, float)):
            value = multiply(value, f)
            applied.append(f"{obis.dotted} x{f:g}")
        key = generic.key if generic else None
        if (obis.c, obis.d, obis.e) == _VERSION and list_id is None:
            list_id = f"DSMR {values[0]}" if values else None
        if key in ("meter_id", "logical_device_name", "meter_id_2") and meter_id is None and isinstance(value, str):
            meter_id = value
        registers.append(Register(obis, generic.name if generic else None, value, unit, raw, "dsmr", None, pos, key))
    if telegram.crc is None:
        notes.append("the telegram carries no CRC (some meters omit it): not checked")
    if applied:
        notes.append("multiplied (current transformer): " + ", ".join(applied))
    timestamp, timestamp_utc, tzname = times(meter_time, chosen, options.country, options.timezone)
    return Push(
        registers=tuple(registers),
        list_id=list_id,
        profile=chosen.name if chosen else None,
        meter_time=meter_time,
        invoke_id_and_priority=0,
        security=security,
        meter_id=meter_id,
        notes=tuple(notes),
        timestamp=timestamp,
        timestamp_utc=timestamp_utc,
        apdu=apdu,
        shape="dsmr",
        timezone=tzname,
    )
