"""Meter list profiles, as data: list id (+ manufacturer, country, shape) -> OBIS -> name, unit, scaler.

Adding a meter is adding rows here plus a captured frame in the tests.
A scaler sent on the wire always wins over the profile's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .code import Obis


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    obis: Obis
    name: str
    unit: str | None = None
    scaler: int = 0


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    list_ids: tuple[str, ...]
    manufacturer: str | None  #: FLAG id of the system title (KAM, KFM, ...) when known
    countries: tuple[str, ...]
    registers: tuple[RegisterSpec, ...]
    #: OBIS codes that must all be present for this profile to match a list
    requires: tuple[Obis, ...] = ()
    #: OBIS code of the list id when it is sent without one (first element)
    list_id_obis: Obis | None = None
    #: the IANA time zone of the meter's local time
    timezone: str | None = None

    def spec(self, obis: Obis) -> RegisterSpec | None:
        return _SPEC_INDEX[self.name].get(obis)


def _rows(*rows: tuple[str, str, str | None, int]) -> tuple[RegisterSpec, ...]:
    return tuple(RegisterSpec(Obis.parse(o), n, u, s) for o, n, u, s in rows)


KAMSTRUP_DK = Profile(
    name="kamstrup_dk",
    description="Kamstrup OMNIPOWER, Denmark (CCC port, 10 s push; Radius Elnet list of 3 Jan 2020)",
    list_ids=("Kamstrup_V0001",),
    manufacturer="KAM",
    countries=("DK",),
    requires=(Obis.parse("1.1.0.0.1.255"),),
    list_id_obis=Obis.parse("1.1.0.2.129.255"),
    timezone="Europe/Copenhagen",
    registers=_rows(
        ("1.1.1.8.0.255", "Active energy A14", "Wh", 0),
        ("1.1.2.8.0.255", "Active energy A23", "Wh", 0),
        ("1.1.3.8.0.255", "Reactive energy R12", "varh", 0),
        ("1.1.4.8.0.255", "Reactive energy R34", "varh", 0),
        ("1.1.0.0.1.255", "Meter number 1", None, 0),
        ("1.1.1.7.0.255", "Actual power P14", "W", 0),
        ("1.1.2.7.0.255", "Actual power P23", "W", 0),
        ("1.1.3.7.0.255", "Actual power Q12", "var", 0),
        ("1.1.4.7.0.255", "Actual power Q34", "var", 0),
        ("0.1.1.0.0.255", "Real-time clock", None, 0),
        ("1.1.32.7.0.255", "RMS voltage of phase L1", "V", 0),
        ("1.1.52.7.0.255", "RMS voltage of phase L2", "V", 0),
        ("1.1.72.7.0.255", "RMS voltage of phase L3", "V", 0),
        ("1.1.31.7.0.255", "RMS current of phase L1", "A", -2),
        ("1.1.51.7.0.255", "RMS current of phase L2", "A", -2),
        ("1.1.71.7.0.255", "RMS current of phase L3", "A", -2),
        ("1.1.21.7.0.255", "Actual power P14 of phase L1", "W", 0),
        ("1.1.41.7.0.255", "Actual power P14 of phase L2", "W", 0),
        ("1.1.61.7.0.255", "Actual power P14 of phase L3", "W", 0),
        ("1.1.33.7.0.255", "Power factor of phase L1", None, -2),
        ("1.1.53.7.0.255", "Power factor of phase L2", None, -2),
        ("1.1.73.7.0.255", "Power factor of phase L3", None, -2),
        ("1.1.13.7.0.255", "Power factor Total", None, -2),
        ("1.1.22.7.0.255", "Active power P23 of phase L1", "W", 0),
        ("1.1.42.7.0.255", "Active power P23 of phase L2", "W", 0),
        ("1.1.62.7.0.255", "Active power P23 of phase L3", "W", 0),
        ("1.1.22.8.0.255", "Active energy A23 of phase L1", "Wh", 0),
        ("1.1.42.8.0.255", "Active energy A23 of phase L2", "Wh", 0),
        ("1.1.62.8.0.255", "Active energy A23 of phase L3", "Wh", 0),
        ("1.1.21.8.0.255", "Active energy A14 of phase L1", "Wh", 0),
        ("1.1.41.8.0.255", "Active energy A14 of phase L2", "Wh", 0),
        ("1.1.61.8.0.255", "Active energy A14 of phase L3", "Wh", 0),
    ),
)

#: every profile, in matching order (more specific first)
PROFILES: tuple[Profile, ...] = (KAMSTRUP_DK,)

_SPEC_INDEX: dict[str, dict[Obis, RegisterSpec]] = {p.name: {r.obis: r for r in p.registers} for p in PROFILES}


def profile_by_name(name: str) -> Profile | None:
    for p in PROFILES:
        if p.name == name:
            return p
    return None


def select_profile(
    list_id: str | None, present: set[Obis] | frozenset[Obis], manufacturer: str | None = None, country: str | None = None
) -> Profile | None:
    """The first profile whose list id, required registers, manufacturer and country fit."""
    for p in PROFILES:
        if list_id not in p.list_ids:
            continue
        if any(o not in present for o in p.requires):
            continue
        if manufacturer and p.manufacturer and manufacturer != p.manufacturer:
            continue
        if country and p.countries and country.upper() not in p.countries:
            continue
        return p
    return None
