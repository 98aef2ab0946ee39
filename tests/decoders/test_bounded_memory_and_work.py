"""Bounded memory and linear work on hostile input: declared lengths, long garbage, framer buffers.

Memory is measured with :mod:`tracemalloc` (peak bytes allocated while one
call runs): a tiny input that declares a huge length must be refused before
anything of that size is allocated.

Work is measured without a clock (the project's rule: numbers come from
``benchmarks/``, tests never assert on time): :func:`work` counts the
Python-level and C-level calls a decoder makes (``sys.setprofile``), which
is deterministic.  Feeding garbage of N and 4N bytes must cost about four
times as much, not sixteen: the ratio is asserted to stay below 6.  Each
framer gets the garbage that is worst for it: its own start byte
everywhere, headers that pass the header checks and fail the frame check,
lengths that reach past the data.  ``benchmarks/garbage.py`` gives the
same cases in MB/s.
"""

from __future__ import annotations

import sys
import tracemalloc

import pytest
from hypothesis import given, strategies as st

from fuzzprofile import documented, examples

from decoders.association import acse as association, ber
from decoders.xdlms import axdr
from decoders.ciphering import general_ciphering
from decoders.link import hdlc
from decoders.xdlms.apdu import parse_data_notification
from decoders.link.crc import fcs_bytes
from decoders.errors import DecodeError
from decoders.link.gbt import GbtReassembler, parse_block
from decoders.link.hdlc import HdlcFramer, HdlcReassembler
from decoders.link.mbus import MbusFramer
from decoders.link.p1 import MAX_TELEGRAM, P1Framer
from decoders.link.raw import RawFramer
from decoders.ciphering.security import Keys, parse_ciphered
from decoders.stream import StreamDecoder
from han.pipeline import PushDecoder


# -- memory ----------------------------------------------------------------------------------------
def peak(call, *args) -> tuple[int, object]:
    """Peak bytes allocated while ``call(*args)`` runs, and its result (or the DecodeError it raised)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        result = documented(call, *args)
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


HUGE_DECLARATIONS = {
    # A-XDR: array / structure counts, string and bit-string lengths
    "array count 0x84FFFFFFFF": (axdr.decode, bytes.fromhex("0184FFFFFFFF00")),
    "structure count 2**31": (axdr.decode, bytes.fromhex("028480000000") + bytes(10)),
    "nested arrays 0x82FFFF": (axdr.decode, bytes.fromhex("0182FFFF" * 8) + bytes(4)),
    "octet-string 0x84FFFFFFFF": (axdr.decode, bytes.fromhex("0984FFFFFFFF41")),
    "visible-string 0x84FFFFFFFF": (axdr.decode, bytes.fromhex("0A84FFFFFFFF41")),
    "bit-string 0x84FFFFFFFF bits": (axdr.decode, bytes.fromhex("0484FFFFFFFF00")),
    "compact-array contents 0x84FFFFFFFF": (axdr.decode, bytes.fromhex("131184FFFFFFFF01")),
    "compact-array structure of 2**32 members": (axdr.decode, bytes.fromhex("130284FFFFFFFF111111")),
    # regression: 2**32 null-data elements from 9 bytes (an array of arrays of zero-size elements)
    "compact-array 65535 x 65535 nulls": (axdr.decode, bytes.fromhex("1301FFFF01FFFF000100")),
    "compact-array of empty structures": (axdr.decode, bytes.fromhex("1301FFFF0200" + "0100")),
    "annotate: array count 0x84FFFFFFFF": (axdr.annotate, bytes.fromhex("0184FFFFFFFF00")),
    "annotate: compact-array of nulls": (axdr.annotate, bytes.fromhex("1301FFFF01FFFF000100")),
    # APDU, security header, block transfer
    "data-notification body count": (parse_data_notification, bytes.fromhex("0F0000000100 0184FFFFFFFF")),
    "ciphered length 0x84FFFFFFFF": (parse_ciphered, bytes.fromhex("DB08") + bytes(8) + bytes.fromhex("84FFFFFFFF30")),
    "service ciphered length": (parse_ciphered, bytes.fromhex("C884FFFFFFFF30000000")),
    "GBT block length": (parse_block, bytes.fromhex("E0C00001000084FFFFFFFF00")),
    # BER (ACSE) lengths, general-ciphering octet strings
    "AARE length": (association.parse_aare, bytes.fromhex("6184FFFFFFFFA109")),
    "AARQ element length": (association.parse_aarq, bytes.fromhex("6108A184FFFFFFFF0607")),
    "user-information length": (association.UserInformation.parse, bytes.fromhex("0484FFFFFFFF08")),
    "general-ciphering transaction id": (general_ciphering.parse_general_ciphering, bytes.fromhex("DD84FFFFFFFF00")),
    "BER length construct": (ber.TlvList.parse, bytes.fromhex("A184FFFFFFFF00")),
}


@pytest.mark.parametrize("name", sorted(HUGE_DECLARATIONS))
def test_huge_declared_length_allocates_nothing_big(name):
    """A few bytes that declare gigabytes: refused (a DecodeError, or construct's error for the raw layouts) with < 64 KiB allocated."""
    call, data = HUGE_DECLARATIONS[name]
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        try:
            result = call(data)
        except DecodeError as exc:
            result = exc
        except Exception as exc:  # noqa: BLE001 - only the bare construct layouts may raise construct's own errors
            assert call == ber.TlvList.parse and type(exc).__module__.startswith("construct"), repr(exc)
            result = exc
        used = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(result, Exception), f"{name}: decoded to {result!r}"
    assert used < 64 * 1024, f"{name}: {used} bytes allocated"


@given(st.binary(max_size=64))
@examples(100)
def test_small_input_small_memory(data):
    """Any 64 bytes through the A-XDR decoder and the APDU parsers: never more than 256 KiB."""
    for call, buf in ((axdr.decode_at, data), (parse_data_notification, b"\x0f\x00\x00\x00\x01\x00" + data)):
        used, _ = peak(call, buf)
        assert used < 256 * 1024, (data.hex(), used)


# -- framer buffers after megabytes of garbage ---------------------------------------------------------
def _hcs_good_headers(period: int = 16) -> bytes:
    """HDLC headers with a good HCS claiming 2047 bytes, every ``period`` bytes: the FCS never checks."""
    head = bytes.fromhex("A7FF") + b"\x41\x03\x13"
    unit = b"\x7e" + head + fcs_bytes(head)
    return unit + bytes(period - len(unit))


GARBAGE = {
    "random": bytes((i * 1103515245 + 12345) >> 16 & 0xFF for i in range(65536)),
    "all 7E": b"\x7e" * 65536,
    "all 68": b"\x68" * 65536,
    "7E A0 FF": b"\x7e\xa0\xff" * 21846,
    "7E A7 FF + 0x00": (b"\x7e\xa7\xff" + bytes(13)) * 4096,
    "HDLC headers, good HCS, bad FCS": _hcs_good_headers() * 4096,
    "68 FF FF 68": b"\x68\xff\xff\x68" * 16384,
    "68 L L 68 C A CI": (b"\x68\x10\x10\x68\x53\xff\x10" + bytes(9)) * 4096,
    "DB 08 long length": (b"\xdb\x08" + bytes(8) + b"\x82\x3f\xff\x30") * 4096,
    "0F notification headers": (b"\x0f\x00\x00\x00\x01\x00\x01\x82\x3f\xff" + bytes(6)) * 4096,
    "0F structure of integers": b"\x0f\x00\x00\x00\x01\x00\x02\x82\x3f\xff" + b"\x0f\x00" * 32768,
    # P1: telegrams whose '!' never comes, a flood of '/' headers, telegrams whose CRC never checks
    "P1 objects without an end": b"/ISK5\\2M550T-1012\r\n\r\n" + b"1-0:1.8.1(000001.000*kWh)\r\n" * 2500,
    "P1 headers": b"/ABC5" * 13108,
    "P1 telegrams, bad CRC": b"/ABC5 x\r\n\r\n1-0:1.7.0(00.123*kW)\r\n!0000\r\n" * 1600,
}

FRAMERS = {"hdlc": HdlcFramer, "mbus": MbusFramer, "raw": RawFramer, "p1": P1Framer}


@pytest.mark.parametrize("kind", sorted(FRAMERS))
def test_framer_buffer_stays_bounded(kind):
    """After megabytes of every kind of garbage, a framer holds at most one candidate frame plus a chunk."""
    framer = FRAMERS[kind]()
    limit = {"hdlc": hdlc.MAX_FRAME, "mbus": 517, "raw": 16 * 1024, "p1": MAX_TELEGRAM}[kind] + 4096
    for name, g in GARBAGE.items():
        for i in range(0, len(g), 4096):
            framer.feed(g[i : i + 4096])
            assert framer.buffered <= limit, (name, framer.buffered)


def test_stream_decoder_pending_bytes_bounded_in_auto_mode():
    """Auto-detection settles after DETECT_LIMIT bytes of garbage, so what it holds stays bounded too."""
    for g in GARBAGE.values():
        dec = StreamDecoder(transport="auto")
        for i in range(0, len(g), 4096):
            dec.feed(g[i : i + 4096])
        assert len(dec._pending) <= 8192 and (dec._framer is None or dec._framer.buffered <= 16 * 1024 + 4096)


def test_reassemblers_bounded():
    """Segments / blocks that never end: the reassemblers drop the message at their cap."""
    r = HdlcReassembler(max_message=10_000)
    frame = next(x for x in HdlcFramer().feed(hdlc.build_frame(bytes(1000), segmented=True)))
    for _ in range(50):
        r.push(frame)
    assert r.pending * 1000 <= 10_000
    g = GbtReassembler(max_message=10_000)
    for n in range(1, 50):
        g.push(parse_block(b"\xe0\x40" + n.to_bytes(2, "big") + b"\x00\x00\x82\x03\xe8" + bytes(1000)))
    assert g.pending * 1000 <= 10_000


# -- linear work on long garbage --------------------------------------------------------------------------
def work(make, data: bytes, chunk: int) -> int:
    """Calls (Python functions and C functions) made feeding ``data`` in ``chunk``-byte pieces, then flushing."""
    dec = make()
    calls = 0

    def count(_frame, event, _arg):
        nonlocal calls
        if event == "call" or event == "c_call":
            calls += 1

    sys.setprofile(count)
    try:
        for i in range(0, len(data), chunk):
            dec.feed(data[i : i + chunk])
        dec.flush()
    finally:
        sys.setprofile(None)
    return calls


DECODERS = {
    "hdlc": lambda: HdlcFramer(),
    "mbus": lambda: MbusFramer(),
    "raw": lambda: RawFramer(),
    "p1": lambda: P1Framer(),
    "auto": lambda: StreamDecoder(transport="auto"),
    "pipeline": lambda: PushDecoder(Keys(ek=bytes(16), ak=bytes(16)), transport="auto"),
}


@pytest.mark.parametrize("kind", sorted(DECODERS))
@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_work_grows_linearly_with_garbage(kind, name):
    """Garbage of 4N bytes costs about 4 times the calls of N bytes (quadratic would be 16), in 1 KiB chunks."""
    g = GARBAGE[name]
    small, big = g[: len(g) // 4], g
    a = work(DECODERS[kind], small, 1024)
    b = work(DECODERS[kind], big, 1024)
    assert b <= 6 * max(a, 1), f"{kind} on {name!r}: {a} calls for {len(small)} bytes, {b} for {len(big)}"


SMALL_CHUNK_CASES = {
    # kind: (the garbage worst for it, N) -- N past the framer's window: below it, a candidate that waits
    # for its claimed length is re-examined with every chunk, work bounded by the window (2 KiB HDLC,
    # 517 bytes M-Bus, 16 KiB raw) and done once per candidate, so the growth is linear only beyond it
    "hdlc": ("HDLC headers, good HCS, bad FCS", 4096),
    "mbus": ("68 FF FF 68", 4096),
    "raw": ("0F notification headers", 32768),
    "p1": ("P1 objects without an end", 4 * MAX_TELEGRAM),
}


@pytest.mark.parametrize("kind", sorted(SMALL_CHUNK_CASES))
def test_work_linear_in_small_chunks(kind):
    """A serial port hands over a few bytes at a time: 16-byte chunks must not make the work quadratic."""
    name, n = SMALL_CHUNK_CASES[kind]
    g = (GARBAGE[name] * 2)[: 4 * n]
    a = work(DECODERS[kind], g[:n], 16)
    b = work(DECODERS[kind], g, 16)
    assert b <= 6 * max(a, 1), f"{kind} on {name!r}: {a} calls, then {b}"


def test_raw_framer_gives_up_malformed_candidates_at_once():
    """Regression: a 0F candidate whose A-XDR is malformed (not short) was re-decoded with every chunk.

    ``0F`` + invoke id + ``00`` + an array whose elements nest past the depth limit can never become
    a notification, whatever follows; the framer used to wait for 16 KiB and decode it again each time.
    """
    bad = b"\x0f\x00\x00\x00\x01\x00" + b"\x01\x01" * 20  # 20 nested arrays: deeper than MAX_DEPTH
    framer = RawFramer()
    assert framer.feed(bad) == []
    assert framer.buffered == 0  # given up as noise at once, not held for more bytes
    assert axdr.MAX_DEPTH < 20
