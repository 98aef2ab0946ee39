"""Pushes built by the tests themselves (with the code the decoder checks), decoded end to end."""

from __future__ import annotations

import pytest

from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime
from decoders.errors import DecodeError
from decoders.link.hdlc import build_frame, build_frames
from decoders.ciphering.security import Keys, protect
from han.pipeline import PushDecoder
from obis.push import Push

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
ST = bytes.fromhex("4B414D45AABBCCDD")
DT = CosemDateTime.from_bytes(bytes.fromhex("07EA0B15060C0000FF800000"))


def body(n: int = 6) -> Data:
    items = [axdr.visible_string("Kamstrup_V0001")]
    for i in range(n):
        items += [axdr.octet_string(bytes((1, 1, 21 + 20 * (i % 3), 7, 0, 255))), Data(axdr.DOUBLE_LONG_UNSIGNED, 1000 + i)]
    items += [axdr.octet_string(bytes.fromhex("0101000001FF")), Data(axdr.DOUBLE_LONG_UNSIGNED, 0xAABBCCDD)]
    return axdr.structure(*items)


def apdu(n: int = 6) -> bytes:
    return build_data_notification(body(n), datetime=DT)


def decode(data: bytes, keys: Keys, chunks: list[int] | None = None, **kw) -> list:
    d = PushDecoder(keys, **kw)
    out = []
    if chunks:
        pos = 0
        for c in chunks:
            out += d.feed(data[pos : pos + c])
            pos += c
        out += d.feed(data[pos:])
    else:
        out += d.feed(data)
    return out + d.flush()


def pushes(items) -> list[Push]:
    assert all(isinstance(x, Push) for x in items), [x for x in items if not isinstance(x, Push)]
    return items


@pytest.mark.parametrize("sc", [0x30, 0x10, 0x20])
@pytest.mark.parametrize("addr", [(b"\x41", b"\x03"), (b"\xce\xff", b"\x02\x23"), (b"\x00\x02\x00\x23", b"\x02\x05")])
def test_modes_and_addresses(sc, addr):
    keys = Keys(ek=EK, ak=AK if sc & 0x10 else None)
    wire = protect(apdu(), keys=keys, system_title=ST, invocation_counter=7, security_control=sc)
    frame = build_frame(b"\xe6\xe7\x00" + wire, dest=addr[0], src=addr[1])
    (push,) = pushes(decode(frame, keys))
    assert push.security.system_title == ST and push.security.security_control == sc
    assert push.security.verified == bool(sc & 0x10)
    assert [r.raw for r in push.registers][:7] == ["Kamstrup_V0001", 1000, 1001, 1002, 1003, 1004, 1005]
    assert push.timestamp == "2026-11-21T12:00:00+01:00"  # kamstrup_dk: Europe/Copenhagen


def test_plain_push():
    (push,) = pushes(decode(build_frame(b"\xe6\xe7\x00" + apdu()), Keys()))
    assert push.security is None and push.list_id == "Kamstrup_V0001"


def test_plain_push_refused_when_an_authentication_key_is_set():
    (err,) = decode(build_frame(b"\xe6\xe7\x00" + apdu()), Keys(ek=EK, ak=AK))
    assert err.reason == "downgrade"
    (push,) = pushes(decode(build_frame(b"\xe6\xe7\x00" + apdu()), Keys(ek=EK, ak=AK), allow_unauthenticated=True))


@pytest.mark.parametrize("max_info", [20, 64, 128, 300])
def test_segmented_and_encrypted(max_info):
    keys = Keys(ek=EK, ak=AK)
    wire = protect(apdu(40), keys=keys, system_title=ST, invocation_counter=99)
    frames = build_frames(wire, max_info=max_info, dest=b"\xcf", src=b"\x02\x23")
    (push,) = pushes(decode(b"".join(frames), keys))
    assert len(push.registers) == 42 and push.security.invocation_counter == 99  # the list id + 41


def test_other_keys_32_byte_suite2():
    keys = Keys(ek=bytes(range(32)), ak=bytes(range(32, 64)))
    wire = protect(apdu(), keys=keys, system_title=b"ABC12345", invocation_counter=1, security_control=0x32)
    (push,) = pushes(decode(build_frame(b"\xe6\xe7\x00" + wire), keys))
    assert push.security.security_control == 0x32


def test_split_at_every_byte_boundary():
    keys = Keys(ek=EK, ak=AK)
    stream = b"".join(
        build_frame(b"\xe6\xe7\x00" + protect(apdu(), keys=keys, system_title=ST, invocation_counter=i))
        for i in range(1, 4)
    )
    stream += b"".join(build_frames(protect(apdu(30), keys=keys, system_title=ST, invocation_counter=4), max_info=90))
    whole = [(p.security.invocation_counter, len(p.registers)) for p in pushes(decode(stream, keys))]
    assert whole == [(1, 8), (2, 8), (3, 8), (4, 32)]  # the list id + the values
    for cut in range(1, len(stream)):
        got = [(p.security.invocation_counter, len(p.registers)) for p in pushes(decode(stream, keys, [cut]))]
        assert got == whole, cut


def test_wrong_key_for_one_meter_does_not_hide_the_next_frame():
    keys = Keys(ek=EK, ak=AK)
    good = build_frame(b"\xe6\xe7\x00" + protect(apdu(), keys=keys, system_title=ST, invocation_counter=2))
    other = build_frame(
        b"\xe6\xe7\x00" + protect(apdu(), keys=Keys(ek=AK, ak=EK), system_title=ST, invocation_counter=1)
    )
    out = decode(other + good, keys)
    assert isinstance(out[0], DecodeError) and out[0].reason == "tag_mismatch"
    assert isinstance(out[1], Push)


def test_unknown_registers_are_kept_raw():
    b = axdr.structure(
        axdr.octet_string(bytes.fromhex("0000600107FF")),
        axdr.visible_string("MA304H3E"),
        axdr.octet_string(bytes.fromhex("07070707FF07")),  # not an OBIS code we know
        Data(axdr.LONG, -5),
        Data(axdr.FLOAT32, 1.5),
    )
    (push,) = pushes(decode(build_data_notification(b), Keys(), transport="raw"))
    assert push.profile is None and push.notes
    regs = push.registers
    assert regs[0].obis.dotted == "0.0.96.1.7.255" and regs[0].value == "MA304H3E" and regs[0].name == "Meter type"
    assert regs[1].obis.dotted == "7.7.7.7.255.7" and regs[1].value == -5 and regs[1].name is None
    assert regs[2].obis is None and regs[2].value == 1.5 and regs[2].position == 4
