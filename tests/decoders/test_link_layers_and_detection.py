"""M-Bus long frames, general-block-transfer, bare APDU streams, DSMR telegrams, transport auto-detection.

Every frame here is built by the tests with the package's own builders.
"""

from __future__ import annotations

import pytest

from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime
from decoders.xdlms.dsmr import crc16_arc, parse_telegram
from decoders.errors import ApduError, ChecksumError, DecodeError, FramingError, NotAFrame, TruncatedFrame
from decoders.link.gbt import GbtReassembler, build_blocks, parse_block
from decoders.link.hdlc import build_frame, build_frames
from decoders.link.mbus import MbusFrame, MbusFramer, MbusReassembler, build_frames as mbus_frames
from decoders.link.raw import RawApdu, RawFramer
from decoders.ciphering.security import Keys, protect
from decoders.stream import StreamDecoder

EK = bytes(range(0x30, 0x40))
ST = b"KFMg\x00\x00\x00\x01"
DT = CosemDateTime.from_bytes(bytes.fromhex("07E8030F050E2D2D00FF8880"))


def notification(n: int = 20) -> bytes:
    items = []
    for i in range(n):
        items.append(
            axdr.structure(
                axdr.octet_string(bytes((1, 0, 32 + 20 * (i % 3), 7, 0, 255))),
                Data(axdr.LONG_UNSIGNED, 2300 + i),
                axdr.structure(Data(axdr.INTEGER, -1), Data(axdr.ENUM, 35)),
            )
        )
    return build_data_notification(axdr.array(*items), invoke_id_and_priority=0x80000001, datetime=DT)


def ciphered(n: int = 20, sc: int = 0x20, ic: int = 1) -> bytes:
    return protect(notification(n), keys=Keys(ek=EK), system_title=ST, invocation_counter=ic, security_control=sc)


def run(decoder: StreamDecoder, data: bytes, chunk: int | None = None) -> list:
    out = []
    if chunk:
        for i in range(0, len(data), chunk):
            out += decoder.feed(data[i : i + chunk])
    else:
        out += decoder.feed(data)
    return out + decoder.flush()


def ok(items) -> list:
    bad = [x for x in items if isinstance(x, DecodeError)]
    assert not bad, [x.one_line() for x in bad]
    return items


# -- M-Bus ------------------------------------------------------------------------------
def test_mbus_frames_round_trip_at_any_chunking():
    wire = ciphered(30)
    stream = b"".join(mbus_frames(wire, max_data=100))
    for chunk in (None, 1, 7, 64):
        f = MbusFramer()
        out = run(f, stream, chunk)
        assert all(isinstance(x, MbusFrame) for x in out)
        n = -(-len(wire) // 100)
        assert [x.ci for x in out] == list(range(n - 1)) + [0x10 | (n - 1)]
        r = MbusReassembler()
        msgs = [m for x in out for m in r.push(x)]
        assert len(msgs) == 1 and msgs[0].payload == wire and (msgs[0].stsap, msgs[0].dtsap) == (1, 0x67)


def test_mbus_single_segment_and_wrapped_l_field():
    wire = ciphered(30)
    (single,) = mbus_frames(wire[:200])
    assert single[6] == 0x10
    frames = mbus_frames(wire, first_data=252, max_data=200, wrap_first=True)
    assert frames[0][1:3] == b"\x01\x01"  # 257 user-data bytes, the L-field wrapped
    out = run(MbusFramer(), b"".join(frames))
    assert out[0].wrapped and out[0].length == 257 and out[0].l_field == 1


def test_mbus_bad_checksum_then_resync():
    good = mbus_frames(ciphered(5))[0]
    bad = bytearray(good)
    bad[20] ^= 0x01
    out = run(MbusFramer(), b"noise" + bytes(bad) + good)
    kinds = [type(x).__name__ for x in out]
    assert kinds == ["NotAFrame", "ChecksumError", "MbusFrame"]
    assert out[1].reason == "bad_checksum" and out[1].frame.ok is False and out[1].offset == 5
    assert out[0].length == 5


def test_mbus_truncated_and_noise_only():
    frame = mbus_frames(ciphered(5))[0]
    out = run(MbusFramer(), frame[:-10])
    assert [type(x) for x in out] == [TruncatedFrame]
    out = run(MbusFramer(), b"\x68\x68\x68 hello")
    assert [type(x) for x in out] == [NotAFrame]


def test_mbus_reassembly_errors():
    frames = [MbusFramer().feed(f)[0] for f in mbus_frames(ciphered(30), max_data=100)]
    assert len(frames) >= 4
    r = MbusReassembler()
    assert r.push(frames[1]) == []  # the capture started mid-message: skipped until a new message starts
    err, *rest = r.push(frames[0])
    assert err.reason == "broken_segments" and "mid-push" in err.message and err.layer == "mbus" and rest == []
    assert r.push(frames[2]) == []  # segment 1 went missing: the rest of the message is skipped...
    (err,) = [x for f in frames[3:] for x in r.push(f)]  # ...and reported once, when the message ends
    assert err.reason == "broken_segments" and "segment 2 followed segment 0" in err.message
    assert f"{len(frames) - 1} segment(s) discarded" in err.message
    (msg,) = [x for f in frames for x in r.push(f)]  # and the next complete message decodes
    assert msg.payload == ciphered(30)
    other = MbusFramer().feed(bytes((0x68, 4, 4, 0x68, 0x08, 0x01, 0x72, 0x00, 0x7B, 0x16)))[0]
    (err,) = MbusReassembler().push(other)
    assert err.reason == "not_dlms" and "CI 0x72" in err.message


def test_mbus_buffer_stays_bounded():
    f = MbusFramer()
    for _ in range(200):
        f.feed(b"\x68\xff\xff\x68" + bytes(60))
        assert f.buffered <= 600


# -- general-block-transfer --------------------------------------------------------------------
def test_gbt_blocks_round_trip():
    wire = ciphered(30)
    blocks = [parse_block(b) for b in build_blocks(wire, block_size=64)]
    assert [b.number for b in blocks] == list(range(1, len(blocks) + 1))
    assert blocks[-1].last and not blocks[0].last and all(b.streaming for b in blocks)
    r = GbtReassembler()
    got = [m for b in blocks for m in r.push(b)]
    assert len(got) == 1 and got[0].payload == wire and len(got[0].blocks) == len(blocks)


def test_gbt_gaps_and_bad_lengths():
    blocks = [parse_block(b) for b in build_blocks(ciphered(30), block_size=64)]
    r = GbtReassembler()
    assert r.push(blocks[1]) == []
    (err, msg) = r.push(blocks[0]) + [x for b in blocks[1:] for x in r.push(b)]
    assert err.reason == "broken_blocks" and "without block 1" in err.message and msg.payload
    assert r.push(blocks[0]) == [] and r.push(blocks[2]) == []
    (err,) = [x for b in blocks[3:] for x in r.push(b)]
    assert err.reason == "broken_blocks" and "block 3 followed block 1" in err.message
    with pytest.raises(FramingError):
        parse_block(build_blocks(b"abc")[0][:-1])
    r = GbtReassembler()
    r.push(blocks[0])
    (err,) = r.flush()
    assert err.reason == "broken_blocks" and err.layer == "gbt"


@pytest.mark.parametrize("sc", [0x20, 0x30])
def test_gbt_over_hdlc_and_mbus_decode(sc):
    keys = Keys(ek=EK, ak=EK if sc & 0x10 else None)
    wire = protect(notification(40), keys=keys, system_title=ST, invocation_counter=3, security_control=sc)
    blocks = build_blocks(wire, block_size=100)
    over_hdlc = b"".join(build_frame((b"\xe6\xe7\x00" if i == 0 else b"") + b, dest=b"\xce\xff") for i, b in enumerate(blocks))
    over_mbus = b"".join(b"".join(mbus_frames(b, max_data=60)) for b in blocks)
    for data, transport in ((over_hdlc, "hdlc"), (over_mbus, "mbus")):
        d = StreamDecoder(keys)
        (item,) = ok(run(d, data, 13))
        assert d.transport == transport and item.gbt is not None and len(item.gbt.blocks) == len(blocks)
        assert item.notification.invoke_id_and_priority == 0x80000001 and item.wire == wire
        assert len(item.links) == len(blocks)


def test_gbt_block_missing_in_a_stream_is_reported_and_the_next_transfer_decodes():
    wire = ciphered(40)
    blocks = build_blocks(wire, block_size=100)
    frames = [build_frame(b, dest=b"\xce\xff") for b in blocks]
    stream = b"".join(frames[:1] + frames[2:]) + b"".join(frames)
    out = run(StreamDecoder(Keys(ek=EK)), stream)
    assert [x.reason for x in out if isinstance(x, DecodeError)] == ["broken_blocks"]
    assert len([x for x in out if not isinstance(x, DecodeError)]) == 1


# -- bare APDUs ------------------------------------------------------------------------------
def test_raw_stream_of_ciphered_apdus_with_noise():
    apdus = [ciphered(5 + i, ic=i) for i in range(3)]
    stream = b"\r\n" + apdus[0] + b"junk" + apdus[1] + apdus[2] + b"\x00"
    for chunk in (None, 1, 50):
        out = run(RawFramer(), stream, chunk)
        got = [x.apdu for x in out if isinstance(x, RawApdu)]
        assert got == apdus
        assert sum(getattr(x, "length", 0) for x in out if isinstance(x, NotAFrame)) == 2 + 4 + 1


def test_raw_stream_of_plain_notifications_is_delimited_by_parsing():
    apdus = [notification(3), notification(7)]
    out = run(RawFramer(), apdus[0] + apdus[1], 5)
    assert [x.apdu for x in out] == apdus


def test_raw_truncated_apdu_and_single_pasted_apdu():
    wire = ciphered(5)
    out = run(RawFramer(), wire + wire[:30])
    assert isinstance(out[0], RawApdu) and isinstance(out[1], TruncatedFrame)
    # a single pasted APDU that is a byte short goes to the APDU layer whole, which names the problem
    (err,) = run(StreamDecoder(Keys(ek=EK), transport="raw"), wire[:-1])
    assert err.layer == "security" and "truncated" in err.message
    # a byte too many is noise after a good APDU
    item, noise = run(StreamDecoder(Keys(ek=EK), transport="raw"), wire + b"\x00")
    assert item.notification is not None and isinstance(noise, NotAFrame)


# -- DSMR telegrams ---------------------------------------------------------------------------
TELEGRAM = b"/XYZ5\\2TEST\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(240315141545S)\r\n1-0:1.8.0(001234.567*kWh)\r\nbad line\r\n!"


def test_dsmr_telegram_crc():
    data = TELEGRAM + b"%04X\r\n" % crc16_arc(TELEGRAM)
    t = parse_telegram(data)
    assert t.crc_ok and t.header == "XYZ5\\2TEST"
    assert [(x.ident, x.values) for x in t.lines] == [
        ("1-3:0.2.8", ("50",)),
        ("0-0:1.0.0", ("240315141545S",)),
        ("1-0:1.8.0", ("001234.567*kWh",)),
        (None, ()),
    ]
    with pytest.raises(ApduError) as e:
        parse_telegram(TELEGRAM + b"0000\r\n")
    assert e.value.reason == "bad_checksum"
    assert parse_telegram(TELEGRAM + b"\r\n").crc is None
    with pytest.raises(ApduError):
        parse_telegram(TELEGRAM[:-1])
    assert crc16_arc(b"123456789") == 0xBB3D


def test_ciphered_dsmr_telegram_in_a_raw_stream():
    keys = Keys(ek=EK, ak=bytes(range(16, 32)))
    data = TELEGRAM + b"%04X\r\n" % crc16_arc(TELEGRAM)
    wire = protect(data, keys=keys, system_title=b"SAGgp\x00\x00\x01", invocation_counter=9)
    d = StreamDecoder(keys)
    (item,) = ok(run(d, wire + wire, 100)[:1])
    assert d.transport == "raw" and item.telegram is not None and item.notification is None and item.verified


# -- auto-detection ---------------------------------------------------------------------------
def test_auto_detects_each_transport_after_noise():
    wire = ciphered(20)
    cases = {
        "hdlc": b"".join(build_frames(wire, max_info=80)),
        "mbus": b"".join(mbus_frames(wire, max_data=90)),
        "raw": wire,
    }
    for transport, data in cases.items():
        d = StreamDecoder(Keys(ek=EK))
        out = run(d, b"boot v1.2 \x7e\x68\xdb\r\n" + data + b"\x00\x00" + data, 9)
        assert d.transport == transport
        assert len([x for x in out if not isinstance(x, DecodeError)]) == 2
        assert all(isinstance(x, NotAFrame) for x in out if isinstance(x, DecodeError))


def test_auto_reports_bad_checksums_when_every_frame_is_corrupted():
    """Wrong serial settings: every frame damaged.  The result must say "bad checksum", not "noise"."""
    frame = bytearray(build_frame(b"\xe6\xe7\x00" + ciphered(20)))
    frame[40] ^= 0x10
    d = StreamDecoder(Keys(ek=EK))
    out = run(d, bytes(frame) * 3)
    assert d.transport == "hdlc"
    assert [x.reason for x in out] == ["bad_checksum"] * 3


def test_auto_with_nothing_recognisable():
    d = StreamDecoder()
    (err,) = run(d, b"\xde\xad\xbe\xef")
    assert isinstance(err, NotAFrame) and err.length == 4 and "HDLC frame, M-Bus frame, P1 telegram or APDU" in err.message
    assert d.transport == "auto"


def test_forced_transport_ignores_the_others():
    wire = ciphered(20)
    out = run(StreamDecoder(Keys(ek=EK), transport="mbus"), build_frame(b"\xe6\xe7\x00" + wire))
    assert [type(x) for x in out] == [NotAFrame]
    out = run(StreamDecoder(Keys(ek=EK), transport="hdlc"), b"".join(mbus_frames(wire)))
    assert all(isinstance(x, DecodeError) for x in out)


def test_errors_carry_the_layers_that_decoded():
    wire = ciphered(20)
    (err,) = run(StreamDecoder(), b"".join(mbus_frames(wire, max_data=100)))
    assert err.reason == "no_key" and err.transport == "mbus"
    assert err.partial.ciphered.system_title == ST and len(err.partial.link.frames) == -(-len(wire) // 100)
    frame = bytearray(build_frame(b"\xe6\xe7\x00" + wire))
    frame[-5] ^= 1
    (err,) = run(StreamDecoder(Keys(ek=EK)), bytes(frame))
    assert isinstance(err, ChecksumError) and err.frame.fcs_ok is False and err.raw == bytes(frame[:-1])
    # a wrong key on an encryption-only frame: the plaintext does not parse, which points at the key
    (err,) = run(StreamDecoder(Keys(ek=bytes(16))), wire)
    assert err.reason == "wrong_key" and "wrong encryption key" in err.message


@pytest.mark.parametrize("damaged", [0, 2, -1])
def test_damaged_hdlc_segment_breaks_only_its_message(damaged):
    """A corrupted segment: its message is reported broken once (as a consequence), the next one decodes."""
    first = build_frames(ciphered(40, ic=1), max_info=90, dest=b"\xcf", src=b"\x02\x23")
    second = build_frames(ciphered(40, ic=2), max_info=90, dest=b"\xcf", src=b"\x02\x23")
    bad = bytearray(first[damaged])
    bad[20] ^= 0x01
    first[damaged] = bytes(bad)
    out = run(StreamDecoder(Keys(ek=EK)), b"".join(first + second), 31)
    errors = [x for x in out if isinstance(x, DecodeError)]
    decoded = [x for x in out if not isinstance(x, DecodeError)]
    assert [d.ciphered.invocation_counter for d in decoded] == [2]
    assert errors[0].reason == "bad_checksum"
    assert all(getattr(e, "consequence", False) for e in errors[1:])
    assert len(errors) == (1 if damaged == 0 and len(first) == 1 else 2)


def test_a_string_tag_as_the_last_byte_is_an_axdr_error():
    from decoders.xdlms.apdu import parse_data_notification

    with pytest.raises(DecodeError) as e:
        parse_data_notification(bytes.fromhex("0F0000000000020109"))
    assert e.value.layer == "a-xdr" and "truncated" in e.value.message


def test_auto_detection_is_not_settled_by_garbage_that_only_looks_like_a_frame():
    """Found by the fuzz tests: garbage before the first frame settled the link layer wrongly,
    and every HDLC push after it was lost."""
    from daemonkit import KEYS, START, simulator

    from han.pipeline import PushDecoder

    garbage = bytes.fromhex("68 03 03 68 53 FF 10 62 16")  # an M-Bus frame of C, A, CI alone, its 8-bit sum right
    sim = simulator(seed=5)
    frames = b"".join(sim.frame(START.replace(second=10 * i)) for i in range(3))
    pushes = [x for x in PushDecoder(KEYS).feed(garbage + frames) if not isinstance(x, Exception)]
    assert [p.security.invocation_counter for p in pushes] == [1000, 1001, 1002]
