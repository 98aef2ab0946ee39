"""Plans: a list's interpretation, made once and applied to the values of every push of that list.

A notification whose body matched an A-XDR template (see
:class:`decoders.xdlms.axdr.Templates`) carries its values as a flat tuple of
slots.  A :class:`Plan` made from one analysis computes only the registers
whose values are free; :class:`Plans` keeps them per interpreter, by
template and manufacturer (everything else the result depends on is the
interpreter's options, fixed for its life).
"""

from __future__ import annotations

from math import copysign
from operator import itemgetter
from typing import Callable

from decoders.xdlms import axdr
from decoders.xdlms.apdu import DataNotification
from decoders.xdlms.cosem_time import CosemDateTime

from ..push import Push, Register, RegisterLayout, SecurityInfo
from .analysis import AS_SENT, DIVIDED, TIMES_FLOAT, Analysis, evaluate, make_push
from .extract import is_list_id

MAX_PLANS = 256  #: cache keys kept (the oldest dropped first)
PLANS_PER_KEY = 4  #: plans kept per key (one per set of pinned values: OBIS codes, scaler-units, ...)


class Plan:
    """The interpretation of one list, to apply to the values of each push of that list.

    Made from one push whose body matched a template: every register whose
    value is *free* (see :func:`obis.interpret.analysis.analyse`) is
    computed per push from its template slot; every other slot (OBIS codes,
    scaler-units, the list id, the push object list, values inside
    structures, ...) is *pinned*: a push uses the plan only when all pinned
    slots hold the values the plan was made from.  Tags, counts, lengths and
    text are the template's skeleton, and everything else the result depends
    on is in the plan's cache key (template, manufacturer) or the
    interpreter's options, so a plan gives exactly what the analysis would.
    """

    __slots__ = (
        "analysis", "registers", "as_sent", "divided", "rounded", "other", "pins", "pinned", "signs", "clock", "meter_id",
        "guard", "layout", "_pinned_of",
    )  # fmt: skip

    def __init__(self, a: Analysis, values: tuple, leaves: list[axdr.Data]) -> None:
        slot_of = {id(d): k for k, d in enumerate(leaves)}  # the leaves of one tree, alive meanwhile
        self.analysis = a
        registers: list[Register | None] = []
        # the registers computed per push, by how: (register index, slot, ...) - the common cases unrolled
        # a Register's fields as a list whose value (2) and raw (4) each push fills in: the register is made
        # from it in one call (an interpreter, and so its plans, belongs to one thread)
        as_sent = []  # value = raw = the slot value
        divided = []  # value = raw / 10**-scaler
        rounded = []  # value = round(raw * 10.0**scaler, -scaler)
        other = []  # anything else: evaluate()
        free_slots = set()
        new = tuple.__new__
        for i, r in enumerate(a.recipes):
            slot = slot_of.get(id(r.data)) if r.free else None
            if slot is None:
                value, raw = evaluate(r, r.data.value)
                o, name, unit, type_, scaler, position, key, positional, attribute = r.fields
                registers.append(
                    new(Register, (o, name, value, unit, raw, type_, scaler, position, key, positional, attribute, None))
                )
            else:
                registers.append(None)
                free_slots.add(slot)
                if r.factor is not None or r.mode not in (AS_SENT, DIVIDED, TIMES_FLOAT):
                    other.append((i, slot, r))
                elif r.mode == AS_SENT:
                    as_sent.append((i, slot, _row(r.fields)))
                elif r.mode == DIVIDED:
                    divided.append((i, slot, r.arg, _row(r.fields)))
                else:
                    rounded.append((i, slot, *r.arg, *r.fields))
        self.registers = registers
        self.as_sent, self.divided, self.rounded = tuple(as_sent), tuple(divided), tuple(rounded)
        self.other = tuple(other)
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
            if slot is not None and is_list_id(axdr.Data(r.data.tag, values[slot])):
                return False
        return True

    def push(
        self, notification: DataNotification, security: SecurityInfo | None, apdu: bytes, country, timezone
    ) -> Push:
        values = notification.values
        registers = list(self.registers)
        new = tuple.__new__
        for i, slot, row in self.as_sent:
            row[2] = row[4] = values[slot]
            registers[i] = new(Register, row)
        for i, slot, d, row in self.divided:
            v = row[4] = values[slot]
            row[2] = v / d
            registers[i] = new(Register, row)
        for i, slot, f, digits, o, name, unit, type_, scaler, position, key, positional, attribute in self.rounded:
            v = values[slot]
            registers[i] = new(
                Register, (o, name, round(v * f, digits), unit, v, type_, scaler, position, key, positional, attribute, None)
            )
        for i, slot, r in self.other:
            value, raw = evaluate(r, values[slot])
            o, name, unit, type_, scaler, position, key, positional, attribute = r.fields
            registers[i] = new(Register, (o, name, value, unit, raw, type_, scaler, position, key, positional, attribute, None))
        clock = None
        if self.clock is not None and notification.datetime is None:
            r, slot = self.clock
            clock = CosemDateTime.from_bytes(values[slot] if slot is not None else r.data.value)
        meter_id = str(registers[self.meter_id].value) if self.meter_id is not None else None  # type: ignore[union-attr]
        return make_push(
            self.analysis, tuple(registers), clock, meter_id, notification, security, apdu, country, timezone,  # type: ignore[arg-type]
            self.layout,
        )  # fmt: skip


def _row(fields: tuple) -> list:
    """A register's fields (``Recipe.fields``) as a list with room for value and raw, in Register's order."""
    o, name, unit, type_, scaler, position, key, positional, attribute = fields
    return [o, name, None, unit, None, type_, scaler, position, key, positional, attribute, None]  # time_utc: None


class Plans:
    """The plans of one interpreter: by (template, manufacturer), ``[misses, plan, plan, ...]``, bounded."""

    __slots__ = ("_analyse", "entries")

    def __init__(self, analyse: Callable[[axdr.Data, str | None], Analysis]) -> None:
        self._analyse = analyse  #: (body, manufacturer) -> the analysis a new plan is made from
        self.entries: dict[tuple, list] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def plan_for(self, notification: DataNotification, maker: str | None) -> Plan | None:
        """The cached plan for this notification's list, made on a miss; None when the list keeps changing."""
        values = notification.values
        key = (notification.template, maker)
        entry = self.entries.get(key)
        if entry is not None:
            for plan in entry[1:]:
                if plan.fits(values):
                    return plan
            made = entry[0]
            entry[0] = made + 1
            if made >= 4 * PLANS_PER_KEY and made % axdr.RETRY_EVERY:
                return None  # pinned values that change every push: interpret the slow way (and retry rarely)
        else:
            entries = self.entries
            while len(entries) >= MAX_PLANS:
                entries.pop(next(iter(entries), None), None)
            entry = entries[key] = [1]
        body = notification.body
        plan = Plan(self._analyse(body, maker), values, axdr.slot_leaves(body))
        entry.append(plan)
        if len(entry) - 1 > PLANS_PER_KEY:
            del entry[1]
        return plan
