"""The receive buffer the framers share: stream offsets, compaction, noise runs, absorbing, delimiter search."""

from __future__ import annotations

from hypothesis import given, strategies as st

from fuzzprofile import examples

from decoders.errors import NotAFrame
from decoders.link.hdlc import HdlcFramer
from decoders.link.mbus import MbusFramer
from decoders.link.raw import RawFramer
from decoders.link.receivebuffer import ALL, ReceiveBuffer


def buffer(cap: int = 64) -> ReceiveBuffer:
    return ReceiveBuffer("unit", "a hint", cap)


def test_offsets_survive_compaction():
    """Consuming moves the start; the prefix is deleted later, and stream offsets stay what they were."""
    rb = buffer()
    rb.append(b"abcdef")
    rb.consume(2)
    assert len(rb) == 4 and rb.data[rb.start] == ord("c") and rb.offset(rb.start) == 2
    rb.append(b"gh")  # 2 consumed of 6: not yet worth a copy
    assert rb.start == 2 and rb.offset(rb.start) == 2
    rb.consume(5)
    rb.append(b"ij")  # 5 consumed of 8: compacted
    assert rb.start == 0 and rb.data == b"fghij" and rb.offset(0) == 5
    rb.consume(len(rb.data))
    rb.append(b"k")  # all consumed: cleared
    assert rb.data == b"k" and rb.offset(0) == 10


def test_consumed_prefix_stays_bounded():
    """Byte by byte through a framer that keeps a small tail: the bytearray never grows past twice what it holds."""
    rb = buffer()
    for i in range(10_000):
        rb.append(b"x")
        rb.consume(max(rb.start, len(rb.data) - 3))
        assert len(rb) <= 3 and len(rb.data) <= 2 * 3 + 2
    assert rb.offset(rb.start) == 10_000 - 3


def test_noise_is_one_report_per_run():
    rb = buffer()
    rb.append(bytes(20))
    rb.skip(0, 3)
    rb.skip(3, 4)
    out: list = []
    rb.settle(out)
    (noise,) = out
    assert isinstance(noise, NotAFrame) and (noise.offset, noise.length) == (0, 7)
    assert noise.message == "7 byte(s) at offset 0 are not part of any unit (a hint)"
    rb.report_noise(out)  # nothing pending: nothing more
    assert len(out) == 1


def test_a_rejected_frame_absorbs_what_it_claimed():
    rb = buffer()
    rb.append(bytes(40))
    out: list = []
    rb.skip(0, 2)
    err = NotAFrame("bad frame")
    rb.reject(out, err, absorb=5)
    rb.skip(3, 8)  # 5 absorbed, 3 are noise from offset 8
    rb.settle(out)
    rb.reject(out, err)  # ALL: everything up to the next good frame
    rb.skip(20, 10)
    rb.settle(out)  # a good frame ends the absorbing
    rb.skip(30, 1)
    rb.end(out)
    assert [(x.offset, x.length) if x is not err else "err" for x in out] == [(0, 2), "err", (8, 3), "err", (30, 1)]
    assert ALL > 1 << 40


def test_end_keeps_counting_the_stream():
    rb = buffer()
    rb.append(b"12345")
    rb.consume(2)
    out: list = []
    rb.skip(2, 3)
    rb.end(out)
    assert out[0].offset == 2 and len(rb) == 0
    rb.append(b"z")
    assert rb.offset(rb.start) == 5


class Telegrams:
    """A delimiter framer as a P1 text framer would be: ``/`` ... ``!`` + 4 hex digits + CRLF (no CRC check)."""

    def __init__(self, cap: int = 64) -> None:
        self.rb = ReceiveBuffer("telegram", "noise", cap)

    def feed(self, data: bytes) -> list:
        rb = self.rb
        rb.append(data)
        out: list = []
        while True:
            p = rb.find(b"/")
            if p == -1:
                rb.skip(rb.start, len(rb))
                rb.consume(len(rb.data))
                break
            if p > rb.start:
                rb.skip(rb.start, p - rb.start)
                rb.consume(p)
            e = rb.search(b"!", p)
            if e == -1 or e + 7 > len(rb.data):
                if rb.full(p):  # no end within the cap: the start was noise
                    rb.skip(p, 1)
                    rb.consume(p + 1)
                    continue
                break
            rb.settle(out)
            out.append((rb.offset(p), rb.take(p, e + 7)))
        return out

    def flush(self) -> list:
        out: list = []
        self.rb.skip(self.rb.start, len(self.rb))
        self.rb.end(out)
        return out


TELEGRAMS = b"xx/ISK5\r\n!ABCD\r\n" + b"noise" + b"/KFM5\r\n1-0:1.8.0(1)\r\n!0000\r\n" + b"/cut"


def run(data: bytes, chunks: list[int]) -> list:
    t = Telegrams()
    out, i = [], 0
    for n in chunks:
        out += t.feed(data[i : i + n])
        i += n
    out += t.feed(data[i:]) + t.flush()
    return [(x.offset, x.length) if isinstance(x, NotAFrame) else x for x in out]


def test_delimiter_framer_finds_telegrams():
    assert run(TELEGRAMS, []) == [
        (0, 2),
        (2, b"/ISK5\r\n!ABCD\r\n"),
        (16, 5),
        (21, b"/KFM5\r\n1-0:1.8.0(1)\r\n!0000\r\n"),
        (49, 4),
    ]


@given(st.lists(st.integers(min_value=1, max_value=9), max_size=40))
@examples(200)
def test_delimiter_framer_is_chunking_invariant(chunks):
    assert run(TELEGRAMS, chunks) == run(TELEGRAMS, [])


def test_search_does_not_rescan():
    """Waiting for a delimiter byte by byte: each search starts where the last one stopped."""
    rb = buffer(cap=1 << 20)
    rb.append(b"/")
    searched = []
    for _ in range(1000):
        rb.append(b"a")
        assert rb.search(b"\r\n", 0) == -1
        searched.append(rb._searched)
    assert searched == list(range(1, 1001))  # one new byte (less the needle's length) each time
    rb.append(b"\r\n")
    assert rb.search(b"\r\n", 0) == 1001
    rb.append(b"more")
    assert rb.search(b"\r\n", 0) == 1001 and rb._searched == 1001  # found: asked again, not searched again (stream offsets; base is 0)


def test_full_gives_up_at_the_cap():
    t = Telegrams(cap=16)
    out = t.feed(b"/" + b"a" * 40) + t.flush()
    assert [(x.offset, x.length) for x in out] == [(0, 41)]
    assert len(t.rb) == 0


@given(st.binary(max_size=600), st.integers(min_value=1, max_value=64))
@examples(100)
def test_framers_hold_what_their_buffer_holds(data, chunk):
    """Each framer's ``buffered`` is its receive buffer's unconsumed bytes, under the cap plus one chunk."""
    for make in (HdlcFramer, MbusFramer, RawFramer):
        f = make()
        for i in range(0, len(data), chunk):
            f.feed(data[i : i + chunk])
            assert f.buffered == len(f._rb) < f._rb.cap + chunk
        f.flush()
        assert f.buffered == 0
