"""The decode fast path: A-XDR templates and cached interpretation plans.

Every test compares the fast path (a stream's template cache, a cached
plan) with the slow path (a full A-XDR decode and a fresh analysis) on the
same bytes: the results must be identical, field by field and type by type,
and a plan made for one list must never serve another.  No timing here:
the numbers are in ``python -m benchmarks.run``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import datetime, timedelta

import pytest

from conftest import SEED_AK, SEED_EK, load_vectors
from decoders.xdlms import axdr
from decoders.xdlms.apdu import DataNotification, build_data_notification, parse_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime
from decoders.errors import DecodeError, TagMismatch
from decoders.link.hdlc import build_frame
from decoders.ciphering.security import Keys, protect
from han.pipeline import PushDecoder
from obis import interpret as interp
from obis.code import Obis
from obis.interpret import InterpretOptions, Interpreter, analysis, interpret, plans
from obis.profiles import profile_by_name
from obis.push import Push, SecurityInfo
from vectorcheck import country_of, is_push_vector, keys_of

U32, I32, U16, I16, U8, I8 = (
    axdr.DOUBLE_LONG_UNSIGNED, axdr.DOUBLE_LONG, axdr.LONG_UNSIGNED, axdr.LONG, axdr.UNSIGNED, axdr.INTEGER,
)  # fmt: skip
OCT = axdr.OCTET_STRING
KAM_ST = bytes.fromhex("4B414D4501A4DC52")
SEED_KEYS = Keys(ek=SEED_EK, ak=SEED_AK)


def obis(text: str) -> Data:
    return axdr.octet_string(bytes(Obis.parse(text)))


def su(scaler: int, unit: int) -> Data:
    return axdr.structure(Data(axdr.INTEGER, scaler), Data(axdr.ENUM, unit))


def when(i: int = 0) -> CosemDateTime:
    return CosemDateTime.from_datetime(datetime(2026, 3, 1, 12, 0, 0) + timedelta(seconds=10 * i))


def canon(push: Push) -> tuple:
    """Every field of a push, with the type of every register field (1 == 1.0 == True must not pass)."""
    fields = tuple(getattr(push, f.name) for f in dataclasses.fields(push) if f.name not in ("layers", "_layout"))
    types = tuple(tuple(type(x) for x in r) for r in push.registers)
    return repr(fields), types  # repr: nan equals nan, and -0.0 differs from 0.0


def slow(apdu: bytes, security: SecurityInfo | None = None, **options) -> Push:
    """The reference: a full decode (no templates) and a fresh analysis."""
    n = parse_data_notification(apdu)
    assert n.template is None
    return interpret(n, InterpretOptions(**options), security=security, apdu=apdu)


@pytest.fixture
def analyses(monkeypatch):
    """Counts the list analyses (the slow part a plan saves)."""
    calls = []
    real = analysis.analyse

    def counting(*args, **kw):
        calls.append(args[0])
        return real(*args, **kw)

    monkeypatch.setattr(analysis, "analyse", counting)
    return calls


class Stream:
    """What a PushDecoder does with the plain APDUs of one stream: one template cache, and an interpreter
    (its plans by list) per set of options, as a decoder has; ``interpreters`` may be shared by streams."""

    def __init__(self, interpreters: dict[str, Interpreter] | None = None) -> None:
        self.templates = axdr.Templates()
        self.interpreters = interpreters if interpreters is not None else {}

    def interpreter(self, options: dict) -> Interpreter:
        key = repr(options)  # repr: -0.0 is not 0.0
        if key not in self.interpreters:
            self.interpreters[key] = Interpreter(InterpretOptions(**options))
        return self.interpreters[key]

    def push(self, apdu: bytes, security: SecurityInfo | None = None, **options) -> Push:
        n = parse_data_notification(apdu, self.templates)
        fast = self.interpreter(options).interpret(n, security=security, apdu=apdu)
        assert canon(fast) == canon(slow(apdu, security, **options))
        return fast


# -- lists ------------------------------------------------------------------------------------
def kamstrup(i: int = 0, *, list_id: str = "Kamstrup_V0001", energy_obis: str = "1.1.1.8.0.255", tag: int = U32) -> bytes:
    body = axdr.structure(
        axdr.visible_string(list_id),
        obis("1.1.0.0.5.255"), axdr.visible_string("9990000000000017"),
        obis("1.1.1.7.0.255"), Data(tag, 1000 + i),
        obis("1.1.31.7.0.255"), Data(U32, 655 + i),
        obis("1.1.32.7.0.255"), Data(U16, 229),
        obis("0.1.1.0.0.255"), axdr.octet_string(when(i).raw),
        obis(energy_obis), Data(U32, 12345 + i),
    )  # fmt: skip
    return build_data_notification(body, datetime=when(i))


def aidon(i: int = 0, *, scaler: int = -1, unit: int = 33, list_id: bytes | str = "AIDON_V0001") -> bytes:
    lid = axdr.visible_string(list_id) if isinstance(list_id, str) else axdr.octet_string(list_id)
    body = axdr.array(
        axdr.structure(obis("1.1.0.2.129.255"), lid),
        axdr.structure(obis("1.0.1.7.0.255"), Data(U32, 1743 + i), su(0, 27)),
        axdr.structure(obis("1.0.31.7.0.255"), Data(I16, -37 + i), su(scaler, unit)),
        axdr.structure(obis("1.0.32.7.0.255"), Data(U16, 2343 - i), su(-1, 35)),
    )
    return build_data_notification(body, invoke_id_and_priority=0x40000000 + i)


def austrian(i: int = 0, *, first: bytes | None = None, meter: bytes = b"TEST00000042") -> bytes:
    clock = CosemDateTime.from_datetime(datetime(2026, 7, 1, 12, 0, 5) + timedelta(seconds=5 * i), deviation=-120)
    body = axdr.structure(
        axdr.octet_string(first if first is not None else clock.raw),
        obis("1.0.1.8.0.255"), Data(U32, 4_500_000 + i), su(0, 30),
        obis("1.0.32.7.0.255"), Data(U16, 2289 + i), su(-1, 35),
        obis("1.0.13.7.0.255"), Data(I16, 987 - i), su(-3, 255),
        axdr.octet_string(meter),
    )  # fmt: skip
    return build_data_notification(body, invoke_id_and_priority=0x80000001, datetime=clock)


def kaifa(i: int = 0) -> bytes:
    values = [
        axdr.octet_string(b"KFM_001"),
        axdr.octet_string(b"9990000000000099"),
        axdr.octet_string(b"TESTTYPE"),
        *[Data(U32, v + i) for v in (1201, 0, 0, 150, 3141, 1592, 6535, 2297, 0, 2313)],
    ]
    return build_data_notification(axdr.structure(*values))


def object_list(i: int = 0, *, obis_text: str = "1.0.1.7.0.255") -> bytes:
    objects = axdr.array(
        *[
            axdr.structure(Data(U16, c), obis(o), Data(axdr.INTEGER, a), Data(U16, 0))
            for c, o, a in ((40, "0.0.25.9.0.255", 2), (1, "0.0.42.0.0.255", 2), (3, obis_text, 2))
        ]
    )
    body = axdr.structure(objects, axdr.octet_string(b"LGZ1"), Data(U32, 417 + i))
    return build_data_notification(body)


SEC_KAM = SecurityInfo(KAM_ST, 1, 0x30, True)
SEC_KFM = SecurityInfo(b"KFMg\x00\x00\x00\x09", 1, 0x20, False)


# -- templates --------------------------------------------------------------------------------
def test_a_template_gives_the_values_of_bodies_with_the_same_skeleton():
    a, b = kamstrup(0), kamstrup(7)
    na, nb = parse_data_notification(a), parse_data_notification(b)
    t = axdr.make_template(a, na.body_offset, len(a))
    assert t is not None and t.size == len(a) - na.body_offset
    assert t.match(a, na.body_offset) == tuple(d.value for d in axdr.slot_leaves(na.body))
    assert t.match(b, nb.body_offset) == tuple(d.value for d in axdr.slot_leaves(nb.body))
    assert t.match(a, na.body_offset) != t.match(b, nb.body_offset)


def test_a_template_refuses_another_skeleton_of_the_same_size():
    a, other = kamstrup(0), kamstrup(0, tag=I32)  # one type tag differs
    assert len(other) == len(a)
    pos = parse_data_notification(a).body_offset
    t = axdr.make_template(a, pos, len(a))
    assert t.match(other, pos) is None
    # text is a slot: another list id matches the template (the plan pins it, see below)
    assert t.match(kamstrup(0, list_id="Kamstrup_V0002"), pos)[0] == "Kamstrup_V0002"


def test_equal_layouts_share_one_template_object():
    a, b = kamstrup(0), kamstrup(5)
    pos = parse_data_notification(a).body_offset
    ta, tb = axdr.make_template(a, pos, len(a)), axdr.make_template(b, pos, len(b))
    assert ta is tb and ta == tb and hash(ta) == hash(tb)
    other = kamstrup(0, tag=I32)
    assert axdr.make_template(other, pos, len(other)) != ta


def test_bit_strings_and_compact_arrays_get_no_template():
    for body in (Data(axdr.BIT_STRING, "1011"), axdr.structure(Data(U16, 1), Data(axdr.BIT_STRING, "10"))):
        raw = axdr.encode(body)
        assert axdr.make_template(raw, 0, len(raw)) is None
    compact = bytes.fromhex("13 12 04 0001 0002")  # compact-array of long-unsigned: 1, 2
    assert axdr.decode(compact).tag == axdr.COMPACT_ARRAY
    assert axdr.make_template(compact, 0, len(compact)) is None


def test_long_lengths_nulls_and_text():
    body = axdr.structure(
        Data(axdr.NULL, None),
        axdr.visible_string("x\xe9" * 100),
        Data(axdr.UTF8_STRING, "\u00e9\ufffd" * 40),
        axdr.octet_string(bytes(range(200))),
        Data(U8, 5),
    )
    raw = axdr.encode(body)
    t = axdr.make_template(raw, 0, len(raw))
    assert t.tags == (axdr.VISIBLE_STRING, axdr.UTF8_STRING, OCT, U8)
    assert t.match(raw, 0) == tuple(d.value for d in axdr.slot_leaves(axdr.decode(raw)))
    assert t.match(raw, 0)[:2] == ("x\xe9" * 100, "\u00e9\ufffd" * 40)
    # invalid UTF-8 decodes as decoding does (replacement characters)
    bad = raw.replace("\u00e9\ufffd".encode() * 40, b"\xff" * len("\u00e9\ufffd".encode() * 40))
    assert t.match(bad, 0) == tuple(d.value for d in axdr.slot_leaves(axdr.decode(bad)))
    longer = axdr.encode(axdr.structure(Data(axdr.NULL, None), axdr.visible_string("x\xe9" * 101)))
    assert axdr.make_template(longer, 0, len(longer)) != t


def test_the_template_cache_is_bounded():
    cache = axdr.Templates(maxsize=3, per_size=2)
    for n in range(1, 10):
        raw = axdr.encode(axdr.structure(*[Data(U8, 1)] * n))
        cache.learn(raw, 0, len(raw))
    assert len(cache) == 3
    # one size whose text changes every time: at most per_size kept, and learning stops
    learned = []
    one_byte_types = (axdr.UNSIGNED, axdr.INTEGER, axdr.ENUM, axdr.BCD, axdr.BOOLEAN)
    for i in range(125):  # 125 layouts of one size: the types of three 1-byte values
        types = (one_byte_types[i % 5], one_byte_types[i // 5 % 5], one_byte_types[i // 25])
        raw = axdr.encode(axdr.structure(*[Data(t, 1) for t in types]))
        if cache.learn(raw, 0, len(raw)) is not None:
            learned.append(i)
    assert learned == [0, 1, 2, 3, 4, 5, 6, 7, 64] and len(cache) <= 3 * 2


# -- notifications ----------------------------------------------------------------------------
def test_a_notification_parsed_with_templates_equals_one_parsed_without():
    templates = axdr.Templates()
    for apdu in (kamstrup(0), kamstrup(1), aidon(0), aidon(5), austrian(3), kaifa(2), object_list(1)):
        fast = parse_data_notification(apdu, templates)
        ref = parse_data_notification(apdu)
        assert fast.template is not None
        assert fast == ref and hash(fast) == hash(ref) and repr(fast) == repr(ref)
        assert fast.body == ref.body and fast.body_offset == ref.body_offset
        assert fast.values == tuple(d.value for d in axdr.slot_leaves(ref.body))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.datetime = None  # type: ignore[misc]


def test_notifications_and_pushes_pickle_and_copy():
    import copy
    import pickle

    templates = axdr.Templates()
    parse_data_notification(kamstrup(0), templates)
    n = parse_data_notification(kamstrup(1), templates)
    for other in (pickle.loads(pickle.dumps(n)), copy.copy(n), copy.deepcopy(n)):
        assert other == n and repr(other) == repr(n)
    push = interpret(n, apdu=kamstrup(1))
    again = pickle.loads(pickle.dumps(push))
    assert again == push and canon(again) == canon(push)


def test_a_matched_body_is_decoded_only_when_asked_for():
    templates = axdr.Templates()
    parse_data_notification(kamstrup(0), templates)
    n = parse_data_notification(kamstrup(1), templates)
    assert n._body is None  # matched: no tree yet
    assert n.body == parse_data_notification(kamstrup(1)).body


def test_errors_are_the_same_with_templates():
    good = aidon(0)
    templates = axdr.Templates()
    parse_data_notification(good, templates)
    pos = parse_data_notification(good).body_offset
    bad = [
        good[:pos] + bytes([0x01, 0x7F]) + good[pos + 2 :],  # count too big for the data
        good[:pos] + bytes([0x01, 0x03]) + good[pos + 2 :],  # one element too few: bytes left over
        good[:pos] + bytes([0x1F]) + good[pos + 1 :],  # an unknown tag
        good[:-1],
        good + b"\x00",
    ]
    for apdu in bad:
        with pytest.raises(DecodeError) as ref:
            parse_data_notification(apdu)
        with pytest.raises(DecodeError) as fast:
            parse_data_notification(apdu, templates)
        assert (type(fast.value), str(fast.value)) == (type(ref.value), str(ref.value))


# -- plans give what the slow path gives ---------------------------------------------------------
VECTORS = [v for v in load_vectors("real_vectors.jsonl") if is_push_vector(v)]
OPTIONS = [
    {},
    {"country": "NO"},
    {"country": "se"},
    {"country": "DK", "timezone": "UTC"},
    {"country": "AT"},
    {"ct_ratio": 40.0},
    {"multipliers": {Obis.parse("1.1.1.7.0.255"): 2.5, Obis.parse("1.0.32.7.0.255"): 3}},
    {"profile": profile_by_name("kamstrup_dk")},
    {"profile": profile_by_name("at_evn")},
]


@pytest.mark.skipif(not VECTORS, reason="shared vectors not available")
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}" for k in o) or "defaults")
def test_every_vector_decodes_the_same_through_a_plan(options):
    checked = 0
    for v in VECTORS:
        data = bytes.fromhex(v["hex"])
        opts = {"country": country_of(v), **options}
        dec = PushDecoder(keys_of(v), options=InterpretOptions(**opts))
        out = dec.feed(data) + dec.flush() + dec.feed(data) + dec.flush()  # the second time from the plan
        for item in out:
            if isinstance(item, Push) and item.shape != "dsmr":
                ref = slow(item.apdu, security=item.security, **{k: opts.get(k) for k in ("country", "profile", "timezone", "multipliers", "ct_ratio")})
                fast = item if not item.notes or not item.notes[-1].startswith("UNVERIFIED") else None
                if fast is not None:
                    assert canon(fast) == canon(ref), v["id"]
                    checked += 1
    assert checked >= 40


LISTS = [kamstrup, aidon, austrian, kaifa, object_list]


@pytest.mark.parametrize("make", LISTS, ids=lambda f: f.__name__)
def test_one_analysis_per_list(make, analyses):
    stream = Stream()
    for i in range(5):
        stream.push(make(i), security=SEC_KFM if make is austrian else None)
    # Stream.push runs the slow path too (one analysis each); the fast path analysed once in all
    assert len(analyses) == 5 + 1


def _randomised(make_body, rng: random.Random) -> bytes:
    return build_data_notification(make_body(rng), datetime=when(rng.randrange(10**6)) if rng.random() < 0.5 else None)


def _random_value(rng: random.Random, tag: int):
    if tag == U32:
        return rng.choice([0, 1, 2**32 - 1, rng.randrange(2**32)])
    if tag == I32:
        return rng.choice([0, -1, -(2**31), 2**31 - 1, rng.randrange(-(2**31), 2**31)])
    if tag == U16:
        return rng.randrange(2**16)
    if tag == I16:
        return rng.randrange(-(2**15), 2**15)
    if tag == I8:
        return rng.randrange(-128, 128)
    if tag == axdr.FLOAT32:
        return rng.choice([0.0, 1.5, -2.25, 1e6])
    if tag == axdr.BOOLEAN:
        return rng.random() < 0.5
    return rng.randrange(256)


def test_random_values_through_plans(analyses):
    rng = random.Random(7)
    tags = (U32, I32, U16, I16, I8, axdr.FLOAT32, axdr.BOOLEAN, axdr.ENUM, axdr.BCD, U8)

    def clock(r: random.Random) -> bytes:
        if r.random() < 0.2:
            return bytes(r.randrange(256) for _ in range(12))  # not a date-time: hex
        if r.random() < 0.2:
            return b"PRINTABLE_12"  # printable: text
        return CosemDateTime.from_datetime(datetime(2020, 1, 1) + timedelta(minutes=r.randrange(10**6)),
                                           deviation=r.choice([None, -60, -120]), clock_status=r.choice([0, 0x80, 0x01])).raw

    def flat(r: random.Random) -> Data:
        return axdr.structure(
            axdr.visible_string("Kamstrup_V0001"),
            obis("1.1.0.0.1.255"), Data(U32, 57000000),
            *[x for c, tag in zip((1, 2, 31, 32, 13), tags) for x in (obis(f"1.1.{c}.7.0.255"), Data(tag, _random_value(r, tag)))],
            obis("0.1.1.0.0.255"), axdr.octet_string(clock(r)),
            obis("1.1.96.1.0.255"), axdr.octet_string(bytes(r.randrange(256) for _ in range(5))),
        )  # fmt: skip

    def structs(r: random.Random) -> Data:
        return axdr.array(
            axdr.structure(obis("1.1.0.2.129.255"), axdr.visible_string("AIDON_V0001")),
            *[axdr.structure(obis(f"1.0.{c}.7.0.255"), Data(tag, _random_value(r, tag)), su(s, 27))
              for c, tag, s in zip((1, 2, 31, 32, 51, 52, 71, 72, 13, 14), tags, (-3, -2, -1, 0, 1, 2, 3, 0, -1, 0))],
            axdr.structure(obis("0.0.1.0.0.255"), axdr.octet_string(clock(r))),
        )  # fmt: skip

    for make_body in (flat, structs):
        for options in ({}, {"country": "DK"}, {"ct_ratio": 200 / 5}, {"multipliers": {Obis.parse("1.0.1.7.0.255"): 0.5}}):
            stream = Stream()
            for _ in range(60):
                stream.push(_randomised(make_body, rng), **options)


def test_scaling_down_by_division_gives_the_rounded_product():
    """DIVIDED (v / 10**n, for integers of up to 32 bits) prints what round(v * 10.0**-n, n) printed before."""
    rng = random.Random(11)
    edges = [0, 1, -1, 5, -5, 9, 15, 25, 99, 127, -128, 255, 2**15 - 1, -(2**15), 2**16 - 1, 2**31 - 1, -(2**31), 2**32 - 1]
    for n in [*range(1, 13), 16, 20, 50, 100, 127, 128]:
        raws = edges + [rng.randrange(-(2**31), 2**32) for _ in range(3000)] + [rng.randrange(-99999, 100000) for _ in range(3000)]
        for v in raws:
            assert repr(v / 10**n) == repr(round(v * 10.0**-n, n)), (v, n)
    assert all(t not in analysis.NARROW_INTEGERS for t in (axdr.LONG64, axdr.LONG64_UNSIGNED))


# -- a plan is never reused for another list -----------------------------------------------------
def _two(a: bytes, b: bytes, kw_a: dict | None = None, kw_b: dict | None = None) -> tuple[Push, Push]:
    stream = Stream()
    return stream.push(a, **(kw_a or {})), stream.push(b, **(kw_b or {}))


def test_not_reused_when_an_obis_code_differs():
    a, b = kamstrup(1), kamstrup(1, energy_obis="1.1.2.8.0.255")
    assert len(a) == len(b)
    pa, pb = _two(a, b, {"country": "NO"}, {"country": "NO"})
    assert pa.registers[-1].obis.dotted == "1.1.1.8.0.255" and pb.registers[-1].obis.dotted == "1.1.2.8.0.255"
    assert pa.registers[-1].name != pb.registers[-1].name


def test_not_reused_when_a_type_differs():
    pa, pb = _two(kamstrup(1), kamstrup(1, tag=I32))
    assert pa.registers[2].type == "double_long_unsigned" and pb.registers[2].type == "double_long"


@pytest.mark.parametrize("scaler,unit", [(-2, 33), (-1, 35), (1, 33)])
def test_not_reused_when_a_scaler_or_unit_on_the_wire_differs(scaler, unit):
    pa, pb = _two(aidon(3), aidon(3, scaler=scaler, unit=unit), {"country": "NO"}, {"country": "NO"})
    ra, rb = pa.register("1.0.31.7.0.255"), pb.register("1.0.31.7.0.255")
    assert ra.raw == rb.raw == -34
    assert (rb.scaler, rb.unit) == (scaler, {33: "A", 35: "V"}[unit]) and rb.value == interp.scale(-34, scaler)


def test_not_reused_when_the_list_id_differs():
    # a list id sent as an octet string under x-x:0.2.129 is a slot of the same template: it is pinned
    pa, pb = _two(aidon(0, list_id=b"AIDON_V0001"), aidon(0, list_id=b"AIDON_V0002"), {"country": "NO"}, {"country": "NO"})
    assert (pa.list_id, pa.profile) == ("AIDON_V0001", "aidon_no")
    assert (pb.list_id, pb.profile) == ("AIDON_V0002", None)


def test_a_first_value_that_reads_as_a_list_id_is_not_taken_for_a_clock():
    sec = {"security": SEC_KFM}
    pa, pb = _two(austrian(1), austrian(2, first=b"ABC_12345678"), sec, sec)
    assert pa.list_id is None and pa.profile == "at_evn"
    assert pb.list_id == "ABC_12345678" and pb.profile is None


def test_a_first_text_that_reads_as_a_list_id_is_taken_for_one():
    def positional(first: str) -> bytes:
        return build_data_notification(axdr.structure(axdr.visible_string(first), Data(U32, 1), Data(U32, 2)))

    pa, pb = _two(positional("1234567890"), positional("ABCD_67890"))
    assert pa.list_id is None and len(pa.registers) == 3
    assert pb.list_id == "ABCD_67890" and len(pb.registers) == 3  # the list id is register 1.1.0.2.129.255
    assert (pb.registers[0].obis.dotted, pb.registers[0].value) == ("1.1.0.2.129.255", "ABCD_67890")
    assert (pa.registers[0].obis, pa.registers[0].value) == (None, "1234567890")


@pytest.mark.parametrize(
    "kw_a,kw_b",
    [
        ({"country": "NO"}, {"country": "SE"}),  # country: 10 Wh in Norway, Wh in Sweden
        ({"country": "NO"}, {"country": "DK"}),
        ({"country": "NO"}, {"country": "NO", "profile": profile_by_name("kamstrup_se")}),  # profile
        ({"country": "NO"}, {"country": "NO", "timezone": "UTC"}),  # options
        ({"country": "NO"}, {"country": "NO", "ct_ratio": 40.0}),
        ({"country": "NO"}, {"country": "NO", "multipliers": {Obis.parse("1.1.1.7.0.255"): 2}}),
        ({"country": "NO", "multipliers": {Obis.parse("1.1.1.7.0.255"): 2}},
         {"country": "NO", "multipliers": {Obis.parse("1.1.1.7.0.255"): 3}}),
        ({"country": "NO", "ct_ratio": 0.0}, {"country": "NO", "ct_ratio": -0.0}),  # equal, but not the same
        ({"country": "NO", "security": SEC_KAM}, {"country": "NO", "security": SEC_KFM}),  # the maker
    ],
)  # fmt: skip
def test_not_reused_when_the_context_differs(kw_a, kw_b):
    pa, pb = _two(kamstrup(2), kamstrup(2), kw_a, kw_b)
    assert canon(pa) != canon(pb)


@pytest.mark.parametrize("a,b", [(0.0, -0.0), (-0.0, 0.0), (1.5, math.nan), (math.nan, math.nan)])
def test_pinned_floats_fit_only_when_they_print_the_same(a, b):
    # a float inside a structure value is pinned (the register is made once per plan): 0.0 == -0.0 must not fit
    def body(x: float) -> bytes:
        return build_data_notification(
            axdr.structure(obis("1.1.1.7.0.255"), axdr.structure(Data(axdr.FLOAT64, x), Data(U8, 1)))
        )

    pa, pb = _two(body(a), body(b))
    assert repr(pb.registers[0].value) == repr([b, 1])


def test_not_reused_when_an_object_list_differs():
    pa, pb = _two(object_list(0), object_list(0, obis_text="1.0.2.7.0.255"))
    assert pa.registers[-1].obis.dotted == "1.0.1.7.0.255" and pb.registers[-1].obis.dotted == "1.0.2.7.0.255"


def test_many_meters_of_one_kind_share_one_plan(analyses):
    # one stream per meter (each its own template cache); meter numbers differ, the list does not
    def aidon_meter(meter: str, i: int) -> bytes:
        body = axdr.array(
            axdr.structure(obis("1.1.0.2.129.255"), axdr.visible_string("AIDON_V0001")),
            axdr.structure(obis("0.0.96.1.0.255"), axdr.visible_string(meter)),
            axdr.structure(obis("1.0.1.7.0.255"), Data(U32, 1000 + i), su(0, 27)),
        )
        return build_data_notification(body)

    shared: dict[str, Interpreter] = {}
    streams = [Stream(shared) for _ in range(50)]
    for i in range(3):
        for n, stream in enumerate(streams):
            push = stream.push(aidon_meter(f"73599928909{n:05d}", i), country="NO")
            assert push.meter_id == f"73599928909{n:05d}" and push.register("1.0.1.7.0.255").value == 1000 + i
    (interpreter,) = shared.values()
    assert len(interpreter.plans) == 1
    assert len(analyses) == 150 + 1  # Stream.push's slow reference each time, and one plan


def _frame(apdu: bytes, keys: Keys, ic: int) -> bytes:
    return build_frame(b"\xe6\xe7\x00" + protect(apdu, keys=keys, system_title=KAM_ST, invocation_counter=ic))


def test_key_material_is_never_bypassed_or_cached():
    other = Keys(ek=bytes(range(16)), ak=bytes(range(16, 32)))
    dec = PushDecoder(SEED_KEYS, options=InterpretOptions(country="DK"))
    first = dec.feed(_frame(kamstrup(1), SEED_KEYS, 1))[0]
    assert isinstance(first, Push)
    # the same list under another key: refused by the tag check although its template and plan are cached
    refused = dec.feed(_frame(kamstrup(2), other, 2))[0]
    assert isinstance(refused, TagMismatch)
    again = dec.feed(_frame(kamstrup(3), SEED_KEYS, 3))[0]
    assert isinstance(again, Push) and again.register("1.1.1.7.0.255").value == 1003
    # a decoder with the other key decodes that list with its own values
    dec2 = PushDecoder(other, options=InterpretOptions(country="DK"))
    got = dec2.feed(_frame(kamstrup(4), other, 4))[0]
    assert isinstance(got, Push) and got.register("1.1.1.7.0.255").value == 1004
    # the plan cache holds no key
    for key in [*dec.interpreter.plans.entries, *dec2.interpreter.plans.entries]:
        assert not any(isinstance(x, (bytes, bytearray)) and (SEED_EK in x or SEED_AK in x) for x in key)


def test_the_plan_cache_is_bounded_and_gives_up_on_lists_that_never_repeat(monkeypatch):
    Plan = plans.Plan
    monkeypatch.setattr(plans, "MAX_PLANS", 8)
    monkeypatch.setattr(axdr, "RETRY_EVERY", 1000)
    stream = Stream()
    for i in range(30):  # 30 lists: the cache keeps 8
        stream.push(kamstrup(0, list_id=f"Kamstrup_V{i:04d}"))
    assert len(stream.interpreter({}).plans) <= 8
    # the same template, but a pinned slot (an OBIS-like 6-byte value) changes every push
    stream = Stream()
    made = []
    monkeypatch.setattr(plans, "Plan", lambda *args: made.append(args) or Plan(*args))
    rng = random.Random(3)
    for i in range(40):
        code = f"1.1.{rng.randrange(200)}.{rng.randrange(200)}.0.255"
        stream.push(kamstrup(i, energy_obis=code), country="NO")
    (entry,) = stream.interpreter({"country": "NO"}).plans.entries.values()
    assert len(entry) - 1 <= plans.PLANS_PER_KEY and entry[0] == 40
    assert len(made) == 4 * plans.PLANS_PER_KEY  # then the slow path (each push still checked by Stream.push)


def test_journal_rebuilds_take_the_fast_path_and_give_the_same_push():
    from han.pipeline import push_from_apdu

    interpreter = Interpreter(InterpretOptions(country="NO"))  # a sink worker's
    for i in range(4):
        apdu = kamstrup(i)
        push = push_from_apdu(apdu, SEC_KAM, interpreter)
        assert canon(push) == canon(slow(apdu, security=SEC_KAM, country="NO"))
        assert push.shared_layout() is not None


def test_code_cache_is_bounded_and_profile_choice_survives_its_clearing(seed_frame):
    """Codes from a hostile port must not grow memory forever; emptying the code cache must not
    let a cached profile choice (keyed by the codes) serve another list."""
    from obis import code

    (before,) = PushDecoder(SEED_KEYS).feed(seed_frame)
    for n in range(code.CACHE_MAX + 10):
        code.Obis.from_bytes(bytes([9, 9]) + n.to_bytes(4, "big"))
    assert len(code._CACHE) <= code.CACHE_MAX
    (after,) = PushDecoder(SEED_KEYS).feed(seed_frame)
    assert [(r.obis, r.name, r.value, r.unit) for r in after.registers] == [
        (r.obis, r.name, r.value, r.unit) for r in before.registers
    ]
    assert after.profile == before.profile


# -- the caches belong to an interpreter ---------------------------------------------------------
def test_each_interpreter_keeps_its_own_caches(analyses):
    templates = axdr.Templates()
    one, two = Interpreter(InterpretOptions(country="NO")), Interpreter(InterpretOptions(country="NO"))
    for i in range(3):
        apdu = kamstrup(i)
        n = parse_data_notification(apdu, templates)
        assert canon(one.interpret(n, apdu=apdu)) == canon(two.interpret(n, apdu=apdu))
    assert len(one.plans) == len(two.plans) == 1
    assert len(analyses) == 2  # one plan each: nothing is shared between them


def test_the_options_are_one_frozen_value():
    m = {Obis.parse("1.1.1.7.0.255"): 2.0}
    options = InterpretOptions(country="NO", multipliers=m)
    m[Obis.parse("1.1.2.7.0.255")] = 3.0  # the caller's dict changing later changes nothing
    assert dict(options.multipliers) == {Obis.parse("1.1.1.7.0.255"): 2.0}
    with pytest.raises(TypeError):
        options.multipliers[Obis.parse("1.1.2.7.0.255")] = 3.0  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.country = "SE"  # type: ignore[misc]
    same = InterpretOptions(country="NO", multipliers={Obis.parse("1.1.1.7.0.255"): 2.0})
    assert same == options and hash(same) == hash(options)
    assert InterpretOptions().multipliers == {} and InterpretOptions(multipliers=None).multipliers == {}


def test_each_thread_rebuilds_with_its_own_interpreter():
    import threading

    from han.pipeline import push_from_apdu, thread_interpreter

    options = InterpretOptions(country="NO")
    mine = thread_interpreter(options)
    assert thread_interpreter(options) is mine
    assert thread_interpreter(InterpretOptions(country="SE")) is not mine
    got: list = []

    def worker() -> None:
        interpreter = thread_interpreter(options)
        got.append((interpreter, push_from_apdu(kamstrup(1), SEC_KAM, interpreter)))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    ((theirs, push),) = got
    assert theirs is not thread_interpreter(options) and theirs.options is options
    assert canon(push) == canon(slow(kamstrup(1), SEC_KAM, country="NO"))
