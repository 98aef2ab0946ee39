"""Meter list profiles, as data: which lists they fit, and OBIS (or position) -> name, unit, scaler.

A profile is chosen for a push by its list id, the manufacturer (the FLAG id
at the start of the system title: KAM, KFM, SAG, LGZ, ISK, ...), the meter's
country, the list's shape (see :mod:`obis.interpret`) and the registers
present; ``--profile NAME`` forces one.  Adding a meter is adding a profile
here plus a captured frame in the tests: there are no per-meter code paths.

Rules the decoder applies to every profile:

* A scaler sent on the wire always wins over the profile's.
* A register the profile does not list keeps its OBIS code, a generic name
  when the code is a common one, and its raw value.
* Values with no OBIS code on the wire ("unkeyed": positional lists, the
  OBIS-less clock of the Austrian lists) are mapped by a :class:`Layout`:
  the n-th unkeyed value (the list id excluded) gets the n-th OBIS code of
  the layout whose length and A-XDR types fit.  A position the layout leaves
  as None stays unnamed and raw.
* ``country_only`` profiles apply only to their countries (and, when no
  country is given, the ``default`` one): the same list id can mean
  different units in different countries (``Kamstrup_V0001``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from . import references as ref
from .code import Obis
from .references import channel

# A-XDR type tags used in layout signatures
_U32, _U16, _I16, _OCT, _U64, _BOOL = 6, 18, 16, 9, 21, 3


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    obis: Obis
    name: str
    unit: str | None = None
    #: power of ten applied to the raw value; None = not known (the value stays raw)
    scaler: int | None = 0


@dataclass(frozen=True, slots=True)
class Layout:
    """OBIS codes for the values that carry none on the wire, in wire order (the list id excluded)."""

    name: str
    obis: tuple[Obis | None, ...]
    #: the A-XDR type tag each value must have (None = any); None = no type check
    types: tuple[int | None, ...] | None = None

    def fits(self, tags: tuple[int, ...]) -> bool:
        if len(tags) != len(self.obis):
            return False
        if self.types is None:
            return True
        if len(self.types) != len(tags):
            return False
        return all(want is None or want == got for want, got in zip(self.types, tags))


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    list_ids: tuple[str, ...]
    manufacturer: str | None  #: FLAG id of the system title (KAM, KFM, ...) when it is always the same
    countries: tuple[str, ...]
    registers: tuple[RegisterSpec, ...]
    #: OBIS codes that must all be present for this profile to match a list
    requires: tuple[Obis, ...] = ()
    #: OBIS code of the list id when it is sent without one (first element); None = 1.1.0.2.129.255,
    #: the code every maker's list id is output under
    list_id_obis: Obis | None = None
    #: the IANA time zone of the meter's local time (used when neither --timezone nor --country is given)
    timezone: str | None = None
    #: list shapes the profile applies to (see obis.interpret); () = any
    shapes: tuple[str, ...] = ()
    #: manufacturers (FLAG ids) the profile applies to; () = any.  Checked only when the frame names one.
    manufacturers: tuple[str, ...] = ()
    #: OBIS mappings for unkeyed values; when given, one must fit (or the profile does not match)
    layouts: tuple[Layout, ...] = ()
    #: apply only when the meter's country is one of ``countries`` (or no country is given and ``default``)
    country_only: bool = False
    default: bool = False
    #: False when the meter's date-time deviation is known to be wrong (Aidon sends 0x0000 for local time)
    trust_deviation: bool = True
    #: notes added to every push the profile decodes
    notes: tuple[str, ...] = ()
    #: link settings, for ``han profiles`` and the README
    link: str = ""
    #: where the profile's facts come from
    source: str = ""

    #: OBIS -> row, and the hash: made once (a profile is immutable, and looked up for every list)
    _specs: dict[Obis, RegisterSpec] = field(init=False, repr=False, compare=False)
    _hash: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_specs", {r.obis: r for r in self.registers})
        object.__setattr__(self, "_hash", None)

    def __hash__(self) -> int:
        h = self._hash
        if h is None:  # the first time (the value hash, as a dataclass's)
            h = hash(tuple(getattr(self, f.name) for f in fields(self) if f.compare))
            object.__setattr__(self, "_hash", h)
        return h

    def spec(self, obis: Obis) -> RegisterSpec | None:
        return self._specs.get(obis)

    def layout_for(self, tags: tuple[int, ...]) -> Layout | None:
        for layout in self.layouts:
            if layout.fits(tags):
                return layout
        return None


def _rows(*rows: tuple) -> tuple[RegisterSpec, ...]:
    return tuple(RegisterSpec(r[0], r[1], r[2], r[3] if len(r) > 3 else 0) for r in rows)


def _layout(name: str, *items: tuple[Obis | None, int | None]) -> Layout:
    return Layout(name, tuple(o for o, _t in items), tuple(t for _o, t in items))


def _kam(code: Obis) -> Obis:
    """Kamstrup sends its codes on channel 1 (1-1:1.7.0, 0-1:1.0.0)."""
    return channel(code, 1)


LIST_ID = ref.LIST_ID

# -- Kamstrup ---------------------------------------------------------------------
_KAMSTRUP_NVE_BASE = (
    (_kam(ref.METER_ID_GS1), "Meter ID (GS1)", None),
    (_kam(ref.ELECTRICITY_METER_TYPE), "Meter type", None),
    (_kam(ref.ACTIVE_POWER_IMPORT), "Active power P14 (import)", "W", 0),
    (_kam(ref.ACTIVE_POWER_EXPORT), "Active power P23 (export)", "W", 0),
    (_kam(ref.REACTIVE_POWER_IMPORT), "Reactive power Q12 (import)", "var", 0),
    (_kam(ref.REACTIVE_POWER_EXPORT), "Reactive power Q34 (export)", "var", 0),
    (_kam(ref.CURRENT_L1), "Current L1", "A", -2),
    (_kam(ref.CURRENT_L2), "Current L2", "A", -2),
    (_kam(ref.CURRENT_L3), "Current L3", "A", -2),
    (_kam(ref.VOLTAGE_L1), "Voltage L1", "V", 0),
    (_kam(ref.VOLTAGE_L2), "Voltage L2", "V", 0),
    (_kam(ref.VOLTAGE_L3), "Voltage L3", "V", 0),
    (_kam(ref.CLOCK), "Clock", None),
)


def _kamstrup_nve_energy(scaler: int | None) -> tuple:
    return (
        (_kam(ref.ACTIVE_ENERGY_IMPORT), "Active energy A14 (import)", "Wh", scaler),
        (_kam(ref.ACTIVE_ENERGY_EXPORT), "Active energy A23 (export)", "Wh", scaler),
        (_kam(ref.REACTIVE_ENERGY_IMPORT), "Reactive energy R12 (import)", "varh", scaler),
        (_kam(ref.REACTIVE_ENERGY_EXPORT), "Reactive energy R34 (export)", "varh", scaler),
    )


_KAMSTRUP_NVE_COMMON = dict(
    list_ids=("Kamstrup_V0001",),
    manufacturer="KAM",
    requires=(_kam(ref.METER_ID_GS1),),
    list_id_obis=LIST_ID,
    shapes=("flat_pairs",),
    link="M-Bus (HAN-NVE module) 2400 8N1, HDLC UI frames 2B/21, plain",
    source="Kamstrup HAN-NVE interface description rev 3.1; amsreader #239 (SE)",
)

KAMSTRUP_NO = Profile(
    name="kamstrup_no",
    description="Kamstrup OMNIPOWER, Norway (HAN-NVE list 1/2, 10 s and hourly): energy in 10 Wh",
    countries=("NO",),
    country_only=True,
    default=True,
    timezone="Europe/Oslo",
    registers=_rows(*_KAMSTRUP_NVE_BASE, *_kamstrup_nve_energy(1)),
    **_KAMSTRUP_NVE_COMMON,
)

KAMSTRUP_SE = Profile(
    name="kamstrup_se",
    description="Kamstrup OMNIPOWER, Sweden (the Norwegian HAN-NVE layout): energy in Wh",
    countries=("SE",),
    country_only=True,
    timezone="Europe/Stockholm",
    registers=_rows(*_KAMSTRUP_NVE_BASE, *_kamstrup_nve_energy(0)),
    **_KAMSTRUP_NVE_COMMON,
)

KAMSTRUP_NVE = Profile(
    name="kamstrup_nve",
    description="Kamstrup OMNIPOWER, HAN-NVE layout, another country: energy resolution unknown (raw)",
    countries=(),
    registers=_rows(*_KAMSTRUP_NVE_BASE, *_kamstrup_nve_energy(None)),
    notes=(
        "Kamstrup_V0001 energy resolution depends on the country (10 Wh in Norway, Wh in Sweden):"
        " energies are given raw; use --country NO/SE or --profile kamstrup_no/kamstrup_se",
    ),
    **_KAMSTRUP_NVE_COMMON,
)

KAMSTRUP_DK = Profile(
    name="kamstrup_dk",
    description="Kamstrup OMNIPOWER, Denmark/Switzerland (CCC port, 10 s push; Radius Elnet list of 3 Jan 2020)",
    list_ids=("Kamstrup_V0001",),
    manufacturer="KAM",
    countries=("DK", "CH"),
    requires=(_kam(ref.METER_NUMBER),),
    list_id_obis=LIST_ID,
    timezone="Europe/Copenhagen",
    shapes=("flat_pairs",),
    link="CCC port RS232 2400 8N1 (M-Bus with the HAN-NVE module), HDLC UI 41/03, AES-GCM SC 0x30 or plain",
    source="Radius Elnet, 'DLMS/COSEM - En kort introduktion' (2020) §5; amsreader #216, #517",
    registers=_rows(
        (_kam(ref.ACTIVE_ENERGY_IMPORT), "Active energy A14", "Wh", 0),
        (_kam(ref.ACTIVE_ENERGY_EXPORT), "Active energy A23", "Wh", 0),
        (_kam(ref.REACTIVE_ENERGY_IMPORT), "Reactive energy R12", "varh", 0),
        (_kam(ref.REACTIVE_ENERGY_EXPORT), "Reactive energy R34", "varh", 0),
        (_kam(ref.METER_NUMBER), "Meter number 1", None, 0),
        (_kam(ref.ACTIVE_POWER_IMPORT), "Actual power P14", "W", 0),
        (_kam(ref.ACTIVE_POWER_EXPORT), "Actual power P23", "W", 0),
        (_kam(ref.REACTIVE_POWER_IMPORT), "Actual power Q12", "var", 0),
        (_kam(ref.REACTIVE_POWER_EXPORT), "Actual power Q34", "var", 0),
        (_kam(ref.CLOCK), "Real-time clock", None, 0),
        (_kam(ref.VOLTAGE_L1), "RMS voltage of phase L1", "V", 0),
        (_kam(ref.VOLTAGE_L2), "RMS voltage of phase L2", "V", 0),
        (_kam(ref.VOLTAGE_L3), "RMS voltage of phase L3", "V", 0),
        (_kam(ref.CURRENT_L1), "RMS current of phase L1", "A", -2),
        (_kam(ref.CURRENT_L2), "RMS current of phase L2", "A", -2),
        (_kam(ref.CURRENT_L3), "RMS current of phase L3", "A", -2),
        (_kam(ref.ACTIVE_POWER_IMPORT_L1), "Actual power P14 of phase L1", "W", 0),
        (_kam(ref.ACTIVE_POWER_IMPORT_L2), "Actual power P14 of phase L2", "W", 0),
        (_kam(ref.ACTIVE_POWER_IMPORT_L3), "Actual power P14 of phase L3", "W", 0),
        (_kam(ref.POWER_FACTOR_L1), "Power factor of phase L1", None, -2),
        (_kam(ref.POWER_FACTOR_L2), "Power factor of phase L2", None, -2),
        (_kam(ref.POWER_FACTOR_L3), "Power factor of phase L3", None, -2),
        (_kam(ref.POWER_FACTOR), "Power factor Total", None, -2),
        (_kam(ref.ACTIVE_POWER_EXPORT_L1), "Active power P23 of phase L1", "W", 0),
        (_kam(ref.ACTIVE_POWER_EXPORT_L2), "Active power P23 of phase L2", "W", 0),
        (_kam(ref.ACTIVE_POWER_EXPORT_L3), "Active power P23 of phase L3", "W", 0),
        (_kam(ref.ACTIVE_ENERGY_EXPORT_L1), "Active energy A23 of phase L1", "Wh", 0),
        (_kam(ref.ACTIVE_ENERGY_EXPORT_L2), "Active energy A23 of phase L2", "Wh", 0),
        (_kam(ref.ACTIVE_ENERGY_EXPORT_L3), "Active energy A23 of phase L3", "Wh", 0),
        (_kam(ref.ACTIVE_ENERGY_IMPORT_L1), "Active energy A14 of phase L1", "Wh", 0),
        (_kam(ref.ACTIVE_ENERGY_IMPORT_L2), "Active energy A14 of phase L2", "Wh", 0),
        (_kam(ref.ACTIVE_ENERGY_IMPORT_L3), "Active energy A14 of phase L3", "Wh", 0),
    ),
)

# -- Aidon --------------------------------------------------------------------------
AIDON_NO = Profile(
    name="aidon_no",
    description="Aidon 65xx, Norway (AIDON_V0001 lists 1/2/3; scalers and units on the wire)",
    list_ids=("AIDON_V0001",),
    manufacturer=None,
    countries=("NO",),
    registers=(),
    timezone="Europe/Oslo",
    shapes=("structs",),
    trust_deviation=False,
    notes=("the clock's deviation 0x0000 is Norwegian local time (an Aidon quirk), not UTC",),
    link="M-Bus RJ45 2400 8E1, HDLC UI 41/0883, plain",
    source="OBIS List Information - AIDON (AIDON_V0001); amsreader #1119",
)

# -- Kaifa ----------------------------------------------------------------------------
_KFM_3PH = (
    (ref.METER_ID, _OCT),
    (ref.METER_TYPE, _OCT),
    (ref.ACTIVE_POWER_IMPORT, _U32),
    (ref.ACTIVE_POWER_EXPORT, _U32),
    (ref.REACTIVE_POWER_IMPORT, _U32),
    (ref.REACTIVE_POWER_EXPORT, _U32),
    (ref.CURRENT_L1, _U32),
    (ref.CURRENT_L2, _U32),
    (ref.CURRENT_L3, _U32),
    (ref.VOLTAGE_L1, _U32),
    (ref.VOLTAGE_L2, _U32),
    (ref.VOLTAGE_L3, _U32),
)
_KFM_1PH = _KFM_3PH[:7] + ((ref.VOLTAGE_L1, _U32),)
_KFM_HOURLY = (
    (ref.CLOCK, _OCT),
    (ref.ACTIVE_ENERGY_IMPORT, None),  # uint32, or uint64 on current-transformer meters
    (ref.ACTIVE_ENERGY_EXPORT, None),
    (ref.REACTIVE_ENERGY_IMPORT, None),
    (ref.REACTIVE_ENERGY_EXPORT, None),
)

KAIFA_KFM001 = Profile(
    name="kaifa_kfm001",
    description="Kaifa MA105/MA304, Norway and Sweden (KFM_001 lists 2/3 with or without OBIS codes)",
    list_ids=("KFM_001",),
    manufacturer="KFM",
    countries=("NO", "SE"),
    list_id_obis=LIST_ID,
    timezone="Europe/Oslo",
    shapes=("positional", "flat_pairs", "structs"),
    layouts=(
        _layout("list 2, 3-phase", *_KFM_3PH),
        _layout("list 3, 3-phase", *_KFM_3PH, *_KFM_HOURLY),
        _layout("list 2, 1-phase", *_KFM_1PH),
        _layout("list 3, 1-phase", *_KFM_1PH, *_KFM_HOURLY),
    ),
    link="M-Bus RJ45 2400 8E1, HDLC I-frames (control 0x10) 01/0201, plain",
    source="Kaifa HAN OBIS codes KFM_001; amsreader decoder (list lengths)",
    registers=_rows(
        (ref.METER_ID, "Meter ID (GS1)", None),
        (ref.METER_TYPE, "Meter type", None),
        (ref.ACTIVE_POWER_IMPORT, "Active power import", "W", 0),
        (ref.ACTIVE_POWER_EXPORT, "Active power export", "W", 0),
        (ref.REACTIVE_POWER_IMPORT, "Reactive power import", "var", 0),
        (ref.REACTIVE_POWER_EXPORT, "Reactive power export", "var", 0),
        (ref.CURRENT_L1, "Current L1", "A", -3),
        (ref.CURRENT_L2, "Current L2", "A", -3),
        (ref.CURRENT_L3, "Current L3", "A", -3),
        (ref.VOLTAGE_L1, "Voltage L1", "V", -1),
        (ref.VOLTAGE_L2, "Voltage L2", "V", -1),
        (ref.VOLTAGE_L3, "Voltage L3", "V", -1),
        (ref.CLOCK, "Clock", None),
        (ref.ACTIVE_ENERGY_IMPORT, "Active energy import", "Wh", 0),
        (ref.ACTIVE_ENERGY_EXPORT, "Active energy export", "Wh", 0),
        (ref.REACTIVE_ENERGY_IMPORT, "Reactive energy import", "varh", 0),
        (ref.REACTIVE_ENERGY_EXPORT, "Reactive energy export", "varh", 0),
    ),
)

KAIFA_LIST1 = Profile(
    name="kaifa_list1",
    description="Kaifa MA105/MA304, Norway and Sweden: list 1 (every 2 s), active power import alone, no OBIS",
    list_ids=(),
    manufacturer="KFM",
    countries=("NO", "SE"),
    timezone="Europe/Oslo",
    shapes=("positional",),
    layouts=(_layout("list 1", (ref.ACTIVE_POWER_IMPORT, _U32)),),
    link="M-Bus RJ45 2400 8E1, HDLC I-frames (control 0x10), plain",
    source="Kaifa HAN OBIS codes KFM_001 (list 1)",
    registers=_rows((ref.ACTIVE_POWER_IMPORT, "Active power import", "W", 0)),
)

# -- Austria: flat obis/value/{scaler,unit} with an OBIS-less clock first and meter number last
AUSTRIA_FLAT = Profile(
    name="at_evn",
    description="Kaifa MA309M / Sagemcom T210-D, Austria (Netz NÖ/EVN list; scalers and units on the wire)",
    list_ids=(),
    manufacturer=None,
    manufacturers=("KFM", "SAG"),
    countries=("AT",),
    timezone="Europe/Vienna",
    shapes=("flat_triples",),
    layouts=(_layout("EVN: clock first, meter number last", (ref.CLOCK, _OCT), (ref.METER_ID, _OCT)),),
    link="M-Bus RJ12 2400 8E1, M-Bus long frames (CI 00/11), AES-GCM encryption only (SC 0x20), key from the DSO",
    source="Netz NÖ 'SmartMeter Kundenschnittstelle' example; amsreader #155, #867",
    registers=_rows(
        (ref.CLOCK, "Clock", None),
        (ref.METER_ID, "Meter number", None),
    ),
)

# -- Iskraemeco, Slovenia (Elektro Ljubljana): positional, no OBIS ------------------------
_ISK_SI_5S = (
    (ref.LOGICAL_DEVICE_NAME, _OCT),
    (ref.METER_ID_4, _OCT),
    (ref.ACTIVE_POWER_IMPORT, _U32),
    (ref.ACTIVE_POWER_EXPORT, _U32),
    (ref.REACTIVE_POWER_IMPORT, _U32),
    (ref.REACTIVE_POWER_EXPORT, _U32),
    (ref.VOLTAGE_L1, _U16),
    (ref.VOLTAGE_L2, _U16),
    (ref.VOLTAGE_L3, _U16),
    (ref.CURRENT_L1, _U16),
    (ref.CURRENT_L2, _U16),
    (ref.CURRENT_L3, _U16),
    (ref.ACTIVE_POWER_IMPORT_L1, _U32),
    (ref.ACTIVE_POWER_IMPORT_L2, _U32),
    (ref.ACTIVE_POWER_IMPORT_L3, _U32),
    (ref.ACTIVE_POWER_EXPORT_L1, _U32),
    (ref.ACTIVE_POWER_EXPORT_L2, _U32),
    (ref.ACTIVE_POWER_EXPORT_L3, _U32),
)
_ISK_SI_15MIN = (
    (ref.LOGICAL_DEVICE_NAME, _OCT),
    (ref.METER_ID_4, _OCT),
    (ref.DISCONNECTOR_STATE, _BOOL),
    (ref.CURRENT_TARIFF, None),
    (ref.ACTIVE_ENERGY_IMPORT, _U32),
    (ref.ACTIVE_ENERGY_IMPORT_T1, _U32),
    (ref.ACTIVE_ENERGY_IMPORT_T2, _U32),
    (ref.ACTIVE_ENERGY_EXPORT, _U32),
    (ref.ACTIVE_ENERGY_EXPORT_T1, _U32),
    (ref.ACTIVE_ENERGY_EXPORT_T2, _U32),
    (ref.REACTIVE_ENERGY_IMPORT, _U32),
    (ref.REACTIVE_ENERGY_EXPORT, _U32),
)

ISKRA_SI = Profile(
    name="iskra_si",
    description="Iskraemeco AM550, Slovenia (Elektro Ljubljana compact lists, no OBIS codes)",
    list_ids=(),
    manufacturer="ISK",
    countries=("SI",),
    timezone="Europe/Ljubljana",
    shapes=("positional",),
    layouts=(_layout("1 s / 5 s list", *_ISK_SI_5S), _layout("15 min energy list", *_ISK_SI_15MIN)),
    link="P1 RJ12 115200 8N1 (38400 on some), HDLC UI, plain",
    source="amsreader-firmware #615, #956 (field order per the distributor)",
    registers=_rows(
        (ref.LOGICAL_DEVICE_NAME, "Logical device name", None),
        (ref.METER_ID_4, "Meter ID", None),
        (ref.DISCONNECTOR_STATE, "Disconnector state", None),
        (ref.CURRENT_TARIFF, "Current tariff", None),
        (ref.ACTIVE_POWER_IMPORT, "Active power import", "W", 0),
        (ref.ACTIVE_POWER_EXPORT, "Active power export", "W", 0),
        (ref.REACTIVE_POWER_IMPORT, "Reactive power import", "var", 0),
        (ref.REACTIVE_POWER_EXPORT, "Reactive power export", "var", 0),
        (ref.VOLTAGE_L1, "Voltage L1", "V", -1),
        (ref.VOLTAGE_L2, "Voltage L2", "V", -1),
        (ref.VOLTAGE_L3, "Voltage L3", "V", -1),
        (ref.CURRENT_L1, "Current L1", "A", -2),
        (ref.CURRENT_L2, "Current L2", "A", -2),
        (ref.CURRENT_L3, "Current L3", "A", -2),
        (ref.ACTIVE_POWER_IMPORT_L1, "Active power import L1", "W", 0),
        (ref.ACTIVE_POWER_IMPORT_L2, "Active power import L2", "W", 0),
        (ref.ACTIVE_POWER_IMPORT_L3, "Active power import L3", "W", 0),
        (ref.ACTIVE_POWER_EXPORT_L1, "Active power export L1", "W", 0),
        (ref.ACTIVE_POWER_EXPORT_L2, "Active power export L2", "W", 0),
        (ref.ACTIVE_POWER_EXPORT_L3, "Active power export L3", "W", 0),
        (ref.ACTIVE_ENERGY_IMPORT, "Active energy import", "Wh", 0),
        (ref.ACTIVE_ENERGY_IMPORT_T1, "Active energy import tariff 1", "Wh", 0),
        (ref.ACTIVE_ENERGY_IMPORT_T2, "Active energy import tariff 2", "Wh", 0),
        (ref.ACTIVE_ENERGY_EXPORT, "Active energy export", "Wh", 0),
        (ref.ACTIVE_ENERGY_EXPORT_T1, "Active energy export tariff 1", "Wh", 0),
        (ref.ACTIVE_ENERGY_EXPORT_T2, "Active energy export tariff 2", "Wh", 0),
        (ref.REACTIVE_ENERGY_IMPORT, "Reactive energy import", "varh", 0),
        (ref.REACTIVE_ENERGY_EXPORT, "Reactive energy export", "varh", 0),
    ),
)

# -- Landis+Gyr E450, Austria (Netz Burgenland): 14 values, no OBIS --------------------------
LGZ_BURGENLAND = Profile(
    name="lgz_at_burgenland",
    description="Landis+Gyr E450, Austria (Netz Burgenland proprietary 14-value list, no OBIS codes)",
    list_ids=(),
    manufacturer="LGZ",
    countries=("AT",),
    timezone="Europe/Vienna",
    shapes=("positional",),
    layouts=(
        _layout(
            "Netz Burgenland",
            (ref.VOLTAGE_L1, _U16),
            (ref.VOLTAGE_L2, _U16),
            (ref.VOLTAGE_L3, _U16),
            (ref.CURRENT_L1, _U16),
            (ref.CURRENT_L2, _U16),
            (ref.CURRENT_L3, _U16),
            (ref.ACTIVE_POWER_IMPORT, _U32),
            (ref.ACTIVE_POWER_EXPORT, _U32),
            (ref.ACTIVE_ENERGY_IMPORT, _U32),
            (ref.ACTIVE_ENERGY_EXPORT, _U32),
            (None, _U16),
            (None, _U16),
            (None, _U16),
            (ref.METER_ID, _OCT),
        ),
    ),
    notes=("values 11-13 of the Netz Burgenland list are not documented: given raw, without a name",),
    link="M-Bus/P1 2400 8E1, HDLC UI CE FF/03, AES-GCM SC 0x30 (key and authentication key from the DSO)",
    source="amsreader-firmware #501 (decrypted breakdown: U1-3, I1-3, P+, P-, A+, A-, meter id);"
    " current resolution 0.01 A inferred from P = U x I",
    registers=_rows(
        (ref.VOLTAGE_L1, "Voltage L1", "V", 0),
        (ref.VOLTAGE_L2, "Voltage L2", "V", 0),
        (ref.VOLTAGE_L3, "Voltage L3", "V", 0),
        (ref.CURRENT_L1, "Current L1", "A", -2),
        (ref.CURRENT_L2, "Current L2", "A", -2),
        (ref.CURRENT_L3, "Current L3", "A", -2),
        (ref.ACTIVE_POWER_IMPORT, "Active power import", "W", 0),
        (ref.ACTIVE_POWER_EXPORT, "Active power export", "W", 0),
        (ref.ACTIVE_ENERGY_IMPORT, "Active energy import", "Wh", 0),
        (ref.ACTIVE_ENERGY_EXPORT, "Active energy export", "Wh", 0),
        (ref.METER_ID, "Meter ID", None),
    ),
)

# -- Wiener Netze (Landis+Gyr E450, Iskraemeco AM550, Siemens IM350): a clock and eight counters, no OBIS ----
#   structure{ [serial number,] clock (09 0C date-time), +A, -A, +R, -R, +P, -P, +Q, -Q (06 each) }
_WN_COUNTERS = (
    (ref.ACTIVE_ENERGY_IMPORT, _U32),
    (ref.ACTIVE_ENERGY_EXPORT, _U32),
    (ref.REACTIVE_ENERGY_IMPORT, _U32),
    (ref.REACTIVE_ENERGY_EXPORT, _U32),
    (ref.ACTIVE_POWER_IMPORT, _U32),
    (ref.ACTIVE_POWER_EXPORT, _U32),
    (ref.REACTIVE_POWER_IMPORT, _U32),
    (ref.REACTIVE_POWER_EXPORT, _U32),
)

AT_WIENER_NETZE = Profile(
    name="at_wiener_netze",
    description="Landis+Gyr E450, Iskraemeco AM550, Siemens IM350, Austria (Wiener Netze optical interface:"
    " a clock and eight counters without OBIS codes; the IM350 may send its serial number first)",
    list_ids=(),
    manufacturer=None,
    manufacturers=("LGZ", "ISK", "SMS"),
    countries=("AT",),
    country_only=True,
    timezone="Europe/Vienna",
    shapes=("positional",),
    layouts=(
        _layout("clock and 8 counters", (ref.CLOCK, _OCT), *_WN_COUNTERS),
        _layout("serial number, clock and 8 counters", (ref.METER_ID, _OCT), (ref.CLOCK, _OCT), *_WN_COUNTERS),
    ),
    link="optical customer interface (infrared) 9600 8N1, one HDLC UI frame, AES-GCM encryption only (SC 0x20),"
    " key from the Wiener Netze web portal",
    source="tofuSCHNITZEL/wiener_netze_smartmeter meter_data.py (positions and units);"
    " bernikr/esphome-wienernetze-smartmeter wienernetze.cpp (the variant with the serial number first);"
    " Tasmota Smart Meter Interface docs (AM550/IM350 scripts); aldadic/esp-smartmeter-reader;"
    " Oesterreichs Energie, customer interface concept (the clock-plus-eight layout)",
    registers=_rows(
        (ref.METER_ID, "Meter serial number", None),
        (ref.CLOCK, "Clock", None),
        (ref.ACTIVE_ENERGY_IMPORT, "Active energy import (+A)", "Wh", 0),
        (ref.ACTIVE_ENERGY_EXPORT, "Active energy export (-A)", "Wh", 0),
        (ref.REACTIVE_ENERGY_IMPORT, "Reactive energy import (+R)", "varh", 0),
        (ref.REACTIVE_ENERGY_EXPORT, "Reactive energy export (-R)", "varh", 0),
        (ref.ACTIVE_POWER_IMPORT, "Active power import (+P)", "W", 0),
        (ref.ACTIVE_POWER_EXPORT, "Active power export (-P)", "W", 0),
        (ref.REACTIVE_POWER_IMPORT, "Reactive power import (+Q)", "var", 0),
        (ref.REACTIVE_POWER_EXPORT, "Reactive power export (-Q)", "var", 0),
    ),
)

# -- DSMR text telegrams inside a ciphered APDU (Luxembourg Smarty) -------------------------
DSMR = Profile(
    name="dsmr",
    description="DSMR/P1 text telegram inside a ciphered APDU (Sagemcom T210-D 'Smarty', Luxembourg)",
    list_ids=(),
    manufacturer=None,
    countries=("LU",),
    timezone="Europe/Luxembourg",
    shapes=("dsmr",),
    registers=(),
    link="P1 RJ12 115200 8N1, bare APDU (no link layer), AES-GCM SC 0x30 (fixed AK 0011...EEFF in Luxembourg)",
    source="NEXXTLAB/go-smarty-reader; DSMR 5.0.2 P1 companion standard",
)

#: every profile, in matching order (more specific first)
PROFILES: tuple[Profile, ...] = (
    KAMSTRUP_DK,
    KAMSTRUP_NO,
    KAMSTRUP_SE,
    KAMSTRUP_NVE,
    AIDON_NO,
    KAIFA_KFM001,
    KAIFA_LIST1,
    AUSTRIA_FLAT,
    ISKRA_SI,
    LGZ_BURGENLAND,
    AT_WIENER_NETZE,
    DSMR,
)

def catalogue(loaded: tuple[Profile, ...] | list[Profile] = ()) -> tuple[Profile, ...]:
    """The profiles to choose from: ``loaded`` ones (``--profiles FILE``) first, then the built-in ones.

    A loaded profile with a built-in's name replaces that built-in.
    """
    if not loaded:
        return PROFILES
    names = {p.name for p in loaded}
    return tuple(loaded) + tuple(p for p in PROFILES if p.name not in names)

#: a country's usual time zone, for meters that send local time without a deviation
COUNTRY_TIMEZONES: dict[str, str] = {
    "AT": "Europe/Vienna",
    "BE": "Europe/Brussels",
    "CH": "Europe/Zurich",
    "CZ": "Europe/Prague",
    "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen",
    "EE": "Europe/Tallinn",
    "ES": "Europe/Madrid",
    "FI": "Europe/Helsinki",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "HR": "Europe/Zagreb",
    "HU": "Europe/Budapest",
    "IE": "Europe/Dublin",
    "IS": "Atlantic/Reykjavik",
    "IT": "Europe/Rome",
    "LT": "Europe/Vilnius",
    "LU": "Europe/Luxembourg",
    "LV": "Europe/Riga",
    "NL": "Europe/Amsterdam",
    "NO": "Europe/Oslo",
    "PL": "Europe/Warsaw",
    "PT": "Europe/Lisbon",
    "SE": "Europe/Stockholm",
    "SI": "Europe/Ljubljana",
    "SK": "Europe/Bratislava",
}


def profile_by_name(name: str, profiles: tuple[Profile, ...] | None = None) -> Profile | None:
    for p in PROFILES if profiles is None else profiles:
        if p.name == name:
            return p
    return None


def select_profile(
    list_id: str | None,
    present: set[Obis] | frozenset[Obis],
    manufacturer: str | None = None,
    country: str | None = None,
    *,
    shape: str | None = None,
    unkeyed: tuple[int, ...] | None = None,
    profiles: tuple[Profile, ...] | None = None,
) -> Profile | None:
    """The first profile whose list id, shape, registers, layout, manufacturer and country fit.

    ``unkeyed`` is the A-XDR type tags of the values without an OBIS code
    (the list id excluded); a profile known only by its layouts (no list id)
    matches only when one of them fits.  A profile known by its list id
    matches anyway; values no layout fits then keep their positions.
    ``profiles`` is the catalogue to search (see :func:`catalogue`); default the built-in profiles.
    """
    cc = country.upper() if country else None
    for p in PROFILES if profiles is None else profiles:
        if p.list_ids and list_id not in p.list_ids:
            continue
        if not p.list_ids and list_id is not None:
            continue  # a profile known by its layout does not claim a list that names itself
        if p.shapes and shape is not None and shape not in p.shapes:
            continue
        if any(o not in present for o in p.requires):
            continue
        makers = p.manufacturers or ((p.manufacturer,) if p.manufacturer else ())
        if manufacturer and makers and manufacturer not in makers:
            continue
        if p.country_only:
            if cc is None and not p.default:
                continue
            if cc is not None and cc not in p.countries:
                continue
        if p.layouts and not p.list_ids:
            # known only by its layout: the values without OBIS codes must fit one exactly
            if not unkeyed or p.layout_for(unkeyed) is None:
                continue
        return p
    return None


def timezone_name(country: str | None, profile: Profile | None) -> str | None:
    """The meter's time zone: the country's, else the profile's."""
    if country and country.upper() in COUNTRY_TIMEZONES:
        return COUNTRY_TIMEZONES[country.upper()]
    return profile.timezone if profile else None


#: ISO 3166-1 alpha-2 country codes (for checking --country)
ISO_3166 = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
    BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO
    FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM
    JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE
    RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT
    TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW""".split()
)
