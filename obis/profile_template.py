"""A starting profile file from the lists of a capture: ``han profiles --template CAPTURE``.

Each list the capture holds is described by its shape: the values sent
without an OBIS code become a ``[[profile.layout]]`` (position, A-XDR type,
sample values as comments, blanks for obis, name, unit and scaler), and
values sent with an OBIS code but no scaler are suggested as commented
``[[profile.register]]`` tables.  Lists with different list ids become
different profiles.  Once the user fills in the blanks, the file loads with
``--profiles`` (see :mod:`obis.profile_file`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from decoders.xdlms import axdr
from decoders.xdlms.apdu import DataNotification

from .code import Obis
from .interpret import extract, plain_value
from .names import obis_name
from .profile_file import toml_string as _q
from .profiles import select_profile

_SAMPLES = 3  #: distinct sample values shown per position


@dataclass
class _Position:
    tag: int
    samples: list = field(default_factory=list)
    low: object = None
    high: object = None
    count: int = 0
    rising: bool = True
    last: object = None

    def add(self, value) -> None:
        self.count += 1
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.low = value if self.low is None else min(self.low, value)
            self.high = value if self.high is None else max(self.high, value)
            if self.last is not None and value < self.last:
                self.rising = False
            self.last = value
        if value not in self.samples and len(self.samples) < _SAMPLES:
            self.samples.append(value)


@dataclass
class _List:
    """One list shape: its values without OBIS codes, by position, and its keyed values without a scaler."""

    list_id: str | None
    shapes: set[str]
    makers: set[str | None]
    unkeyed: list[_Position]
    keyed: dict[Obis, _Position]
    pushes: int = 0
    known: str | None = None  #: the profile that decodes it today


class TemplateError(ValueError):
    """A capture a template cannot be made from (no lists, or lists that need no profile)."""


def _describe(pos: _Position) -> str:
    type_name = axdr.TYPE_NAMES.get(pos.tag, f"tag {pos.tag}")
    shown = ", ".join(_show(v) for v in pos.samples)
    text = f"{type_name}, sample {shown}"
    if pos.low is not None and pos.count > 1 and pos.low != pos.high:
        trend = ", never falling" if pos.rising else ""
        text += f" ({pos.low}..{pos.high} over {pos.count} pushes{trend})"
    return text


def _show(v) -> str:
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _hint(pos: _Position) -> str:
    """What a value probably is, from its type and samples (only where it is clear)."""
    v = pos.samples[0] if pos.samples else None
    if pos.tag == axdr.OCTET_STRING and isinstance(v, str) and len(v) >= 19 and v[4:5] == "-" and "T" in v:
        return "a date-time: the clock is 0.0.1.0.0.255"
    if pos.tag in (axdr.OCTET_STRING, axdr.VISIBLE_STRING) and isinstance(v, str) and v.isprintable():
        return "text: a meter number is 0.0.96.1.0.255, a logical device name 0.0.42.0.0.255"
    counters = (axdr.DOUBLE_LONG_UNSIGNED, axdr.LONG64_UNSIGNED)
    if pos.tag in counters and pos.count > 2 and pos.rising and pos.low is not None and pos.low != pos.high:
        return "a counter (it never falls): energy import is 1.0.1.8.0.255, export 1.0.2.8.0.255, unit Wh"
    return ""


class TemplateBuilder:
    """Collects the lists of decoded notifications, then writes them as profile TOML."""

    def __init__(self, country: str | None = None) -> None:
        self.country = country.upper() if country else None
        self.lists: dict[tuple, _List] = {}
        self.pushes = 0
        self.telegrams = 0

    def add(self, notification: DataNotification, manufacturer: str | None) -> None:
        self.pushes += 1
        ex = extract(notification.body)
        entries = ex.entries
        skip_first = ex.list_id is not None and entries and entries[0].obis is None and entries[0].position == 0
        unkeyed = [e for e in entries if e.obis is None and not (skip_first and e is entries[0])]
        keyed = [e for e in entries if e.obis is not None and e.su is None]
        tags = tuple(e.value.tag for e in unkeyed)
        key = (ex.list_id, ex.shape, tags, tuple(e.obis for e in keyed))
        lst = self.lists.get(key)
        if lst is None:
            chosen = select_profile(
                ex.list_id, {e.obis for e in entries if e.obis is not None}, manufacturer, self.country,
                shape=ex.shape, unkeyed=tags,
            )  # fmt: skip
            lst = self.lists[key] = _List(
                ex.list_id, {ex.shape}, set(), [_Position(t) for t in tags],
                {e.obis: _Position(e.value.tag) for e in keyed}, known=chosen.name if chosen else None,
            )  # fmt: skip
        lst.pushes += 1
        lst.makers.add(manufacturer)
        for pos, e in zip(lst.unkeyed, unkeyed):
            pos.add(plain_value(e.value))
        for e in keyed:
            lst.keyed[e.obis].add(plain_value(e.value))

    def render(self, name: str = "my_meter", source: str = "capture") -> str:
        """The profile file text; TemplateError when the capture gives nothing to describe."""
        useful = [lst for lst in self.lists.values() if lst.unkeyed or lst.keyed]
        if not useful:
            if self.pushes:
                raise TemplateError(
                    f"{source}: every value of its {self.pushes} push(es) has its OBIS code and scaler on the wire:"
                    " a profile adds nothing"
                )
            what = " (DSMR telegrams name their values themselves)" if self.telegrams else ""
            raise TemplateError(f"{source}: no push decoded, so no list to describe{what}")
        by_id: dict[str | None, list[_List]] = {}
        for lst in useful:
            by_id.setdefault(lst.list_id, []).append(lst)
        out = [
            f"# Meter profile template made by 'han profiles --template' from {source}",
            f"# ({self.pushes} push(es), {len(useful)} list shape(s)).",
            "#",
            "# Fill in, for each value you know: obis (e.g. \"1.0.1.8.0.255\"), name, unit and scaler",
            "# (value = raw x 10^scaler; unit is a DLMS symbol: W, Wh, var, varh, VA, A, V, Hz, ...).",
            "# A value left with obis = \"\" stays unnamed, by position.  Then:",
            "#     han decode CAPTURE --profiles THIS_FILE",
            "# Reference: docs/profiles.md.  Every setting of a built-in: han profiles NAME --toml",
        ]
        for n, (list_id, lists) in enumerate(sorted(by_id.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))):
            out += self._profile(f"{name}_{n + 1}" if len(by_id) > 1 else name, list_id, lists, source)
        return "\n".join(out) + "\n"

    def _profile(self, name: str, list_id: str | None, lists: list[_List], source: str) -> list[str]:
        makers = sorted({m for lst in lists for m in lst.makers if m})
        all_have_maker = all(None not in lst.makers for lst in lists)
        shapes = sorted({s for lst in lists for s in lst.shapes})
        what = f"list {list_id!r}" if list_id else "lists without a list id"
        out = ["", "[[profile]]", f"name = {_q(name)}", f"description = {_q(f'{what} (from {source})')}"]
        if list_id is not None:
            out.append(f"list_ids = {_q_list([list_id])}")
        if makers and all_have_maker:
            out.append(f"manufacturers = {_q_list(makers)}  # FLAG id of the system title")
        if self.country:
            out.append(f"countries = {_q_list([self.country])}")
            out.append("country_only = true  # only with --country " + self.country)
        out.append(f"shapes = {_q_list(shapes)}")
        for k, lst in enumerate(lists):
            if lst.known:
                out.append(f"# list shape {k + 1} decodes today with the built-in profile {lst.known!r}"
                           f" ('han profiles {lst.known}')")  # fmt: skip
        for k, lst in enumerate(lists):
            if not lst.unkeyed:
                continue
            out += ["", "[[profile.layout]]",
                    f"name = {_q(f'{len(lst.unkeyed)} values without OBIS codes')}  # seen in {lst.pushes} push(es)"]  # fmt: skip
            for i, pos in enumerate(lst.unkeyed):
                hint = _hint(pos)
                out += [
                    "",
                    "[[profile.layout.value]]",
                    f"# value {i + 1}: {_describe(pos)}",
                    *([f"# probably {hint}"] if hint else []),
                    f"type = {_q(axdr.TYPE_NAMES.get(pos.tag, 'any'))}",
                    'obis = ""',
                    'name = ""',
                    'unit = ""',
                    "scaler = 0",
                ]
        for lst in lists:
            for obis, pos in lst.keyed.items():
                generic = obis_name(obis)
                out += [
                    "",
                    f"# {obis.dotted} is sent without a scaler ({_describe(pos)}); to give it a name, unit and scaler:",
                    "# [[profile.register]]",
                    f"# obis = {_q(obis.dotted)}",
                    f"# name = {_q(generic.name if generic else '')}",
                    '# unit = ""',
                    "# scaler = 0",
                ]
        return out


def _q_list(items) -> str:
    return "[" + ", ".join(_q(x) for x in items) + "]"

