"""``han decode`` on P1 telegrams in every output format and with ``--explain``."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest

from han.cli import main
from han.p1sim import P1Simulator


@pytest.fixture
def telegrams(tmp_path):
    sim = P1Simulator("dsmr5", seed=1)
    path = tmp_path / "p1.txt"
    path.write_bytes(b"".join(sim.frames(datetime(2026, 1, 15, 11, 0, 30, tzinfo=timezone.utc), 10.0, 2)))
    return str(path)


def test_table_keeps_the_decimals_sent_and_the_readings_time(telegrams, capsys):
    assert main(["decode", telegrams, "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert out.count("push ") == 2 and "DSMR 5" in out
    energy = next(line for line in out.splitlines() if "Active energy import tariff 1" in line)
    assert "." in energy.split()[-2] and len(energy.split()[-2].split(".")[1]) == 3  # 5414.997, not 5415
    gas = next(line for line in out.splitlines() if "Gas meter reading" in line)
    assert gas.rstrip().endswith("m3 (read 2026-01-15 11:00:00Z)")  # its own time, not the telegram's 11:00:30
    text = next(line for line in out.splitlines() if "Text message" in line)
    assert text.rstrip().endswith(" -") and "None" not in out


def test_json_jsonl_and_csv(telegrams, capsys):
    assert main(["decode", telegrams, "--format", "json"]) == 0
    pushes = json.loads(capsys.readouterr().out)
    assert [p["list_id"] for p in pushes] == ["DSMR 5", "DSMR 5"]
    gas = next(r for r in pushes[0]["registers"] if r["obis"] == "0.1.24.2.1.255")
    assert gas["unit"] == "m3" and gas["time_utc"] == "2026-01-15T11:00:00+00:00"
    assert main(["decode", telegrams, "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["timestamp_utc"] for x in lines] == ["2026-01-15T11:00:30+00:00", "2026-01-15T11:00:40+00:00"]
    assert main(["decode", telegrams, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["push"] for r in rows} == {"1", "2"} and any(r["unit"] == "kWh" for r in rows)


def test_xml_says_the_gurux_format_has_no_p1_elements(telegrams, capsys):
    assert main(["decode", telegrams, "--format", "xml"]) == 0
    out = capsys.readouterr().out
    assert out.count("the Gurux translator's XML has no elements for it") == 2
    assert out.count("<P1Telegram>") == 2 and '<Line Value="/ISK5\\2M550T-1012" />' in out


def test_explain_names_the_p1_framing_and_the_crc(telegrams, capsys):
    assert main(["decode", telegrams, "--explain"]) == 0
    out = capsys.readouterr().out
    assert "· P1 · decoded" in out and "a P1 text telegram, framed by its '/' header" in out
    assert "bare APDU" not in out and "(the plaintext)" not in out
    assert out.count(": ok") >= 2 and "CRC " in out
    assert "Gas meter reading" in out
