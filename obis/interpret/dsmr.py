"""P1 text telegrams as pushes: each object a :class:`~obis.push.Register` with its OBIS code,
the telegram's unit, and its own time stamp where it carries one.

One pass over the telegram's lines (parsed by :mod:`decoders.xdlms.dsmr`):
what an identifier means is looked up once per identifier in
:mod:`obis.p1objects`, and what a line's text gives (numbers, decoded text,
times placed in UTC) is remembered per line text, since most lines of a
meter's telegrams repeat from one second to the next.  The specification
(``list_id``) is the one of :data:`obis.p1objects.SPECS` that lists most of
the telegram's objects; it also gives the meter's time zone unless
``--country`` or ``--timezone`` says otherwise.

Time stamps ``YYMMDDhhmmssX`` are the meter's local time; the S/W flag
(summer/winter) only decides the repeated hour of the autumn change.
"""

from __future__ import annotations

from datetime import datetime, timezone as _tz
from typing import Any

from decoders.xdlms.cosem_time import CosemDateTime
from decoders.xdlms.dsmr import Telegram

from ..code import Obis, ObisError
from ..names import obis_name
from ..p1objects import DEVICE_BY_UNIT, GAS3, HEX, LOG, MBUS_DEVICES, NUM, OBJECTS, SPECS, TEXT, TIME, TIMED, expand
from ..profiles import COUNTRY_TIMEZONES, profile_by_name
from ..push import Push, Register, SecurityInfo
from .options import InterpretOptions
from .values import factor, multiply, zone

_UTC = _tz.utc
_OBJECTS = {code: o for o in OBJECTS for code in expand(o.code)}
_DIGITS = frozenset("0123456789")
_PRINTABLE = frozenset(range(0x20, 0x7F))
#: identifiers whose register names the meter (first present wins)
_IDENTITY = ("0-0:96.1.1", "0-0:42.0.0", "0-0:96.1.0", "1-0:0.0.0", "0-0:96.1.255")
_CACHE_MAX = 4096
_new = tuple.__new__


# -- times ----------------------------------------------------------------------------------------
_TIMES: dict[tuple[str, str], tuple[str, datetime, datetime] | None] = {}


def p1_time(text: str, tzname: str) -> tuple[str, datetime, datetime] | None:
    """(local ISO text, UTC datetime, naive local datetime) of ``YYMMDDhhmmss[SW]``; None when it is not one."""
    key = (text, tzname)
    try:
        return _TIMES[key]
    except KeyError:
        pass
    got = None
    n = len(text)
    if (n == 13 and text[12] in "SW" or n == 12) and all(c in _DIGITS for c in text[:12]):
        try:
            yy = int(text[0:2])  # as strptime's %y: 69-99 are 1969-1999 (a meter's clock reset to 1970)
            naive = datetime((1900 if yy >= 69 else 2000) + yy, int(text[2:4]), int(text[4:6]), int(text[6:8]),
                             int(text[8:10]), int(text[10:12]))  # fmt: skip
        except ValueError:
            naive = None
        if naive is not None:
            tz = zone(tzname)
            local = naive.replace(tzinfo=tz, fold=1 if text[12:] == "W" else 0) if tz else naive
            utc = local.astimezone(_UTC) if tz else naive.replace(tzinfo=_UTC)
            got = (local.isoformat(), utc, naive)
    if len(_TIMES) >= _CACHE_MAX:
        _TIMES.clear()
    _TIMES[key] = got
    return got


def looks_like_time(text: str) -> bool:
    n = len(text)
    return (n == 13 and text[12] in "SW" or n == 12) and all(c in _DIGITS for c in text[:12])


# -- values ---------------------------------------------------------------------------------------
def _number(text: str) -> tuple[Any, str | None]:
    """(number, unit) of ``001234.567*kWh`` / ``00015``; (text, None) when it is not a number."""
    num, star, unit = text.partition("*")
    try:
        value: Any = float(num) if "." in num else int(num)
    except ValueError:
        return (text or None), None
    return value, (unit or None) if star else None


def _hex_text(text: str) -> str | None:
    """Hex-coded ASCII decoded; the text as sent when it is not that (odd length, control bytes)."""
    if not text:
        return None
    if len(text) % 2 == 0:
        try:
            b = bytes.fromhex(text)
        except ValueError:
            return text
        if b and all(x in _PRINTABLE for x in b):
            return b.decode("ascii")
    return text


def _log(values: tuple[str, ...], tzname: str) -> tuple[list, datetime | None]:
    """The entries of a buffer ``(count)(obis)...(fields)...``, or a snapshot ``(time)(value)...``."""
    if values and looks_like_time(values[0]):
        t = p1_time(values[0], tzname)
        entries = []
        for v in values[1:]:
            value, unit = _number(v)
            entries.append({"value": value, "unit": unit})
        return entries, (t[1] if t else None)
    heads = 0
    for v in values[1:]:
        if ":" not in v:
            break
        heads += 1
    width = max(heads, 1) + 1  # capture time, (time the peak occurred,) value
    fields = values[1 + heads :]
    entries = []
    for i in range(0, len(fields) - width + 1, width):
        group = fields[i : i + width]
        t = p1_time(group[0], tzname)
        entry: dict[str, Any] = {"time": t[1].isoformat() if t else None}  # None: a date the meter left unset
        if width == 3:
            o = p1_time(group[1], tzname)
            entry["occurred"] = o[1].isoformat() if o else None
        entry["value"], entry["unit"] = _number(group[-1])
        entries.append(entry)
    return entries, None


def _convert(kind: str, values: tuple[str, ...], tzname: str) -> tuple[Any, str | None, datetime | None, str | None]:
    """(value, unit, own time in UTC, local ISO time) of one object's values."""
    if not values:
        return None, None, None, None
    first = values[0]
    if kind == NUM or kind == TIMED and len(values) == 1:
        return (*_number(first), None, None) if first else (None, None, None, None)
    if kind == TEXT:
        return (first or None), None, None, None
    if kind == HEX:
        return _hex_text(first), None, None, None
    if kind == TIME:
        t = p1_time(first, tzname)
        return (t[0], None, t[1], t[0]) if t else ((first or None), None, None, None)
    if kind == TIMED:
        t = p1_time(first, tzname)
        value, unit = _number(values[1])
        return value, unit, (t[1] if t else None), (t[0] if t else None)
    if kind == GAS3 and len(values) >= 7:
        t = p1_time(first, tzname)
        value, unit = _number(values[-1])
        return value, (unit or values[5] or None), (t[1] if t else None), (t[0] if t else None)
    if kind == LOG:
        entries, when = _log(values, tzname)
        return entries, None, when, None
    return "".join(f"({v})" for v in values), None, None, None


def _guess(values: tuple[str, ...]) -> str:
    """The kind of an object no table lists, from its values."""
    if len(values) == 1:
        return TIME if looks_like_time(values[0]) else NUM
    if len(values) == 2 and looks_like_time(values[0]):
        return TIMED
    return ""


# -- identifiers ----------------------------------------------------------------------------------
#: identifier -> (Obis, name, key, kind, M-Bus channel or 0), or None when it is no OBIS code
_IDENTS: dict[str, tuple | None] = {}


def _ident(ident: str) -> tuple | None:
    try:
        return _IDENTS[ident]
    except KeyError:
        pass
    code = ident.partition("*")[0]
    try:
        obis = Obis.parse(code)
    except ObisError:
        got = None
    else:
        entry = _OBJECTS.get(code)
        generic = obis_name(obis)
        name = entry.name if entry and entry.name else (generic.name if generic else None)
        key = entry.key if entry and entry.key else (generic.key if generic else None)
        channel = obis.b if obis.a == 0 and obis.b and "-n:" in (entry.code if entry else "") else 0
        got = (obis, name, key, entry.kind if entry else None, channel, code)
    if len(_IDENTS) >= _CACHE_MAX:
        _IDENTS.clear()
    _IDENTS[ident] = got
    return got


_SPEC_OF: dict[tuple, str] = {}


def spec_of(idents: tuple[str, ...], version: str | None = None) -> str:
    """The specification that lists most of these objects (and fewest others); ``version``
    (the text of ``1-3:0.2.8``) decides between specifications that list the same."""
    try:
        return _SPEC_OF[(idents, version)]
    except KeyError:
        pass
    codes = set()
    for i in idents:
        code = i.partition("*")[0]
        if code[:2] == "0-" and code[2:3] not in ("0", ":"):
            code = "0-n" + code[code.index(":") :]
        codes.add(code)
    best, score = "P1", None
    for spec in SPECS.values():
        hit = len(codes & spec.codes)
        same = bool(version and spec.version and version.startswith(spec.version))
        s = (hit - (len(codes) - hit), same, -(len(spec.codes) - hit))
        if hit and (score is None or s > score):
            best, score = spec.name, s
    if len(_SPEC_OF) >= 256:
        _SPEC_OF.clear()
    _SPEC_OF[(idents, version)] = best
    return best


# -- the push -------------------------------------------------------------------------------------
_LINES: dict[str, dict[str, tuple]] = {}


def telegram_push(
    telegram: Telegram, options: InterpretOptions, security: SecurityInfo | None = None, apdu: bytes = b""
) -> Push:
    """The registers of a P1 telegram: OBIS, value, the unit the telegram gives, own time stamps."""
    chosen = options.profile or profile_by_name("dsmr", options.profiles)
    lines = telegram.lines
    version = next((line.values[0] for line in lines if line.ident == "1-3:0.2.8" and line.values), None)
    spec_name = spec_of(tuple(line.ident for line in lines if line.ident is not None), version)
    spec = SPECS.get(spec_name)
    tzname = options.timezone or COUNTRY_TIMEZONES.get((options.country or "").upper()) or (
        spec.timezone if spec else (chosen.timezone if chosen and chosen.timezone else "Europe/Amsterdam")
    )
    cache = _LINES.get(tzname)
    if cache is None or len(cache) >= _CACHE_MAX:
        cache = _LINES[tzname] = {}
    multipliers, ct_ratio = options.multipliers, options.ct_ratio
    scale = bool(multipliers) or ct_ratio is not None
    registers: list[Register] = []
    append = registers.append
    applied: list[str] = []
    clock: tuple | None = None
    ids: dict[str, str] = {}
    devices: dict[int, int] = {}  # M-Bus channel -> device type
    used: set[str] = set()
    for pos, line in enumerate(lines):
        ident = line.ident
        meta = _ident(ident) if ident is not None else None
        if meta is None:
            append(_new(Register, (None, None, line.text, None, line.text, "dsmr_line", None, pos, None, False, None, None)))
            continue
        obis, name, key, kind, channel, code = meta
        text = line.text
        got = cache.get(text)
        if got is None:
            values = line.values
            k = kind if kind is not None else _guess(values)
            value, unit, when, local = _convert(k, values, tzname)
            raw = values[0] if len(values) == 1 else "".join(f"({v})" for v in values)
            got = cache[text] = (value, unit, raw, when, local)
        value, unit, raw, when, local = got
        if channel:
            if key == "device_type" and isinstance(value, int):
                devices[channel] = value
            device = devices.get(channel) or DEVICE_BY_UNIT.get(unit or "", 0)
            what, stem = MBUS_DEVICES.get(device, (f"M-Bus {channel}", f"mbus{channel}"))
            name = f"{what} {name[0].lower()}{name[1:]}" if name else name
            key = f"{stem}_{key}"
            if key in used:
                key = f"{key}_{channel}"
            used.add(key)
        elif kind == TIME and clock is None and local is not None:
            clock = got
        if code in _IDENTITY and isinstance(value, str):
            ids.setdefault(code, value)

        if scale and type(value) in (int, float):
            f = factor(obis, multipliers, ct_ratio)
            if f is not None:
                value = multiply(value, f)
                applied.append(f"{obis.dotted} x{f:g}")
        if when is not None and kind != TIME:
            append(_new(Register, (obis, name, value, unit, raw, "dsmr", None, pos, key, False, None, when)))
        else:
            append(_new(Register, (obis, name, value, unit, raw, "dsmr", None, pos, key, False, None, None)))
    notes: list[str] = []
    if telegram.crc is None:
        notes.append("the telegram carries no CRC (DSMR 2.2/3 and some meters omit it): not checked")
    if applied:
        notes.append("multiplied (current transformer): " + ", ".join(applied))
    meter_time = timestamp = timestamp_utc = None
    if clock is not None:
        _v, _u, _r, timestamp_utc, timestamp = clock
        naive = p1_time(_r, tzname)
        if naive is not None:
            meter_time = CosemDateTime.from_datetime(naive[2], clock_status=0x80 if _r[12:] == "S" else 0)
    meter_id = next((ids[i] for i in _IDENTITY if i in ids), None)
    return Push(
        registers=tuple(registers),
        list_id=spec_name,
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


__all__ = ["looks_like_time", "p1_time", "spec_of", "telegram_push"]
