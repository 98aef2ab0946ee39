"""What the user says about a meter that its pushes do not: one frozen value, from the CLI or the config file."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..code import Obis
from ..profiles import Profile


@dataclass(frozen=True)
class InterpretOptions:
    """How to interpret a meter's pushes (``han decode`` flags, the config file's ``[decode]`` table).

    ``country`` (ISO 3166 alpha-2) picks among profiles that depend on it and
    gives the meter's time zone; ``timezone`` (an IANA name) overrides it for
    a local time sent without a deviation.  ``profile`` forces a profile;
    ``profiles`` is the catalogue a profile is chosen from
    (:func:`obis.profiles.catalogue`: loaded ones, then the built-in ones;
    None = the built-in ones).  ``multipliers`` (OBIS -> factor) and
    ``ct_ratio`` multiply values after scaling, for current-transformer
    meters that send secondary values; an explicit multiplier wins.
    """

    country: str | None = None
    profile: Profile | None = None
    timezone: str | None = None
    multipliers: Mapping[Obis, float] = field(default_factory=dict)
    ct_ratio: float | None = None
    profiles: tuple[Profile, ...] | None = None

    def __post_init__(self) -> None:
        # a read-only copy: the options are shared by every interpreter made from them
        object.__setattr__(self, "multipliers", MappingProxyType(dict(self.multipliers or {})))

    def __hash__(self) -> int:
        factors = frozenset(self.multipliers.items())
        return hash((self.country, self.profile, self.timezone, factors, self.ct_ratio, self.profiles))
