"""The edge bridge's splitter: a stream cut into whole frames and unframed runs, every byte once, any chunking."""

from __future__ import annotations

from datetime import timedelta

import pytest
from daemonkit import START, simulator

from decoders.link import mbus
from decoders.link.split import MAX_UNFRAMED, FrameSplitter


def split(stream: bytes, chunk: int, transport: str = "auto") -> list:
    s = FrameSplitter(transport)
    out = []
    for i in range(0, len(stream), chunk):
        out += s.feed(stream[i : i + chunk])
    out += s.flush()
    assert s.held == 0
    return out


def hdlc_frames(n: int) -> list[bytes]:
    sim = simulator(seed=7)
    return [sim.frame(START + timedelta(seconds=10 * i)) for i in range(n)]


@pytest.mark.parametrize("chunk", [1, 3, 64, 491, 100_000])
def test_hdlc_frames_whole_noise_between_them_once_in_order(chunk):
    fs = hdlc_frames(4)
    # a shared flag (frame 2's closing flag is frame 3's opening flag), noise, a torn frame at the end
    stream = fs[0] + fs[1][:-1] + fs[2] + b"\x00\xff" + fs[3] + fs[0][:50]
    pieces = split(stream, chunk)
    assert [(p.kind, p.data) for p in pieces] == [
        ("hdlc", fs[0]), ("hdlc", fs[1]), ("hdlc", fs[2]), ("", b"\x00\xff"), ("hdlc", fs[3]), ("", fs[0][:50]),
    ]
    assert [p.offset for p in pieces][:3] == [0, len(fs[0]), 2 * len(fs[0]) - 1]


def test_a_frame_with_a_bad_checksum_goes_out_unframed_for_the_receiver_to_report():
    fs = hdlc_frames(3)
    bad = bytearray(fs[1])
    bad[100] ^= 0x01
    pieces = split(fs[0] + bytes(bad) + fs[2], 50)
    assert [p.kind for p in pieces] == ["hdlc", "", "hdlc"]
    assert pieces[1].data == bytes(bad)


def test_mbus_frames_and_forced_transport():
    apdu = bytes.fromhex("0F00000001") + bytes(range(200)) * 2
    fs = mbus.build_frames(apdu, max_data=200)
    stream = b"\x01\x02" + b"".join(fs)
    for transport in ("auto", "mbus"):
        pieces = split(stream, 17, transport)
        assert [(p.kind, p.data) for p in pieces] == [("", b"\x01\x02")] + [("mbus", f) for f in fs]


def test_noise_alone_goes_out_in_bounded_pieces():
    noise = bytes(range(256)) * 40  # no frame in it
    s = FrameSplitter()
    out = []
    for i in range(0, len(noise), 100):
        out += s.feed(noise[i : i + 100])
        assert s.held <= 2 * MAX_UNFRAMED + 100
    out += s.flush()
    assert b"".join(p.data for p in out) == noise and not any(p.framed for p in out)
    assert max(len(p.data) for p in out) <= MAX_UNFRAMED


def test_unknown_transport_is_refused():
    with pytest.raises(ValueError):
        FrameSplitter("p2")
