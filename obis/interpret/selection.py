"""Profile selection: which profile a list is, and what that profile (or the generic names) says of a code.

Both answers depend only on the list, never on its values, and a meter
sends the same list again and again: a :class:`Selector` (one per
interpreter, so one per decoder or sink worker) remembers them.  Keys are
the values themselves (list id, shape, OBIS codes, profile), bounded, so a
hostile port that sends a new list every time cannot grow memory.
"""

from __future__ import annotations

from typing import NamedTuple

from ..code import Obis
from ..names import obis_name
from ..profiles import Profile, RegisterSpec, select_profile
from .extract import Entry

#: choices kept (emptied when full)
MAX_CHOICES = 1024
#: code descriptions kept (emptied when full)
MAX_DESCRIPTIONS = 8192


class Info(NamedTuple):
    name: str | None
    key: str | None
    spec: RegisterSpec | None
    clock: bool  #: x-x:1.0.0 (a clock object)


class Selector:
    """Profile choices and code descriptions for one catalogue and country."""

    __slots__ = ("country", "profiles", "_chosen", "_described")

    def __init__(self, country: str | None, profiles: tuple[Profile, ...] | None) -> None:
        self.country = country.upper() if country else None
        self.profiles = profiles
        self._chosen: dict[tuple, Profile | None] = {}
        self._described: dict[tuple[Profile | None, Obis], Info] = {}

    def choose(
        self, list_id: str | None, entries: list[Entry], maker: str | None, shape: str, tags: tuple[int, ...]
    ) -> Profile | None:
        """The profile of a list (see :func:`obis.profiles.select_profile`), or None."""
        codes = tuple(e.obis for e in entries if e.obis is not None)
        key = (list_id, shape, tags, maker, codes)
        try:
            return self._chosen[key]
        except KeyError:
            pass
        chosen = select_profile(
            list_id, set(codes), maker, self.country, shape=shape, unkeyed=tags, profiles=self.profiles
        )
        if len(self._chosen) > MAX_CHOICES:
            self._chosen.clear()
        self._chosen[key] = chosen
        return chosen

    def describe(self, profile: Profile | None, obis: Obis) -> Info:
        """Name, field key and profile row of ``obis`` under ``profile``."""
        key = (profile, obis)
        hit = self._described.get(key)
        if hit is not None:
            return hit
        spec = profile.spec(obis) if profile is not None else None
        generic = obis_name(obis)
        name = spec.name if spec else (generic.name if generic else None)
        info = Info(name, generic.key if generic else None, spec, obis.a == 0 and (obis.c, obis.d) == (1, 0))
        if len(self._described) > MAX_DESCRIPTIONS:
            self._described.clear()
        self._described[key] = info
        return info
