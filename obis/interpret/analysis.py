"""What a notification body means apart from its values: one recipe per register, and the push they make.

:func:`analyse` does everything but computing values (entries, profile,
names, units, scalers, factors, notes); :func:`evaluate` turns one A-XDR
value into a register's value; :func:`make_push` assembles the push.  A
cached plan (:mod:`obis.interpret.plans`) keeps an analysis for a list and
evaluates only the values that change.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from decoders.xdlms import axdr
from decoders.xdlms.apdu import DataNotification
from decoders.xdlms.cosem_time import CosemDateTime

from ..code import Obis
from ..profiles import LIST_ID, Profile
from ..push import Push, Register, RegisterLayout, SecurityInfo
from ..units import unit_symbol
from .extract import LIST_ID_CDE, STRINGS, extract
from .options import InterpretOptions
from .selection import Selector
from .values import INTEGERS, NUMBERS, factor, multiply, plain_value, raw_value, times

_TYPE_NAMES = axdr.TYPE_NAMES
_OCTET = axdr.OCTET_STRING

INVALID_CLOCK_NOTE = "the meter flags its clock as invalid (clock status bit 0)"

# How a register's value comes from its A-XDR value (see Recipe)
AS_SENT, TIMES_INT, TIMES_FLOAT, PLAIN, DIVIDED = 0, 1, 2, 3, 4
#: integer types of at most 32 bits: scaled down by one exact division (see DIVIDED in analyse)
NARROW_INTEGERS = INTEGERS - {axdr.LONG64, axdr.LONG64_UNSIGNED}


class Recipe(NamedTuple):
    """One register of a list: everything but its value is fixed by the list, and how to compute the value."""

    #: (obis, name, unit, type, scaler, position, key, positional, attribute): the Register without value and raw
    fields: tuple
    data: axdr.Data  #: the A-XDR value in the push the recipe was made from
    #: AS_SENT, TIMES_INT (x 10**scaler), TIMES_FLOAT (x 10.0**scaler, rounded), DIVIDED (/ 10**-scaler) or PLAIN
    mode: int
    arg: Any  #: 10**scaler, (10.0**scaler, digits), or 10**-scaler
    factor: float | None  #: a multiplier or CT ratio applied after scaling
    #: True when the value may change between pushes without changing anything else about the list
    free: bool


class Analysis(NamedTuple):
    """What a notification body means, apart from its values."""

    recipes: list[Recipe]
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


def evaluate(r: Recipe, v: Any) -> tuple[Any, Any]:
    """(value, raw) of a register from the value ``v`` of its A-XDR data."""
    mode = r.mode
    if mode == AS_SENT:
        value = raw = v
    elif mode == TIMES_INT:
        raw, value = v, v * r.arg
    elif mode == DIVIDED:
        raw, value = v, v / r.arg
    elif mode == TIMES_FLOAT:
        raw, value = v, round(v * r.arg[0], r.arg[1])
    else:
        d = axdr.Data(r.data.tag, v)
        raw, value = raw_value(d), plain_value(d)
    if r.factor is not None:
        value = multiply(value, r.factor)
    return value, raw


def analyse(body: axdr.Data, maker: str | None, options: InterpretOptions, selector: Selector) -> Analysis:
    """Entries, profile, names, units and scalers of a body: the part of interpreting that values do not change."""
    ex = extract(body)
    entries, list_id, shape = ex.entries, ex.list_id, ex.shape
    notes: list[str] = []
    skip_first = list_id is not None and entries and entries[0].obis is None and entries[0].position == 0
    unkeyed = [e for e in entries if e.obis is None and not (skip_first and e is entries[0])]
    tags = tuple(e.value.tag for e in unkeyed)
    chosen = options.profile
    if chosen is None:
        chosen = selector.choose(list_id, entries, maker, shape, tags)
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
    recipes: list[Recipe] = []
    clock: int | None = None
    meter_id: int | None = None
    guard: int | None = None
    unscaled = 0
    missing_obis = False
    applied: list[str] = []
    multipliers, ct_ratio = options.multipliers, options.ct_ratio
    has_factors = bool(multipliers) or ct_ratio is not None
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
            info = selector.describe(chosen, obis)
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
            scaler, unit = spec.scaler, spec.unit
        arg: Any = None
        if tag in INTEGERS:
            if not scaler:
                mode = AS_SENT
            elif scaler > 0:
                mode, arg = TIMES_INT, 10**scaler
            elif tag in NARROW_INTEGERS and scaler >= -128:  # (an A-XDR scaler is an integer8)
                # the same float as round(v * 10.0**scaler, -scaler) for |v| < 2**50, at a tenth of the cost:
                # v * 10.0**scaler is within 2 ulp of v / 10**-scaler, so round() lands on that decimal, and
                # int / int is correctly rounded (tests/obis/test_cached_plans.py checks it)
                mode, arg = DIVIDED, 10**-scaler
            else:
                mode, arg = TIMES_FLOAT, (10.0**scaler, -scaler)
            if scaler is None:
                unscaled += 1
                unit = None  # a unit without the scaler would mislabel the raw value
        else:
            # plain_value() and raw_value() give the value itself for all but bytes and containers
            mode = PLAIN if tag in _AS_BYTES_OR_ITEMS else AS_SENT
            if tag not in (axdr.FLOAT32, axdr.FLOAT64):
                scaler = None
                # the type of plain_value() depends on the A-XDR type alone, so this holds for every push
                if not isinstance(plain_value(d), (int, float)):
                    unit = None
        f = None
        if has_factors:
            f = factor(obis, multipliers, ct_ratio)
            if f is not None and tag in NUMBERS:
                applied.append(f"{obis.dotted} x{f:g}")  # type: ignore[union-attr]
            else:
                f = None
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
            and not (e.obis is not None and (e.obis.c, e.obis.d, e.obis.e) == LIST_ID_CDE)
        )
        if free and container and e.position == 0 and tag in STRINGS:
            guard = len(recipes)  # read as a list id candidate by extract(): each push must still not be one
        fields = (obis, name, unit, _TYPE_NAMES.get(tag) or d.type_name, scaler, e.position, key,
                  obis is not None and e.obis is None, e.attribute)  # fmt: skip
        recipes.append(Recipe(fields, d, mode, arg, f, free))
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
    return Analysis(recipes, list_id, shape, chosen, ex.object_list, tuple(notes), unknown, clock, meter_id, guard)


def registers_of(a: Analysis) -> tuple[Register, ...]:
    """The registers of the push an analysis was made from (its own values)."""
    registers = []
    new = tuple.__new__
    for r in a.recipes:
        value, raw = evaluate(r, r.data.value)
        o, name, unit, type_, scaler, position, key, positional, attribute = r.fields
        registers.append(new(Register, (o, name, value, unit, raw, type_, scaler, position, key, positional, attribute, None)))
    return tuple(registers)


def make_push(
    a: Analysis,
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
    timestamp, timestamp_utc, tzname = times(meter_time, a.chosen, country, timezone)
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


def analysed_push(
    a: Analysis, notification: DataNotification, security: SecurityInfo | None, apdu: bytes, options: InterpretOptions
) -> Push:
    """The push of the notification ``a`` was made from, without a plan."""
    registers = registers_of(a)
    clock = CosemDateTime.from_bytes(a.recipes[a.clock].data.value) if a.clock is not None else None
    meter_id = str(registers[a.meter_id].value) if a.meter_id is not None else None
    return make_push(a, registers, clock, meter_id, notification, security, apdu, options.country, options.timezone)
