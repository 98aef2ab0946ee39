"""``han simulate --meter dsmr5|fluvius|sweden``: P1 text telegrams with their CRC, tariffs, gas and capacity objects."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from decoders.link.crc import crc16_arc
from decoders.xdlms.dsmr import parse_telegram
from han.cli import main
from han.p1sim import METERS, MBUS_EVERY, P1Simulator

UTC = timezone.utc


def _objects(telegram: bytes) -> dict[str, tuple[str, ...]]:
    return {line.ident: line.values for line in parse_telegram(telegram).lines if line.ident}


def _number(text: str) -> float:
    return float(text.split("*")[0])


@pytest.mark.parametrize("name", sorted(METERS))
def test_every_telegram_has_a_good_crc_and_one_object_per_template(name):
    sim = P1Simulator(name, seed=4)
    for telegram in sim.frames(datetime(2026, 1, 15, 11, 0, tzinfo=UTC), 7.0, 50):
        assert telegram.startswith(b"/") and telegram.endswith(b"\r\n")
        bang = telegram.rindex(b"!")
        assert int(telegram[bang + 1 : bang + 5], 16) == crc16_arc(telegram[: bang + 1])
        parsed = parse_telegram(telegram)  # the syntax parser checks the CRC too
        assert parsed.crc == parsed.crc_computed
        assert len([x for x in parsed.lines if x.ident]) == len(METERS[name].lines)


def test_dsmr5_both_tariffs_advance_by_the_energy_of_the_power():
    """A day at one telegram a minute: the low tariff (1) runs at night and the weekend, the normal (2) by day;
    import and export grow by the integral of the power the telegrams show."""
    sim = P1Simulator("dsmr5", seed=11)
    start = datetime(2026, 5, 13, 22, 0, tzinfo=UTC)  # a Wednesday midnight in Amsterdam (CEST)
    rows = [_objects(t) for t in sim.frames(start, 60.0, 24 * 60 + 1)]
    first, last = rows[0], rows[-1]
    grew = {c: _number(last[c][0]) - _number(first[c][0]) for c in ("1-0:1.8.1", "1-0:1.8.2", "1-0:2.8.1", "1-0:2.8.2")}
    assert grew["1-0:1.8.1"] > 0 and grew["1-0:1.8.2"] > 0  # both tariffs advanced
    assert grew["1-0:2.8.2"] > 0  # solar export by day, in the normal tariff
    tariffs = [int(r["0-0:96.14.0"][0]) for r in rows]
    assert tariffs[0] == 1 and tariffs[12 * 60] == 2  # 00:00 low, 12:00 normal
    # energy == the power the telegrams show (kW over each minute; the power is the one reached at the telegram)
    imp = sum(_number(r["1-0:1.7.0"][0]) for r in rows[1:]) / 60
    exp = sum(_number(r["1-0:2.7.0"][0]) for r in rows[1:]) / 60
    assert imp == pytest.approx(grew["1-0:1.8.1"] + grew["1-0:1.8.2"], abs=0.01)
    assert exp == pytest.approx(grew["1-0:2.8.1"] + grew["1-0:2.8.2"], abs=0.01)
    assert rows[0]["0-0:1.0.0"][0] == "260514000000S"


def test_gas_is_read_every_5_minutes_with_its_own_time_stamp():
    sim = P1Simulator("dsmr5", seed=2)
    start = datetime(2026, 1, 20, 9, 58, 30, tzinfo=UTC)  # 10:58:30 CET
    rows = [_objects(t) for t in sim.frames(start, 10.0, 60)]  # ten minutes
    stamps, values = zip(*(r["0-1:24.2.1"] for r in rows))
    assert stamps[0] == "260120105500W"
    assert sorted(set(stamps)) == ["260120105500W", "260120110000W", "260120110500W"]
    assert all(re.fullmatch(r"\d{5}\.\d{3}\*m3", v) for v in values)
    by_stamp = {}
    for s, v in zip(stamps, values):
        by_stamp.setdefault(s, set()).add(v)
    assert all(len(v) == 1 for v in by_stamp.values())  # one reading per 5 minutes, not per telegram
    assert [_number(next(iter(by_stamp[s]))) for s in sorted(by_stamp)] == sorted(
        _number(next(iter(v))) for v in by_stamp.values())
    assert rows[0]["0-1:24.1.0"] == ("003",)
    assert MBUS_EVERY == 300


def test_fluvius_sends_capacity_objects_and_gas_and_water_channels():
    sim = P1Simulator("fluvius", seed=5)
    start = datetime(2026, 7, 31, 21, 0, tzinfo=UTC)  # 23:00 CEST, the month ends at the next midnight
    rows = [_objects(t) for t in sim.frames(start, 30.0, 4 * 120 + 1)]  # four hours at 30 s
    head = parse_telegram(next(P1Simulator("fluvius", seed=5).frames(start, 1, 1))).header
    assert head == "FLU5\\253769484_A"
    r = rows[-1]
    assert r["0-0:96.1.4"] == ("50217",)
    assert re.fullmatch(r"\d{2}\.\d{3}\*kW", r["1-0:1.4.0"][0])
    peak_time, peak = r["1-0:1.6.0"]
    assert re.fullmatch(r"2608\d{8}S", peak_time) and _number(peak) > 0
    history = r["0-0:98.1.0"]
    count = int(history[0])
    assert count == 4 and history[1:3] == ("1-0:1.6.0", "1-0:1.6.0")  # three invented months + July
    assert history[3] == "260701000000S"  # the newest month first: July's peak, with its time
    assert len(history) == 3 + 3 * count
    assert rows[0]["0-1:24.1.0"] == ("003",) and rows[0]["0-2:24.1.0"] == ("007",)
    assert "0-1:24.2.3" in rows[0] and "0-2:24.2.1" in rows[0]  # Fluvius: gas 24.2.3, water 24.2.1
    tariffs = {int(x["0-0:96.14.0"][0]) for x in rows}
    assert tariffs == {2}  # Fluvius: 2 is night


def test_sweden_sends_the_per_phase_list_every_10_seconds():
    sim = P1Simulator("sweden", seed=6)
    rows = [_objects(t) for t in sim.frames(datetime(2026, 2, 2, 8, 0, tzinfo=UTC), 10.0, 3)]
    r = rows[-1]
    for c in (21, 22, 23, 24, 41, 42, 43, 44, 61, 62, 63, 64):
        assert f"1-0:{c}.7.0" in r
    for c in (32, 52, 72):
        assert r[f"1-0:{c}.7.0"][0].endswith("*V")
    for c in (31, 51, 71):
        assert r[f"1-0:{c}.7.0"][0].endswith("*A")
    assert r["1-0:1.8.0"][0].endswith("*kWh") and r["1-0:3.8.0"][0].endswith("*kvarh")
    assert METERS["sweden"].interval == 10.0 and METERS["sweden"].serial == "115200 8N1"


def test_the_command_writes_text_telegrams_to_a_file_and_stdout(tmp_path, capsys):
    out = tmp_path / "p1.txt"
    assert main(["simulate", "--meter", "dsmr5", "--out", str(out), "--count", "3", "--interval", "0",
                 "--start", "2026-03-01T10:00:00", "--seed", "1"]) == 0
    data = out.read_bytes()
    telegrams = [b"/" + x for x in data.split(b"/")[1:]]
    assert len(telegrams) == 3
    assert [_objects(t)["0-0:1.0.0"] for t in telegrams] == [("260301100000W",), ("260301100001W",), ("260301100002W",)]
    err = capsys.readouterr().err
    assert "3 telegram(s) written" in err and "115200 8N1" in err
    assert main(["simulate", "--meter", "sweden", "--count", "1", "--interval", "0", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("/ADN9 6534\r\n\r\n0-0:1.0.0(")
    assert main(["simulate", "--meter", "fluvius", "--key", "00" * 16]) == 2
    assert "P1 telegrams are plain text" in capsys.readouterr().err


def test_the_command_writes_telegrams_to_a_pty(tmp_path):
    link = tmp_path / "ttyP1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "han", "simulate", "--meter", "sweden", "--pty", "--link", str(link),
         "--interval", "0.2", "--count", "15"],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        fd = os.open(link, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            buf = b""
            while buf.count(b"!") < 2 and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.5)[0]:
                    buf += os.read(fd, 4096)
        finally:
            os.close(fd)
        whole = buf[buf.index(b"/"):]
        one = whole[: whole.index(b"!") + 7]
        parsed = parse_telegram(one)
        assert parsed.crc == parsed.crc_computed and parsed.header == "ADN9 6534"
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
