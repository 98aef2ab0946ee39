"""List shapes, profile selection, time zones and multipliers, on lists the tests build themselves."""

from __future__ import annotations

from datetime import datetime

import pytest

from decoders.xdlms import axdr
from decoders.xdlms.apdu import DataNotification, build_data_notification, parse_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime
from obis.code import Obis
from obis.interpret import InterpretOptions, extract, interpret
from obis.profiles import PROFILES, Layout, profile_by_name, select_profile
from obis.push import SecurityInfo

U32, U16, I16, OCT = axdr.DOUBLE_LONG_UNSIGNED, axdr.LONG_UNSIGNED, axdr.LONG, axdr.OCTET_STRING


def obis(text: str) -> Data:
    return axdr.octet_string(bytes(Obis.parse(text)))


def su(scaler: int, unit: int) -> Data:
    return axdr.structure(Data(axdr.INTEGER, scaler), Data(axdr.ENUM, unit))


def dt(text: str, deviation: int | None = None, status: int = 0) -> CosemDateTime:
    return CosemDateTime.from_datetime(datetime.fromisoformat(text), deviation=deviation, clock_status=status)


def notif(body: Data, when: CosemDateTime | None = None) -> DataNotification:
    return parse_data_notification(build_data_notification(body, datetime=when))


def kamstrup_nve_hourly(energy: int = 12345) -> Data:
    return axdr.structure(
        axdr.visible_string("Kamstrup_V0001"),
        obis("1.1.0.0.5.255"), axdr.visible_string("9990000000000017"),
        obis("1.1.96.1.1.255"), axdr.visible_string("TESTMETER-NVE-3PH"),
        obis("1.1.1.7.0.255"), Data(U32, 1604),
        obis("1.1.31.7.0.255"), Data(U32, 655),
        obis("1.1.32.7.0.255"), Data(U16, 229),
        obis("0.1.1.0.0.255"), axdr.octet_string(dt("2024-07-01T13:00:05").raw),
        obis("1.1.1.8.0.255"), Data(U32, energy),
    )  # fmt: skip


# -- shapes -----------------------------------------------------------------------------------
def test_flat_pairs():
    ex = extract(kamstrup_nve_hourly())
    assert ex.shape == "flat_pairs" and ex.list_id == "Kamstrup_V0001"
    assert [e.obis.dotted for e in ex.entries if e.obis] [:2] == ["1.1.0.0.5.255", "1.1.96.1.1.255"]


def test_structs_with_list_id_under_its_obis():
    body = axdr.array(
        axdr.structure(obis("1.1.0.2.129.255"), axdr.visible_string("AIDON_V0001")),
        axdr.structure(obis("1.0.31.7.0.255"), Data(I16, -37), su(-1, 33)),
    )
    push = interpret(notif(body), InterpretOptions(country="NO"))
    assert push.shape == "structs" and push.list_id == "AIDON_V0001" and push.profile == "aidon_no"
    assert push.register("1.1.0.2.129.255").value == "AIDON_V0001"  # sent under its OBIS: kept as a register
    cur = push.register("1.0.31.7.0.255")
    assert cur.value == -3.7 and cur.unit == "A" and cur.scaler == -1 and not push.unknown_list


def test_flat_triples_with_an_obis_less_clock_and_meter_number():
    clock = dt("2024-06-03T08:15:30", deviation=-120, status=0x80)
    body = axdr.structure(
        axdr.octet_string(clock.raw),
        obis("1.0.32.7.0.255"), Data(U16, 2289), su(-1, 35),
        obis("1.0.13.7.0.255"), Data(U16, 987), su(-3, 255),
        axdr.octet_string(b"TEST00000042"),
    )  # fmt: skip
    sec = SecurityInfo(b"KFMg\x00\x00\x00\x09", 1, 0x20, False)
    push = interpret(notif(body, clock), security=sec)
    assert push.shape == "flat_triples" and push.profile == "at_evn"
    assert push.register("1.0.32.7.0.255").value == 228.9 and push.register("1.0.13.7.0.255").value == 0.987
    assert push.register("1.0.13.7.0.255").unit is None  # unit 255: a count, no symbol
    meter = push.register("0.0.96.1.0.255")
    assert meter.positional and meter.value == "TEST00000042" and push.meter_id == "TEST00000042"
    assert push.register("0.0.1.0.0.255").positional
    assert push.timestamp == "2024-06-03T08:15:30+02:00"
    # another manufacturer's system title does not get the Austrian layout
    other = interpret(notif(body, clock), security=SecurityInfo(b"XYZg\x00\x00\x00\x09", 1, 0x20, False))
    assert other.profile is None and other.unknown_list and other.registers[0].obis is None


def test_push_object_list():
    objects = axdr.array(
        *[
            axdr.structure(Data(U16, c), obis(o), Data(axdr.INTEGER, a), Data(U16, 0))
            for c, o, a in ((40, "0.0.25.9.0.255", 2), (40, "0.0.25.9.0.255", 1), (1, "0.0.42.0.0.255", 2), (3, "1.0.1.7.0.255", 2))
        ]
    )
    body = axdr.structure(objects, obis("0.0.25.9.0.255"), axdr.octet_string(b"LGZ1"), Data(U32, 417))
    push = interpret(notif(body))
    assert push.shape == "push_object_list"
    assert [(c, o.dotted, a) for c, o, a, _ in push.object_list][0] == (40, "0.0.25.9.0.255", 2)
    ln = push.register("0.0.25.9.0.255", attribute=1)
    assert ln.attribute == 1 and "logical name" in ln.name and ln.value == "0000190900FF"
    assert push.register("1.0.1.7.0.255").value == 417 and push.register("1.0.1.7.0.255").scaler is None
    assert push.unknown_list and any("raw" in n for n in push.notes)


def test_positional_list_mapped_by_a_layout():
    values = [
        axdr.octet_string(b"KFM_001"),
        axdr.octet_string(b"9990000000000099"),
        axdr.octet_string(b"TESTTYPE"),
        *[Data(U32, v) for v in (1201, 0, 0, 150, 3141, 1592, 6535, 2297, 0, 2313)],
    ]
    push = interpret(notif(axdr.structure(*values)))
    assert push.profile == "kaifa_kfm001" and push.list_id == "KFM_001" and push.shape == "positional"
    assert push.register("1.0.31.7.0.255").value == 3.141 and push.register("1.0.31.7.0.255").positional
    assert push.register("1.0.32.7.0.255").value == 229.7 and push.register("1.0.32.7.0.255").unit == "V"
    assert push.meter_id == "9990000000000099" and not push.unknown_list
    lid = push.registers[0]  # the list id, sent without an OBIS code, is the register every maker's list id is
    assert (lid.obis.dotted, lid.value, lid.type, lid.positional) == ("1.1.0.2.129.255", "KFM_001", "octet_string", True)
    # one value more than any layout knows: nothing is guessed
    odd = interpret(notif(axdr.structure(*values, Data(U32, 7))))
    assert odd.profile == "kaifa_kfm001" and all(r.obis is None for r in odd.registers[1:])
    assert odd.registers[0].obis.dotted == "1.1.0.2.129.255" and odd.registers[0].value == "KFM_001"  # the list id
    assert any("no layout" in n for n in odd.notes)


def test_unknown_positional_list_keeps_positions():
    push = interpret(notif(axdr.structure(Data(U16, 1), Data(U16, 2), axdr.octet_string(b"x"))))
    assert push.profile is None and push.unknown_list
    assert [(r.obis, r.position, r.value) for r in push.registers] == [(None, 0, 1), (None, 1, 2), (None, 2, "x")]
    assert any("by position" in n for n in push.notes)


def test_single_value_body():
    push = interpret(notif(axdr.octet_string(b"\x01\x02")))
    assert push.shape == "value" and push.registers[0].value == "0102" and push.unknown_list


# -- country profiles --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "country,profile,energy,unit",
    [(None, "kamstrup_no", 123450, "Wh"), ("NO", "kamstrup_no", 123450, "Wh"), ("SE", "kamstrup_se", 12345, "Wh"),
     ("FI", "kamstrup_nve", 12345, None), ("dk", "kamstrup_nve", 12345, None)],
)  # fmt: skip
def test_kamstrup_v0001_energy_depends_on_the_country(country, profile, energy, unit):
    push = interpret(notif(kamstrup_nve_hourly(), dt("2024-07-01T13:00:05")), InterpretOptions(country=country))
    assert push.profile == profile
    reg = push.register("1.1.1.8.0.255")
    assert (reg.value, reg.unit) == (energy, unit)
    assert push.register("1.1.31.7.0.255").value == 6.55  # the current does not depend on the country


def test_danish_layout_is_chosen_by_its_registers_whatever_the_country():
    body = axdr.structure(
        axdr.visible_string("Kamstrup_V0001"),
        obis("1.1.1.8.0.255"), Data(U32, 765432),
        obis("1.1.0.0.1.255"), Data(U32, 12345678),
    )  # fmt: skip
    for country in (None, "DK", "CH", "NO"):
        push = interpret(notif(body), InterpretOptions(country=country))
        assert push.profile == "kamstrup_dk" and push.register("1.1.1.8.0.255").value == 765432


def test_select_profile_rules():
    assert select_profile("Kamstrup_V0001", {Obis.parse("1.1.0.0.5.255")}, "KAM", "SE", shape="flat_pairs").name == "kamstrup_se"
    # a manufacturer that contradicts the profile's
    assert select_profile("Kamstrup_V0001", {Obis.parse("1.1.0.0.5.255")}, "KFM", "SE", shape="flat_pairs") is None
    # a profile known by its layout does not claim a list that names itself
    assert select_profile("SOME_V1", set(), None, None, shape="positional", unkeyed=(U32,)) is None
    assert select_profile(None, set(), None, "NO", shape="positional", unkeyed=(U32,)).name == "kaifa_list1"


def test_every_profile_is_well_formed():
    names = [p.name for p in PROFILES]
    assert len(names) == len(set(names))
    for p in PROFILES:
        assert p.description and (p.list_ids or p.layouts or p.shapes == ("dsmr",)), p.name
        for layout in p.layouts:
            assert isinstance(layout, Layout) and (layout.types is None or len(layout.types) == len(layout.obis))
            for o in layout.obis:
                assert o is None or p.spec(o) is not None, (p.name, o)
        assert profile_by_name(p.name) is p


def test_forced_profile():
    push = interpret(notif(kamstrup_nve_hourly()), InterpretOptions(profile=profile_by_name("kamstrup_se"), country="NO"))
    assert push.profile == "kamstrup_se" and push.register("1.1.1.8.0.255").value == 12345


# -- time ------------------------------------------------------------------------------------
def test_local_time_with_the_countrys_zone_and_dst():
    summer = interpret(notif(kamstrup_nve_hourly(), dt("2024-07-01T13:00:05")), InterpretOptions(country="NO"))
    assert summer.timestamp == "2024-07-01T13:00:05+02:00" and summer.timezone == "Europe/Oslo"
    assert summer.timestamp_utc.isoformat() == "2024-07-01T11:00:05+00:00"
    winter = interpret(notif(kamstrup_nve_hourly(), dt("2024-01-01T13:00:05")), InterpretOptions(country="SE"))
    assert winter.timestamp == "2024-01-01T13:00:05+01:00"


def test_ambiguous_hour_is_resolved_by_the_dst_bit():
    body = kamstrup_nve_hourly()
    first = interpret(notif(body, dt("2024-10-27T02:30:00", status=0x80)), InterpretOptions(country="NO"))
    second = interpret(notif(body, dt("2024-10-27T02:30:00", status=0x00)), InterpretOptions(country="NO"))
    assert first.timestamp_utc.isoformat() == "2024-10-27T00:30:00+00:00"
    assert second.timestamp_utc.isoformat() == "2024-10-27T01:30:00+00:00"


def test_timezone_option_and_unknown_zone():
    push = interpret(notif(kamstrup_nve_hourly(), dt("2024-07-01T13:00:05")), InterpretOptions(timezone="UTC", country="NO"))
    assert push.timestamp == "2024-07-01T13:00:05+00:00"
    generic = interpret(notif(axdr.structure(Data(U16, 1)), dt("2024-07-01T13:00:05")))
    assert generic.timestamp == "2024-07-01T13:00:05" and generic.timestamp_utc is None


def test_unspecified_and_invalid_clock():
    unspecified = CosemDateTime.from_bytes(bytes.fromhex("FFFFFFFFFFFFFFFFFF800000"))
    push = interpret(notif(kamstrup_nve_hourly(), unspecified))
    assert push.timestamp is None and push.timestamp_utc is None and push.meter_time == unspecified
    invalid = interpret(notif(kamstrup_nve_hourly(), dt("2001-02-03T04:05:06", status=0x01)))
    assert any("invalid" in n for n in invalid.notes) and invalid.timestamp is not None


def test_weekday_zero_and_deviation_zero_from_aidon_are_kept():
    raw = bytes.fromhex("07E8030A000E0000FF000000")  # Sunday 2024-03-10 14:00, weekday 0, deviation 0
    body = axdr.array(
        axdr.structure(obis("1.1.0.2.129.255"), axdr.visible_string("AIDON_V0001")),
        axdr.structure(obis("0.0.1.0.0.255"), axdr.octet_string(raw)),
    )
    push = interpret(notif(body))
    assert push.meter_time.weekday == 0 and push.meter_time.deviation == 0
    assert push.timestamp == "2024-03-10T14:00:00+01:00"  # Norwegian local time, not UTC


# -- multipliers -------------------------------------------------------------------------------
def test_ct_ratio_multiplies_currents_powers_and_energies_only():
    push = interpret(notif(kamstrup_nve_hourly()), InterpretOptions(country="SE", ct_ratio=40))
    assert push.register("1.1.31.7.0.255").value == pytest.approx(262.0)
    assert push.register("1.1.1.7.0.255").value == 64160 and push.register("1.1.1.8.0.255").value == 493800
    assert push.register("1.1.32.7.0.255").value == 229  # voltage untouched
    assert push.register("1.1.31.7.0.255").raw == 655 and any("x40" in n for n in push.notes)


def test_explicit_multiplier_wins_over_ct_ratio():
    m = {Obis.parse("1.1.31.7.0.255"): 50}
    push = interpret(notif(kamstrup_nve_hourly()), InterpretOptions(country="SE", multipliers=m, ct_ratio=40))
    assert push.register("1.1.31.7.0.255").value == pytest.approx(327.5)
    assert push.register("1.1.1.7.0.255").value == 64160
