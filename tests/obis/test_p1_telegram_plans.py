"""A stream of P1 telegrams built from its layout's plan gives the very pushes each telegram gives
on its own: whichever lines change (values, the clock, an M-Bus channel's device type or unit, the
version), when layouts alternate, lines move, or values are multiplied."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from decoders.xdlms.dsmr import parse_telegram
from obis.code import Obis
from obis.interpret import Interpreter, InterpretOptions
from obis.interpret.dsmr import telegram_push

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "p1_vectors.jsonl"
if not VECTORS.exists():
    VECTORS = Path("/work/shared/vectors/p1_vectors.jsonl")

DSMR5 = (
    "/ISK5\\2M550T-1012\r\n\r\n"
    "1-3:0.2.8(50)\r\n0-0:1.0.0(240101120000W)\r\n0-0:96.1.1(4530303034303031353934373534343134)\r\n"
    "1-0:1.8.1(001234.567*kWh)\r\n1-0:1.8.2(002345.678*kWh)\r\n1-0:2.8.1(000001.000*kWh)\r\n"
    "1-0:2.8.2(000002.000*kWh)\r\n0-0:96.14.0(0002)\r\n1-0:1.7.0(00.512*kW)\r\n1-0:2.7.0(00.000*kW)\r\n"
    "0-0:96.7.21(00004)\r\n1-0:99.97.0(1)(0-0:96.7.19)(230101120000W)(0000000240*s)\r\n"
    "0-0:96.13.0()\r\n1-0:32.7.0(230.1*V)\r\n1-0:31.7.0(002*A)\r\n"
    "0-1:24.1.0(003)\r\n0-1:96.1.0(4730303339303031373030363234363137)\r\n"
    "0-1:24.2.1(240101115500W)(00123.456*m3)\r\n"
    "0-2:96.1.0(4730303339303031373030363234363138)\r\n0-2:24.2.1(240101115500W)(00012.345*GJ)\r\n!"
)


def _telegram(text: str):
    return parse_telegram(text.encode("latin-1") + b"0000\r\n", crc_checked=True)


def _step(text: str, k: int) -> str:
    """The telegram with every number shifted by ``k`` and the clock ``k`` seconds on."""
    text = re.sub(r"\((\d+)(\.\d+)?\*", lambda m: f"({int(m.group(1)) + k:0{len(m.group(1))}d}{m.group(2) or ''}*", text)
    return text.replace("240101120000W", f"2401011200{k % 60:02d}W")


def _variants(text: str) -> list[str]:
    """Each change on its own, from the telegram and back to it."""
    out = [text, text] + [_step(text, k) for k in (1, 2, 3)]
    for changed in (
        text.replace("0-1:24.1.0(003)", "0-1:24.1.0(007)"),  # the channel's device type: gas to water
        text.replace("*GJ)", "*m3)"),  # a channel named by its unit only
        text.replace("1-3:0.2.8(50)", "1-3:0.2.8(42)"),  # another version: maybe another specification
        text.replace("0-0:1.0.0(240101120000W)", "0-0:1.0.0(999999999999W)"),  # a clock that is no time
        text.replace("1-0:1.7.0(00.512*kW)\r\n", ""),  # a line fewer: another layout
        text.replace("0-0:96.13.0()", "0-0:96.13.0(48656C6C6F)"),  # a text message, lines move on
    ):
        assert changed != text
        out += [changed, text]
    return out


def _same_pushes(texts: list[str], options: InterpretOptions) -> None:
    interpreter = Interpreter(options)
    for text in texts:
        telegram = _telegram(text)
        assert interpreter.telegram(telegram) == telegram_push(telegram, options), text


@pytest.mark.parametrize(
    "options",
    [InterpretOptions(), InterpretOptions(country="BE"), InterpretOptions(multipliers={Obis.parse("1-0:1.7.0"): 40.0})],
    ids=["default", "country", "multiplied"],
)
def test_a_stream_through_plans_equals_each_telegram_alone(options):
    _same_pushes(_variants(DSMR5) + _variants(DSMR5)[::-1], options)


def test_alternating_layouts_and_the_same_lines_at_other_offsets():
    other = DSMR5.replace("1-3:0.2.8(50)\r\n", "")  # every line at another offset, one line fewer
    _same_pushes([DSMR5, other, DSMR5, other, _step(DSMR5, 1), _step(other, 2), DSMR5], InterpretOptions())


def test_unchanged_lines_keep_their_registers():
    """What the plan is for: a repeated line's register is the one made before, not made again."""
    interpreter = Interpreter()
    a, b = _telegram(DSMR5), _telegram(_step(DSMR5, 1))
    first, second = interpreter.telegram(a), interpreter.telegram(b)
    kept = [x is y for x, y in zip(first.registers, second.registers)]
    assert kept == [x.text == y.text for x, y in zip(a.lines, b.lines)]
    assert 0 < kept.count(True) < len(kept)


@pytest.mark.skipif(not VECTORS.exists(), reason="p1_vectors.jsonl not available")
def test_every_vector_telegram_in_one_stream():
    texts = [json.loads(line)["telegram"] for line in VECTORS.read_text().splitlines() if line.strip()]
    texts = [t[: t.index("!") + 1] for t in texts if "!" in t]
    _same_pushes(texts + [_step(t, 1) for t in texts] + texts, InterpretOptions())
