"""The JSON writer's fast way gives ``json.dumps(push_dict(push))`` byte for byte."""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace

import pytest

from conftest import load_vectors
from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification, parse_data_notification
from decoders.xdlms.axdr import Data
from han.formats import jsonfmt
from han.formats.jsonfmt import JsonWriter
from han.formats.record import push_dict
from han.pipeline import PushDecoder
from obis.code import Obis
from obis.interpret import InterpretOptions, Interpreter
from obis.push import Push
from vectorcheck import country_of, is_push_vector, keys_of

SEPARATORS = {True: (",", ":"), False: None}


def reference(push: Push, lines: bool) -> str:
    return json.dumps(push_dict(push), ensure_ascii=False, separators=SEPARATORS[lines])


def writer_text(pushes: list[Push], lines: bool) -> str:
    out = io.StringIO()
    w = JsonWriter(out, lines=lines)
    for p in pushes:
        w.write(p)
    w.close()
    return out.getvalue()


def reference_text(pushes: list[Push], lines: bool) -> str:
    if lines:
        return "".join(reference(p, True) + "\n" for p in pushes)
    return "[\n" + ",\n".join(reference(p, False) for p in pushes) + "\n]\n" if pushes else "[]\n"


def planned(*bodies: Data, **kw) -> list[Push]:
    """Pushes decoded the way a stream does (templates, plans), so that they carry a shared layout."""
    templates = axdr.Templates()
    interpreter = Interpreter(InterpretOptions(**kw))
    out = []
    for body in bodies:
        apdu = build_data_notification(body)
        out.append(interpreter.interpret(parse_data_notification(apdu, templates), apdu=apdu))
    return out


def obis(text: str) -> Data:
    return axdr.octet_string(bytes(Obis.parse(text)))


def awkward(i: int) -> Data:
    """Values JSON has to work for: text with quotes, backslashes, control characters and non-ASCII, floats."""
    return axdr.structure(
        axdr.visible_string('Odd_"list"\\V1'),
        obis("1.1.96.1.0.255"), Data(axdr.UTF8_STRING, "Zähler «\"x\"» \x01\t\n\u2028"),
        obis("1.1.1.7.0.255"), Data(axdr.FLOAT32, [1.5, -0.0, math.inf, -math.inf, math.nan][i % 5]),
        obis("1.1.2.7.0.255"), Data(axdr.FLOAT64, 1e300 * (i + 1)),
        obis("1.1.3.7.0.255"), Data(axdr.BOOLEAN, bool(i % 2)),
        obis("1.1.4.7.0.255"), Data(axdr.NULL, None),
        obis("1.1.5.7.0.255"), axdr.octet_string(bytes([0x22, 0x5C, i, 0x80])),
        obis("1.1.6.7.0.255"), Data(axdr.LONG64, -(2**63) + i),
        obis("1.1.7.7.0.255"), axdr.structure(Data(axdr.UNSIGNED, 7)),  # a one-item list (pinned): fast
    )  # fmt: skip


@pytest.mark.parametrize("lines", [True, False])
def test_awkward_values(lines):
    pushes = planned(*[awkward(i) for i in range(10)])
    assert all(p.shared_layout() is not None for p in pushes)
    assert writer_text(pushes, lines) == reference_text(pushes, lines)


@pytest.mark.parametrize("lines", [True, False])
def test_a_value_holding_a_list_of_several_items_takes_the_usual_way(lines):
    body = lambda i: axdr.structure(  # noqa: E731
        obis("1.1.1.7.0.255"), Data(axdr.LONG_UNSIGNED, i), obis("1.1.2.7.0.255"), axdr.structure(Data(axdr.UNSIGNED, i), Data(axdr.UNSIGNED, 2))
    )
    pushes = planned(*[body(i) for i in range(3)])
    w = JsonWriter(io.StringIO(), lines=lines)
    assert [w.encode(p) for p in pushes] == [reference(p, lines) for p in pushes]
    assert pushes[0].shared_layout() is not None and w._fast(pushes[0]) is None  # the fast way declined


def test_a_push_rebuilt_with_other_registers_takes_the_usual_way():
    p = planned(awkward(1), awkward(2))[1]
    changed = replace(p, registers=p.registers[:3])
    assert p.shared_layout() is not None and changed.shared_layout() is None
    assert writer_text([p, changed], True) == reference_text([p, changed], True)
    renamed = replace(p, registers=tuple(r._replace(name="x") for r in p.registers))
    assert renamed.shared_layout() is None
    assert writer_text([p, renamed], True) == reference_text([p, renamed], True)


def test_an_empty_list():
    pushes = planned(axdr.structure(), axdr.array())
    assert writer_text(pushes, True) == reference_text(pushes, True)


def test_a_register_dict_whose_fields_depend_on_the_value_turns_the_fast_way_off(monkeypatch):
    real = jsonfmt.register_dict

    def with_text(r):
        return {**real(r), "text": str(r.value)}

    monkeypatch.setattr(jsonfmt, "register_dict", with_text)
    monkeypatch.setattr(jsonfmt, "push_dict", lambda p: {"registers": [with_text(r) for r in p.registers]})
    pushes = planned(*[awkward(i) for i in range(3)])
    w = JsonWriter(io.StringIO(), lines=True)
    for p in pushes:
        assert w.encode(p) == json.dumps({"registers": [with_text(r) for r in p.registers]}, ensure_ascii=False, separators=(",", ":"))
    assert w._pieces[pushes[0].shared_layout()] is None and w._fast(pushes[0]) is None


def test_the_layout_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(jsonfmt, "MAX_LAYOUTS", 4)
    w = JsonWriter(io.StringIO(), lines=True)
    for i in range(10):
        (p,) = planned(axdr.structure(axdr.visible_string(f"List_V{i}"), obis("1.1.1.7.0.255"), Data(axdr.LONG_UNSIGNED, i)))
        assert w.encode(p) == reference(p, True)
    assert len(w._pieces) <= 4 and len(w._whole) <= 4


@pytest.mark.parametrize("lines", [True, False])
def test_the_pushs_own_fields_by_kind(lines):
    # no security, security, notes: each kind has its own text around the fields; awkward text in them
    pushes = planned(*[awkward(i) for i in range(3)])
    kinds = []
    for i, p in enumerate(pushes):
        kinds.append(replace(p, notes=("a \"note\"", "\x00 ünïcode \u2028")[: i % 3]))
        kinds.append(replace(p, security=None, list_id="\x00list", meter_id=None, timestamp=None))
    assert all(p.shared_layout() is not None for p in kinds)  # the same registers: the layout still holds
    w = JsonWriter(io.StringIO(), lines=lines)
    assert [w.encode(p) for p in kinds] == [reference(p, lines) for p in kinds]
    assert all(w._fast(p) is not None for p in kinds)


def test_a_push_dict_of_another_shape_turns_the_fast_way_off(monkeypatch):
    real = jsonfmt.push_dict

    def reordered(p):
        d = real(p)
        return {"meter_id": d.pop("meter_id"), **d, "extra": str(p.list_id).lower()}

    monkeypatch.setattr(jsonfmt, "push_dict", reordered)
    pushes = planned(*[awkward(i) for i in range(3)])
    w = JsonWriter(io.StringIO(), lines=True)
    for p in pushes:
        assert w.encode(p) == json.dumps(reordered(p), ensure_ascii=False, separators=(",", ":"))


VECTORS = [v for v in load_vectors("real_vectors.jsonl") if is_push_vector(v)]


@pytest.mark.skipif(not VECTORS, reason="shared vectors not available")
@pytest.mark.parametrize("lines", [True, False])
def test_every_vector(lines):
    pushes = []
    for v in VECTORS:
        dec = PushDecoder(keys_of(v), options=InterpretOptions(country=country_of(v)))
        data = bytes.fromhex(v["hex"])
        pushes += [x for x in dec.feed(data) + dec.flush() + dec.feed(data) + dec.flush() if isinstance(x, Push)]
    assert sum(p.shared_layout() is not None for p in pushes) >= 60
    assert writer_text(pushes, lines) == reference_text(pushes, lines)
