"""Fuzz: A-XDR decoding of any bytes, encode -> decode round trips, and the OBIS interpreters.

* ``axdr.decode_at`` / ``decode`` / ``annotate`` on any bytes: a value or an
  :class:`AxdrError`, nothing else.
* Random data trees of every type (nested arrays and structures,
  compact arrays, strings, bit strings, date-times, floats including NaN and
  -0.0) encode and decode to equal values.  Equality is ``==`` except for
  floats, compared by their bits' meaning: NaN equals NaN (the wire keeps
  a NaN a NaN, Python's ``nan != nan`` would make every tree holding one
  "different") and 0.0 differs from -0.0 (the sign is on the wire).
* The template fast path (:class:`axdr.Templates`) gives the same body as a
  full decode, for every random tree, pushed twice as a meter would.
* ``obis.interpret`` over random trees in the list shapes meters use and
  with random list ids, profiles and countries: a Push, or a DecodeError
  (ProfileError for a list a forced profile cannot take), never
  KeyError / AttributeError / TypeError / IndexError.
"""

from __future__ import annotations

import math
import struct

from hypothesis import assume, given, strategies as st

from fuzzprofile import documented, examples

from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification, parse_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime
from decoders.errors import AxdrError, DecodeError
from decoders.lengths import encode_length
from obis.interpret import InterpretOptions, Interpreter, interpret
from obis.profiles import PROFILES
from obis.push import Push, SecurityInfo

# -- strategies: random A-XDR trees ------------------------------------------------------------
INT_RANGES = {
    axdr.INTEGER: (-(2**7), 2**7 - 1),
    axdr.LONG: (-(2**15), 2**15 - 1),
    axdr.DOUBLE_LONG: (-(2**31), 2**31 - 1),
    axdr.LONG64: (-(2**63), 2**63 - 1),
    axdr.UNSIGNED: (0, 2**8 - 1),
    axdr.ENUM: (0, 2**8 - 1),
    axdr.BCD: (0, 2**8 - 1),
    axdr.LONG_UNSIGNED: (0, 2**16 - 1),
    axdr.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1),
    axdr.LONG64_UNSIGNED: (0, 2**64 - 1),
}


def _ints() -> st.SearchStrategy[Data]:
    return st.sampled_from(sorted(INT_RANGES)).flatmap(
        lambda t: st.integers(*INT_RANGES[t]).map(lambda v: Data(t, v))
    )


def _float32() -> st.SearchStrategy[Data]:
    # any 32-bit pattern: NaNs with payloads, infinities, subnormals, -0.0
    return st.binary(min_size=4, max_size=4).map(lambda b: Data(axdr.FLOAT32, struct.unpack(">f", b)[0]))


def _float64() -> st.SearchStrategy[Data]:
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.binary(min_size=8, max_size=8).map(lambda b: struct.unpack(">d", b)[0]),
    ).map(lambda v: Data(axdr.FLOAT64, v))


leaves = st.one_of(
    st.just(Data(axdr.NULL, None)),
    st.booleans().map(lambda v: Data(axdr.BOOLEAN, v)),
    _ints(),
    _float32(),
    _float64(),
    st.binary(max_size=40).map(lambda b: Data(axdr.OCTET_STRING, b)),
    st.binary(max_size=300).map(lambda b: Data(axdr.OCTET_STRING, b)),  # long-form lengths (0x81, 0x82)
    st.text(st.characters(max_codepoint=255), max_size=30).map(lambda s: Data(axdr.VISIBLE_STRING, s)),
    st.text(max_size=30).map(lambda s: Data(axdr.UTF8_STRING, s)),
    st.text("01", max_size=40).map(lambda s: Data(axdr.BIT_STRING, s)),
    st.binary(min_size=12, max_size=12).map(lambda b: Data(axdr.DATE_TIME, b)),
    st.binary(min_size=5, max_size=5).map(lambda b: Data(axdr.DATE, b)),
    st.binary(min_size=4, max_size=4).map(lambda b: Data(axdr.TIME, b)),
)


def containers(children: st.SearchStrategy[Data]) -> st.SearchStrategy[Data]:
    return st.one_of(
        st.lists(children, max_size=8).map(lambda xs: Data(axdr.STRUCTURE, tuple(xs))),
        st.lists(children, max_size=8).map(lambda xs: Data(axdr.ARRAY, tuple(xs))),
    )


#: nesting stays below axdr.MAX_DEPTH (the decoder refuses deeper data on purpose)
trees = st.recursive(leaves, containers, max_leaves=40)


# -- compact arrays: a type description and untagged contents ------------------------------------
SIMPLE_DESC = [t for t in axdr._FIXED] + [axdr.OCTET_STRING, axdr.VISIBLE_STRING]


@st.composite
def compact_arrays(draw) -> tuple[bytes, Data]:
    """A compact-array (encoded by this test, the project encodes compact arrays as arrays) and its value."""
    elem = st.sampled_from(SIMPLE_DESC)
    kind = draw(st.sampled_from(["simple", "struct", "array"]))
    if kind == "simple":
        descs = [draw(elem)]
    elif kind == "struct":
        descs = draw(st.lists(elem, min_size=1, max_size=4))
    else:
        descs = [draw(elem)]
    count = draw(st.integers(1, 6))
    inner_count = draw(st.integers(1, 3))

    def value_of(tag):
        return draw(leaves.filter(lambda d: d.tag == tag)) if False else draw(_leaf_of(tag))

    items, contents = [], bytearray()
    for _ in range(count):
        if kind == "simple":
            d = value_of(descs[0])
            items.append(d)
            contents += axdr.encode(d)[1:]
        elif kind == "struct":
            members = [value_of(t) for t in descs]
            items.append(Data(axdr.STRUCTURE, tuple(members)))
            for m in members:
                contents += axdr.encode(m)[1:]
        else:
            members = [value_of(descs[0]) for _ in range(inner_count)]
            items.append(Data(axdr.ARRAY, tuple(members)))
            for m in members:
                contents += axdr.encode(m)[1:]
    if kind == "simple":
        desc = bytes((descs[0],))
    elif kind == "struct":
        desc = bytes((axdr.STRUCTURE, len(descs))) + bytes(descs)
    else:
        desc = bytes((axdr.ARRAY,)) + inner_count.to_bytes(2, "big") + bytes((descs[0],))
    raw = bytes((axdr.COMPACT_ARRAY,)) + desc + encode_length(len(contents)) + bytes(contents)
    return raw, Data(axdr.COMPACT_ARRAY, tuple(items))


def _leaf_of(tag: int) -> st.SearchStrategy[Data]:
    if tag in INT_RANGES:
        return st.integers(*INT_RANGES[tag]).map(lambda v: Data(tag, v))
    if tag == axdr.BOOLEAN:
        return st.booleans().map(lambda v: Data(tag, v))
    if tag == axdr.FLOAT32:
        return _float32()
    if tag == axdr.FLOAT64:
        return _float64()
    if tag in (axdr.DATE_TIME, axdr.DATE, axdr.TIME):
        size = axdr._FIXED[tag][0]
        return st.binary(min_size=size, max_size=size).map(lambda b: Data(tag, b))
    if tag == axdr.OCTET_STRING:
        return st.binary(max_size=10).map(lambda b: Data(tag, b))
    return st.text(st.characters(max_codepoint=255), max_size=10).map(lambda s: Data(tag, s))


def same(a: Data, b: Data) -> bool:
    """Equal A-XDR values; floats by meaning: NaN equals NaN, -0.0 differs from 0.0."""
    if a.tag != b.tag:
        return False
    if a.tag in (axdr.ARRAY, axdr.STRUCTURE, axdr.COMPACT_ARRAY):
        return len(a.value) == len(b.value) and all(same(x, y) for x, y in zip(a.value, b.value))
    if a.tag in (axdr.FLOAT32, axdr.FLOAT64):
        x, y = a.value, b.value
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return x == y and math.copysign(1, x) == math.copysign(1, y)
    return a.value == b.value and type(a.value) is type(b.value)


# -- decoding any bytes --------------------------------------------------------------------------
@given(st.binary(max_size=400))
def test_decode_any_bytes(buf):
    """Every entry point: a value (that re-encodes to a prefix of the input) or AxdrError."""
    got = documented(axdr.decode_at, buf, 0)
    ann = documented(axdr.annotate, buf, 0)
    full = documented(axdr.decode, buf)
    assert isinstance(got, AxdrError) == isinstance(ann, AxdrError)
    for r in (got, ann, full):
        assert not isinstance(r, DecodeError) or isinstance(r, AxdrError)
    if not isinstance(got, AxdrError):
        value, end = got
        assert ann.end == end and same(ann.data, value)
        assert isinstance(full, AxdrError) == (end != len(buf))


@given(st.binary(min_size=1, max_size=60), st.sampled_from([axdr.ARRAY, axdr.STRUCTURE, axdr.COMPACT_ARRAY]))
def test_decode_container_prefixes(rest, tag):
    """Containers (the tags that take counts and nest) opened on random bytes."""
    for buf in (bytes((tag,)) + rest, bytes((tag, 0x84)) + rest, bytes((axdr.STRUCTURE, 2, tag)) + rest):
        documented(axdr.decode_at, buf, 0)
        documented(axdr.annotate, buf, 0)


# -- round trips ---------------------------------------------------------------------------------
@given(trees)
def test_round_trip_random_trees(value):
    raw = axdr.encode(value)
    back, end = axdr.decode_at(raw, 0)
    assert end == len(raw)
    assert same(back, value), (value, back)
    assert same(axdr.annotate(raw).data, value)


@given(compact_arrays())
def test_round_trip_compact_arrays(case):
    raw, value = case
    back = axdr.decode(raw)
    assert same(back, value), (value, back)
    assert same(axdr.annotate(raw).data, value)


@given(trees, st.integers(0, 2**32 - 1), st.sampled_from([None, "bare", "tagged"]))
def test_notification_round_trip_and_template_path(body, invoke, dt_kind):
    """A DataNotification built from a random body parses back to it, the second time through a template."""
    dt = None if dt_kind is None else CosemDateTime.from_bytes(bytes.fromhex("07EA0B15060C0000FF800000"))
    apdu = build_data_notification(body, invoke_id_and_priority=invoke, datetime=dt, tagged_datetime=dt_kind == "tagged")
    templates = axdr.Templates()
    first = parse_data_notification(apdu, templates)
    second = parse_data_notification(apdu, templates)  # a meter's next push: the template path when one was learnt
    for n in (first, second):
        assert n.invoke_id_and_priority == invoke
        assert same(n.body, body)
        assert (n.datetime.raw if n.datetime else None) == (dt.raw if dt else None)


@given(trees, trees)
def test_template_never_misreads_another_body(a, b):
    """A template learnt from one body, offered a different body of the same size, decodes it right."""
    templates = axdr.Templates()
    pa = build_data_notification(a)
    pb = build_data_notification(b)
    parse_data_notification(pa, templates)
    parse_data_notification(pa, templates)
    assert same(parse_data_notification(pb, templates).body, b)


# -- OBIS interpreters -----------------------------------------------------------------------------
def _obis() -> st.SearchStrategy[Data]:
    common = st.sampled_from(
        [
            bytes((1, 1, 1, 7, 0, 255)),
            bytes((1, 0, 1, 8, 0, 255)),
            bytes((1, 0, 32, 7, 0, 255)),
            bytes((0, 0, 1, 0, 0, 255)),
            bytes((1, 1, 0, 2, 129, 255)),
            bytes((0, 0, 96, 1, 0, 255)),
            bytes((0, 0, 42, 0, 0, 255)),
        ]
    )
    return st.one_of(common, st.binary(min_size=6, max_size=6), st.binary(max_size=8)).map(axdr.octet_string)


LIST_IDS = st.sampled_from(
    ["Kamstrup_V0001", "KFM_001", "AIDON_V0001", "EMBRIQ_V1_1", "ISK1030775213859", "", "x_y"]
).map(axdr.visible_string)
values = st.one_of(leaves, containers(leaves))
scaler_unit = st.builds(
    lambda s, u: axdr.structure(Data(axdr.INTEGER, s), Data(axdr.ENUM, u)), st.integers(-128, 127), st.integers(0, 255)
)
odd_scaler_unit = st.lists(leaves, max_size=3).map(lambda xs: Data(axdr.STRUCTURE, tuple(xs)))


@st.composite
def shaped_bodies(draw) -> Data:
    """Bodies in the list shapes of obis.interpret, with random parts where meters might deviate."""
    shape = draw(st.sampled_from(["flat_pairs", "structs", "flat_triples", "push_object_list", "positional", "any"]))
    n = draw(st.integers(0, 8))
    if shape == "flat_pairs":
        items = [draw(LIST_IDS)]
        for _ in range(n):
            items += [draw(_obis()), draw(values)]
        return axdr.structure(*items)
    if shape == "structs":
        entries = []
        for _ in range(n):
            su = draw(st.one_of(st.none(), scaler_unit, odd_scaler_unit))
            entries.append(axdr.structure(draw(_obis()), draw(values), *((su,) if su else ())))
        return Data(draw(st.sampled_from([axdr.ARRAY, axdr.STRUCTURE])), tuple(entries))
    if shape == "flat_triples":
        items = [Data(axdr.OCTET_STRING, draw(st.binary(min_size=12, max_size=12)))]
        for _ in range(n):
            items += [draw(_obis()), draw(values), draw(st.one_of(scaler_unit, odd_scaler_unit))]
        items.append(axdr.octet_string(draw(st.binary(max_size=16))))
        return axdr.structure(*items)
    if shape == "push_object_list":
        descs = []
        for _ in range(n):
            descs.append(
                axdr.structure(
                    Data(axdr.LONG_UNSIGNED, draw(st.integers(0, 70))),
                    draw(_obis()),
                    Data(axdr.INTEGER, draw(st.integers(-2, 10))),
                    Data(axdr.LONG_UNSIGNED, draw(st.integers(0, 3))),
                )
            )
        vals = [draw(values) for _ in range(draw(st.integers(0, n + 1)))]
        return axdr.structure(axdr.array(*descs), *vals)
    if shape == "positional":
        return axdr.structure(draw(LIST_IDS), *[draw(leaves) for _ in range(n)])
    return draw(trees)


@given(
    body=shaped_bodies(),
    profile=st.one_of(st.none(), st.sampled_from(PROFILES)),
    country=st.sampled_from([None, "DK", "NO", "SE", "AT", "CH", "LU", "SI", "PL", "ZZ"]),
    title=st.one_of(st.none(), st.sampled_from([b"KAM", b"KFM", b"SAG", b"LGZ", b"ISK", b"AID"]).map(lambda m: m + b"\x01" * 5)),
    dt=st.booleans(),
)
@examples(300)
def test_interpret_random_lists(body, profile, country, title, dt):
    datetime = CosemDateTime.from_bytes(bytes.fromhex("07EA0B15060C0000FF800000")) if dt else None
    apdu = build_data_notification(body, datetime=datetime)
    security = SecurityInfo(system_title=title, invocation_counter=1, security_control=0x30, verified=True, tag=0xDB) if title else None
    templates = axdr.Templates()
    interpreter = Interpreter(InterpretOptions(profile=profile, country=country))
    for _ in range(2):  # the second time through the template and its cached plan
        n = parse_data_notification(apdu, templates)
        r = documented(interpreter.interpret, n, security=security, apdu=apdu)
        assert isinstance(r, (Push, DecodeError))
        if isinstance(r, Push):
            for reg in r.registers:
                reg.obis_text  # noqa: B018
            r.shared_layout  # noqa: B018


@given(body=trees, ct=st.one_of(st.none(), st.floats(0.1, 1000)))
def test_interpret_any_tree(body, ct):
    assume(body.tag != axdr.NULL or True)
    n = parse_data_notification(build_data_notification(body))
    r = documented(interpret, n, InterpretOptions(ct_ratio=ct))
    assert isinstance(r, (Push, DecodeError))
