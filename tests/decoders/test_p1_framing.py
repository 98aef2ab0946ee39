"""The P1 telegram framer: telegrams out of noise, torn telegrams and bad CRCs, in any chunking,
with a bounded buffer; fuzzed like the other framers."""

from __future__ import annotations

from hypothesis import given, strategies as st

from fuzzprofile import chunked, examples, feed_all

from decoders.errors import ChecksumError, FramingError, NotAFrame, TruncatedFrame
from decoders.link.crc import ROW_BYTES, crc16_arc
from decoders.link.p1 import MAX_TELEGRAM, P1Framer, P1Telegram


def telegram(n: int, crc: bool = True) -> bytes:
    body = (
        b"/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(240101120000W)\r\n"
        + b"1-0:1.8.1(%010.3f*kWh)\r\n" % (1000 + n / 1000)
        + b"0-1:24.2.1(240101115500W)(00123.456*m3)\r\n!"
    )
    return body + (b"%04X\r\n" % crc16_arc(body) if crc else b"\r\n")


def kinds(out) -> list:
    return [(type(x).__name__, x.offset) for x in out]


def _crc_16_arc_bitwise(data: bytes) -> int:
    """The catalogue definition, one bit at a time: reflected 0xA001, init 0, no final XOR."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xA001 if crc & 1 else 0)
    return crc


def test_crc_16_arc():
    assert crc16_arc(b"123456789") == 0xBB3D  # the catalogue check value
    assert crc16_arc(b"12345678") == crc16_arc(memoryview(b"12345678"))


@given(st.binary(max_size=64) | st.sampled_from([ROW_BYTES - 1, ROW_BYTES, ROW_BYTES + 1, ROW_BYTES + 2, 2 * ROW_BYTES + 1]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)))  # fmt: skip
@examples(40)
def test_crc_16_arc_matches_the_bitwise_definition(data):
    """Short messages, and those around the length one mask covers (longer ones are taken in pieces)."""
    assert crc16_arc(data) == _crc_16_arc_bitwise(data)


def test_noise_torn_and_bad_crc_each_cost_only_themselves():
    a, b, c = telegram(1), telegram(2), telegram(3)
    bad = b[:40] + b"9" + b[41:]
    wire = b"noise" + a + b[:60] + c + bad + telegram(4)
    out = feed_all(P1Framer(), [wire])
    assert [type(x) for x in out] == [NotAFrame, P1Telegram, TruncatedFrame, P1Telegram, ChecksumError, P1Telegram]
    assert [x.raw for x in out if isinstance(x, P1Telegram)] == [a, c, telegram(4)]
    torn, crc = out[2], out[4]
    assert "new telegram starts before its '!'" in str(torn) and "\n" not in torn.one_line()
    assert "CRC" in str(crc) and "no values" in str(crc) and crc.reason == "bad_checksum"


def test_cut_by_the_end_of_input():
    out = feed_all(P1Framer(), [telegram(1) + telegram(2)[:80]])
    assert [type(x) for x in out] == [P1Telegram, TruncatedFrame]
    assert "no '!' end line" in str(out[1])


def test_telegram_without_crc_after_ones_with_crc_is_refused():
    """DSMR 2.2/3 send none; a meter that sent CRCs lost this one's end line."""
    out = feed_all(P1Framer(), [telegram(1, crc=False) + telegram(2, crc=False)])
    assert [type(x) for x in out] == [P1Telegram, P1Telegram] and out[0].crc is None
    out = feed_all(P1Framer(), [telegram(1) + telegram(2, crc=False)])
    assert [type(x) for x in out] == [P1Telegram, TruncatedFrame]


def test_bounded_buffer():
    f = P1Framer()
    out = f.feed(b"/ABC5")
    for _ in range(100):
        out += f.feed(b"x" * 1000)
        assert f.buffered < MAX_TELEGRAM + 1000
    out += f.feed(telegram(1)) + f.flush()
    assert [type(x) for x in out][-1] is P1Telegram
    assert any(isinstance(x, TruncatedFrame) for x in out)


def test_same_result_in_any_chunking():
    wire = b"xx" + telegram(1) + telegram(2)[:50] + telegram(3) + b"/ABC" + telegram(4)
    whole = feed_all(P1Framer(), [wire])
    for size in (1, 2, 7, 64):
        assert kinds(feed_all(P1Framer(), [wire[i : i + size] for i in range(0, len(wire), size)])) == kinds(whole)


_pieces = st.one_of(
    st.binary(max_size=20),
    st.sampled_from([b"/", b"!", b"\r\n", b"/ISK5", b"!ABCD\r\n", b"!\r\n", b"(1)", b"1-0:1.8.0(", b")(", b"\n/"]),
    st.integers(0, 20).map(telegram),
    st.integers(0, 20).map(lambda n: telegram(n)[: n * 7]),
)
p1_garbage = st.lists(_pieces, max_size=20).map(b"".join)
cuts = st.lists(st.integers(0, 10_000), max_size=12)


@given(p1_garbage, cuts)
@examples(300)
def test_p1_framer_any_bytes_any_chunking(data, cut):
    whole = feed_all(P1Framer(), [data])
    parts = feed_all(P1Framer(), chunked(data, cut))
    for x in whole + parts:
        assert isinstance(x, (P1Telegram, FramingError))
        if isinstance(x, FramingError):
            assert "\n" not in x.one_line()
    assert [x.raw for x in whole if isinstance(x, P1Telegram)] == [x.raw for x in parts if isinstance(x, P1Telegram)]
    assert kinds(whole) == kinds(parts)
    for x in whole:
        if isinstance(x, P1Telegram) and x.crc is not None:
            bang = x.raw.rindex(b"!")
            assert crc16_arc(x.raw[: bang + 1]) == x.crc


@given(st.lists(st.integers(0, 50), min_size=1, max_size=6), st.binary(max_size=30), cuts)
@examples(200)
def test_valid_telegrams_survive_garbage_between(ns, junk, cut):
    junk = junk.replace(b"/", b"")
    wire = b"".join(junk + telegram(n) for n in ns)
    out = feed_all(P1Framer(), chunked(wire, cut))
    assert [x.raw for x in out if isinstance(x, P1Telegram)] == [telegram(n) for n in ns]
