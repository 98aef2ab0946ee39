"""Turn a decoded DataNotification (or DSMR telegram) into a :class:`~obis.push.Push`.

The notification body is walked for (OBIS, value[, scaler-unit]) entries in
the list shapes meters use, all decoded to the same registers:

``flat_pairs``        a list id, then ``obis, value, obis, value, ...`` (Kamstrup)::

                          structure{ "Kamstrup_V0001", obis, value, obis, value, ... }

``structs``           an array (or structure) of ``structure{obis, value[, structure{scaler, unit}]}``
                      (Aidon, Iskraemeco CH, TINETZ)
``flat_triples``      ``obis, value, structure{scaler, unit}, ...`` with an OBIS-less clock
                      first and the meter number last (EVN, Sagemcom Austria)
``push_object_list``  ``structure{ array[structure{class, obis, attribute, index}], value, value, ... }``
                      (Landis+Gyr, Iskraemeco Switzerland): element *n* describes value *n*
``positional``        values with no OBIS code at all (Kaifa ``KFM_001`` in Norway,
                      Iskraemeco Slovenia, Landis+Gyr Burgenland): a profile's layout names them
``value``             a body that is not a list (a single value)

A profile (chosen by list id, shape, registers present, manufacturer and
country, or forced) supplies names, units and scalers; a scaler on the wire
always wins.  Nothing is dropped and nothing is guessed: a register no
profile knows comes out with its OBIS code, a generic name when the code is
a common one, and its raw value; a value with no OBIS code and no layout
keeps its position.  The push then says which profile (if any) matched.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from math import copysign
from operator import itemgetter
from typing import Any, Mapping, NamedTuple

from decoders.xdlms import axdr
from decoders.xdlms.apdu import DataNotification
from decoders.xdlms.cosem_time import CosemDateTime, looks_like_datetime
from decoders.xdlms.dsmr import Telegram

from .code import Obis, ObisError, looks_like_obis
from .names import obis_name
from .profiles import LIST_ID, Profile, profile_by_name, select_profile, timezone_name
from .push import Push, Register, RegisterLayout, SecurityInfo
from .units import unit_symbol

_TYPE_NAMES = axdr.TYPE_NAMES
SHAPES = ("flat_pairs", "structs", "flat_triples", "push_object_list", "positional", "value", "dsmr")

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
_NUMBERS = _INTEGERS | {axdr.FLOAT32, axdr.FLOAT64}
#: a list version id: letters, an underscore, a version (Kamstrup_V0001, KFM_001, AIDON_V0001, EMBRIQ_V1_1)
_LIST_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_.]+$")

#: OBIS C groups a current-transformer ratio multiplies (with D = 7 or 8): currents, powers, energies
_CT_CURRENT = frozenset((11, 31, 51, 71, 91))
_CT_POWER_ENERGY = frozenset(range(1, 11)) | {15, 16} | frozenset(
    base + c for base in (20, 40, 60) for c in range(1, 11)
)


class Entry(NamedTuple):
    obis: Obis | None
    value: axdr.Data
    su: tuple[int, int] | None  #: (scaler, unit) sent on the wire
    position: int  #: index of the value (or its structure) in the body
    attribute: int | None = None  #: from a push object list, when not the value attribute 2
    class_id: int | None = None  #: from a push object list


class Extracted(NamedTuple):
    entries: list[Entry]
    list_id: str | None
    shape: str
    object_list: tuple[tuple[int, Obis, int, int], ...]


def _is_obis(d: axdr.Data) -> bool:
    return d.tag == _OCTET and len(d.value) == 6 and looks_like_obis(d.value)


def _scaler_unit(d: axdr.Data) -> tuple[int, int] | None:
    """A ``structure{integer scaler, enum unit}`` as (scaler, unit), else None."""
    if d.tag == _STRUCT and len(d.value) == 2:
        s, u = d.value
        if s.tag == axdr.INTEGER and u.tag == axdr.ENUM:
            return s.value, u.value
    return None


def _printable(d: axdr.Data) -> bool:
    v = d.value
    if isinstance(v, str):
        return v.isprintable()
    return bool(v) and all(0x20 <= b < 0x7F for b in v)


def _text(d: axdr.Data) -> str:
    return d.value if isinstance(d.value, str) else d.value.decode("ascii")


def _is_list_id(d: axdr.Data) -> bool:
    return d.tag in _STRINGS and _printable(d) and len(d.value) <= 32 and bool(_LIST_ID.match(_text(d)))


def _object_list(d: axdr.Data) -> tuple[tuple[int, Obis, int, int], ...] | None:
    """A push object list (array of capture-object definitions), or None."""
    if d.tag != axdr.ARRAY or not d.value:
        return None
    out = []
    for item in d.value:
        if item.tag != _STRUCT or len(item.value) != 4:
            return None
        cls, ln, attr, idx = item.value
        if cls.tag != axdr.LONG_UNSIGNED or ln.tag != _OCTET or len(ln.value) != 6 or attr.tag != axdr.INTEGER:
            return None
        if idx.tag != axdr.LONG_UNSIGNED:
            return None
        out.append((cls.value, Obis.from_bytes(ln.value), attr.value, idx.value))
    return tuple(out)


def extract(body: axdr.Data) -> Extracted:
    """Find the entries, the list id and the shape of a notification body."""
    if body.tag not in (axdr.STRUCTURE, axdr.ARRAY):
        return Extracted([Entry(None, body, None, 0)], None, "value", ())
    items = body.value
    n = len(items)
    if n and items[0].tag == axdr.ARRAY:
        objects = _object_list(items[0])
        if objects is not None and len(objects) in (n, n - 1):
            # element k of the object list describes body element k (0: the list itself), or k + 1
            shift = 0 if len(objects) == n else 1
            entries = []
            for i in range(1, n):
                cls, obis, attr, _idx = objects[i - shift]
                entries.append(Entry(obis, items[i], None, i, None if attr == 2 else attr, cls))
            return Extracted(entries, None, "push_object_list", objects)
    entries: list[Entry] = []
    list_id: str | None = None
    n_struct = n_pair = n_triple = 0
    i = 0
    while i < n:
        d = items[i]
        if d.tag == _STRUCT and len(d.value) >= 2 and _is_obis(d.value[0]):
            su = _scaler_unit(d.value[2]) if len(d.value) >= 3 else None
            entries.append(Entry(Obis.from_bytes(d.value[0].value), d.value[1], su, i))
            n_struct += 1
            i += 1
            continue
        if _is_obis(d) and i + 1 < n:
            su = _scaler_unit(items[i + 2]) if i + 2 < n else None
            entries.append(Entry(Obis.from_bytes(d.value), items[i + 1], su, i + 1))
            if su:
                n_triple += 1
                i += 3
            else:
                n_pair += 1
                i += 2
            continue
        if i == 0 and _is_list_id(d):
            list_id = _text(d)
        entries.append(Entry(None, d, None, i))
        i += 1
    if list_id is None:
        for e in entries:
            o = e.obis
            if o is not None and (o.c, o.d, o.e) == (0, 2, 129) and e.value.tag in _STRINGS and _printable(e.value):
                list_id = _text(e.value)
                break
    if n_struct:
        shape = "structs"
    elif n_triple:
        shape = "flat_triples"
    elif n_pair:
        shape = "flat_pairs"
    else:
        shape = "positional"
    return Extracted(entries, list_id, shape, ())


def extract_entries(body: axdr.Data) -> tuple[list[tuple], str | None]:
    """(OBIS, value, scaler-unit, position) entries and the list id (the older, tuple-based API)."""
    ex = extract(body)
    return [(e.obis, e.value, e.su, e.position) for e in ex.entries], ex.list_id


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


def _multiply(value: Any, factor: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    result = value * factor
    if isinstance(result, float) and result.is_integer() and isinstance(value, int) and float(factor).is_integer():
        return int(result)
    return round(result, 9) if isinstance(result, float) else result


@lru_cache(maxsize=64)
def _zone(name: str):
    """The time zone ``name``, or None when this system has no data for it (no tzdata installed)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _times(
    meter_time: CosemDateTime | None, profile: Profile | None, country: str | None, timezone: str | None
) -> tuple[str | None, datetime | None, str | None]:
    """(local ISO timestamp, UTC datetime, time zone name) of the meter time."""
    tzname = timezone or timezone_name(country, profile)
    if meter_time is None:
        return None, None, tzname
    tz = _zone(tzname) if tzname else None
    t = meter_time
    ignore = t.deviation is not None and profile is not None and not profile.trust_deviation and tz is not None
    return (*t.local_and_utc(tz, ignore_deviation=ignore), tzname)


class _Info(NamedTuple):
    name: str | None
    key: str | None
    spec: object  # RegisterSpec | None
    clock: bool  #: x-x:1.0.0 (a clock object)


def _describe(profile: Profile | None, obis: Obis) -> _Info:
    """Name, field key and profile row of ``obis`` (cached: a meter sends the same codes every push)."""
    key = (id(profile), profile.name if profile is not None else None, obis)
    hit = _DESCRIBED.get(key)
    if hit is not None and hit[0] is profile:  # the same profile object, not one that reused its id
        return hit[1]
    spec = profile.spec(obis) if profile is not None else None
    generic = obis_name(obis)
    name = spec.name if spec else (generic.name if generic else None)
    info = _Info(name, generic.key if generic else None, spec, obis.a == 0 and (obis.c, obis.d) == (1, 0))
    if len(_DESCRIBED) > 8192:
        _DESCRIBED.clear()
    _DESCRIBED[key] = (profile, info)
    return info


_DESCRIBED: dict[tuple[int, str | None, Obis], tuple[Profile | None, _Info]] = {}


#: profile selections by the shape of a list: (list id, shape, unkeyed types, maker, country, OBIS ids) -> profile
_SELECTED: dict[tuple, tuple[Profile | None, tuple[Obis, ...]]] = {}


def _select(list_id, entries, maker, country, shape, tags, profiles) -> Profile | None:
    # Obis.from_bytes returns one cached object per code, so their ids identify the list's codes
    # cheaply.  Each entry keeps the code objects of its key alive, so no other object can take
    # one of those ids while the entry exists (even after the code cache was emptied).
    codes = tuple(e.obis for e in entries if e.obis is not None)
    # the catalogue by identity too: the entry holds it, so its id stays its own
    key = (list_id, shape, tags, maker, country, tuple(map(id, codes)), id(profiles))
    try:
        return _SELECTED[key][0]
    except KeyError:
        pass
    chosen = select_profile(list_id, set(codes), maker, country, shape=shape, unkeyed=tags, profiles=profiles)
    if len(_SELECTED) > 1024:
        _SELECTED.clear()
    _SELECTED[key] = (chosen, codes, profiles)
    return chosen


class _Options(NamedTuple):
    multipliers: Mapping[Obis, float]
    ct_ratio: float | None
    #: the profiles to choose from (built-in and loaded, see obis.profiles.catalogue); None = the built-in ones
    profiles: tuple[Profile, ...] | None = None


def _factor(obis: Obis | None, opts: _Options) -> float | None:
    if obis is None:
        return None
    if obis in opts.multipliers:
        return opts.multipliers[obis]
    if opts.ct_ratio is not None:
        return ct_factor(obis, opts.ct_ratio)
    return None


INVALID_CLOCK_NOTE = "the meter flags its clock as invalid (clock status bit 0)"

# How a register's value comes from its A-XDR value (see _Recipe)
_AS_SENT, _TIMES_INT, _TIMES_FLOAT, _PLAIN = 0, 1, 2, 3


class _Recipe(NamedTuple):
    """One register of a list: everything but its value is fixed by the list, and how to compute the value."""

    #: (obis, name, unit, type, scaler, position, key, positional, attribute): the Register without value and raw
    fields: tuple
    data: axdr.Data  #: the A-XDR value in the push the recipe was made from
    mode: int  #: _AS_SENT, _TIMES_INT (x 10**scaler), _TIMES_FLOAT (x 10.0**scaler, rounded) or _PLAIN
    arg: Any  #: 10**scaler, or (10.0**scaler, digits)
    factor: float | None  #: a multiplier or CT ratio applied after scaling
    #: True when the value may change between pushes without changing anything else about the list
    free: bool


class _Analysis(NamedTuple):
    """What a notification body means, apart from its values."""

    recipes: list[_Recipe]
    list_id: str | None
    shape: str
    chosen: Profile | None
    object_list: tuple[tuple[int, Obis, int, int], ...]
    notes: tuple[str, ...]  #: all notes but the invalid-clock one (it depends on the push's clock)
    unknown: bool
    clock: int | None  #: index of the recipe that gives the meter time when the header has none
    meter_id: int | None  #: index of the recipe that gives the meter id
    guard: int | None  #: index of a recipe whose value sits first in the body and must never read as a list id


#: types whose plain_value() / raw_value() are not the value itself: bytes (hex, text, date-time) and containers
_AS_BYTES_OR_ITEMS = frozenset(
    (axdr.OCTET_STRING, axdr.DATE_TIME, axdr.DATE, axdr.TIME, axdr.STRUCTURE, axdr.ARRAY, axdr.COMPACT_ARRAY)
)


def _evaluate(r: _Recipe, v: Any) -> tuple[Any, Any]:
    """(value, raw) of a register from the value ``v`` of its A-XDR data."""
    mode = r.mode
    if mode == _AS_SENT:
        value = raw = v
    elif mode == _TIMES_INT:
        raw, value = v, v * r.arg
    elif mode == _TIMES_FLOAT:
        raw, value = v, round(v * r.arg[0], r.arg[1])
    else:
        d = axdr.Data(r.data.tag, v)
        raw, value = raw_value(d), plain_value(d)
    if r.factor is not None:
        value = _multiply(value, r.factor)
    return value, raw


def _analyse(
    body: axdr.Data,
    maker: str | None,
    profile: Profile | None,
    country: str | None,
    opts: _Options,
) -> _Analysis:
    """Entries, profile, names, units and scalers of a body: the part of :func:`interpret` that values do not change."""
    ex = extract(body)
    entries, list_id, shape = ex.entries, ex.list_id, ex.shape
    notes: list[str] = []
    skip_first = list_id is not None and entries and entries[0].obis is None and entries[0].position == 0
    unkeyed = [e for e in entries if e.obis is None and not (skip_first and e is entries[0])]
    tags = tuple(e.value.tag for e in unkeyed)
    chosen = profile
    if chosen is None:
        chosen = _select(list_id, entries, maker, country.upper() if country else None, shape, tags, opts.profiles)
    mapped: dict[int, Obis | None] = {}
    if chosen is not None and unkeyed and chosen.layouts:
        layout = chosen.layout_for(tags)
        if layout is None:
            notes.append(
                f"profile {chosen.name} has no layout for these {len(unkeyed)} value(s) without OBIS codes:"
                " they are given by position"
            )
        else:
            for e, o in zip(unkeyed, layout.obis):
                mapped[e.position] = o
    recipes: list[_Recipe] = []
    clock: int | None = None
    meter_id: int | None = None
    guard: int | None = None
    unscaled = 0
    missing_obis = False
    applied: list[str] = []
    has_factors = bool(opts.multipliers) or opts.ct_ratio is not None
    container = body.tag in (axdr.STRUCTURE, axdr.ARRAY)
    for e in entries:
        d = e.value
        list_id_first = skip_first and e is entries[0]
        if list_id_first:
            # the list id sent without an OBIS code: the register every maker's list id is (and Push.list_id)
            obis = chosen.list_id_obis if chosen is not None and chosen.list_id_obis is not None else LIST_ID
        else:
            obis = e.obis if e.obis is not None else mapped.get(e.position)
        if obis is not None:
            info = _describe(chosen, obis)
            name, key, spec = info.name, info.key, info.spec
        else:
            info, name, key, spec = None, None, None, None
            missing_obis = True
        if e.attribute is not None:
            what = "logical name" if e.attribute == 1 else f"attribute {e.attribute}"
            name = f"{name or 'Object'} ({what})"
            key = f"{key}_a{e.attribute}" if key else None
        tag = d.tag
        unit: str | None = None
        scaler: int | None = None
        if e.su is not None:
            scaler, unit = e.su[0], (unit_symbol(e.su[1]) or None)
        elif spec is not None:
            scaler, unit = spec.scaler, spec.unit  # type: ignore[attr-defined]
        arg: Any = None
        if tag in _INTEGERS:
            if not scaler:
                mode = _AS_SENT
            elif scaler > 0:
                mode, arg = _TIMES_INT, 10**scaler
            else:
                mode, arg = _TIMES_FLOAT, (10.0**scaler, -scaler)
            if scaler is None:
                unscaled += 1
                unit = None  # a unit without the scaler would mislabel the raw value
        else:
            # plain_value() and raw_value() give the value itself for all but bytes and containers
            mode = _PLAIN if tag in _AS_BYTES_OR_ITEMS else _AS_SENT
            if tag not in (axdr.FLOAT32, axdr.FLOAT64):
                scaler = None
                # the type of plain_value() depends on the A-XDR type alone, so this holds for every push
                if not isinstance(plain_value(d), (int, float)):
                    unit = None
        factor = None
        if has_factors:
            factor = _factor(obis, opts)
            if factor is not None and tag in _NUMBERS:
                applied.append(f"{obis.dotted} x{factor:g}")  # type: ignore[union-attr]
            else:
                factor = None
        if (
            info is not None
            and info.clock
            and clock is None
            and ((tag == _OCTET and len(d.value) == 12) or tag == axdr.DATE_TIME)
        ):
            clock = len(recipes)
        if meter_id is None and obis is not None and key in ("meter_id", "meter_number"):
            meter_id = len(recipes)
        # a value may change freely unless reading the list looked at it: a 6-byte octet string may be
        # an OBIS code, a string under x-x:0.2.129 may be the list id; containers are never free
        free = (
            tag in axdr.SLOT_TYPES
            and not list_id_first
            and not (tag == _OCTET and len(d.value) == 6)
            and not (e.obis is not None and (e.obis.c, e.obis.d, e.obis.e) == (0, 2, 129))
        )
        if free and container and e.position == 0 and tag in _STRINGS:
            guard = len(recipes)  # read as a list id candidate by extract(): each push must still not be one
        fields = (obis, name, unit, _TYPE_NAMES.get(tag) or d.type_name, scaler, e.position, key,
                  obis is not None and e.obis is None, e.attribute)
        recipes.append(_Recipe(fields, d, mode, arg, factor, free))
    unknown = chosen is None and (unscaled > 0 or missing_obis)
    if chosen is None and unknown:
        what = f"list {list_id!r}" if list_id else "this list"
        parts = []
        if unscaled:
            parts.append("values without a scaler on the wire are given raw")
        if missing_obis:
            parts.append("values without an OBIS code are given by position")
        notes.append(f"no profile matched {what}: " + " and ".join(parts) + " (see 'han profiles')")
    if chosen is not None:
        notes.extend(chosen.notes)
    if applied:
        notes.append("multiplied (current transformer): " + ", ".join(applied))
    return _Analysis(
        recipes, list_id, shape, chosen, ex.object_list, tuple(notes), unknown, clock, meter_id, guard
    )


def _push(
    a: _Analysis,
    registers: tuple[Register, ...],
    clock: CosemDateTime | None,
    meter_id: str | None,
    notification: DataNotification,
    security: SecurityInfo | None,
    apdu: bytes,
    country: str | None,
    timezone: str | None,
    layout: RegisterLayout | None = None,
) -> Push:
    notes = a.notes
    meter_time = notification.datetime or clock
    if meter_time is not None and meter_time.invalid:
        notes = notes + (INVALID_CLOCK_NOTE,)
    timestamp, timestamp_utc, tzname = _times(meter_time, a.chosen, country, timezone)
    return Push(
        registers=registers,
        list_id=a.list_id,
        profile=a.chosen.name if a.chosen else None,
        meter_time=meter_time,
        invoke_id_and_priority=notification.invoke_id_and_priority,
        security=security,
        meter_id=meter_id,
        notes=notes,
        timestamp=timestamp,
        timestamp_utc=timestamp_utc,
        apdu=apdu,
        shape=a.shape,
        unknown_list=a.unknown,
        object_list=a.object_list,
        timezone=tzname,
        _layout=(layout, registers) if layout is not None else None,
    )


def interpret(
    notification: DataNotification,
    *,
    security: SecurityInfo | None = None,
    profile: Profile | None = None,
    country: str | None = None,
    apdu: bytes = b"",
    timezone: str | None = None,
    multipliers: Mapping[Obis, float] | None = None,
    ct_ratio: float | None = None,
    profiles: tuple[Profile, ...] | None = None,
) -> Push:
    """Name, scale and collect the registers of one notification.

    ``timezone`` (an IANA name) is the meter's time zone for a local time
    sent without a deviation; by default the country's, else the profile's.
    ``multipliers`` (OBIS -> factor) and ``ct_ratio`` multiply values after
    scaling, for current-transformer meters that send secondary values; an
    explicit multiplier wins over the CT ratio.  ``profiles`` is the
    catalogue a profile is chosen from (:func:`obis.profiles.catalogue`:
    profiles loaded from files, then the built-in ones); default the built-in ones.

    A notification whose body matched a template (see
    :class:`decoders.xdlms.axdr.Templates`) is interpreted by a cached plan for
    its list when there is one (see :class:`_Plan`): the same result,
    computing only what the values change.
    """
    opts = _Options(multipliers or {}, ct_ratio, profiles)
    maker = security.manufacturer if security else None
    if notification.template is not None:
        plan = _plan_for(notification, maker, profile, country, timezone, opts)
        if plan is not None:
            return plan.push(notification, security, apdu, country, timezone)
    a = _analyse(notification.body, maker, profile, country, opts)
    registers = []
    new = tuple.__new__
    for r in a.recipes:
        value, raw = _evaluate(r, r.data.value)
        o, name, unit, type_, scaler, position, key, positional, attribute = r.fields
        registers.append(new(Register, (o, name, value, unit, raw, type_, scaler, position, key, positional, attribute)))
    clock = CosemDateTime.from_bytes(a.recipes[a.clock].data.value) if a.clock is not None else None
    meter_id = str(registers[a.meter_id].value) if a.meter_id is not None else None
    return _push(a, tuple(registers), clock, meter_id, notification, security, apdu, country, timezone)


# -- plans: a list's interpretation, cached ----------------------------------------
class _Plan:
    """The interpretation of one list, to apply to the values of each push of that list.

    Made from one push whose body matched a template: every register whose
    value is *free* (see :func:`_analyse`) is computed per push from its
    template slot; every other slot (OBIS codes, scaler-units, the list id,
    the push object list, values inside structures, ...) is *pinned*: a push
    uses the plan only when all pinned slots hold the values the plan was
    made from.  Tags, counts, lengths and text are the template's skeleton,
    and everything else the result depends on is in the plan's cache key
    (template, profile, manufacturer, country, time zone, multipliers, CT
    ratio), so a plan gives exactly what :func:`_analyse` and
    :func:`_evaluate` would.
    """

    __slots__ = (
        "analysis", "registers", "as_sent", "rounded", "other", "pins", "pinned", "signs", "clock", "meter_id",
        "guard", "layout", "_pinned_of",
    )  # fmt: skip

    def __init__(self, a: _Analysis, values: tuple, leaves: list[axdr.Data]) -> None:
        slot_of = {id(d): k for k, d in enumerate(leaves)}
        self.analysis = a
        registers: list[Register | None] = []
        # the registers computed per push, by how: (register index, slot, ...) - the common cases unrolled
        as_sent = []  # value = raw = the slot value
        rounded = []  # value = round(raw * 10.0**scaler, -scaler)
        other = []  # anything else: _evaluate()
        free_slots = set()
        new = tuple.__new__
        for i, r in enumerate(a.recipes):
            slot = slot_of.get(id(r.data)) if r.free else None
            if slot is None:
                value, raw = _evaluate(r, r.data.value)
                o, name, unit, type_, scaler, position, key, positional, attribute = r.fields
                registers.append(
                    new(Register, (o, name, value, unit, raw, type_, scaler, position, key, positional, attribute))
                )
            else:
                registers.append(None)
                free_slots.add(slot)
                if r.factor is not None or r.mode not in (_AS_SENT, _TIMES_FLOAT):
                    other.append((i, slot, r))
                elif r.mode == _AS_SENT:
                    as_sent.append((i, slot, *r.fields))
                else:
                    rounded.append((i, slot, *r.arg, *r.fields))
        self.registers = registers
        self.as_sent, self.rounded, self.other = tuple(as_sent), tuple(rounded), tuple(other)
        self.pins = tuple(k for k in range(len(values)) if k not in free_slots)
        self.pinned = tuple(values[k] for k in self.pins)
        # 0.0 == -0.0, but they print differently: the signs of pinned floats are compared too (NaN never fits)
        self.signs = tuple(
            (k, copysign(1.0, values[k])) for k in self.pins if leaves[k].tag in (axdr.FLOAT32, axdr.FLOAT64)
        )
        # the pinned values of a push as a tuple, in one C call
        if len(self.pins) > 1:
            self._pinned_of = itemgetter(*self.pins)
        elif self.pins:
            k = self.pins[0]
            self._pinned_of = lambda values: (values[k],)
        else:
            self._pinned_of = lambda values: ()
        self.clock = self._source(a.clock, slot_of)
        self.meter_id = a.meter_id
        self.guard = self._source(a.guard, slot_of)
        self.layout = RegisterLayout(tuple(r.fields for r in a.recipes))

    def _source(self, index: int | None, slot_of: dict) -> tuple | None:
        """(recipe, slot or None) of a recipe the push's clock / list-id guard reads."""
        if index is None:
            return None
        r = self.analysis.recipes[index]
        return (r, slot_of.get(id(r.data)) if r.free else None)

    def fits(self, values: tuple) -> bool:
        if self._pinned_of(values) != self.pinned:
            return False
        for k, sign in self.signs:
            if copysign(1.0, values[k]) != sign:
                return False
        if self.guard is not None:
            r, slot = self.guard
            if slot is not None and _is_list_id(axdr.Data(r.data.tag, values[slot])):
                return False
        return True

    def push(
        self, notification: DataNotification, security: SecurityInfo | None, apdu: bytes, country, timezone
    ) -> Push:
        values = notification.values
        registers = list(self.registers)
        new = tuple.__new__
        for i, slot, o, name, unit, type_, scaler, position, key, positional, attribute in self.as_sent:
            v = values[slot]
            registers[i] = new(Register, (o, name, v, unit, v, type_, scaler, position, key, positional, attribute))
        for i, slot, f, digits, o, name, unit, type_, scaler, position, key, positional, attribute in self.rounded:
            v = values[slot]
            registers[i] = new(
                Register, (o, name, round(v * f, digits), unit, v, type_, scaler, position, key, positional, attribute)
            )
        for i, slot, r in self.other:
            value, raw = _evaluate(r, values[slot])
            o, name, unit, type_, scaler, position, key, positional, attribute = r.fields
            registers[i] = new(Register, (o, name, value, unit, raw, type_, scaler, position, key, positional, attribute))
        clock = None
        if self.clock is not None and notification.datetime is None:
            r, slot = self.clock
            clock = CosemDateTime.from_bytes(values[slot] if slot is not None else r.data.value)
        meter_id = str(registers[self.meter_id].value) if self.meter_id is not None else None  # type: ignore[union-attr]
        return _push(
            self.analysis, tuple(registers), clock, meter_id, notification, security, apdu, country, timezone,  # type: ignore[arg-type]
            self.layout,
        )  # fmt: skip


#: plans by (template, profile, manufacturer, country, time zone, multipliers, CT ratio, catalogue):
#: [misses, (the profile, the catalogue) (keeps their ids taken), plan, plan, ...]
_PLANS: dict[tuple, list] = {}
MAX_PLANS = 256  #: cache keys kept (the oldest dropped first)
PLANS_PER_KEY = 4  #: plans kept per key (one per set of pinned values: OBIS codes, scaler-units, ...)


def _plan_for(
    notification: DataNotification,
    maker: str | None,
    profile: Profile | None,
    country: str | None,
    timezone: str | None,
    opts: _Options,
) -> _Plan | None:
    """The cached plan for this notification's list, made on a miss; None when the list keeps changing."""
    values = notification.values
    # factors by repr: 0.0 == -0.0 (and 2 == 2.0, harmlessly) would share a plan
    factors = frozenset((o, repr(f)) for o, f in opts.multipliers.items()) if opts.multipliers else None
    # the profile by identity (the plan holds it, so the id stays its own); everything else by value
    key = (notification.template, id(profile), maker, country, timezone, factors, repr(opts.ct_ratio), id(opts.profiles))
    entry = _PLANS.get(key)
    if entry is not None:
        for plan in entry[2:]:
            if plan.fits(values):
                return plan
        made = entry[0]
        entry[0] = made + 1
        if made >= 4 * PLANS_PER_KEY and made % axdr.RETRY_EVERY:
            return None  # pinned values that change every push: interpret the slow way (and retry rarely)
    else:
        while len(_PLANS) >= MAX_PLANS:
            _PLANS.pop(next(iter(_PLANS), None), None)
        entry = _PLANS[key] = [1, (profile, opts.profiles)]
    body = notification.body
    a = _analyse(body, maker, profile, country, opts)
    plan = _Plan(a, values, axdr.slot_leaves(body))
    entry.append(plan)
    if len(entry) - 2 > PLANS_PER_KEY:
        del entry[2]
    return plan


# -- DSMR text telegrams ---------------------------------------------------------------
_NUMBER = re.compile(r"^([-+]?\d+(?:\.\d+)?)(?:\*(.+))?$")
_DSMR_TIME = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([WS])$")
#: OBIS (A, C, D, E) of DSMR objects whose value is hex-encoded text
_HEX_TEXT = {(0, 42, 0, 0), (0, 96, 1, 0), (0, 96, 1, 1), (0, 96, 13, 0), (0, 96, 13, 1)}


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


def interpret_telegram(
    telegram: Telegram,
    *,
    security: SecurityInfo | None = None,
    profile: Profile | None = None,
    country: str | None = None,
    apdu: bytes = b"",
    timezone: str | None = None,
    multipliers: Mapping[Obis, float] | None = None,
    ct_ratio: float | None = None,
    profiles: tuple[Profile, ...] | None = None,
) -> Push:
    """The registers of a DSMR telegram: OBIS, value, and the unit the telegram gives."""
    chosen = profile or profile_by_name("dsmr", profiles)
    opts = _Options(multipliers or {}, ct_ratio)
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
        factor = _factor(obis, opts)
        if factor is not None and isinstance(value, (int, float)):
            value = _multiply(value, factor)
            applied.append(f"{obis.dotted} x{factor:g}")
        key = generic.key if generic else None
        if (obis.c, obis.d, obis.e) == (0, 2, 8) and list_id is None:
            list_id = f"DSMR {values[0]}" if values else None
        if key in ("meter_id", "logical_device_name", "meter_id_2") and meter_id is None and isinstance(value, str):
            meter_id = value
        registers.append(
            Register(obis, generic.name if generic else None, value, unit, raw, "dsmr", None, pos, key)
        )
    if telegram.crc is None:
        notes.append("the telegram carries no CRC (some meters omit it): not checked")
    if applied:
        notes.append("multiplied (current transformer): " + ", ".join(applied))
    timestamp, timestamp_utc, tzname = _times(meter_time, chosen, country, timezone)
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
