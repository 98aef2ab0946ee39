"""HDLC framing: length-delimited, any chunking, resynchronisation, bounded buffer."""

from __future__ import annotations

import os
import random

import pytest

from decoders.link.crc import crc16_x25, fcs_bytes
from decoders.errors import ChecksumError, FramingError, NotAFrame, TruncatedFrame
from decoders.link.hdlc import HdlcFrame, HdlcFramer, HdlcReassembler, build_frame, build_frames


def frames_of(items):
    return [x for x in items if isinstance(x, HdlcFrame)]


def errors_of(items):
    return [x for x in items if isinstance(x, FramingError)]


def feed_all(data: bytes, chunk: int | None = None):
    f = HdlcFramer()
    out = []
    if chunk is None:
        out += f.feed(data)
    else:
        for i in range(0, len(data), chunk):
            out += f.feed(data[i : i + chunk])
    return out + f.flush()


def test_crc16_x25_check_value():
    assert crc16_x25(b"123456789") == 0x906E
    assert fcs_bytes(b"123456789") == b"\x6e\x90"


def test_seed_frame(seed_frame):
    out = feed_all(seed_frame)
    (frame,) = out
    assert frame.format == 0xA1E9 and frame.length == 489
    assert frame.dest == b"\x41" and frame.src == b"\x03" and frame.control == 0x13
    assert frame.info[:3] == b"\xe6\xe7\x00" and frame.info[3] == 0xDB
    assert b"\x7e" in frame.info  # 0x7E inside the ciphertext is not a delimiter


@pytest.mark.parametrize(
    "dest,src", [(b"\x41", b"\x03"), (b"\xce\xff", b"\x03"), (b"\x41", b"\x02\x23"), (b"\x00\x02\x00\x23", b"\x02\x05")]
)
@pytest.mark.parametrize("control", [0x13, 0x03, 0x10])
def test_addresses_and_controls(dest, src, control):
    info = b"\xe6\xe7\x00" + bytes(range(256)) * 2
    out = feed_all(build_frame(info, dest=dest, src=src, control=control))
    (frame,) = out
    assert (frame.dest, frame.src, frame.control, frame.info) == (dest, src, control, info)


def test_every_chunk_boundary(seed_frame):
    data = seed_frame + build_frame(b"\xe6\xe7\x00\x0f" + b"\x7e" * 20) + seed_frame
    expected = [f.info for f in frames_of(feed_all(data))]
    assert len(expected) == 3
    for cut in range(1, len(data)):
        f = HdlcFramer()
        out = f.feed(data[:cut]) + f.feed(data[cut:]) + f.flush()
        assert [x.info for x in frames_of(out)] == expected, cut
        assert not errors_of(out), cut


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 500])
def test_chunk_sizes(seed_frame, chunk):
    out = feed_all(seed_frame * 4, chunk)
    assert len(frames_of(out)) == 4 and not errors_of(out)


def test_shared_and_doubled_flags(seed_frame):
    shared = seed_frame + seed_frame[1:]  # closing flag of one is the opening flag of the next
    doubled = seed_frame + seed_frame
    assert len(frames_of(feed_all(shared))) == 2
    assert len(frames_of(feed_all(doubled))) == 2
    assert not errors_of(feed_all(shared)) and not errors_of(feed_all(doubled))


def test_missing_closing_flag_at_end(seed_frame):
    assert len(frames_of(feed_all(seed_frame[:-1]))) == 1


def test_garbage_before_between_after(seed_frame):
    noise = b"DEBUG: hello ~~ world\r\n" + bytes([0x7E, 0xA0, 0x01])
    out = feed_all(noise + seed_frame + noise + seed_frame + noise)
    assert len(frames_of(out)) == 2
    errs = errors_of(out)
    assert errs and all(isinstance(e, (NotAFrame, FramingError)) for e in errs)


def test_bad_fcs_then_good_frame(seed_frame):
    bad = bytearray(seed_frame)
    bad[100] ^= 0x01
    out = feed_all(bytes(bad) + seed_frame)
    assert len(frames_of(out)) == 1
    errs = errors_of(out)
    assert len(errs) == 1 and isinstance(errs[0], ChecksumError) and "FCS" in errs[0].message


def test_bad_hcs(seed_frame):
    bad = bytearray(seed_frame)
    bad[4] ^= 0x40  # the source address
    out = feed_all(bytes(bad) + seed_frame)
    assert len(frames_of(out)) == 1
    assert isinstance(errors_of(out)[0], ChecksumError) and "HCS" in errors_of(out)[0].message


def test_truncated_frame_followed_by_good_frame(seed_frame):
    out = feed_all(seed_frame[:200] + seed_frame)
    assert len(frames_of(out)) == 1
    errs = errors_of(out)
    assert len(errs) == 1 and isinstance(errs[0], TruncatedFrame)


def test_truncated_frame_does_not_hold_back_a_short_next_frame(seed_frame):
    short = build_frame(b"\xe6\xe7\x00\x0f\x00\x00\x00\x00\x00\x00")
    f = HdlcFramer()
    out = f.feed(seed_frame[:300]) + f.feed(short)  # no flush: the short frame must come out now
    assert [x.info for x in frames_of(out)] == [b"\xe6\xe7\x00\x0f\x00\x00\x00\x00\x00\x00"]
    assert isinstance(errors_of(out)[0], TruncatedFrame)


def test_truncated_at_end_of_input(seed_frame):
    out = feed_all(seed_frame[:-30])
    assert not frames_of(out) and isinstance(errors_of(out)[0], TruncatedFrame)


def test_random_bytes_never_raise():
    rng = random.Random(7)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        for item in feed_all(data, chunk=rng.randrange(1, 50)):
            assert isinstance(item, (HdlcFrame, FramingError))


def test_buffer_is_bounded(seed_frame):
    f = HdlcFramer()
    noise = os.urandom(10_000).replace(b"\x7e", b"\x00")
    for _ in range(20):
        f.feed(noise)
        assert f.buffered <= 2049
    f.feed(seed_frame[:300])
    assert f.buffered <= 2049
    # a frame header claiming the maximum length, then endless noise
    f.feed(b"\x7e\xa7\xff\x41\x03\x13" + noise)
    assert f.buffered <= 2049 + len(noise)
    for _ in range(5):
        f.feed(noise)
        assert f.buffered <= 2049 + len(noise)


def test_frame_without_information_field():
    frame = build_frame(b"", dest=b"\x03", src=b"\x41", control=0x93)  # SNRM
    (out,) = feed_all(frame)
    assert out.info == b"" and out.control == 0x93 and not out.carries_data


def test_segmented_reassembly_and_llc():
    apdu = b"\x0f" + bytes(range(256)) * 3
    frames = build_frames(apdu, dest=b"\xcf", src=b"\x02\x23", max_info=100)
    assert len(frames) > 5
    r = HdlcReassembler()
    msgs = [m for f in frames_of(feed_all(b"".join(frames))) for m in r.push(f)]
    assert len(msgs) == 1
    assert msgs[0].payload == apdu and msgs[0].llc == b"\xe6\xe7\x00" and len(msgs[0].frames) == len(frames)
    assert all(fr.segmented for fr in msgs[0].frames[:-1]) and not msgs[0].frames[-1].segmented


def test_llc_command_variant_and_absent():
    r = HdlcReassembler()
    (f1,) = feed_all(build_frame(b"\xe6\xe6\x00\x0f\x01"))
    assert r.push(f1)[0].payload == b"\x0f\x01"
    (f2,) = feed_all(build_frame(b"\x0f\x01"))
    (msg,) = r.push(f2)
    assert msg.payload == b"\x0f\x01" and msg.llc is None


def test_interrupted_segments_are_reported():
    seg = build_frames(b"\x0f" + bytes(300), max_info=100)
    other = build_frame(b"\xe6\xe7\x00\x0f", src=b"\x05")
    r = HdlcReassembler()
    results = [r.push(f) for f in frames_of(feed_all(seg[0] + other))]
    # another address is handled on its own: the pending message stays, the other frame is a message
    assert results[0] == [] and results[1][0].payload == b"\x0f" and r.pending == 1
    assert HdlcReassembler().flush() == []
    r2 = HdlcReassembler()
    r2.push(frames_of(feed_all(seg[0]))[0])
    (err,) = r2.flush()
    assert isinstance(err, FramingError) and err.layer == "hdlc" and err.cause == "incomplete"
