"""Columns that other parts of han add to ``han report`` rows: ``cost`` and ``capacity``.

``han report`` builds its rows (dicts with ``meter``, ``start``, ``end``,
``import_kwh``, ``export_kwh``, ``quality`` ...) from :mod:`han.store.hours`, then
calls every extension named here, in order.  An extension fills its own key in
place and returns nothing::

    def add_cost(db: sqlite3.Connection, rows: list[dict], ctx: ReportContext) -> None:
        for row, period in zip(rows, ctx.periods):
            ...  # row["cost"] = {...} when prices are known

Contract:
- ``rows[i]`` belongs to ``ctx.periods[i]`` (an :class:`~han.store.hours.Hour`, or a
  :class:`~han.store.hours.Period` for days and months), same order, one meter.
- ``cost`` is added only when prices are known for the row; ``capacity`` only to
  monthly rows and only when ``ctx.capacity`` names a rule:
  ``{"rule", "value_kw", "hours": [{"start", "import_kwh"}], "headroom_kwh"}``.
- The table and CSV views show ``cost`` (a number, or a dict with ``total``) and
  ``capacity["value_kw"]`` as columns when any row has them.
- An extension raises :class:`ExtensionError` (one line) for a user's mistake
  (an unknown ``--capacity`` rule); ``han report`` prints it and exits 2.

An extension whose module is not installed is skipped, unless the user asked
for it (``--capacity`` needs ``capacity``): then ``han report`` says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

#: name -> "module:function".  The tariff/price work fills these modules in.
EXTENSIONS: dict[str, str] = {
    "cost": "han.tariffs.cost:add_cost",
    "capacity": "han.tariffs.capacity:add_capacity",
}


class ExtensionError(Exception):
    """A report extension cannot do what was asked (one line for the user)."""


@dataclass(frozen=True, slots=True)
class ReportContext:
    meter: str
    by: str  #: hour | day | month
    start: date  #: local, inclusive
    end: date  #: local, exclusive
    timezone: tzinfo
    periods: tuple[Any, ...]  #: the Hour / Period behind each row
    capacity: str | None = None  #: the --capacity RULE, when given
    options: dict[str, Any] | None = None  #: settings the extension may read (config file sections)


def load(name: str) -> Callable[..., None] | None:
    """The extension ``name``, or None when its module is not installed."""
    spec = EXTENSIONS.get(name)
    if spec is None:
        return None
    module, fn = spec.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise
    return getattr(mod, fn, None)
