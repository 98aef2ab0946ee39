"""Turn a decoded DataNotification into a :class:`~obis.push.Push`.

The notification body is walked for (OBIS, value[, scaler-unit]) entries in
the list shapes meters use:

1. flat pairs after a list id (Kamstrup)::

       structure{ "Kamstrup_V0001", obis, value, obis, value, ... }

2. an array (or structure) of ``structure{obis, value[, structure{scaler, unit}]}`` (Aidon)
3. flat triples ``obis, value, structure{scaler, unit}`` (EVN)

Values with no OBIS code are kept in order with their position.  A profile
(chosen by list id, registers present, manufacturer and country, or forced)
supplies names, units and scalers; a scaler on the wire always wins.  A
register no profile knows is never dropped: it comes out with its OBIS code,
a generic name when the code is a common one, and its raw value.
"""

from __future__ import annotations

from typing import Any

from decoders import axdr
from decoders.apdu import DataNotification
from decoders.cosem_time import CosemDateTime, looks_like_datetime

from .code import Obis, looks_like_obis
from .names import obis_name
from .profiles import Profile, select_profile
from .push import Push, Register, SecurityInfo
from .units import unit_symbol

_OCTET = axdr.OCTET_STRING
_STRUCT = axdr.STRUCTURE
_STRINGS = (axdr.VISIBLE_STRING, axdr.UTF8_STRING, axdr.OCTET_STRING)
_INTEGERS = frozenset(
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
_CLOCK_CD = (1, 0)  # C.D of the clock object (x-x:1.0.0)


def _is_obis(d: axdr.Data) -> bool:
    return d.tag == _OCTET and len(d.value) == 6 and looks_like_obis(d.value)


def _scaler_unit(d: axdr.Data) -> tuple[int, int] | None:
    """A ``structure{integer scaler, enum unit}`` as (scaler, unit), else None."""
    if d.tag == _STRUCT and len(d.value) == 2:
        s, u = d.value
        if s.tag == axdr.INTEGER and u.tag == axdr.ENUM:
            return s.value, u.value
    return None


# an entry: (obis or None, value, (scaler, unit) or None, position)
Entry = tuple[Obis | None, axdr.Data, tuple[int, int] | None, int]


def extract_entries(body: axdr.Data) -> tuple[list[Entry], str | None]:
    """Find (OBIS, value, scaler-unit, position) entries and the list id in a body."""
    entries: list[Entry] = []
    list_id: str | None = None
    if body.tag not in (axdr.STRUCTURE, axdr.ARRAY):
        return [(None, body, None, 0)], None
    items = body.value
    n = len(items)
    i = 0
    while i < n:
        d = items[i]
        if d.tag == _STRUCT and d.value and _is_obis(d.value[0]) and len(d.value) >= 2:
            su = _scaler_unit(d.value[2]) if len(d.value) >= 3 else None
            entries.append((Obis.from_bytes(d.value[0].value), d.value[1], su, i))
            i += 1
            continue
        if _is_obis(d) and i + 1 < n:
            su = _scaler_unit(items[i + 2]) if i + 2 < n else None
            entries.append((Obis.from_bytes(d.value), items[i + 1], su, i + 1))
            i += 3 if su else 2
            continue
        if i == 0 and d.tag in _STRINGS and list_id is None and _printable(d):
            list_id = _text(d)
        entries.append((None, d, None, i))
        i += 1
    return entries, list_id


def _printable(d: axdr.Data) -> bool:
    v = d.value
    if isinstance(v, str):
        return v.isprintable()
    return bool(v) and all(0x20 <= b < 0x7F for b in v)


def _text(d: axdr.Data) -> str:
    return d.value if isinstance(d.value, str) else d.value.decode("ascii")


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


def interpret(
    notification: DataNotification,
    *,
    security: SecurityInfo | None = None,
    profile: Profile | None = None,
    country: str | None = None,
    apdu: bytes = b"",
) -> Push:
    """Name, scale and collect the registers of one notification."""
    entries, list_id = extract_entries(notification.body)
    notes: list[str] = []
    chosen = profile
    if chosen is None:
        present = {e[0] for e in entries if e[0] is not None}
        maker = security.manufacturer if security else None
        chosen = select_profile(list_id, present, maker, country)
        if chosen is None and entries:
            notes.append(
                (f"no profile matched list {list_id!r}" if list_id else "no profile matched this list")
                + ": registers without a scaler on the wire are given raw"
            )
    registers: list[Register] = []
    clock: CosemDateTime | None = None
    meter_id: str | None = None
    for obis, d, su, pos in entries:
        spec = chosen.spec(obis) if (chosen is not None and obis is not None) else None
        if obis is None and pos == 0 and list_id is not None:
            continue  # the list id: reported as Push.list_id
        tag = d.tag
        generic = obis_name(obis) if obis is not None else None
        name = spec.name if spec else (generic.name if generic else None)
        key = generic.key if generic else None
        unit: str | None = None
        scaler: int | None = None
        if su is not None:
            scaler, unit = su[0], (unit_symbol(su[1]) or None)
        elif spec is not None:
            scaler, unit = spec.scaler, spec.unit
        if tag in _INTEGERS:
            value: Any = scale(d.value, scaler) if scaler else d.value
        else:
            value = plain_value(d)
            if scaler is not None and tag not in (axdr.FLOAT32, axdr.FLOAT64):
                scaler = None
        if obis is not None and (obis.c, obis.d) == _CLOCK_CD and obis.a == 0 and tag == _OCTET and len(d.value) == 12:
            clock = CosemDateTime.from_bytes(d.value)
        if obis is not None and key in ("meter_id", "meter_number") and meter_id is None:
            meter_id = str(value)
        registers.append(Register(obis, name, value, unit, raw_value(d), d.type_name, scaler, pos, key))
    meter_time = notification.datetime or clock
    return Push(
        registers=tuple(registers),
        list_id=list_id,
        profile=chosen.name if chosen else None,
        meter_time=meter_time,
        invoke_id_and_priority=notification.invoke_id_and_priority,
        security=security,
        meter_id=meter_id,
        notes=tuple(notes),
        timestamp=meter_time.isoformat() if meter_time else None,
        timestamp_utc=meter_time.utc() if meter_time else None,
        apdu=apdu,
    )
