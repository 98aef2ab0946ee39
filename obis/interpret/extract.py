"""List shapes: the (OBIS, value[, scaler-unit]) entries of a notification body, its list id and its shape.

The notification body is walked for entries in the list shapes meters use,
all decoded to the same registers:

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
"""

from __future__ import annotations

import re
from typing import NamedTuple

from decoders.xdlms import axdr

from ..code import Obis, looks_like_obis
from ..references import LIST_ID

SHAPES = ("flat_pairs", "structs", "flat_triples", "push_object_list", "positional", "value", "dsmr")

_OCTET = axdr.OCTET_STRING
_STRUCT = axdr.STRUCTURE
#: the A-XDR types that carry text (a list id may be any of them)
STRINGS = (axdr.VISIBLE_STRING, axdr.UTF8_STRING, axdr.OCTET_STRING)
#: a list version id: letters, an underscore, a version (Kamstrup_V0001, KFM_001, AIDON_V0001, EMBRIQ_V1_1)
_LIST_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_.]+$")
#: (C, D, E) of the list version identifier (x-x:0.2.129, on any channel)
LIST_ID_CDE = (LIST_ID.c, LIST_ID.d, LIST_ID.e)


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


def printable(d: axdr.Data) -> bool:
    v = d.value
    if isinstance(v, str):
        return v.isprintable()
    return bool(v) and all(0x20 <= b < 0x7F for b in v)


def text(d: axdr.Data) -> str:
    return d.value if isinstance(d.value, str) else d.value.decode("ascii")


def is_list_id(d: axdr.Data) -> bool:
    """Whether a value reads as a list version id (``Kamstrup_V0001``, ``KFM_001``, ...)."""
    return d.tag in STRINGS and printable(d) and len(d.value) <= 32 and bool(_LIST_ID.match(text(d)))


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
        if i == 0 and is_list_id(d):
            list_id = text(d)
        entries.append(Entry(None, d, None, i))
        i += 1
    if list_id is None:
        for e in entries:
            o = e.obis
            if o is not None and (o.c, o.d, o.e) == LIST_ID_CDE and e.value.tag in STRINGS and printable(e.value):
                list_id = text(e.value)
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
