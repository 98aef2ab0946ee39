"""Hour accounting: DST days, an outage, a reset, a meter swap, a clock set back, and han report's rows.

The hand-computed cases feed readings of a meter that draws a constant 1 kW
(1000 Wh per hour) into the accounting and check han report's rows against
numbers worked out by hand.  The DST cases run the simulator through the SQLite sink.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest
from conftest import ROOT

from decoders.ciphering.security import Keys
from han.commands.report import rows_for, table
from han.pipeline import PushDecoder
from han.simulator import KamstrupSimulator
from sinks.store.accounting import Meter, Reading
from sinks.store.localtime import zone
from sinks.store.schema import DERIVED
from sinks.store.writer import save
from sinks.base import Checkpoint, Entry, create_sink

OSLO = "Europe/Oslo"
UTC = timezone.utc


def ts(text: str) -> float:
    """Unix seconds of a UTC time written 2025-01-15T10:20."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def store(readings: list[Reading], tz: str = OSLO, meter: str = "m1") -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(DERIVED)
    m = Meter(zone(tz))
    for r in readings:
        m.add(r)
    save(db, meter, tz, m)
    return db


def kw1(t: float, base: float = 0.0, meter_id: str | None = "A") -> Reading:
    """The reading at t of a meter drawing 1 kW since 2025-01-15T00:00 UTC from ``base`` Wh."""
    return Reading(t, {"import_wh": (base + (t - ts("2025-01-15T00:00")) / 3.6, None)}, 1000.0, 0.0, meter_id)


def rows(db, by="hour", start=date(2025, 1, 15), end=date(2025, 1, 16), meter="m1"):
    return rows_for(db, meter, by, start, end)[0]


def every(start: str, end: str, step: int = 600) -> list[float]:
    a, b = ts(start), ts(end)
    return [a + i * step for i in range(int((b - a) // step) + 1)]


def test_steady_day_is_measured_and_local():
    db = store([kw1(t) for t in every("2025-01-14T23:00", "2025-01-15T23:00")])  # Oslo midnight to midnight
    rs = rows(db)
    assert len(rs) == 24
    assert rs[0]["start"] == "2025-01-15T00:00:00+01:00" and rs[0]["end"] == "2025-01-15T01:00:00+01:00"
    assert all(r["quality"] == "measured" and r["import_kwh"] == pytest.approx(1.0) for r in rs)
    assert rs[0]["import_w_max"] == 1000.0 and rs[0]["import_w_mean"] == 1000.0
    (day,) = rows(db, "day")
    assert day["import_kwh"] == pytest.approx(24.0) and day["quality"] == "measured"


def test_outage_of_70_minutes_is_spread_over_its_hours():
    # readings every 10 minutes, none between 10:20 and 11:30 UTC (11:20-12:30 Oslo)
    ts_ = [t for t in every("2025-01-14T23:00", "2025-01-15T23:00") if not ts("2025-01-15T10:20") < t < ts("2025-01-15T11:30")]
    db = store([kw1(t) for t in ts_])
    by_start = {r["start"][11:16]: r for r in rows(db)}
    # the gap's 70 minutes (1166.67 Wh) are spread linearly: 40 min to 11:00 Oslo, 30 min to 12:00
    assert by_start["11:00"]["import_kwh"] == pytest.approx(1.0)
    assert by_start["12:00"]["import_kwh"] == pytest.approx(1.0)
    assert by_start["11:00"]["quality"] == "estimated" and by_start["12:00"]["quality"] == "estimated"
    assert by_start["10:00"]["quality"] == "measured" and by_start["13:00"]["quality"] == "measured"
    assert sum(r["import_kwh"] for r in rows(db)) == pytest.approx(24.0)  # totals = register difference


def test_uneven_gap_split_by_hand():
    # 0 Wh at 10:30 UTC, then 900 Wh at 12:00 UTC: 1.5 h, 600 Wh/h spread linearly
    rs = [Reading(ts("2025-01-15T10:30"), {"import_wh": (0.0, None)}),
          Reading(ts("2025-01-15T12:00"), {"import_wh": (900.0, None)}),
          Reading(ts("2025-01-15T13:00"), {"import_wh": (1000.0, None)})]
    by_start = {r["start"][11:16]: r for r in rows(store(rs))}
    assert by_start["11:00"]["import_kwh"] == pytest.approx(0.3)  # 10:30-11:00 UTC, start unknown
    assert by_start["12:00"]["import_kwh"] == pytest.approx(0.6)
    assert by_start["13:00"]["import_kwh"] == pytest.approx(0.1)
    assert [by_start[h]["quality"] for h in ("10:00", "11:00", "12:00", "13:00", "14:00")] == [
        "missing", "estimated", "estimated", "measured", "missing"]


def test_hourly_list_near_the_boundary_is_measured():
    # a Norwegian meter sends its energy at hh:00:05
    rs = [Reading(ts("2025-01-15T09:00") + 3600 * i + 5, {"import_wh": (1000.0 * i, None)}) for i in range(4)]
    by_start = {r["start"][11:16]: r for r in rows(store(rs))}
    assert [by_start[h]["quality"] for h in ("11:00", "12:00")] == ["measured", "measured"]
    assert by_start["11:00"]["import_kwh"] == pytest.approx(1.0)


def test_reset_gives_no_negative_hour():
    rs = [kw1(t) for t in every("2025-01-15T09:00", "2025-01-15T10:00")]
    # the register restarts from 0 at 10:00 and counts on at 1 kW
    rs += [Reading(t, {"import_wh": ((t - ts("2025-01-15T10:00")) / 3.6, None)}, meter_id="A")
           for t in every("2025-01-15T10:10", "2025-01-15T12:00")]
    hours = {r["start"][11:16]: r for r in rows(store(rs))}
    assert all((r["import_kwh"] or 0) >= 0 for r in hours.values())
    assert hours["11:00"]["import_kwh"] == pytest.approx(1.0) and hours["11:00"]["quality"] == "estimated"
    assert "reset" in hours["11:00"]["events"]
    assert hours["12:00"]["quality"] == "measured"


def test_rollover_is_exact():
    mod = 2**32 * 1.0
    rs = [Reading(ts("2025-01-15T10:00"), {"import_wh": (mod - 500, mod)}),
          Reading(ts("2025-01-15T11:00"), {"import_wh": (500.0, mod)}),
          Reading(ts("2025-01-15T12:00"), {"import_wh": (1500.0, mod)})]
    hours = {r["start"][11:16]: r for r in rows(store(rs))}
    assert hours["11:00"]["import_kwh"] == pytest.approx(1.0) and hours["11:00"]["quality"] == "measured"
    assert hours["11:00"]["events"] == ["rollover"]


def test_meter_swap_starts_afresh():
    rs = [kw1(t, 5e6, "OLD") for t in every("2025-01-15T09:00", "2025-01-15T10:00")]
    rs += [kw1(t, -1000 * 10.5, "NEW") for t in every("2025-01-15T10:30", "2025-01-15T12:00")]
    hours = {r["start"][11:16]: r for r in rows(store(rs))}
    assert hours["10:00"]["import_kwh"] == pytest.approx(1.0)
    assert hours["11:00"]["import_kwh"] == pytest.approx(0.5)  # 10:00-10:30 UTC, the swap, is not counted
    assert hours["11:00"]["quality"] == "estimated" and "meter_swap" in hours["11:00"]["events"]
    assert hours["12:00"]["import_kwh"] == pytest.approx(1.0) and hours["12:00"]["quality"] == "measured"
    assert max(r["import_kwh"] or 0 for r in hours.values()) < 1.01  # nothing absurd


def test_clock_set_back_an_hour():
    # the clock jumps from 11:00 back to 10:00 UTC and runs on; the meter draws 1 kW throughout
    rs = [kw1(t) for t in every("2025-01-15T09:00", "2025-01-15T11:00")]
    base = 2000.0 + (ts("2025-01-15T09:00") - ts("2025-01-15T00:00")) / 3.6
    rs += [Reading(t, {"import_wh": (base + (t - ts("2025-01-15T10:00")) / 3.6 + 1000 / 6, None)}, meter_id="A")
           for t in every("2025-01-15T10:00", "2025-01-15T12:00")]
    hours = {r["start"][11:16]: r for r in rows(store(rs))}
    assert all((r["import_kwh"] or 0) >= 0 for r in hours.values())
    # the hour the clock showed twice holds both passes, and says so
    assert hours["11:00"]["import_kwh"] == pytest.approx(2.0, abs=0.2)
    assert hours["11:00"]["quality"] == "estimated" and "clock_set_back" in hours["11:00"]["events"]
    total = sum(r["import_kwh"] or 0 for r in hours.values())
    assert total == pytest.approx(rs[-1].energy["import_wh"][0] / 1000 - rs[0].energy["import_wh"][0] / 1000, abs=1e-3)


def test_absurd_jump_is_not_counted():
    rs = [Reading(ts("2025-01-15T10:00"), {"import_wh": (0.0, None)}),
          Reading(ts("2025-01-15T10:00:10"), {"import_wh": (4e9, None)}),  # a corrupt value
          Reading(ts("2025-01-15T11:00"), {"import_wh": (4e9 + 1000, None)})]
    hours = {r["start"][11:16]: r for r in rows(store(rs))}
    assert hours["11:00"]["import_kwh"] == pytest.approx(1.0)  # 10:00:10-11:00 UTC; the jump is not
    assert "absurd_jump" in hours["11:00"]["events"]


# -- the simulator through the SQLite sink, across both DST changes --------------------------------------
def sim_store(tmp_path, start_utc: datetime, hours: int, step: int = 10, skip=None):
    sim = KamstrupSimulator(None, meter_number=12345678, seed=7)
    dec = PushDecoder(Keys())
    n = hours * 3600 // step + 1
    times = [start_utc + timedelta(seconds=step * i) for i in range(n)]
    if skip:
        times = [t for t in times if not skip(t)]
    pushes = dec.feed(b"".join(sim.frame(t) for t in times))
    assert len(pushes) == len(times)
    path = tmp_path / "han.db"

    async def write():
        s = create_sink(f"sqlite:{path}", keep_raw_days=None)
        await s.open(Checkpoint("j", 0))
        es = [Entry(i + 1, p.timestamp_utc, p) for i, p in enumerate(pushes)]
        for i in range(0, len(es), 500):
            await s.write(es[i : i + 500])
        await s.close()

    asyncio.run(write())
    return path, pushes


def energy(p) -> float:
    return float(p.register("1.1.1.8.0.255").value)


@pytest.mark.parametrize(
    "day, start, hours_in_day, repeated",
    [(date(2025, 3, 30), datetime(2025, 3, 29, 23, 0, tzinfo=UTC), 23, None),
     (date(2025, 10, 26), datetime(2025, 10, 25, 22, 0, tzinfo=UTC), 25, "02:00")],
)
def test_dst_days_with_the_simulator(tmp_path, day, start, hours_in_day, repeated):
    path, pushes = sim_store(tmp_path, start, hours_in_day)
    stamps = [p.timestamp for p in pushes]
    assert not any(s[11:13] == "02" for s in stamps) if hours_in_day == 23 else True  # no 02:00 in spring
    assert all(b.timestamp_utc > a.timestamp_utc for a, b in zip(pushes, pushes[1:]))
    db = sqlite3.connect(path)
    rs = rows(db, "hour", day, day + timedelta(days=1), "12345678")
    assert len(rs) == hours_in_day
    assert all(r["quality"] == "measured" for r in rs)
    if repeated:
        assert [r["start"] for r in rs if r["start"][11:16] == repeated] == [
            f"{day}T02:00:00+02:00", f"{day}T02:00:00+01:00"]
    # every hour = the register difference between its boundary pushes (pushes land on the boundaries)
    at = {p.timestamp_utc: energy(p) for p in pushes}
    for r in rs:
        s = datetime.fromisoformat(r["start"]).astimezone(UTC)
        e = datetime.fromisoformat(r["end"]).astimezone(UTC)
        assert r["import_kwh"] == pytest.approx((at[e] - at[s]) / 1000, abs=1e-4)
    (d,) = rows(db, "day", day, day + timedelta(days=1), "12345678")
    assert d["import_kwh"] == pytest.approx((energy(pushes[-1]) - energy(pushes[0])) / 1000, abs=1e-3)
    assert d["quality"] == "measured"


def test_simulator_outage_through_the_sink_and_the_cli(tmp_path):
    start = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    gap = (datetime(2025, 1, 15, 10, 20, tzinfo=UTC), datetime(2025, 1, 15, 11, 30, tzinfo=UTC))
    path, pushes = sim_store(tmp_path, start, 4, skip=lambda t: gap[0] < t < gap[1])
    out = subprocess.run(
        [sys.executable, "-m", "han", "report", "--db", str(path), "--from", "2025-01-15", "--to", "2025-01-16",
         "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rs = {r["start"][11:16]: r for r in json.loads(out.stdout)}
    assert [rs[h]["quality"] for h in ("10:00", "11:00", "12:00", "13:00")] == [
        "measured", "estimated", "estimated", "measured"]
    total = sum(r["import_kwh"] or 0 for r in rs.values())
    assert total == pytest.approx((energy(pushes[-1]) - energy(pushes[0])) / 1000, abs=1e-3)
    text = subprocess.run([sys.executable, "-m", "han", "report", "--db", str(path), "--from", "2025-01-15",
                           "--to", "2025-01-16"], capture_output=True, text=True, cwd=ROOT).stdout
    assert all(len(line) <= 80 for line in text.splitlines()) and "#" in text
    csv_out = subprocess.run([sys.executable, "-m", "han", "report", "--db", str(path), "--by", "day",
                              "--format", "csv"], capture_output=True, text=True, cwd=ROOT).stdout
    assert csv_out.splitlines()[0].startswith("meter,start,end,import_kwh,export_kwh,quality")


def test_report_errors_are_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "han", "report", "--db", str(tmp_path / "none.db")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no store" in out.stderr
    assert table([], "hour") == "no data\n"
