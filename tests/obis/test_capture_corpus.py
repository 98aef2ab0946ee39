"""Every push of ../shared/vectors/real_vectors.jsonl, end to end (read at test time, never copied here).

Each capture is decoded as a byte stream with the meter's country (from the
record's ``meter``/``source`` text): the values must equal ``expected.obis``
(raw) and ``expected.scaled``; negative vectors must be rejected with the
right error; encrypted vectors without a public key must ask for the key
(and, where the source published the plaintext, that plaintext must decode).
Then the same APDU is re-wrapped in the other transports by the tests'
own builders and must give the same registers.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import load_vectors
from decoders.link import gbt, hdlc, mbus
from decoders.errors import ChecksumError, DecodeError, KeyMissing, TagMismatch
from decoders.ciphering.security import Keys
from decoders.stream import StreamDecoder
from han.advice import advise
from han.pipeline import PushDecoder, to_push
from obis.interpret import InterpretOptions, Interpreter
from obis.push import Push
from vectorcheck import (
    LIST_ID_OBIS,
    country_of,
    is_push_vector,
    keys_of,
    link_mismatches,
    mismatches,
    scaled_mismatches,
    security_mismatches,
)

ALL = load_vectors("real_vectors.jsonl")
if not ALL:
    pytest.skip("shared vectors not available (../shared/vectors/real_vectors.jsonl)", allow_module_level=True)
PUSHES = [v for v in ALL if is_push_vector(v)]
DECODABLE = [
    v
    for v in PUSHES
    if not v.get("expect_framing_failure") and not v.get("expect_decrypt_failure") and v["keys"] is not None
    or (v["keys"] is None and not v["expected"].get("security") and not v.get("expect_framing_failure"))
]
NO_KEY = [v for v in PUSHES if v["keys"] is None and v["expected"].get("security")]


def ids(v: dict) -> str:
    return v["id"]


def decode(vector: dict, data: bytes | None = None, keys: Keys | None = None, **kw) -> list:
    options = InterpretOptions(country=country_of(vector), **kw)
    d = PushDecoder(keys if keys is not None else keys_of(vector), options=options, keep_layers=True)
    return d.feed(bytes.fromhex(vector["hex"]) if data is None else data) + d.flush()


def only_push(out: list) -> Push:
    assert len(out) == 1 and isinstance(out[0], Push), [x.one_line() if isinstance(x, DecodeError) else x for x in out]
    return out[0]


def test_the_corpus_is_covered():
    assert len(PUSHES) == 38
    assert len(DECODABLE) + len(NO_KEY) + 2 == len(PUSHES)  # + the two negative vectors


@pytest.mark.parametrize("vector", DECODABLE, ids=ids)
def test_vector_decodes_to_its_expected_values(vector):
    push = only_push(decode(vector))
    assert mismatches(push, vector) == []
    assert scaled_mismatches(push, vector) == []
    exp = vector["expected"]
    assert push.apdu.hex().upper() == exp["plaintext_apdu"]
    assert security_mismatches(push.layers.ciphered, vector) == []
    assert link_mismatches(push.layers, vector) == []


@pytest.mark.parametrize("vector", NO_KEY, ids=ids)
def test_vector_without_its_key_asks_for_it(vector):
    (err,) = decode(vector)
    assert isinstance(err, KeyMissing) and err.reason == "no_key" and err.key == "encryption"
    assert "encryption key" in err.message and "--key" in advise(err).message  # the CLI names the option
    assert security_mismatches(err.partial.ciphered, vector) == []
    assert link_mismatches(err.partial, vector) == []


@pytest.mark.parametrize("vector", [v for v in NO_KEY if v["expected"].get("plaintext_from_source")], ids=ids)
def test_published_plaintext_of_a_keyless_vector_decodes(vector):
    decoded = StreamDecoder().decode_apdu(bytes.fromhex(vector["expected"]["plaintext_apdu"]))
    push = to_push(decoded, Interpreter(InterpretOptions(country=country_of(vector))))
    assert mismatches(push, vector) == []
    assert scaled_mismatches(push, vector) == []


def test_corrupted_frame_is_a_bad_checksum():
    (vector,) = [v for v in PUSHES if v.get("expect_framing_failure")]
    out = decode(vector)
    assert not any(isinstance(x, Push) for x in out)
    assert [x.reason for x in out] == ["bad_checksum"] and isinstance(out[0], ChecksumError)
    assert out[0].frame.fcs_ok is False and out[0].raw == bytes.fromhex(vector["hex"])[: len(out[0].raw)]


def test_wrong_key_is_a_tag_mismatch_not_a_framing_error():
    (vector,) = [v for v in PUSHES if v.get("expect_decrypt_failure")]
    (err,) = decode(vector)
    assert isinstance(err, TagMismatch) and err.reason == "tag_mismatch"
    assert err.partial.ciphered is not None and err.partial.apdu == b""  # no plaintext given out


# -- the country decides Kamstrup_V0001's energy unit ------------------------------------------
def _vector(vid: str) -> dict:
    return next(v for v in ALL if v["id"] == vid)


def test_swedish_kamstrup_is_in_wh_only_with_country_se():
    v = _vector("kamstrup_se_list_hourly_gh239")
    raw = v["expected"]["obis"]["1.1.1.8.0.255"]["value"]
    se = only_push(decode(v))
    assert se.profile == "kamstrup_se" and se.register("1.1.1.8.0.255").value == raw
    default = only_push(PushDecoder().feed(bytes.fromhex(v["hex"])))
    assert default.profile == "kamstrup_no" and default.register("1.1.1.8.0.255").value == raw * 10
    other = only_push(PushDecoder(options=InterpretOptions(country="FI")).feed(bytes.fromhex(v["hex"])))
    assert other.profile == "kamstrup_nve" and other.register("1.1.1.8.0.255").value == raw
    assert other.register("1.1.1.8.0.255").unit is None and any("--country" in n for n in other.notes)
    # the currents do not depend on the country
    assert other.register("1.1.31.7.0.255").value == se.register("1.1.31.7.0.255").value


def test_forced_profile_wins():
    v = _vector("kamstrup_se_list_hourly_gh239")
    raw = v["expected"]["obis"]["1.1.1.8.0.255"]["value"]
    from obis.profiles import profile_by_name

    options = InterpretOptions(profile=profile_by_name("kamstrup_no"), country="SE")
    push = only_push(PushDecoder(options=options).feed(bytes.fromhex(v["hex"])))
    assert push.profile == "kamstrup_no" and push.register("1.1.1.8.0.255").value == raw * 10


# -- time ------------------------------------------------------------------------------------
def _local(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_aidon_deviation_zero_is_norwegian_local_time():
    v = _vector("aidon_no_list3_gh1119")
    push = only_push(decode(v))
    assert push.meter_time.deviation == 0 and push.meter_time.weekday == 0  # kept as sent
    oslo = _local(v["expected"]["obis"]["0.0.1.0.0.255"]["value"]).replace(tzinfo=ZoneInfo("Europe/Oslo"))
    assert push.timestamp == oslo.isoformat()  # local time, not UTC as the deviation would say
    assert push.timestamp_utc == oslo.astimezone(timezone.utc)


def test_deviation_on_the_wire_wins_over_the_time_zone():
    v = _vector("kaifa_at_tinetz_mbus_gcm_example")
    push = only_push(decode(v, timezone="America/New_York"))
    dt = v["expected"]["apdu_datetime"]
    sent = _local(dt["local"]).replace(tzinfo=timezone(timedelta(minutes=-dt["deviation"])))
    assert push.timestamp == sent.isoformat() and push.meter_time.dst


def test_timezone_option_for_unspecified_deviation():
    v = _vector("kamstrup_no_list1_2018")
    local = _local(v["expected"]["apdu_datetime"]["local"])
    push = only_push(decode(v, timezone="UTC"))
    assert push.timestamp == local.replace(tzinfo=timezone.utc).isoformat()
    assert only_push(decode(v)).timestamp == local.replace(tzinfo=ZoneInfo("Europe/Oslo")).isoformat()


# -- re-wrapping: the same APDU in every transport gives the same registers -------------------
def _rewraps(wire: bytes) -> dict[str, bytes]:
    llc = b"\xe6\xe7\x00"
    out = {
        "raw": wire,
        "hdlc-one-frame": hdlc.build_frame(llc + wire) if len(wire) < 2000 else b"".join(hdlc.build_frames(wire)),
        "hdlc-segments-40": b"".join(hdlc.build_frames(wire, max_info=40, dest=b"\xcf", src=b"\x02\x23")),
        "hdlc-segments-97": b"".join(hdlc.build_frames(wire, max_info=97)),
        "mbus-60": b"".join(mbus.build_frames(wire, max_data=60)),
        "mbus-250": b"".join(mbus.build_frames(wire, max_data=250)),
        "hdlc-gbt-50": b"".join(
            hdlc.build_frame((llc if i == 0 else b"") + block, dest=b"\xce\xff")
            for i, block in enumerate(gbt.build_blocks(wire, block_size=50))
        ),
        "mbus-gbt-120": b"".join(
            b"".join(mbus.build_frames(block, max_data=200)) for block in gbt.build_blocks(wire, block_size=120)
        ),
    }
    if len(wire) > 300:
        out["mbus-wrapped-L"] = b"".join(mbus.build_frames(wire, first_data=257 - 5, max_data=200, wrap_first=True))
    return out


def _registers(push: Push) -> list:
    return [(r.obis, r.raw, r.value, r.unit, r.type) for r in push.registers]


REWRAPPABLE = DECODABLE + [v for v in NO_KEY if v["expected"].get("plaintext_from_source")]


@pytest.mark.parametrize("vector", REWRAPPABLE, ids=ids)
def test_same_apdu_in_other_transports(vector):
    if vector["keys"] is None and vector["expected"].get("security"):
        wire, keys = bytes.fromhex(vector["expected"]["plaintext_apdu"]), Keys()
    else:
        keys = keys_of(vector)
        reference = only_push(decode(vector))
        wire = reference.layers.wire
    base = only_push(decode(vector, hdlc.build_frame(b"\xe6\xe7\x00" + wire) if len(wire) < 2000 else wire, keys))
    expected = _registers(base)
    for name, data in _rewraps(wire).items():
        push = only_push(decode(vector, data, keys))
        assert _registers(push) == expected, name
        assert push.timestamp == base.timestamp, name


@pytest.mark.parametrize("transport", ["hdlc", "mbus", "raw"])
def test_noisy_continuous_stream(transport):
    """Debug text, a partial frame and garbage between frames: every push still comes out, in order."""
    vectors = [v for v in DECODABLE if v["transport"] == ("raw_glo" if transport == "raw" else transport)]
    # one stream is one meter: one key set (plain frames are refused once an authentication key is set)
    first = keys_of(vectors[0])
    chosen = ([v for v in vectors if keys_of(v) == first] * 3)[:6]
    pieces = [b"boot: reading meter...\r\n"]
    for i, v in enumerate(chosen):
        data = bytes.fromhex(v["hex"])
        pieces.append(data)
        pieces.append(b"\x00\xff\x13debug %d\r\n" % i)
        if i == 0 and transport != "raw":
            pieces.append(data[: len(data) // 2])  # a frame cut short by a glitch
    stream = b"".join(pieces)
    d = PushDecoder(first)
    out = []
    for i in range(0, len(stream), 37):
        out += d.feed(stream[i : i + 37])
    out += d.flush()
    pushes = [x for x in out if isinstance(x, Push)]
    assert d.transport == transport
    assert len(pushes) == len(chosen)
    errors = [x for x in out if isinstance(x, DecodeError)]
    assert errors and all(e.reason in ("not_a_frame", "truncated", "bad_checksum") for e in errors)


# -- the list identifier is a register, whatever the maker -------------------------------------
LISTED = [v for v in DECODABLE + [v for v in NO_KEY if v["expected"].get("plaintext_from_source")]
          if v["expected"].get("list_id")]  # fmt: skip


def _push_of(vector: dict) -> Push:
    if vector["keys"] is None and vector["expected"].get("security"):
        return to_push(StreamDecoder().decode_apdu(bytes.fromhex(vector["expected"]["plaintext_apdu"])),
                       Interpreter(InterpretOptions(country=country_of(vector))))  # fmt: skip
    return only_push(decode(vector))


def test_every_maker_with_a_list_id_is_covered():
    assert {v["expected"]["list_id"] for v in LISTED} == {"Kamstrup_V0001", "AIDON_V0001", "KFM_001"}


@pytest.mark.parametrize("vector", LISTED, ids=ids)
def test_list_id_is_register_1_1_0_2_129_255(vector):
    push = _push_of(vector)
    reg = push.register(LIST_ID_OBIS)
    assert reg is not None and reg.value == push.list_id == vector["expected"]["list_id"]
    assert reg.key == "list_id" and reg.name == "List version identifier"
    # sent without an OBIS code (Kamstrup, Kaifa), it is mapped by its position, first in the list
    assert reg.positional == (push.shape != "structs")
    assert push.registers[0] is reg or push.shape == "structs"
