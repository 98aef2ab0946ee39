"""Capacity tariff rules against worked examples (numbers computed by hand in the comments)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pytest
from conftest import ROOT
from tariffkit import add_hour, add_minutes, new_store

from han.store.extend import ExtensionError, ReportContext
from han.store.hours import months
from han.tariffs.capacity import add_capacity, figure_for_month
from han.tariffs.rules import TariffError, load_rules, rules_of
from sinks.store.localtime import zone

OSLO, BRUSSELS = "Europe/Oslo", "Europe/Brussels"


def norway_january(path=":memory:"):
    """January 2025 in Oslo (Jan 1 is a Wednesday).  Hours not listed are missing."""
    db = new_store(path)
    add_hour(db, "2025-01-03T17:00", 4.0)  # Fri
    add_hour(db, "2025-01-03T18:00", 5.0)  # Fri: the day's highest
    add_hour(db, "2025-01-04T10:00", 9.0)  # Sat
    add_hour(db, "2025-01-07T06:00", 8.0)  # Tue, before 07
    add_hour(db, "2025-01-07T08:00", 3.0)  # Tue
    add_hour(db, "2025-01-08T10:00", 3.5)  # Wed
    add_hour(db, "2025-01-10T19:00", 6.5)  # Fri, 19-20
    add_hour(db, "2025-01-12T03:00", 2.5)  # Sun: the newest hour, "now"
    return db


def test_norway_three_highest_on_different_days_with_headroom():
    db = norway_january()
    rule = load_rules()["no-elvia"]
    cap = figure_for_month(db, "m1", rule, date(2025, 1, 1), zone(OSLO))
    # per day: Jan 3 5.0, Jan 4 9.0, Jan 7 8.0, Jan 8 3.5, Jan 10 6.5, Jan 12 2.5
    # three highest days: 9.0, 8.0, 6.5 -> (9 + 8 + 6.5) / 3 = 7.8333 kW -> step 5-10 kW, 270 NOK
    assert cap["value_kw"] == pytest.approx(7.8333, abs=1e-4)
    assert [h["start"] for h in cap["hours"]] == [
        "2025-01-04T10:00:00+01:00", "2025-01-07T06:00:00+01:00", "2025-01-10T19:00:00+01:00"]
    assert [h["import_kwh"] for h in cap["hours"]] == [9.0, 8.0, 6.5]
    assert cap["step"] == {"from_kw": 5.0, "to_kw": 10.0, "price": 270.0, "currency": "NOK"}
    # now = Jan 12 03:00 with 2.5 kWh; Jan 12 has no other hour; the 3rd highest other day is 6.5:
    # 6.5 - 2.5 = 4.0 kWh more before the figure rises
    assert cap["headroom_kwh"] == pytest.approx(4.0)
    # next step at 10 kW: (9 + 8 + v) / 3 = 10 -> v = 13 -> 13 - 2.5 = 10.5 kWh more
    assert cap["step_headroom_kwh"] == pytest.approx(10.5)


def test_norway_headroom_zero_when_the_hour_makes_the_figure():
    db = norway_january()
    add_hour(db, "2025-01-12T04:00", 7.0)  # now: 7.0 > 6.5, so it is among the three
    cap = figure_for_month(db, "m1", load_rules()["no"], date(2025, 1, 1), zone(OSLO))
    # 9 + 8 + 7 = 24 / 3 = 8.0
    assert cap["value_kw"] == pytest.approx(8.0)
    assert cap["headroom_kwh"] == 0.0
    assert "step" not in cap  # the rule without a step table


def test_early_in_the_month_the_mean_of_those_there_are():
    db = new_store()
    add_hour(db, "2025-02-01T10:00", 2.0)
    add_hour(db, "2025-02-01T11:00", 1.0)
    add_hour(db, "2025-02-02T10:00", 3.0)  # now
    cap = figure_for_month(db, "m1", load_rules()["no-elvia"], date(2025, 2, 1), zone(OSLO))
    # days: Feb 1 2.0, Feb 2 3.0 -> (2 + 3) / 2 = 2.5 kW, step 2-5
    assert cap["value_kw"] == pytest.approx(2.5)
    assert cap["headroom_kwh"] == 0.0  # the hour is in the figure: every extra kWh raises it
    # to 5 kW: fewer than 3 days, so the divisor is 2: (2 + v) / 2 = 5 -> v = 8 -> 5.0 kWh more
    assert cap["step_headroom_kwh"] == pytest.approx(5.0)


SWEDEN = """
[capacity.se-test]
method = "top-hours"
count = 3
distinct_days = {distinct}
weekdays = [1, 2, 3, 4, 5]
hours = [7, 19]
months = [11, 12, 1, 2, 3]
"""


@pytest.mark.parametrize("distinct,expected,hours", [
    # weekday 07-19 hours: Jan 3 17:00 4.0, Jan 3 18:00 5.0, Jan 7 08:00 3.0, Jan 8 10:00 3.5
    # (not: Sat Jan 4, Jan 7 06:00, Jan 10 19:00, Sun Jan 12)
    ("false", (5.0 + 4.0 + 3.5) / 3, ["2025-01-03T18:00", "2025-01-03T17:00", "2025-01-08T10:00"]),
    ("true", (5.0 + 3.5 + 3.0) / 3, ["2025-01-03T18:00", "2025-01-08T10:00", "2025-01-07T08:00"]),
])
def test_sweden_window_n_highest(distinct, expected, hours):
    import tomllib

    rule = rules_of(tomllib.loads(SWEDEN.format(distinct=distinct)), "test")["se-test"]
    cap = figure_for_month(norway_january(), "m1", rule, date(2025, 1, 1), zone(OSLO))
    assert cap["value_kw"] == pytest.approx(expected, abs=1e-4)
    assert [h["start"][:16] for h in cap["hours"]] == hours
    assert cap["headroom_kwh"] is None  # now (Sunday 03:00) is outside the window


def test_sweden_outside_the_months_no_figure():
    db = new_store()
    add_hour(db, "2025-06-03T10:00", 4.0)
    cap = figure_for_month(db, "m1", load_rules()["se"], date(2025, 6, 1), zone(OSLO))
    assert cap["value_kw"] is None and cap["hours"] == []


def belgium():
    """Brussels, UTC+1 in winter.  Minute means (W); the newest minute is in Feb 11's quarter."""
    db = new_store(tz=BRUSSELS)
    add_minutes(db, "2025-01-20T12:00", [1200] * 15, BRUSSELS)  # January: 1.2 kW
    add_minutes(db, "2025-02-10T18:00", [6000] * 15, BRUSSELS)  # 6.0 kW
    add_minutes(db, "2025-02-10T18:15", [9000] * 10 + [3000] * 5, BRUSSELS)  # (90000 + 15000) / 15 = 7.0 kW
    add_minutes(db, "2025-02-11T07:30", [5000] * 4, BRUSSELS)  # now: 5.0 kW so far
    return db


def test_belgium_highest_quarter_floor_and_twelve_month_mean():
    db = belgium()
    rule = load_rules()["be"]
    feb = figure_for_month(db, "m1", rule, date(2025, 2, 1), zone(BRUSSELS))
    assert feb["value_kw"] == pytest.approx(7.0)
    assert feb["hours"] == [{"start": "2025-02-10T18:15:00+01:00", "import_kwh": 1.75, "kw": 7.0}]
    # now: the quarter at 5.0 kW -> (7.0 - 5.0) * 0.25 h = 0.5 kWh more before the peak rises
    assert feb["headroom_kwh"] == pytest.approx(0.5)
    # January's 1.2 kW is below the floor: 2.5; the bill: (7.0 + 2.5) / 2 months known = 4.75
    assert feb["billed_kw"] == pytest.approx(4.75) and feb["billed_months"] == 2
    jan = figure_for_month(db, "m1", rule, date(2025, 1, 1), zone(BRUSSELS))
    assert jan["value_kw"] == 2.5 and jan["headroom_kwh"] is None and jan["billed_months"] == 1


def test_report_hook_only_monthly_rows_and_unknown_rule():
    db = norway_january()
    periods = months(db, "m1", date(2025, 1, 1), date(2025, 2, 1))
    rows = [{}]
    ctx = ReportContext("m1", "month", date(2025, 1, 1), date(2025, 2, 1), zone(OSLO), tuple(periods), "no")
    add_capacity(db, rows, ctx)
    assert rows[0]["capacity"]["value_kw"] == pytest.approx(7.8333, abs=1e-4)
    bad = ReportContext("m1", "month", date(2025, 1, 1), date(2025, 2, 1), zone(OSLO), tuple(periods), "nope")
    with pytest.raises(ExtensionError, match="no such rule; known: be, no"):
        add_capacity(db, [{}], bad)


@pytest.mark.parametrize("text,message", [
    ("[capacity.x]\nmethod = 'max'", "method must be one of top-hours, peak-quarter"),
    ("[capacity.x]\nmethod = 'top-hours'\nhours = [19, 7]", "hours must be [from, to]"),
    ("[capacity.x]\nmethod = 'top-hours'\nsteps = [{from_kw = 0, to_kw = 2, price = 1}, {from_kw = 3, price = 2}]",
     "steps must follow each other"),
    ("[capacity.x]\nmethod = 'top-hours'\ncuont = 3", "unknown key 'cuont'"),
])
def test_bad_rules_are_one_line_errors(text, message):
    import tomllib

    with pytest.raises(TariffError, match=message.replace("[", r"\[")):
        rules_of(tomllib.loads(text), "mine.toml")


def test_han_report_capacity_json_and_table(tmp_path):
    path = tmp_path / "han.db"
    norway_january(str(path)).close()
    cmd = [sys.executable, "-m", "han", "report", "--db", str(path), "--by", "month", "--from", "2025-01-01",
           "--to", "2025-02-01", "--capacity", "no-elvia"]
    out = subprocess.run(cmd + ["--format", "json"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    cap = json.loads(out)[0]["capacity"]
    assert cap["rule"] == "no-elvia" and cap["value_kw"] == pytest.approx(7.8333, abs=1e-4)
    assert cap["headroom_kwh"] == 4.0 and len(cap["hours"]) == 3
    table = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "capacity" in table and "7.833" in table
    assert max(map(len, table.splitlines())) <= 80
    bad = subprocess.run(cmd[:-1] + ["se-nope"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "no such rule" in bad.stderr and "Traceback" not in bad.stderr
    # a user's rule from a tariff file beside the store
    (tmp_path / "tariffs.toml").write_text("[capacity.mine]\nmethod = 'top-hours'\ncount = 1\n")
    out = subprocess.run(cmd[:-1] + ["mine", "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    assert json.loads(out)[0]["capacity"]["value_kw"] == 9.0


def test_belgium_uses_the_meters_own_1_6_0_register(tmp_path):
    """A meter that sends 1-0:1.6.0 (the month's peak quarter, kW) through the real SQLite sink."""
    import asyncio
    from datetime import datetime, timedelta, timezone

    from obis.code import Obis
    from obis.push import Push, Register
    from sinks.base import Checkpoint, Entry, create_sink

    path = tmp_path / "han.db"
    t0 = datetime(2025, 2, 10, 17, 0, 5, tzinfo=timezone.utc)  # 18:00:05 in Brussels
    # the register rises to 4.1 kW at 18:15 (the quarter 18:00-18:15 was the peak), then stays
    values = [3.0, 4.1, 4.1, 4.1]

    def push(i: int, kw: float) -> Push:
        r = Register(Obis.parse("1.0.1.6.0.255"), None, kw, "kW", int(kw * 1000), "double_long_unsigned", -3, 0)
        return Push(registers=(r,), list_id="P1", profile=None, meter_time=None, invoke_id_and_priority=0,
                    security=None, meter_id="M1", timestamp_utc=t0 + timedelta(minutes=15 * i))

    async def write():
        s = create_sink(f"sqlite:{path}", keep_raw_days=0)
        await s.open(Checkpoint("j", 0))
        await s.write([Entry(i + 1, p.timestamp_utc, p) for i, p in enumerate(push(i, v) for i, v in enumerate(values))])
        await s.close()

    asyncio.run(write())
    import sqlite3

    db = sqlite3.connect(path)
    (meter,) = [m for (m,) in db.execute("SELECT DISTINCT meter FROM pushes")]
    db.execute("INSERT OR IGNORE INTO meters (meter, timezone) VALUES (?, ?)", (meter, BRUSSELS))
    add_minutes(db, "2025-02-10T18:00", [2000] * 15, BRUSSELS, meter=meter)  # the minute series says 2.0 kW
    db.commit()
    cap = figure_for_month(db, meter, load_rules()["be"], date(2025, 2, 1), zone(BRUSSELS))
    assert cap["from"] == "register 1-0:1.6.0" and cap["value_kw"] == 4.1
    assert cap["hours"][0]["start"] == "2025-02-10T18:00:00+01:00" and cap["hours"][0]["import_kwh"] == 1.025


def test_the_sample_tariff_file_reads(monkeypatch):
    from han.tariffs.cost import _fees
    from han.tariffs.prices import price_config
    from han.tariffs.rules import read_tariff_file

    path = ROOT / "samples" / "tariffs.toml"
    doc = read_tariff_file(path)
    assert load_rules(doc, str(path))["mine"].steps[-1].to_kw is None
    monkeypatch.setenv("HAN_ENTSOE_TOKEN", "x")  # the token_file does not exist here: the error says so
    with pytest.raises(TariffError, match="token_file"):
        price_config(doc, str(path))
    assert _fees(doc, str(path)) == (0.05, 30.0, None)
