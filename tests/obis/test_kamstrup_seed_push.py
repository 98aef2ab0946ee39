"""The seed document's Kamstrup OMNIPOWER push (Radius Elnet, 3 Jan 2020), end to end.

Expected values are the seed's own Gurux XML view and register table.
"""

from __future__ import annotations

import pytest

from conftest import SEED_AK, SEED_EK
from decoders.link.crc import fcs_bytes
from decoders.errors import DecodeError, SecurityError
from decoders.ciphering.security import Keys
from han.pipeline import PushDecoder
from obis.push import Push

# (OBIS, raw value, A-XDR type, name, unit, scaled value) in wire order, from the seed's XML and table
SEED_REGISTERS = [
    ("1.1.1.8.0.255", 0x000D394C, "double_long_unsigned", "Active energy A14", "Wh", 866636),
    ("1.1.2.8.0.255", 0, "double_long_unsigned", "Active energy A23", "Wh", 0),
    ("1.1.3.8.0.255", 0x0000452C, "double_long_unsigned", "Reactive energy R12", "varh", 17708),
    ("1.1.4.8.0.255", 0, "double_long_unsigned", "Reactive energy R34", "varh", 0),
    ("1.1.0.0.1.255", 0x01A4DC52, "double_long_unsigned", "Meter number 1", None, 27581522),
    ("1.1.1.7.0.255", 0, "double_long_unsigned", "Actual power P14", "W", 0),
    ("1.1.2.7.0.255", 0, "double_long_unsigned", "Actual power P23", "W", 0),
    ("1.1.3.7.0.255", 0, "double_long_unsigned", "Actual power Q12", "var", 0),
    ("1.1.4.7.0.255", 0, "double_long_unsigned", "Actual power Q34", "var", 0),
    ("0.1.1.0.0.255", "07E40107020E2F14FF800000", "octet_string", "Real-time clock", None, "2020-01-07T14:47:20"),
    ("1.1.32.7.0.255", 0x00E0, "long_unsigned", "RMS voltage of phase L1", "V", 224),
    ("1.1.52.7.0.255", 0x00DF, "long_unsigned", "RMS voltage of phase L2", "V", 223),
    ("1.1.72.7.0.255", 0x00DF, "long_unsigned", "RMS voltage of phase L3", "V", 223),
    ("1.1.31.7.0.255", 0, "double_long_unsigned", "RMS current of phase L1", "A", 0.0),
    ("1.1.51.7.0.255", 0, "double_long_unsigned", "RMS current of phase L2", "A", 0.0),
    ("1.1.71.7.0.255", 0, "double_long_unsigned", "RMS current of phase L3", "A", 0.0),
    ("1.1.21.7.0.255", 0, "double_long_unsigned", "Actual power P14 of phase L1", "W", 0),
    ("1.1.41.7.0.255", 0, "double_long_unsigned", "Actual power P14 of phase L2", "W", 0),
    ("1.1.61.7.0.255", 0, "double_long_unsigned", "Actual power P14 of phase L3", "W", 0),
    ("1.1.33.7.0.255", 0x0064, "long_unsigned", "Power factor of phase L1", None, 1.0),
    ("1.1.53.7.0.255", 0x0064, "long_unsigned", "Power factor of phase L2", None, 1.0),
    ("1.1.73.7.0.255", 0x0064, "long_unsigned", "Power factor of phase L3", None, 1.0),
    ("1.1.13.7.0.255", 0x0064, "long_unsigned", "Power factor Total", None, 1.0),
    ("1.1.22.7.0.255", 0, "double_long_unsigned", "Active power P23 of phase L1", "W", 0),
    ("1.1.42.7.0.255", 0, "double_long_unsigned", "Active power P23 of phase L2", "W", 0),
    ("1.1.62.7.0.255", 0, "double_long_unsigned", "Active power P23 of phase L3", "W", 0),
    ("1.1.22.8.0.255", 0, "double_long_unsigned", "Active energy A23 of phase L1", "Wh", 0),
    ("1.1.42.8.0.255", 0, "double_long_unsigned", "Active energy A23 of phase L2", "Wh", 0),
    ("1.1.62.8.0.255", 0, "double_long_unsigned", "Active energy A23 of phase L3", "Wh", 0),
    ("1.1.21.8.0.255", 0x000468A4, "double_long_unsigned", "Active energy A14 of phase L1", "Wh", 288932),
    ("1.1.41.8.0.255", 0x0004678C, "double_long_unsigned", "Active energy A14 of phase L2", "Wh", 288652),
    ("1.1.61.8.0.255", 0x0004691B, "double_long_unsigned", "Active energy A14 of phase L3", "Wh", 289051),
]
SEED_PLAINTEXT_HEAD = "0f000000000c07e40107020e2f14ff80000002410a0e4b616d73747275705f5630303031"

KEYS = Keys(ek=SEED_EK, ak=SEED_AK)


def decode(data: bytes, keys: Keys = KEYS, **kw) -> list:
    d = PushDecoder(keys, **kw)
    return d.feed(data) + d.flush()


def only_push(data: bytes, keys: Keys = KEYS, **kw) -> Push:
    out = decode(data, keys, **kw)
    assert len(out) == 1 and isinstance(out[0], Push), out
    return out[0]


def test_seed_push(seed_frame):
    push = only_push(seed_frame)
    assert push.list_id == "Kamstrup_V0001" and push.profile == "kamstrup_dk"
    assert push.timestamp == "2020-01-07T14:47:20+01:00"  # local time, with the offset of Europe/Copenhagen
    assert push.timestamp_utc.isoformat() == "2020-01-07T13:47:20+00:00"
    assert push.meter_time.deviation is None and push.meter_time.clock_status == 0
    assert push.invoke_id_and_priority == 0
    assert push.apdu.hex().startswith(SEED_PLAINTEXT_HEAD)
    s = push.security
    assert s.invocation_counter == 493793 and s.security_control == 0x30 and s.verified
    assert s.system_title == bytes.fromhex("4B414D4501A4DC52") and s.manufacturer == "KAM"
    assert len(push.registers) == 33
    got = [(r.obis.dotted, r.raw, r.type, r.name, r.unit, r.value) for r in push.registers]
    # the list id, sent without an OBIS code, is register 1.1.0.2.129.255 (mapped by its position)
    assert got[0] == ("1.1.0.2.129.255", "Kamstrup_V0001", "visible_string", "List version identifier", None,
                      "Kamstrup_V0001") and push.registers[0].positional  # fmt: skip
    assert got[1:] == SEED_REGISTERS


def test_seed_headline_values(seed_frame):
    push = only_push(seed_frame)
    assert push.register("1.1.1.8.0.255").value == 866636
    assert push.register("1.1.0.0.1.255").value == 27581522
    assert push.register("1.1.32.7.0.255").value == 224
    assert push.register("1-1:13.7.0").value == 1.0 and push.register("1-1:13.7.0").raw == 100
    assert push.meter_id == "27581522"


def test_seed_meter_number_is_the_system_title_tail(seed_frame):
    push = only_push(seed_frame)
    assert push.register("1.1.0.0.1.255").raw == int.from_bytes(push.security.system_title[4:], "big")


def _refcs(frame: bytearray) -> bytes:
    """Recompute the FCS after an edit, so only the ciphering layer can object."""
    body = bytes(frame[1:-3])
    return b"\x7e" + body + fcs_bytes(body) + b"\x7e"


def test_every_single_bit_flip_is_rejected(seed_frame):
    """From the system-title length byte to the last tag byte, header included."""
    start = 1 + 2 + 1 + 1 + 1 + 2 + 3 + 1  # flag, format, dest, src, control, HCS, LLC, DB
    end = len(seed_frame) - 3  # FCS and closing flag
    assert seed_frame[start - 1] == 0xDB
    for i in range(start, end):
        for bit in range(8):
            mutated = bytearray(seed_frame)
            mutated[i] ^= 1 << bit
            out = decode(_refcs(mutated))
            assert not any(isinstance(x, Push) for x in out), (i, bit)
            assert all(isinstance(x, DecodeError) for x in out)
            assert any(isinstance(x, SecurityError) or x.layer in ("apdu", "a-xdr") for x in out), (i, bit, out)


def test_wrong_keys(seed_frame):
    (err,) = decode(seed_frame, Keys(ek=SEED_EK, ak=bytes(16)))
    assert err.reason == "tag_mismatch" and "authentication key is probably wrong" in err.message
    (err,) = decode(seed_frame, Keys(ek=bytes(16), ak=SEED_AK))
    assert err.reason == "tag_mismatch" and "encryption key is probably wrong" in err.message
    (err,) = decode(seed_frame, Keys())
    assert err.reason == "no_key"


def test_unverified_mode_says_so(seed_frame):
    push = only_push(seed_frame, Keys(ek=SEED_EK), allow_unverified=True)
    assert not push.security.verified and any("UNVERIFIED" in n for n in push.notes)
    assert push.register("1.1.1.8.0.255").value == 866636
    (err,) = decode(seed_frame, Keys(ek=SEED_EK))
    assert err.reason == "no_key" and "authentication key" in err.message


@pytest.mark.parametrize("cut", [10, 100, 300, 480])
def test_truncation(seed_frame, cut):
    out = decode(seed_frame[:cut])
    assert out and all(isinstance(x, DecodeError) for x in out)


def test_random_bytes():
    import random

    rng = random.Random(11)
    for _ in range(100):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 700)))
        for x in decode(data):
            assert isinstance(x, DecodeError)
