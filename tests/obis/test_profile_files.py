"""Profiles of one's own: TOML profile files (--profiles), their checks, and templates from captures."""

from __future__ import annotations

import json
import re

import pytest

from conftest import load_vectors
from decoders.xdlms import axdr
from decoders.xdlms.axdr import Data
from han.cli import main
from han.config import build_run_config
from han.pipeline import PushDecoder
from obis.interpret import InterpretOptions
from obis.profile_file import ProfileFileError, load_profiles, parse_profiles, profile_toml
from obis.profiles import PROFILES, catalogue, profile_by_name
from pushkit import COUNTERS, EK, body, frame
from vectorcheck import country_of, keys_of

KEY = ["--key", EK.hex()]

MY = """
[[profile]]
name = "my_meter"
description = "a test meter: a clock and eight counters"
manufacturers = ["XYZ"]
shapes = ["positional"]

[[profile.layout]]
name = "clock and 8 counters"

[[profile.layout.value]]
type = "octet_string"
obis = "0.0.1.0.0.255"

[[profile.layout.value]]
type = "double_long_unsigned"
obis = "1-0:1.8.0"
name = "Energy in"
unit = "Wh"
scaler = 0

[[profile.layout.value]]
type = "double_long_unsigned"
obis = "1.0.2.8.0.255"
""" + '\n[[profile.layout.value]]\ntype = "double_long_unsigned"\nobis = ""\n' * 5 + """
[[profile.layout.value]]
type = "any"
obis = "1.0.4.7.0.255"
name = "Q-"
unit = "var"
scaler = "raw"
"""


def test_every_built_in_profile_is_expressible_in_toml():
    for p in PROFILES:
        (back,) = parse_profiles(profile_toml(p), f"{p.name}.toml")
        assert back == p, p.name


def test_a_loaded_profile_names_a_list_no_built_in_knows():
    (mine,) = parse_profiles(MY, "my.toml")
    assert mine.layouts[0].types[-1] is None and mine.spec(mine.layouts[0].obis[2]).name == "Active energy export"
    data = frame(body(), b"XYZ")
    plain = PushDecoder(keys_of({"keys": {"ek": EK.hex()}})).feed(data)[0]
    assert plain.profile is None and plain.unknown_list
    push = PushDecoder(keys_of({"keys": {"ek": EK.hex()}}), options=InterpretOptions(profiles=catalogue((mine,)))).feed(data)[0]
    assert push.profile == "my_meter" and not push.unknown_list
    names = [(r.obis.dotted if r.obis else None, r.name, r.unit, r.value) for r in push.registers]
    assert names[:3] == [("0.0.1.0.0.255", "Clock", None, "2025-01-20T18:30:05"),
                         ("1.0.1.8.0.255", "Energy in", "Wh", COUNTERS[0]),
                         ("1.0.2.8.0.255", "Active energy export", None, COUNTERS[1])]  # fmt: skip
    assert names[3:8] == [(None, None, None, v) for v in COUNTERS[2:7]]  # left blank: by position
    assert names[8] == ("1.0.4.7.0.255", "Q-", None, COUNTERS[7])  # scaler "raw": no unit on a raw value
    assert push.timestamp == "2025-01-20T18:30:05"  # no country, no zone: the meter's local time as sent


def test_a_loaded_profile_replaces_the_built_in_of_its_name():
    built = profile_by_name("at_wiener_netze")
    text = profile_toml(built).replace('"Active energy import (+A)"', '"Bezug"')
    (mine,) = parse_profiles(text)
    options = InterpretOptions(country="AT", profiles=catalogue((mine,)))
    push = PushDecoder(keys_of({"keys": {"ek": EK.hex()}}), options=options).feed(frame(body()))[0]
    assert push.profile == "at_wiener_netze" and push.register("1.0.1.8.0.255").name == "Bezug"
    assert [p.name for p in catalogue((mine,))].count("at_wiener_netze") == 1


BAD = [
    ("[[profile]]\nname = 'x'\n", 1, "nothing tells this profile's lists from others"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1']\ncolour = 'red'\n", 4, "unknown setting 'colour'"),
    ("[[profile]]\nname = 'x'\nlist_ids = 'A_1'\ncountries = ['XX']\n", 4, "not an ISO 3166"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1']\ntimezone = 'Mars/Base'\n", 4, "not a known time zone"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1']\nshapes = ['flat']\n", 4, "not a list shape"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1']\nmanufacturers = ['Kam']\n", 4, "not a FLAG id"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1']\n\n[[profile.register]]\nobis = '1.8.0'\nname = 'E'\n", 6,
     "'1.8.0' is not an OBIS code"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1']\n\n[[profile.register]]\nobis = '1.0.1.8.0.255'\nname = 'E'\n"
     "unit = 'kWh'\n", 8, "not a DLMS unit symbol"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1']\n\n[[profile.register]]\nobis = '1.0.1.8.0.255'\nname = 'E'\n"
     "scaler = 1.5\n", 8, "scaler 1.5 must be a power of ten"),
    ("[[profile]]\nname = 'x'\n[[profile.layout]]\n[[profile.layout.value]]\ntype = 'uint32'\nobis = '1.0.1.8.0.255'\n",
     5, "not an A-XDR type name"),
    ("[[profile]]\nname = 'x'\n[[profile.layout]]\n[[profile.layout.value]]\ntype = 'long'\nobis = ''\n", 3,
     "no value has an obis"),
    ("[[profile]]\nname = 'x'\n[[profile.layout]]\n[[profile.layout.value]]\nobis = '1.0.99.99.0.255'\n", 5,
     "is not a common code: give the value a name"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1']\n[[profile]]\nname = 'x'\nlist_ids = ['B_1']\n", 5,
     "already in this file"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1'\n", None, "not valid TOML"),
    ("[[profile]]\nname = 'x'\nlist_ids = ['A_1']\n[[profile]]\nname = 'y'\n[[profile.layout]]\n"
     "[[profile.layout.value]]\ntype = 'long'\n[[profile.layout.value]]\ntype = 'long'\nobis = '1.0.1.7.0.255'\n"
     "unit = 'W'\nscaler = 'x'\n", 13, "scaler 'x'"),
]  # fmt: skip


@pytest.mark.parametrize("text,line,reason", BAD, ids=[b[2] for b in BAD])
def test_a_bad_profile_file_is_one_line_naming_the_line(tmp_path, text, line, reason):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileFileError) as info:
        load_profiles([str(path)])
    message = str(info.value)
    assert "\n" not in message and reason in message
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_the_same_name_in_two_files(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(MY)
    b.write_text(MY)
    with pytest.raises(ProfileFileError, match="also in"):
        load_profiles([str(a), str(b)])


# -- the command line ---------------------------------------------------------------------------
def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_decode_with_profiles_and_its_errors(capsys, tmp_path):
    capture = tmp_path / "c.hex"
    capture.write_text(frame(body(), b"XYZ").hex())
    mine = tmp_path / "my.toml"
    mine.write_text(MY)
    code, out, _ = run(capsys, "decode", str(capture), *KEY, "--profiles", str(mine), "-f", "json")
    (push,) = json.loads(out)
    assert code == 0 and push["profile"] == "my_meter" and push["registers"][1]["name"] == "Energy in"
    code, out, _ = run(capsys, "decode", str(capture), *KEY, "--profiles", str(mine), "--profile", "my_meter", "-f", "json")
    assert code == 0 and json.loads(out)[0]["profile"] == "my_meter"
    mine.write_text(MY.replace('unit = "Wh"', 'unit = "kWh"'))
    code, out, err = run(capsys, "decode", str(capture), *KEY, "--profiles", str(mine))
    line = MY.splitlines().index('unit = "Wh"') + 1
    assert code == 2 and out == "" and err.startswith(f"han decode: {mine}:{line}: ") and len(err.splitlines()) == 1
    code, _, err = run(capsys, "profiles", "--profiles", str(tmp_path / "none.toml"))
    assert code == 2 and "no such profile file" in err


def test_run_config_profiles_are_relative_to_the_config(tmp_path):
    from han.config import Overrides

    (tmp_path / "my.toml").write_text(MY)
    cfg = tmp_path / "han.toml"
    cfg.write_text('[decode]\nprofiles = "my.toml"\n[daemon]\nstate_dir = "state"\n')
    rc = build_run_config(Overrides(config=str(cfg), replay=str(cfg)), environ={})
    assert rc.decode_options.profiles[0].name == "my_meter"
    assert rc.decode_options.profiles[1:] == PROFILES


def test_template_edit_decode(capsys, tmp_path):
    """As a user: a capture of an unknown list -> template -> fill in -> decode with names."""
    capture = tmp_path / "capture.hex"
    capture.write_text("\n".join(frame(body(b"XYZ0000000042", counters=[c + i for c in COUNTERS]), b"XYZ").hex(" ")
                                 for i in range(4)))  # fmt: skip
    out_path = tmp_path / "my-meter.toml"
    code, out, err = run(capsys, "profiles", "--template", str(capture), *KEY, "--country", "AT", "-o", str(out_path))
    assert code == 0 and out == "" and f"--profiles {out_path}" in err
    text = out_path.read_text()
    assert text.count("[[profile.layout.value]]") == 10 and 'manufacturers = ["XYZ"]' in text
    assert "# value 2: octet_string, sample '2025-01-20T18:30:05'" in text and "the clock is 0.0.1.0.0.255" in text
    assert f"({COUNTERS[0]}..{COUNTERS[0] + 3} over 4 pushes, never falling)" in text
    # an untouched template names nothing: it says so, by line
    code, _, err = run(capsys, "decode", str(capture), *KEY, "--profiles", str(out_path))
    assert code == 2 and "no value has an obis" in err
    # fill in three values as a user would
    blocks = text.split("[[profile.layout.value]]")
    for i, (obis, name, unit) in {1: ("0.0.96.1.0.255", "Serial", ""), 2: ("0.0.1.0.0.255", "", ""),
                                  3: ("1.0.1.8.0.255", "Bezug", "Wh")}.items():  # fmt: skip
        blocks[i] = blocks[i].replace('obis = ""', f'obis = "{obis}"', 1).replace('name = ""', f'name = "{name}"', 1)
        blocks[i] = blocks[i].replace('unit = ""', f'unit = "{unit}"', 1)
    out_path.write_text("[[profile.layout.value]]".join(blocks))
    code, out, err = run(capsys, "decode", str(capture), *KEY, "--profiles", str(out_path), "--country", "AT", "-f", "jsonl")
    pushes = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and len(pushes) == 4 and {p["profile"] for p in pushes} == {"my_meter"}
    regs = pushes[3]["registers"]
    assert [(r.get("obis"), r.get("name"), r.get("unit")) for r in regs[:3]] == [
        ("0.0.96.1.0.255", "Serial", None), ("0.0.1.0.0.255", "Clock", None), ("1.0.1.8.0.255", "Bezug", "Wh")]  # fmt: skip
    assert regs[2]["value"] == COUNTERS[0] + 3 and pushes[3]["meter_id"] == "XYZ0000000042"
    assert "obis" not in regs[3] or regs[3]["obis"] is None  # left blank: by position
    # the template's country makes it apply only there
    code, out, _ = run(capsys, "decode", str(capture), *KEY, "--profiles", str(out_path), "-f", "jsonl")
    assert code == 0 and json.loads(out.splitlines()[0])["profile"] is None
    # --output never overwrites
    code, _, err = run(capsys, "profiles", "--template", str(capture), *KEY, "-o", str(out_path))
    assert code == 2 and "exists" in err


def test_template_of_a_list_that_names_itself(capsys, tmp_path):
    from decoders.xdlms.apdu import build_data_notification
    from decoders.link.hdlc import build_frame
    from obis.code import Obis

    named = axdr.structure(axdr.structure(axdr.octet_string(bytes(Obis.parse("1.0.1.7.0.255"))), Data(6, 5),
                                          axdr.structure(Data(axdr.INTEGER, 0), Data(axdr.ENUM, 27))))  # fmt: skip
    capture = tmp_path / "aidon-like.hex"
    capture.write_text(build_frame(b"\xe6\xe7\x00" + build_data_notification(named)).hex())
    code, out, err = run(capsys, "profiles", "--template", str(capture))
    assert code == 1 and out == "" and "a profile adds nothing" in err
    code, out, err = run(capsys, "profiles", "--template", "7E A0 07 41 03 13 00 00 7E")
    assert code == 1 and "no push decoded" in err


def test_toml_of_a_built_in_loads_back(capsys, tmp_path):
    code, out, _ = run(capsys, "profiles", "at_wiener_netze", "--toml")
    path = tmp_path / "wn.toml"
    path.write_text(out)
    assert code == 0 and load_profiles([str(path)]) == (profile_by_name("at_wiener_netze"),)
    code, out, _ = run(capsys, "profiles", "--profiles", str(path))
    assert code == 0 and re.search(r"^at_wiener_netze .*\(loaded\)$", out, re.M)


# -- corpus captures of positional lists -------------------------------------------------------
POSITIONAL = [v for v in load_vectors("real_vectors.jsonl")
              if v["id"] in ("kaifa_no_list2_2017", "iskra_am550_si_compact_gh956", "lg_e450_at_hdlc_gcm_gh501")]  # fmt: skip


@pytest.mark.parametrize("vector", POSITIONAL, ids=lambda v: v["id"])
def test_template_from_a_corpus_capture(capsys, tmp_path, vector):
    capture = tmp_path / "capture.hex"
    capture.write_text(vector["hex"])
    keys = keys_of(vector)
    key_args = ["--key", keys.ek.hex()] + (["--auth-key", keys.ak.hex()] if keys.ak else []) if keys.ek else []
    code, out, _ = run(capsys, "profiles", "--template", str(capture), *key_args, "--template-name", "mine")
    assert code == 0
    lid = vector["expected"].get("list_id")
    assert (f'list_ids = ["{lid}"]' in out) == bool(lid)
    # name the last value of the layout, and a loaded profile wins over the built-in one
    head, _, last = out.rpartition('obis = ""')
    path = tmp_path / "mine.toml"
    path.write_text(head + 'obis = "0.0.96.1.9.255"\nname = "Last value"' + last.replace('name = ""', "", 1))
    code, out, _ = run(capsys, "decode", str(capture), *key_args, "--profiles", str(path), "--country",
                       country_of(vector), "-f", "json")  # fmt: skip
    (push,) = json.loads(out)
    assert code == 0 and push["profile"] == "mine"
    assert push["registers"][-1]["obis"] == "0.0.96.1.9.255" and push["registers"][-1]["name"] == "Last value"
