"""A damaged segment costs only its own push: the segment-loss harness (issue 12, section 1).

For every segmented capture of ``../shared/vectors`` (read at test time) and
for pushes built here in each link layer, every segment of a push is in turn
dropped, cut short, or given one flipped bit (nothing recomputed: the flip
must fail a checksum), and two complete pushes follow.  Both must decode,
and the damaged push must be reported exactly once: one report of its
layer (``hdlc``, ``mbus`` or ``gbt``) saying why and that the push is lost,
and nothing counted twice.  Pushes from two addresses interleaved segment by
segment must both decode.
"""

from __future__ import annotations

import pytest

from conftest import load_vectors
from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification
from decoders.xdlms.axdr import Data
from decoders.errors import BrokenMessage, DecodeError
from decoders.link.gbt import build_blocks
from decoders.link.hdlc import LLC_RESPONSE, HdlcFrame, HdlcFramer, build_frame, build_frames
from decoders.link.mbus import MbusFrame, MbusFramer, build_frames as mbus_frames
from decoders.ciphering.security import Keys, protect
from decoders.stream import DecodedApdu, StreamDecoder
from han.summary import Summary
from vectorcheck import keys_of

EK = bytes.fromhex("9E2B7C41D05A8F3316C4E7092BB15D6A")
AK = bytes.fromhex("4F81A3C62D97E05B1A3C8E6F7402D9B5")
ST = b"ISKgu\x00\x00\x07"
KEYS = Keys(ek=EK, ak=AK)


# -- pushes built here ---------------------------------------------------------------------------------
def notification(ic: int, n: int = 24) -> bytes:
    """A plain data-notification of ``n`` registers whose values carry ``ic`` (to tell pushes apart)."""
    items = [
        axdr.structure(axdr.octet_string(bytes((1, 0, 1 + i % 4, 7, 0, 255))), Data(axdr.DOUBLE_LONG_UNSIGNED, ic * 1000 + i))
        for i in range(n)
    ]
    return build_data_notification(axdr.array(*items), invoke_id_and_priority=ic)


def ciphered(ic: int, sc: int = 0x30) -> bytes:
    return protect(notification(ic), keys=KEYS, system_title=ST, invocation_counter=ic, security_control=sc)


def identity(item: DecodedApdu) -> int:
    """Which built push ``item`` is: its invocation counter, or the invoke-id of a plain one."""
    if item.ciphered is not None:
        return item.ciphered.invocation_counter
    return item.notification.invoke_id_and_priority


def hdlc_segments(apdu: bytes, *, dest: bytes, src: bytes, llc: bool = True, i_frames: bool = False) -> list[bytes]:
    if not i_frames:
        return build_frames(apdu, dest=dest, src=src, max_info=90, llc=LLC_RESPONSE if llc else None)
    data = LLC_RESPONSE + apdu
    chunks = [data[i : i + 90] for i in range(0, len(data), 90)]
    # I-frames: N(S) counts the segments from 0, P/F set on the last
    return [
        build_frame(c, dest=dest, src=src, control=(n << 1) | (0x10 if n == len(chunks) - 1 else 0), segmented=n < len(chunks) - 1)
        for n, c in enumerate(chunks)
    ]


def gbt_over_hdlc(apdu: bytes, *, dest: bytes = b"\xce\xff", src: bytes = b"\x03") -> list[bytes]:
    return [build_frame((LLC_RESPONSE if i == 0 else b"") + b, dest=dest, src=src) for i, b in enumerate(build_blocks(apdu, block_size=100))]


#: link layer -> (segments of push number ``ic``, decoder keys)
BUILT = {
    "hdlc-1byte-auth": (lambda ic: hdlc_segments(ciphered(ic), dest=b"\x41", src=b"\x03"), KEYS),
    "hdlc-2byte-plain": (lambda ic: hdlc_segments(notification(ic), dest=b"\xcf", src=b"\x02\x23"), None),
    "hdlc-4byte-enc": (lambda ic: hdlc_segments(ciphered(ic, 0x20), dest=b"\x02\x21", src=b"\x02\x04\x06\x21"), Keys(ek=EK)),
    "hdlc-no-llc": (lambda ic: hdlc_segments(ciphered(ic), dest=b"\xcf", src=b"\x02\x23", llc=False), KEYS),
    "hdlc-i-frames": (lambda ic: hdlc_segments(ciphered(ic), dest=b"\x01", src=b"\x02\x01", i_frames=True), KEYS),
    "mbus": (lambda ic: mbus_frames(ciphered(ic, 0x20), max_data=120), Keys(ek=EK)),
    "gbt-over-hdlc": (lambda ic: gbt_over_hdlc(ciphered(ic)), KEYS),
}


# -- pushes from the corpus -----------------------------------------------------------------------------
def _segmented(vector: dict) -> bool:
    exp = vector["expected"]
    return len(exp.get("hdlc_frames") or []) > 1 or len(exp.get("mbus_frames") or []) > 1 or bool(exp.get("gbt_blocks"))


CORPUS = [v for v in load_vectors("real_vectors.jsonl") if v["transport"] in ("hdlc", "mbus") and _segmented(v)]


def corpus_segments(vector: dict) -> list[bytes]:
    """The capture's frames, each whole with its own flags (HDLC frames may share a flag on the wire)."""
    data = bytes.fromhex(vector["hex"])
    framer = HdlcFramer() if vector["transport"] == "hdlc" else MbusFramer()
    frames = [x for x in framer.feed(data) + framer.flush() if isinstance(x, (HdlcFrame, MbusFrame))]
    return [f.raw + b"\x7e" if isinstance(f, HdlcFrame) else f.raw for f in frames]


# -- the mutations --------------------------------------------------------------------------------------
def mutations(segments: list[bytes]):
    """(name, the push with segment ``i`` dropped / cut short / with one bit flipped), for every segment."""
    hdlc = segments[0][:1] == b"\x7e"
    for i, seg in enumerate(segments):
        before, after = segments[:i], segments[i + 1 :]
        yield f"drop {i}", before + after
        yield f"cut {i}", before + [seg[: len(seg) // 2]] + after
        # a bit in the format/L field, an address byte, the middle of the data, the checksum
        body_end = len(seg) - 1 if hdlc else len(seg) - 2
        for pos in sorted({1, 4, len(seg) // 2, body_end - 1}):
            flipped = bytearray(seg)
            flipped[pos] ^= 0x10
            yield f"flip {i}@{pos}", before + [bytes(flipped)] + after


def decode(data: bytes, keys: Keys | None, chunk: int = 53) -> list:
    d = StreamDecoder(keys)
    out = []
    for i in range(0, len(data), chunk):
        out += d.feed(data[i : i + chunk])
    return out + d.flush()


def complete(item) -> bool:
    """A push that got through every link layer: decoded, or (no key in the corpus) stopped only for its key."""
    return isinstance(item, DecodedApdu) or (isinstance(item, DecodeError) and item.reason == "no_key")


def check_damaged_then_two(damaged: list[bytes], good: list[list[bytes]], keys: Keys | None, what: str) -> list:
    out = decode(b"".join(damaged) + b"".join(b"".join(g) for g in good), keys)
    pushes = [x for x in out if complete(x)]
    assert len(pushes) == 2, f"{what}: {len(pushes)} complete pushes, not 2: {[getattr(x, 'one_line', lambda: x)() for x in out]}"
    errors = [x for x in out if isinstance(x, DecodeError) and not complete(x)]
    broken = [e for e in errors if isinstance(e, BrokenMessage)]
    assert len(broken) == 1, f"{what}: {len(broken)} broken-push reports: {[e.one_line() for e in errors]}"
    (report,) = broken
    line = report.one_line()
    assert report.layer in ("hdlc", "mbus", "gbt") and line.startswith(report.layer + ": ")
    assert report.reason in ("broken_segments", "broken_blocks") and report.cause
    assert " broken: " in line and "the push is lost" in line and "\n" not in line
    # nothing but the damaged frame's own framing report besides it, and the push counted once
    others = [e for e in errors if e is not report]
    assert all(e.layer == "framing" for e in others), f"{what}: {[e.one_line() for e in others]}"
    summary = Summary()
    for x in out:
        if isinstance(x, DecodeError) and not complete(x):
            summary.add(x)
    assert summary.frames == 1, f"{what}: counted {dict(summary.counts)}: {[e.one_line() for e in errors]}"
    return pushes


@pytest.mark.parametrize("layer", sorted(BUILT))
def test_built_pushes_every_segment_damaged(layer):
    make, keys = BUILT[layer]
    a, b, c = make(1), make(2), make(3)
    assert len(a) >= 3, "the harness needs pushes of several segments"
    for name, damaged in mutations(a):
        pushes = check_damaged_then_two(damaged, [b, c], keys, f"{layer} {name}")
        assert [identity(p) for p in pushes] == [2, 3], f"{layer} {name}"


@pytest.mark.parametrize("vector", CORPUS or [None], ids=[v["id"] for v in CORPUS] or ["no-vectors"])
def test_corpus_pushes_every_segment_damaged(vector):
    if vector is None:
        pytest.skip("shared vectors not available (../shared/vectors/real_vectors.jsonl)")
    segments = corpus_segments(vector)
    keys = keys_of(vector)
    assert len(segments) >= 2
    whole = decode(b"".join(segments), keys)
    assert [complete(x) for x in whole] == [True]
    for name, damaged in mutations(segments):
        check_damaged_then_two(damaged, [segments, segments], keys, f"{vector['id']} {name}")


def test_the_issue_cases():
    """As filed: the AM550 capture without its last segment (or with a middle one cut short), or an L+G
    capture without a GBT block, then two complete pushes: two pushes, not one."""
    by_id = {v["id"]: v for v in CORPUS}
    if "iskra_am550_ch_hdlc_segmented_5frames" not in by_id or "lg_e570_ch_gbt_gcm_5frames" not in by_id:
        pytest.skip("shared vectors not available")
    am550 = corpus_segments(by_id["iskra_am550_ch_hdlc_segmented_5frames"])
    cut = am550[:2] + [am550[2][:60]] + am550[3:]
    for damaged in (am550[:-1], cut):
        out = decode(b"".join(damaged + am550 + am550), None)
        assert len([x for x in out if isinstance(x, DecodedApdu)]) == 2
        (report,) = [x for x in out if isinstance(x, BrokenMessage)]
        assert report.layer == "hdlc"
    lg = by_id["lg_e570_ch_gbt_gcm_5frames"]
    frames = corpus_segments(lg)
    out = decode(b"".join(frames[:2] + frames[3:] + frames + frames), keys_of(lg))
    assert len([x for x in out if isinstance(x, DecodedApdu)]) == 2
    (report,) = [x for x in out if isinstance(x, BrokenMessage)]
    assert report.layer == "gbt" and report.cause == "missing_segment" and "block 3 is missing" in report.message


# -- two senders at once -------------------------------------------------------------------------------
def interleave(x: list[bytes], y: list[bytes]) -> list[bytes]:
    out = []
    for i in range(max(len(x), len(y))):
        out += x[i : i + 1] + y[i : i + 1]
    return out


@pytest.mark.parametrize(
    "first, second",
    [
        (
            lambda ic: hdlc_segments(ciphered(ic), dest=b"\x41", src=b"\x03"),
            lambda ic: hdlc_segments(ciphered(ic), dest=b"\xcf", src=b"\x02\x23"),
        ),
        (
            lambda ic: hdlc_segments(ciphered(ic), dest=b"\x41", src=b"\x02\x04\x06\x21", llc=False),
            lambda ic: hdlc_segments(ciphered(ic), dest=b"\x41", src=b"\x02\x04\x06\x23", llc=False),
        ),
        (lambda ic: gbt_over_hdlc(ciphered(ic), src=b"\x03"), lambda ic: gbt_over_hdlc(ciphered(ic), src=b"\x05")),
        (lambda ic: mbus_frames(ciphered(ic), max_data=100, a=0x01), lambda ic: mbus_frames(ciphered(ic), max_data=100, a=0x02)),
        (
            lambda ic: hdlc_segments(ciphered(ic), dest=b"\xcf", src=b"\x02\x23"),
            lambda ic: [build_frame(LLC_RESPONSE + ciphered(ic), dest=b"\x2b", src=b"\x21")] * 3,  # single frames
        ),
    ],
    ids=["hdlc", "hdlc-no-llc", "gbt", "mbus", "hdlc-and-single-frames"],
)
def test_two_addresses_interleaved(first, second):
    stream = interleave(first(1), second(101)) + interleave(first(2), second(102))
    out = decode(b"".join(stream), KEYS)
    assert not [x.one_line() for x in out if isinstance(x, DecodeError)]
    got = sorted(identity(x) for x in out)
    singles = len(second(101)) == 3 and len(set(second(101))) == 1
    assert got == ([1, 2, 101, 101, 101, 102, 102, 102] if singles else [1, 2, 101, 102])


def test_damage_at_one_address_leaves_the_other_alone():
    x = [hdlc_segments(ciphered(ic), dest=b"\x41", src=b"\x03") for ic in (1, 2)]
    y = [hdlc_segments(ciphered(ic), dest=b"\xcf", src=b"\x02\x23") for ic in (101, 102)]
    bad = bytearray(x[0][1])
    bad[len(bad) // 2] ^= 0x01
    x[0][1] = bytes(bad)
    out = decode(b"".join(interleave(x[0], y[0]) + interleave(x[1], y[1])), KEYS)
    assert sorted(identity(p) for p in out if isinstance(p, DecodedApdu)) == [2, 101, 102]
    errors = [e for e in out if isinstance(e, DecodeError)]
    assert [e.reason for e in errors] == ["bad_checksum", "broken_segments"]
    assert errors[1].layer == "hdlc" and errors[1].consequence and "address 03" in errors[1].message


def test_end_of_input_with_a_push_open():
    segments = hdlc_segments(ciphered(1), dest=b"\x41", src=b"\x03")
    (report,) = decode(b"".join(segments[:-1]), KEYS)
    assert report.layer == "hdlc" and report.cause == "incomplete" and "the input ended" in report.message


def test_han_run_logs_the_broken_push_with_the_damage_that_caused_it():
    """In ``han run`` a push lost to a damaged segment is one more line after the damage, not another failed frame."""
    from han.burstlog import BurstLog

    lines: list[str] = []
    b = BurstLog(lines.append)
    b.failure("bad_checksum", "framing: frame checksum (FCS) wrong", 1.0)
    b.failure("broken_segments", "hdlc: segmented push … broken: segment 3 was damaged", 1.0, consequence=True)
    b.failure("bad_checksum", "framing: frame checksum (FCS) wrong", 2.0)
    b.failure("broken_segments", "hdlc: segmented push … broken: segment 2 was damaged", 2.0, consequence=True)
    b.success(3.0)
    assert lines == [
        "framing: frame checksum (FCS) wrong",
        "hdlc: segmented push … broken: segment 3 was damaged",
        "1 more frame(s) failed in the last 2 s (bad_checksum 1)",
    ]


def test_the_cause_is_named():
    """Each way of losing a segment has its own cause and words."""
    i_frames = hdlc_segments(ciphered(1), dest=b"\x01", src=b"\x02\x01", i_frames=True)
    ui = hdlc_segments(ciphered(1), dest=b"\x41", src=b"\x03")
    nxt = hdlc_segments(ciphered(2), dest=b"\x41", src=b"\x03")
    cases = [
        (i_frames[:1] + i_frames[2:], "missing_segment", "N(S) 2 followed 0"),  # the N(S) sequence shows the gap
        (ui[:1] + ui[2:], "does_not_decode", "do not decode (security: ciphered APDU length field"),  # UI: the join does
        (ui[:-1], "missing_last", "its last segment never came"),
        (ui[1:], "missing_first", "without the first one"),
    ]
    for damaged, cause, words in cases:
        out = decode(b"".join(damaged + nxt), KEYS)
        (report,) = [x for x in out if isinstance(x, BrokenMessage)]
        assert report.cause == cause and words in report.message, report.one_line()
        assert [identity(x) for x in out if isinstance(x, DecodedApdu)] == [2]


def test_a_wrong_key_on_a_segmented_push_is_still_a_wrong_key():
    """A joined push that deciphers to garbage lost no segment (its length adds up): the key is named, not the link."""
    segments = hdlc_segments(ciphered(1, 0x20), dest=b"\xcf", src=b"\x02\x23")
    (err,) = decode(b"".join(segments), Keys(ek=AK))
    assert err.reason == "wrong_key" and not isinstance(err, BrokenMessage)


def test_a_segmented_apdu_we_do_not_decode_keeps_its_own_error():
    """An event-notification in three segments: its APDU error stands, no segment was lost."""
    apdu = b"\xc2" + bytes(250)
    (err,) = decode(b"".join(build_frames(apdu, max_info=90)), None)
    assert err.layer == "apdu" and "not a data-notification" in err.message


@pytest.mark.parametrize("llc", [True, False])
def test_a_capture_that_starts_inside_a_frame(llc):
    """The logger began mid-push, right where the APDU starts: auto-detection must not take it for a bare APDU."""
    plain = [hdlc_segments(notification(ic), dest=b"\xcf", src=b"\x02\x23", llc=llc) for ic in (1, 2, 3)]
    first = plain[0][0]
    start = first.index(b"\x0f\x00\x00\x00\x01")
    stream = first[start:] + b"".join(plain[0][1:] + plain[1] + plain[2])
    out = decode(stream, None)
    assert [identity(x) for x in out if isinstance(x, DecodedApdu)] == [2, 3]
    assert len([x for x in out if isinstance(x, BrokenMessage)]) == 1
