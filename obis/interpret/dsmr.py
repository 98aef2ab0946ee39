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
#: plans kept per interpreter (a meter sends one or two layouts; more: a stream of several meters)
MAX_PLANS = 16


class _Plan:
    """One telegram layout's registers, kept to build the next telegram of that layout.

    What a register's name and key are can depend on other lines (an M-Bus
    channel is named by its device type line, or by its reading's unit when
    it has none; keys that repeat get the channel appended); the lines that
    decide it are the *context*: when one of them changes, the plan is made
    anew.  Every other line's register depends on that line's text alone, so
    a line that did not change (the same text; mostly the same
    :class:`TelegramLine` object, as the parser hands out one per line text)
    keeps its register.
    """

    __slots__ = ("idents", "lines", "gots", "registers", "metas", "context", "unit_named", "times", "identity",
                 "spec_name", "tzname", "cache", "clock")  # fmt: skip

    def __init__(self, idents: tuple, spec_name: str, tzname: str, cache: dict) -> None:
        self.idents = idents  #: each line's identifier (None: not an object line)
        self.lines: list = []  #: the lines the registers were built from
        self.gots: list = []  #: per line: (value, unit, raw, own time UTC, local ISO time), or None
        self.registers: list[Register] = []
        self.metas: list = []  #: per line: (obis, name, key, kind, code), or None (kept as text)
        self.context: set[int] = set()  #: lines whose change makes a new plan
        self.unit_named: dict[int, str | None] = {}  #: M-Bus lines named by their unit: that unit
        self.times: list[int] = []  #: lines that can give the meter's clock, in order
        self.identity: list[tuple[int, str]] = []  #: (line, code) of the lines that can name the meter
        self.spec_name, self.tzname, self.cache = spec_name, tzname, cache
        self.clock: tuple = (None, None)  #: (time text, CosemDateTime) last made


def _got(text: str, kind: str | None, values: tuple[str, ...], tzname: str, cache: dict) -> tuple:
    got = cache.get(text)
    if got is None:
        k = kind if kind is not None else _guess(values)
        value, unit, when, local = _convert(k, values, tzname)
        raw = values[0] if len(values) == 1 else "".join(f"({v})" for v in values)
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        got = cache[text] = (value, unit, raw, when, local)
    return got


def _register(line, pos: int, meta: tuple | None, got: tuple | None) -> Register:
    if meta is None:
        text = line.text
        return _new(Register, (None, None, text, None, text, "dsmr_line", None, pos, None, False, None, None))
    obis, name, key, kind, _code = meta
    value, unit, raw, when, _local = got  # type: ignore[misc]
    return _new(Register, (obis, name, value, unit, raw, "dsmr", None, pos, key, False, None,
                           when if kind != TIME else None))  # fmt: skip


def _tzname(options: InterpretOptions, spec_name: str, chosen) -> str:
    spec = SPECS.get(spec_name)
    return options.timezone or COUNTRY_TIMEZONES.get((options.country or "").upper()) or (
        spec.timezone if spec else (chosen.timezone if chosen and chosen.timezone else "Europe/Amsterdam")
    )


def _make_plan(telegram: Telegram, options: InterpretOptions, chosen, scale: bool, applied: list[str]) -> _Plan:
    """The registers of ``telegram`` and what the next telegram of its layout can reuse."""
    lines = telegram.lines
    idents = tuple(line.ident for line in lines)
    version = next((line.values[0] for line in lines if line.ident == "1-3:0.2.8" and line.values), None)
    spec_name = spec_of(tuple(i for i in idents if i is not None), version)
    tzname = _tzname(options, spec_name, chosen)
    cache = _LINES.get(tzname)
    if cache is None:
        cache = _LINES[tzname] = {}
    plan = _Plan(idents, spec_name, tzname, cache)
    multipliers, ct_ratio = options.multipliers, options.ct_ratio
    devices: dict[int, int] = {}  # M-Bus channel -> device type
    used: set[str] = set()
    for pos, line in enumerate(lines):
        ident = line.ident
        meta = _ident(ident) if ident is not None else None
        if meta is None:
            plan.metas.append(None)
            plan.gots.append(None)
            plan.registers.append(_register(line, pos, None, None))
            continue
        obis, name, key, kind, channel, code = meta
        got = _got(line.text, kind, line.values, tzname, cache)
        value, unit = got[0], got[1]
        if code == "1-3:0.2.8":
            plan.context.add(pos)
        if channel:
            if key == "device_type":
                plan.context.add(pos)
                if isinstance(value, int):
                    devices[channel] = value
            device = devices.get(channel)
            if not device:
                device = DEVICE_BY_UNIT.get(unit or "", 0)
                plan.unit_named[pos] = unit
            what, stem = MBUS_DEVICES.get(device, (f"M-Bus {channel}", f"mbus{channel}"))
            name = f"{what} {name[0].lower()}{name[1:]}" if name else name
            key = f"{stem}_{key}"
            if key in used:
                key = f"{key}_{channel}"
            used.add(key)
        elif kind == TIME:
            plan.times.append(pos)
        if code in _IDENTITY:
            plan.identity.append((pos, code))
        meta = (obis, name, key, kind, code)
        plan.metas.append(meta)
        plan.gots.append(got)
        if scale and type(value) in (int, float):
            f = factor(obis, multipliers, ct_ratio)
            if f is not None:
                got = (multiply(value, f), *got[1:])
                applied.append(f"{obis.dotted} x{f:g}")
        plan.registers.append(_register(line, pos, meta, got))
    plan.lines = list(lines)
    return plan


def _update(plan: _Plan, lines: tuple) -> bool:
    """Rebuild the registers of the lines that changed; False when the plan does not fit ``lines``."""
    last = plan.lines
    if len(lines) != len(last):
        return False
    changed = [i for i, (a, b) in enumerate(zip(lines, last)) if a is not b and a.text != b.text]
    if not changed:
        plan.lines = list(lines)
        return True
    idents, context = plan.idents, plan.context
    for i in changed:
        if lines[i].ident != idents[i] or i in context:
            return False
    metas, gots, registers, unit_named = plan.metas, plan.gots, plan.registers, plan.unit_named
    tzname, cache = plan.tzname, plan.cache
    for i in changed:
        line = lines[i]
        meta = metas[i]
        got = None
        if meta is not None:
            got = _got(line.text, meta[3], line.values, tzname, cache)
            if i in unit_named and got[1] != unit_named[i]:
                return False  # an M-Bus reading named by its unit changed unit: its name may change
            gots[i] = got
        registers[i] = _register(line, i, meta, got)
    plan.lines = list(lines)
    return True


def _push(plan: _Plan, telegram: Telegram, chosen, applied: list[str], security, apdu: bytes) -> Push:
    gots = plan.gots
    clock = None
    for i in plan.times:
        got = gots[i]
        if got[4] is not None:
            clock = got
            break
    ids: dict[str, str] = {}
    for i, code in plan.identity:
        value = gots[i][0]
        if isinstance(value, str):
            ids.setdefault(code, value)
    meter_id = next((ids[i] for i in _IDENTITY if i in ids), None) if ids else None
    notes: list[str] = []
    if telegram.crc is None:
        notes.append("the telegram carries no CRC (DSMR 2.2/3 and some meters omit it): not checked")
    if applied:
        notes.append("multiplied (current transformer): " + ", ".join(applied))
    meter_time = timestamp = timestamp_utc = None
    if clock is not None:
        _v, _u, _r, timestamp_utc, timestamp = clock
        text, meter_time = plan.clock
        if text != _r:
            meter_time = None
            naive = p1_time(_r, plan.tzname)
            if naive is not None:
                meter_time = CosemDateTime.from_datetime(naive[2], clock_status=0x80 if _r[12:] == "S" else 0)
            plan.clock = (_r, meter_time)
    return Push(
        registers=tuple(plan.registers),
        list_id=plan.spec_name,
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
        timezone=plan.tzname,
    )


def _scales(options: InterpretOptions) -> bool:
    return bool(options.multipliers) or options.ct_ratio is not None


def telegram_push(
    telegram: Telegram, options: InterpretOptions, security: SecurityInfo | None = None, apdu: bytes = b""
) -> Push:
    """The registers of a P1 telegram: OBIS, value, the unit the telegram gives, own time stamps.

    One telegram, nothing kept; a stream goes through :class:`TelegramPlans`."""
    chosen = options.profile or profile_by_name("dsmr", options.profiles)
    applied: list[str] = []
    plan = _make_plan(telegram, options, chosen, _scales(options), applied)
    return _push(plan, telegram, chosen, applied, security, apdu)


class TelegramPlans:
    """The P1 telegrams of a stream under one set of options, each built from its layout's plan.

    The same pushes as :func:`telegram_push`, computing only the registers of
    the lines that changed since the layout's last telegram (a meter repeats
    most lines from one telegram to the next).  Not shared between threads.
    """

    __slots__ = ("options", "chosen", "scale", "plans", "last")

    def __init__(self, options: InterpretOptions) -> None:
        self.options = options
        self.chosen = options.profile or profile_by_name("dsmr", options.profiles)
        self.scale = _scales(options)  #: multiplied values: every telegram is built afresh (and notes the factors)
        self.plans: dict[tuple, _Plan] = {}
        self.last: _Plan | None = None

    def push(self, telegram: Telegram, security: SecurityInfo | None = None, apdu: bytes = b"") -> Push:
        lines = telegram.lines
        plan = self.last
        if plan is None or not _update(plan, lines):
            plan = self.plans.get(tuple(line.ident for line in lines))
            if plan is None or not _update(plan, lines):
                applied: list[str] = []
                plan = _make_plan(telegram, self.options, self.chosen, self.scale, applied)
                if self.scale:
                    return _push(plan, telegram, self.chosen, applied, security, apdu)
                plans = self.plans
                plans.pop(plan.idents, None)
                while len(plans) >= MAX_PLANS:
                    plans.pop(next(iter(plans)))
                plans[plan.idents] = plan
            self.last = plan
        return _push(plan, telegram, self.chosen, [], security, apdu)


__all__ = ["TelegramPlans", "looks_like_time", "p1_time", "spec_of", "telegram_push"]
