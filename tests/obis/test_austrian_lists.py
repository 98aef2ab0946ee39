"""The Wiener Netze lists (L+G E450, Iskraemeco AM550, Siemens IM350): a clock and eight counters, no OBIS codes.

Built here as the meters send them (one encryption-only HDLC frame, SC 0x20)
and decoded end to end; the corpus holds no capture of them.
"""

from __future__ import annotations


import pytest

from decoders.xdlms import axdr
from decoders.xdlms.axdr import Data
from decoders.ciphering.security import Keys
from han.pipeline import PushDecoder
from obis.interpret import InterpretOptions
from obis.push import Push
from pushkit import COUNTERS, EK, NAMED, WHEN, body, frame


def decode(data: bytes, **kw) -> Push:
    d = PushDecoder(Keys(ek=EK), options=InterpretOptions(**kw))
    out = d.feed(data) + d.flush()
    assert len(out) == 1 and isinstance(out[0], Push), out
    return out[0]


def assert_named(push: Push) -> None:
    assert push.profile == "at_wiener_netze" and not push.unknown_list and push.shape == "positional"
    for (obis, name, unit), raw in zip(NAMED, COUNTERS):
        r = push.register(obis)
        assert (r.name, r.unit, r.raw, r.value, r.type, r.positional) == (name, unit, raw, raw, "double_long_unsigned", True)
    clock = push.register("0.0.1.0.0.255")
    assert clock.positional and clock.value == "2025-01-20T18:30:05"
    assert push.timestamp == "2025-01-20T18:30:05+01:00" and push.timezone == "Europe/Vienna"


@pytest.mark.parametrize("maker", [b"LGZ", b"ISK", b"SMS"])
@pytest.mark.parametrize("encrypted", [True, False])
def test_clock_and_eight_counters_are_named_with_country_at(maker, encrypted):
    push = decode(frame(body(), maker, encrypted=encrypted), country="AT")
    assert_named(push)
    assert len(push.registers) == 9 and push.meter_id is None
    if encrypted:
        assert push.security.manufacturer == maker.decode() and push.security.security_control == 0x20


def test_the_variant_with_the_serial_number_first():
    push = decode(frame(body(b"SMS1030788000020"), b"SMS", addr=(b"\xcf", b"\x02\x23")), country="AT")
    assert_named(push)
    serial = push.registers[0]
    assert (serial.obis.dotted, serial.name, serial.value, serial.positional) == (
        "0.0.96.1.0.255", "Meter serial number", "SMS1030788000020", True)  # fmt: skip
    assert push.meter_id == "SMS1030788000020" and len(push.registers) == 10


def test_without_the_country_the_values_stay_raw_by_position():
    push = decode(frame(body()))
    assert push.profile is None and push.unknown_list
    assert [r.obis for r in push.registers] == [None] * 9 and [r.raw for r in push.registers][1:] == list(COUNTERS)
    assert any("by position" in n for n in push.notes)


@pytest.mark.parametrize(
    "b",
    [body(counters=COUNTERS[:7]), body(counters=(*COUNTERS, 9)),
     axdr.structure(axdr.octet_string(WHEN.raw), *[Data(axdr.LONG64_UNSIGNED, v) for v in COUNTERS])],
    ids=["7 counters", "9 counters", "long64 counters"],
)  # fmt: skip
def test_another_shape_is_not_guessed(b):
    push = decode(frame(b), country="AT")
    assert push.profile is None and all(r.obis is None for r in push.registers)


def test_another_makers_system_title_does_not_get_the_layout():
    push = decode(frame(body(), b"KFM"), country="AT")
    assert push.profile is None and push.unknown_list


def test_han_decode_names_them(tmp_path, capsys):
    import json

    from han.cli import main

    path = tmp_path / "wn.hex"
    path.write_text(frame(body(b"ISK1030775213859"), b"ISK").hex(" "))
    assert main(["decode", str(path), "--key", EK.hex(), "--country", "AT", "-f", "json"]) == 0
    (push,) = json.loads(capsys.readouterr().out)
    regs = {r["obis"]: r for r in push["registers"]}
    assert push["profile"] == "at_wiener_netze" and regs["1.0.1.8.0.255"]["value"] == COUNTERS[0]
    assert regs["1.0.1.8.0.255"]["unit"] == "Wh" and regs["0.0.96.1.0.255"]["value"] == "ISK1030775213859"
