"""Capacity tariff rules as data: the built-in TOML files and the user's tariff file, checked.

A rule is a ``[capacity.NAME]`` table (docs/tariffs.md has the format)::

    [capacity.no-elvia]
    title = "Elvia (Norway): kapasitetsledd"
    method = "top-hours"        # the mean of the `count` highest hourly imports
    count = 3
    distinct_days = true        # each on a different day
    currency = "NOK"
    steps = [{from_kw = 0, to_kw = 2, price = 110}, ...]

    [capacity.be-fluvius]
    method = "peak-quarter"     # the month's highest 15-minute mean import power
    floor_kw = 2.5
    mean_months = 12            # the bill's figure: the mean of the last 12 monthly peaks

Optional windows for ``top-hours`` (Swedish power tariffs): ``weekdays`` (ISO,
1 = Monday), ``hours = [from, to]`` (local hours, from inclusive, to exclusive),
``months``.  The built-in rules live in ``han/tariffs/builtin/*.toml`` in the
same form; a user's file adds rules and may replace a built-in one by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILTIN = Path(__file__).with_name("builtin")
METHODS = ("top-hours", "peak-quarter")


class TariffError(Exception):
    """A tariff file or rule is wrong (one line naming the file and key)."""


@dataclass(frozen=True, slots=True)
class Step:
    from_kw: float
    to_kw: float | None  #: None: no upper bound
    price: float  #: per month, in the rule's currency


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    method: str  #: top-hours | peak-quarter
    title: str = ""
    count: int = 3
    distinct_days: bool = False
    weekdays: tuple[int, ...] | None = None  #: ISO weekdays the window covers (1 = Monday)
    hours: tuple[int, int] | None = None  #: local hours [from, to)
    months: tuple[int, ...] | None = None
    floor_kw: float = 0.0
    mean_months: int = 1
    currency: str | None = None
    steps: tuple[Step, ...] = ()
    source: str = ""  #: where the numbers come from

    def in_window(self, weekday: int, hour: int, month: int) -> bool:
        """Whether a local hour (ISO weekday, hour of day, month) counts for the rule."""
        if self.months is not None and month not in self.months:
            return False
        if self.weekdays is not None and weekday not in self.weekdays:
            return False
        if self.hours is not None and not self.hours[0] <= hour < self.hours[1]:
            return False
        return True

    def step(self, kw: float) -> Step | None:
        """The step holding ``kw`` (from_kw <= kw < to_kw)."""
        for s in self.steps:
            if kw >= s.from_kw and (s.to_kw is None or kw < s.to_kw):
                return s
        return None


_KEYS = {"title", "method", "count", "distinct_days", "weekdays", "hours", "months", "floor_kw", "mean_months",
         "currency", "steps", "source"}


def _ints(where: str, v: Any, lo: int, hi: int) -> tuple[int, ...]:
    if not isinstance(v, list) or not v or not all(isinstance(x, int) and lo <= x <= hi for x in v):
        raise TariffError(f"{where}: a list of whole numbers {lo}..{hi}")
    return tuple(v)


def _num(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise TariffError(f"{where}: a number >= 0")
    return float(v)


def parse_rule(name: str, t: Any, where: str) -> Rule:
    """One ``[capacity.NAME]`` table, checked."""
    w = f"{where}: [capacity.{name}]"
    if not isinstance(t, dict):
        raise TariffError(f"{w} must be a table")
    unknown = set(t) - _KEYS
    if unknown:
        raise TariffError(f"{w}: unknown key {sorted(unknown)[0]!r}; known: {', '.join(sorted(_KEYS))}")
    method = t.get("method")
    if method not in METHODS:
        raise TariffError(f"{w}: method must be one of {', '.join(METHODS)} (got {method!r})")
    count = t.get("count", 3 if method == "top-hours" else 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise TariffError(f"{w}: count must be a whole number >= 1")
    hours = None
    if "hours" in t:
        h = t["hours"]
        if not (isinstance(h, list) and len(h) == 2 and all(isinstance(x, int) for x in h) and 0 <= h[0] < h[1] <= 24):
            raise TariffError(f"{w}: hours must be [from, to] local hours, 0 <= from < to <= 24")
        hours = (h[0], h[1])
    if method == "peak-quarter" and ({"weekdays", "hours", "months", "distinct_days"} & set(t)):
        raise TariffError(f"{w}: windows and distinct_days belong to method top-hours")
    steps = []
    for i, s in enumerate(t.get("steps", [])):
        sw = f"{w} steps[{i}]"
        if not isinstance(s, dict) or "from_kw" not in s or "price" not in s:
            raise TariffError(f"{sw}: needs from_kw, price (and to_kw except on the last step)")
        to = s.get("to_kw")
        steps.append(Step(_num(sw + " from_kw", s["from_kw"]), None if to is None else _num(sw + " to_kw", to),
                          _num(sw + " price", s["price"])))
    for a, b in zip(steps, steps[1:]):
        if a.to_kw is None or a.to_kw != b.from_kw:
            raise TariffError(f"{w}: steps must follow each other (to_kw of one = from_kw of the next)")
    mean_months = t.get("mean_months", 1)
    if not isinstance(mean_months, int) or isinstance(mean_months, bool) or not 1 <= mean_months <= 24:
        raise TariffError(f"{w}: mean_months must be a whole number 1..24")
    return Rule(
        name=name, method=method, title=str(t.get("title", "")), count=count,
        distinct_days=bool(t.get("distinct_days", False)),
        weekdays=_ints(f"{w} weekdays", t["weekdays"], 1, 7) if "weekdays" in t else None,
        hours=hours,
        months=_ints(f"{w} months", t["months"], 1, 12) if "months" in t else None,
        floor_kw=_num(f"{w} floor_kw", t.get("floor_kw", 0.0)), mean_months=mean_months,
        currency=t.get("currency"), steps=tuple(steps), source=str(t.get("source", "")),
    )


def _read(path: str | os.PathLike) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise TariffError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TariffError(f"{path}: not valid TOML: {exc}") from None


def rules_of(doc: dict[str, Any], where: str) -> dict[str, Rule]:
    cap = doc.get("capacity", {})
    if not isinstance(cap, dict):
        raise TariffError(f"{where}: capacity must be a table of rules ([capacity.NAME])")
    return {name: parse_rule(name, t, where) for name, t in cap.items()}


def builtin_rules() -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for p in sorted(BUILTIN.glob("*.toml")):
        out.update(rules_of(_read(p), str(p.name)))
    return out


def load_rules(user_doc: dict[str, Any] | None = None, where: str = "tariffs") -> dict[str, Rule]:
    """The built-in rules, with the user's tariff file's over them."""
    rules = builtin_rules()
    if user_doc:
        rules.update(rules_of(user_doc, where))
    return rules


def read_tariff_file(path: str | os.PathLike) -> dict[str, Any]:
    """A user's tariff file as a dict (TariffError when unreadable)."""
    return _read(path)
