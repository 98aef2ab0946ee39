"""Meter profiles in TOML files: load and check them (``--profiles FILE``), and write a profile as TOML.

A file holds one or more ``[[profile]]`` tables with the fields of
:class:`obis.profiles.Profile`, so a built-in profile and a loaded one are
the same kind of object (``han profiles NAME --toml`` prints a built-in in
this form)::

    [[profile]]
    name = "my_meter"
    description = "My meter: a clock and two counters, no OBIS codes"
    manufacturers = ["LGZ"]          # FLAG id of the system title (optional)
    countries = ["AT"]
    shapes = ["positional"]

    [[profile.layout]]               # the values sent without an OBIS code, in wire order
    name = "clock and two counters"

    [[profile.layout.value]]
    type = "octet_string"
    obis = "0.0.1.0.0.255"
    name = "Clock"

    [[profile.layout.value]]
    type = "double_long_unsigned"
    obis = "1.0.1.8.0.255"
    name = "Active energy import"
    unit = "Wh"
    scaler = 0

    [[profile.register]]             # registers sent with their OBIS code but without a scaler
    obis = "1.0.1.7.0.255"
    name = "Active power import"
    unit = "W"

Everything is checked when the file is loaded (setting names, types, OBIS
syntax, units, scalers, A-XDR type names, countries, time zones, list
shapes, and that a profile can be told from other lists); an error is one
line naming the file, the line and the setting (:class:`ProfileFileError`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from decoders.xdlms import axdr

from .code import Obis, ObisError
from .interpret import SHAPES
from .names import obis_name
from .profiles import ISO_3166, Layout, Profile, RegisterSpec
from .units import UNITS

#: A-XDR type names a layout value may require ("any": no check)
TYPE_BY_NAME: dict[str, int] = {name: tag for tag, name in axdr.TYPE_NAMES.items()}
UNIT_SYMBOLS = frozenset(UNITS.values())
_RAW = "raw"  #: scaler = "raw": the resolution is unknown, the value stays as sent

_PROFILE_KEYS = {
    "name", "description", "list_ids", "manufacturer", "manufacturers", "countries", "country_only", "default",
    "timezone", "shapes", "requires", "list_id_obis", "trust_deviation", "notes", "link", "source",
    "register", "layout",
}  # fmt: skip
_REGISTER_KEYS = {"obis", "name", "unit", "scaler"}
_LAYOUT_KEYS = {"name", "value"}
_VALUE_KEYS = {"obis", "type", "name", "unit", "scaler"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_FLAG = re.compile(r"^[A-Z]{3}$")


class ProfileFileError(ValueError):
    """A profile file that cannot be used: one line naming the file, the line and the setting."""


# -- where a setting is written ---------------------------------------------------------------
_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.\s]+?)\s*\]\]\s*(?:#.*)?$")
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\s]+?)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*=""")


def _lines(text: str) -> dict[tuple, int]:
    """Line numbers of the tables and settings of a profile file, by path.

    A path is ("profile", 0, "layout", 1, "value", 2, "type"): the array-of-tables
    headers are counted as TOML counts them.  Inline tables and arrays are not
    followed: their settings are found at the line of the key that holds them.
    """
    where: dict[tuple, int] = {}
    counts: dict[tuple, int] = {}
    current: tuple = ()
    in_multiline = None
    for no, line in enumerate(text.splitlines(), 1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        m = _HEADER.match(line)
        if m:
            parts = [p.strip() for p in m.group(1).split(".")]
            path: tuple = ()
            for i, part in enumerate(parts):
                prefix = path + (part,)
                if i == len(parts) - 1:
                    n = counts.get(prefix, 0)
                    counts[prefix] = n + 1
                    # a new element resets the counts of the tables below it
                    for k in [k for k in counts if len(k) > len(prefix) and k[: len(prefix)] == prefix]:
                        del counts[k]
                    path = prefix + (n,)
                else:
                    path = prefix + (max(counts.get(prefix, 1) - 1, 0),)
            current = path
            where.setdefault(current, no)
            continue
        m = _TABLE.match(line)
        if m:
            current = tuple(p.strip() for p in m.group(1).split("."))
            where.setdefault(current, no)
            continue
        m = _KEY.match(line)
        if m:
            key = m.group(1).strip("\"'")
            where.setdefault(current + (key,), no)
            rest = line[m.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
    return where


class _Checker:
    """Reads one file's profiles, raising ProfileFileError at the first problem."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.where = _lines(text)

    def fail(self, at: tuple, message: str) -> ProfileFileError:
        line = None
        probe = at
        while probe and line is None:
            line = self.where.get(probe)
            probe = probe[:-1]
        place = f"{self.path}:{line}" if line else self.path
        return ProfileFileError(f"{place}: {self.setting(at)}: {message}")

    @staticmethod
    def setting(at: tuple) -> str:
        """``profile 2 layout 1 value 3 type`` as ``[[profile]] #2 layout #1 value #3: type`` (1-based)."""
        words = []
        for part in at:
            if isinstance(part, int):
                words[-1] += f" #{part + 1}"
            else:
                words.append(part)
        return ", ".join(words) if words else "file"

    # -- value checks
    def string(self, table: dict, key: str, at: tuple, *, required: bool = False, default: str = "") -> str:
        if key not in table:
            if required:
                raise self.fail(at, f"{key} is missing")
            return default
        v = table[key]
        if not isinstance(v, str):
            raise self.fail(at + (key,), f"{key} must be a string in quotes, got {_show(v)}")
        return v

    def strings(self, table: dict, key: str, at: tuple) -> tuple[str, ...]:
        v = table.get(key, [])
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(at + (key,), f"{key} must be a list of strings, e.g. {key} = [\"...\"]")
        return tuple(v)

    def boolean(self, table: dict, key: str, at: tuple, default: bool) -> bool:
        v = table.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(at + (key,), f"{key} must be true or false, got {_show(v)}")
        return v

    def obis(self, text: Any, at: tuple, key: str = "obis") -> Obis:
        if not isinstance(text, str):
            raise self.fail(at, f"{key} must be an OBIS code in quotes (\"1.0.1.8.0.255\" or \"1-0:1.8.0\"), got {_show(text)}")
        try:
            return Obis.parse(text)
        except ObisError:
            raise self.fail(at, f"{key} {text!r} is not an OBIS code (write 1.0.1.8.0.255 or 1-0:1.8.0)") from None

    def unit(self, table: dict, at: tuple) -> str | None:
        if "unit" not in table or table["unit"] == "":
            return None
        u = table["unit"]
        if not isinstance(u, str) or u not in UNIT_SYMBOLS:
            raise self.fail(
                at + ("unit",),
                f"unit {_show(u)} is not a DLMS unit symbol (W, Wh, var, varh, VA, VAh, A, V, Hz, °C, m³, ...);"
                " the scaler gives the power of ten (kWh is unit \"Wh\" with scaler 3)",
            )
        return u

    def scaler(self, table: dict, at: tuple) -> int | None:
        s = table.get("scaler", 0)
        if s == _RAW:
            return None
        if isinstance(s, bool) or not isinstance(s, int) or not -20 <= s <= 20:
            raise self.fail(
                at + ("scaler",),
                f"scaler {_show(s)} must be a power of ten from -20 to 20 (value = raw x 10^scaler),"
                f" or \"{_RAW}\" when the resolution is unknown",
            )
        return s

    def known_keys(self, table: Any, allowed: set[str], at: tuple, what: str) -> dict:
        if not isinstance(table, dict):
            raise self.fail(at, f"{what} must be a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(at + (unknown[0],), f"unknown setting {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
        return table

    def tables(self, table: dict, key: str, at: tuple) -> list:
        v = table.get(key, [])
        if isinstance(v, dict):
            v = [v]
        if not isinstance(v, list):
            raise self.fail(at + (key,), f"{key} must be tables: [[...{key}]]")
        return v

    # -- a profile
    def profile(self, table: Any, at: tuple) -> Profile:
        self.known_keys(table, _PROFILE_KEYS, at, "[[profile]]")
        name = self.string(table, "name", at, required=True)
        if not _NAME.match(name):
            raise self.fail(at + ("name",), f"name {name!r}: use letters, digits, '_', '-' or '.' (at most 64)")
        list_ids = self.strings(table, "list_ids", at)
        manufacturer = self.string(table, "manufacturer", at) or None
        manufacturers = self.strings(table, "manufacturers", at)
        for flag, key in [(manufacturer, "manufacturer")] + [(m, "manufacturers") for m in manufacturers]:
            if flag is not None and not _FLAG.match(flag):
                raise self.fail(at + (key,), f"{flag!r} is not a FLAG id: three capital letters, as a system title"
                                " starts (KAM, KFM, LGZ, ISK, SAG, SMS, ...)")  # fmt: skip
        countries = tuple(c.upper() for c in self.strings(table, "countries", at))
        for c in countries:
            if c not in ISO_3166:
                raise self.fail(at + ("countries",), f"{c!r} is not an ISO 3166 alpha-2 country code (AT, NO, SE, ...)")
        timezone = self.string(table, "timezone", at) or None
        if timezone is not None:
            from zoneinfo import ZoneInfo

            try:
                ZoneInfo(timezone)
            except (ValueError, OSError, KeyError):
                raise self.fail(at + ("timezone",), f"{timezone!r} is not a known time zone (e.g. Europe/Vienna)") from None
        shapes = self.strings(table, "shapes", at)
        for s in shapes:
            if s not in SHAPES:
                raise self.fail(at + ("shapes",), f"{s!r} is not a list shape (one of: {', '.join(SHAPES)})")
        requires = tuple(self.obis(o, at + ("requires",), "requires") for o in self.strings(table, "requires", at))
        lid = table.get("list_id_obis")
        list_id_obis = self.obis(lid, at + ("list_id_obis",), "list_id_obis") if lid is not None else None

        registers: dict[Obis, tuple[RegisterSpec, tuple]] = {}

        def add(spec: RegisterSpec, where: tuple) -> None:
            seen = registers.get(spec.obis)
            if seen is not None and seen[0] != spec:
                raise self.fail(where, f"{spec.obis.dotted} is described twice, differently (also at"
                                f" {self.setting(seen[1])})")  # fmt: skip
            registers.setdefault(spec.obis, (spec, where))

        for i, reg in enumerate(self.tables(table, "register", at)):
            r_at = at + ("register", i)
            self.known_keys(reg, _REGISTER_KEYS, r_at, "[[profile.register]]")
            if "obis" not in reg:
                raise self.fail(r_at, "obis is missing")
            obis = self.obis(reg["obis"], r_at + ("obis",))
            label = self.string(reg, "name", r_at, required=True)
            if not label:
                raise self.fail(r_at + ("name",), "name is empty")
            add(RegisterSpec(obis, label, self.unit(reg, r_at), self.scaler(reg, r_at)), r_at)
        layouts = []
        for i, lay in enumerate(self.tables(table, "layout", at)):
            l_at = at + ("layout", i)
            self.known_keys(lay, _LAYOUT_KEYS, l_at, "[[profile.layout]]")
            values = self.tables(lay, "value", l_at)
            if not values:
                raise self.fail(l_at, "a layout needs its values: one [[profile.layout.value]] per value, in wire order")
            codes: list[Obis | None] = []
            types: list[int | None] = []
            typed = False
            for k, val in enumerate(values):
                v_at = l_at + ("value", k)
                self.known_keys(val, _VALUE_KEYS, v_at, "[[profile.layout.value]]")
                text = val.get("obis", "")
                obis = self.obis(text, v_at + ("obis",)) if text != "" else None
                type_name = val.get("type")
                if type_name is None:
                    types.append(None)
                else:
                    typed = True
                    if type_name == "any":
                        types.append(None)
                    elif isinstance(type_name, str) and type_name in TYPE_BY_NAME:
                        types.append(TYPE_BY_NAME[type_name])
                    else:
                        common = "double_long_unsigned, long_unsigned, double_long, long, octet_string, visible_string"
                        raise self.fail(v_at + ("type",), f"type {_show(type_name)} is not an A-XDR type name"
                                        f" ({common}, ... or \"any\")")  # fmt: skip
                # name = "", unit = "" and scaler = 0 are the template's blanks: not given
                given = val.get("name", "") != "" or val.get("unit", "") != "" or val.get("scaler", 0) != 0
                if obis is None and given:
                    raise self.fail(v_at, "name, unit and scaler need the value's obis (leave them out for a value"
                                    " that stays unnamed)")  # fmt: skip
                if obis is not None and (given or obis not in registers):
                    label = self.string(val, "name", v_at)
                    if not label:
                        generic = obis_name(obis)
                        if generic is None:
                            if not given:
                                codes.append(obis)  # named by a [[profile.register]] (checked below)
                                continue
                            raise self.fail(v_at + ("name",), f"{obis.dotted} is not a common code: give it a name")
                        label = generic.name
                    add(RegisterSpec(obis, label, self.unit(val, v_at), self.scaler(val, v_at)), v_at)
                codes.append(obis)
            if all(o is None for o in codes):
                raise self.fail(l_at, "no value has an obis: give at least one value its OBIS code"
                                " (the others stay unnamed, by position)")  # fmt: skip
            layouts.append(Layout(self.string(lay, "name", l_at, default=f"layout {i + 1}"), tuple(codes),
                                  tuple(types) if typed else None))  # fmt: skip
        if not (list_ids or layouts or requires or shapes == ("dsmr",)):
            raise self.fail(at, "nothing tells this profile's lists from others: give list_ids, requires (OBIS"
                            " codes the list must hold) or a [[profile.layout]]")  # fmt: skip
        specs = {o: s for o, (s, _w) in registers.items()}
        for layout, i in zip(layouts, range(len(layouts))):
            for k, o in enumerate(layout.obis):
                if o is not None and o not in specs:
                    raise self.fail(at + ("layout", i, "value", k, "obis"),
                                    f"{o.dotted} is not a common code: give the value a name (and unit, scaler),"
                                    " or a [[profile.register]] for it")  # fmt: skip
        return Profile(
            name=name,
            description=self.string(table, "description", at) or f"from {self.path}",
            list_ids=list_ids,
            manufacturer=manufacturer,
            countries=countries,
            registers=tuple(specs.values()),
            requires=requires,
            list_id_obis=list_id_obis,
            timezone=timezone,
            shapes=shapes,
            manufacturers=manufacturers,
            layouts=tuple(layouts),
            country_only=self.boolean(table, "country_only", at, False),
            default=self.boolean(table, "default", at, False),
            trust_deviation=self.boolean(table, "trust_deviation", at, True),
            notes=self.strings(table, "notes", at),
            link=self.string(table, "link", at),
            source=self.string(table, "source", at),
        )


def _show(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_profiles(text: str, path: str = "profiles.toml") -> tuple[Profile, ...]:
    """The profiles of one file's text; ProfileFileError names the line and the setting of the first problem."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        place = f"{path}:{m.group(1)}" if m else path
        raise ProfileFileError(f"{place}: not valid TOML: {reason}") from None
    checker = _Checker(path, text)
    unknown = sorted(set(data) - {"profile"})
    if unknown:
        raise checker.fail((unknown[0],), "unknown setting; a profile file holds [[profile]] tables")
    tables = data.get("profile", [])
    if isinstance(tables, dict):
        raise checker.fail(("profile",), "write each profile as [[profile]] (two brackets: a file may hold several)")
    if not isinstance(tables, list) or not tables:
        raise checker.fail((), "no [[profile]] table in the file")
    out: list[Profile] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(tables):
        p = checker.profile(table, ("profile", i))
        if p.name in seen:
            raise checker.fail(("profile", i, "name"), f"a profile named {p.name!r} is already in this file"
                               f" ([[profile]] #{seen[p.name] + 1})")  # fmt: skip
        seen[p.name] = i
        out.append(p)
    return tuple(out)


def load_profiles(paths: list[str] | tuple[str, ...]) -> tuple[Profile, ...]:
    """The profiles of several files, in order; a name given twice (in two files) is an error."""
    out: list[Profile] = []
    where: dict[str, str] = {}
    for path in paths:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raise ProfileFileError(f"{path}: no such profile file") from None
        except IsADirectoryError:
            raise ProfileFileError(f"{path}: is a directory, not a profile file") from None
        except OSError as exc:
            raise ProfileFileError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProfileFileError(f"{path}: not a text file (a profile file is TOML, UTF-8)") from None
        for p in parse_profiles(text, path):
            if p.name in where:
                raise ProfileFileError(f"{path}: profile {p.name!r} is also in {where[p.name]}")
            where[p.name] = path
            out.append(p)
    return tuple(out)


# -- writing --------------------------------------------------------------------------------------
def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (a JSON string is one)."""
    return json.dumps(text, ensure_ascii=False)


_q = toml_string


def _list(items) -> str:
    return "[" + ", ".join(_q(x) for x in items) + "]"


def profile_toml(p: Profile) -> str:
    """``p`` as a ``[[profile]]`` table that :func:`parse_profiles` reads back to an equal Profile."""
    out = ["[[profile]]", f"name = {_q(p.name)}", f"description = {_q(p.description)}"]
    if p.list_ids:
        out.append(f"list_ids = {_list(p.list_ids)}")
    if p.manufacturer:
        out.append(f"manufacturer = {_q(p.manufacturer)}")
    if p.manufacturers:
        out.append(f"manufacturers = {_list(p.manufacturers)}")
    if p.countries:
        out.append(f"countries = {_list(p.countries)}")
    for key, value, default in (("country_only", p.country_only, False), ("default", p.default, False),
                                ("trust_deviation", p.trust_deviation, True)):  # fmt: skip
        if value != default:
            out.append(f"{key} = {'true' if value else 'false'}")
    if p.timezone:
        out.append(f"timezone = {_q(p.timezone)}")
    if p.shapes:
        out.append(f"shapes = {_list(p.shapes)}")
    if p.requires:
        out.append(f"requires = {_list(o.dotted for o in p.requires)}")
    if p.list_id_obis is not None:
        out.append(f"list_id_obis = {_q(p.list_id_obis.dotted)}")
    if p.notes:
        out.append(f"notes = {_list(p.notes)}")
    if p.link:
        out.append(f"link = {_q(p.link)}")
    if p.source:
        out.append(f"source = {_q(p.source)}")
    for layout in p.layouts:
        out += ["", "[[profile.layout]]", f"name = {_q(layout.name)}"]
        for k, o in enumerate(layout.obis):
            out += ["", "[[profile.layout.value]]"]
            if layout.types is not None:
                tag = layout.types[k]
                out.append(f"type = {_q(axdr.TYPE_NAMES[tag] if tag is not None else 'any')}")
            out.append(f"obis = {_q(o.dotted if o is not None else '')}")
    for r in p.registers:
        out += ["", "[[profile.register]]", f"obis = {_q(r.obis.dotted)}", f"name = {_q(r.name)}"]
        if r.unit:
            out.append(f"unit = {_q(r.unit)}")
        if r.scaler is None:
            out.append(f"scaler = {_q(_RAW)}")
        elif r.scaler:
            out.append(f"scaler = {r.scaler}")
    return "\n".join(out) + "\n"
