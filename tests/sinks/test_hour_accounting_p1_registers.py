"""Hour accounting from P1 registers: per-tariff kWh summed and kept per tariff, kW power, through SQLite and han report.

A P1 meter sends no total energy register: import is 1-0:1.8.1 + 1-0:1.8.2 and export 2.8.1 + 2.8.2,
in kWh, with the power in kW.  The hand-computed cases build pushes whose registers carry only
OBIS codes, values and the telegram's units (keys the accounting does not know, or none), so the
OBIS code and the unit decide, not a meter profile.  The simulated cases run han simulate's DSMR 5
telegrams through the telegram syntax parser into the real SQLite sink and han report.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest

from decoders.xdlms.dsmr import parse_telegram
from han.commands.report import rows_for, table
from han.p1sim import P1Simulator
from obis.code import Obis
from obis.interpret import InterpretOptions
from obis.interpret.dsmr import telegram_push
from obis.push import Push, Register
from sinks.base import Checkpoint, Entry, create_sink

UTC = timezone.utc
T0 = datetime(2026, 1, 14, 23, 0, tzinfo=UTC)  # 2026-01-15 00:00 in Amsterdam (CET)


def p1_push(when: datetime, regs: list[tuple[str, float, str]], key_style: str = "none") -> Push:
    """A push as a P1 parser makes it: OBIS, value, the telegram's unit; keys unknown to the accounting."""
    registers = []
    for i, (code, value, unit) in enumerate(regs):
        key = None if key_style == "none" else "p1_" + code.replace(":", "_").replace(".", "_").replace("-", "_")
        registers.append(Register(Obis.parse(code), None, value, unit, f"{value}*{unit}", "p1", None, i, key))
    return Push(
        registers=tuple(registers), list_id="DSMR 50", profile=None, meter_time=None, invoke_id_and_priority=0,
        security=None, meter_id="E0044007000000001", timestamp=when.isoformat(), timestamp_utc=when,
        timezone="Europe/Amsterdam",
    )


def write(path, pushes: list[Push]) -> None:
    async def go():
        s = create_sink(f"sqlite:{path}", keep_raw_days=None)
        await s.open(Checkpoint("j", 0))
        es = [Entry(i + 1, p.timestamp_utc, p) for i, p in enumerate(pushes)]
        for i in range(0, len(es), 500):
            await s.write(es[i : i + 500])
        await s.close()

    asyncio.run(go())


def three_hours(key_style: str) -> list[Push]:
    """00-01 h: 2 kW import in tariff 1; 01-02 h: 1 kW in tariff 2; 02-03 h: 0.5 kW export in tariff 2.

    A telegram a minute; registers in kWh with 3 decimals as a meter rounds them."""
    t1, t2, e1, e2 = 1234.5, 678.9, 12.0, 3.0
    out = []
    for i in range(3 * 60 + 1):
        when = T0 + timedelta(minutes=i)
        hour = min(i // 60, 2)
        p_imp, p_exp = (2.0, 0.0) if hour == 0 else (1.0, 0.0) if hour == 1 else (0.0, 0.5)
        if i:
            if hour == 0 or i == 60:
                t1 += 2.0 / 60
            elif hour == 1 or i == 120:
                t2 += 1.0 / 60
            else:
                e2 += 0.5 / 60
        regs = [
            ("1-0:1.8.1", round(t1, 3), "kWh"), ("1-0:1.8.2", round(t2, 3), "kWh"),
            ("1-0:2.8.1", round(e1, 3), "kWh"), ("1-0:2.8.2", round(e2, 3), "kWh"),
            ("0-0:96.14.0", 1 if hour == 0 else 2, ""), ("1-0:1.7.0", p_imp, "kW"), ("1-0:2.7.0", p_exp, "kW"),
            ("1-0:32.7.0", 230.1, "V"),
        ]
        out.append(p1_push(when, regs, key_style))
    return out


@pytest.mark.parametrize("key_style", ["none", "own names"])
def test_tariffs_summed_and_kept_apart_in_kwh_and_kw(tmp_path, key_style):
    path = tmp_path / "han.db"
    write(path, three_hours(key_style))
    db = sqlite3.connect(path)
    rs = rows_for(db, "E0044007000000001", "hour", date(2026, 1, 15), date(2026, 1, 16))[0][:4]
    got = [(r["import_kwh"], r["import_t1_kwh"], r["import_t2_kwh"], r["export_kwh"], r["export_t1_kwh"],
            r["export_t2_kwh"], r["quality"]) for r in rs[:3]]
    assert got == [
        (pytest.approx(2.0, abs=2e-3), pytest.approx(2.0, abs=2e-3), 0.0, 0.0, 0.0, 0.0, "measured"),
        (pytest.approx(1.0, abs=2e-3), 0.0, pytest.approx(1.0, abs=2e-3), 0.0, 0.0, 0.0, "measured"),
        (0.0, 0.0, 0.0, pytest.approx(0.5, abs=2e-3), 0.0, pytest.approx(0.5, abs=2e-3), "measured"),
    ]
    # kW registers feed the hour's power in W
    assert (rs[0]["import_w_max"], rs[0]["import_w_mean"]) == (2000.0, 2000.0)
    assert rs[2]["export_w_max"] == 500.0 and rs[1]["import_w_mean"] == pytest.approx(1000.0, rel=0.02)
    assert rs[3]["quality"] == "missing" and rs[3]["import_t1_kwh"] is None
    (day,) = rows_for(db, "E0044007000000001", "day", date(2026, 1, 15), date(2026, 1, 16))[0]
    assert day["import_kwh"] == pytest.approx(day["import_t1_kwh"] + day["import_t2_kwh"])
    assert day["import_t1_kwh"] == pytest.approx(2.0, abs=2e-3) and day["export_t2_kwh"] == pytest.approx(0.5, abs=2e-3)
    # the SQL views hold them too
    v = db.execute("SELECT import_t1_wh, import_t2_wh, export_t2_wh FROM days").fetchone()
    assert v == (pytest.approx(2000, abs=2), pytest.approx(1000, abs=2), pytest.approx(500, abs=2))


def test_rebuilt_from_the_raw_pushes_the_same(tmp_path):
    """The raw pushes keep OBIS code and unit per layout: rebuilding the hours from them gives the same."""
    from sinks.store.migrate import rebuild_hours

    path = tmp_path / "han.db"
    write(path, three_hours("none"))
    db = sqlite3.connect(path, isolation_level=None)
    before = rows_for(db, "E0044007000000001", "hour", date(2026, 1, 15), date(2026, 1, 16))[0]
    rebuild_hours(db)
    after = rows_for(db, "E0044007000000001", "hour", date(2026, 1, 15), date(2026, 1, 16))[0]
    assert after == before and before[0]["import_t1_kwh"] == pytest.approx(2.0, abs=2e-3)


def test_han_report_shows_the_tariffs(tmp_path):
    path = tmp_path / "han.db"
    write(path, three_hours("none"))
    run = [sys.executable, "-m", "han", "report", "--db", str(path), "--from", "2026-01-15", "--to", "2026-01-16"]
    out = subprocess.run(run + ["--format", "json"], capture_output=True, text=True, check=True).stdout
    hours = json.loads(out)
    assert hours[0]["import_t1_kwh"] == pytest.approx(2.0, abs=2e-3) and hours[1]["import_t2_kwh"] == pytest.approx(1.0, abs=2e-3)
    csv_text = subprocess.run(run + ["--format", "csv"], capture_output=True, text=True, check=True).stdout
    head = csv_text.splitlines()[0].split(",")
    assert {"import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh"} <= set(head)
    text = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    lines = text.splitlines()
    assert "imp t1" in lines[1] and "imp t2" in lines[1]
    assert lines[2].split()[:6] == ["2026-01-15", "00:00+01:00", "2.000", "0.000", "2.000", "0.000"]
    assert all(len(x) <= 80 for x in lines)


def test_a_simulated_dsmr5_day_through_the_sink(tmp_path):
    """A day of DSMR 5 telegrams (one a minute) parsed into pushes: every hour's import and export are
    the register differences, and tariff 1 plus tariff 2 make the total."""
    sim = P1Simulator("dsmr5", seed=9)
    telegrams = list(sim.frames(T0, 60.0, 24 * 60 + 1))
    pushes = [telegram_push(parse_telegram(t), InterpretOptions()) for t in telegrams]
    path = tmp_path / "han.db"
    write(path, pushes)
    db = sqlite3.connect(path)
    (meter,) = [m for (m,) in db.execute("SELECT meter FROM meters")]
    rs = rows_for(db, meter, "hour", date(2026, 1, 15), date(2026, 1, 16))[0]
    assert len(rs) == 24 and all(r["quality"] == "measured" for r in rs)

    def total(p, c):
        return sum(float(p.register(f"1-0:{c}.8.{e}").value) for e in (1, 2))

    at = {p.timestamp_utc: p for p in pushes}
    for r in rs:
        s = at[datetime.fromisoformat(r["start"]).astimezone(UTC)]
        e = at[datetime.fromisoformat(r["end"]).astimezone(UTC)]
        assert r["import_kwh"] == pytest.approx(total(e, 1) - total(s, 1), abs=1e-4)
        assert r["export_kwh"] == pytest.approx(total(e, 2) - total(s, 2), abs=1e-4)
        assert r["import_kwh"] == pytest.approx(r["import_t1_kwh"] + r["import_t2_kwh"], abs=1e-6)
        assert r["export_kwh"] == pytest.approx(r["export_t1_kwh"] + r["export_t2_kwh"], abs=1e-6)
    # night (00-07) runs tariff 1 only, day (07-23) tariff 2 only
    assert all(r["import_t2_kwh"] == 0 for r in rs[:7]) and all(r["import_t1_kwh"] == 0 for r in rs[7:23])
    assert sum(r["export_kwh"] for r in rs) > 0  # the panels' export by day
    assert max(r["import_w_max"] for r in rs) > 1000  # the kW power registers, in W


def test_a_version_3_store_gets_the_tariff_columns(tmp_path):
    """An older store: its hours keep their totals and have no tariffs; new hours get them."""
    path = tmp_path / "han.db"
    pushes = three_hours("none")
    write(path, pushes[:61])
    db = sqlite3.connect(path)
    # make it the version-3 shape: the hours table without the tariff columns
    cols = ("meter, start_utc, utc_offset, seconds, import_wh, export_wh, reactive_import_varh, reactive_export_varh,"
            " covered, bounds, events, p_import_max, p_import_sum, p_export_max, p_export_sum, p_count")
    db.executescript(
        "DROP VIEW days; DROP VIEW months;"
        "CREATE TABLE h3 (meter TEXT NOT NULL, start_utc INTEGER NOT NULL, utc_offset INTEGER NOT NULL,"
        " seconds INTEGER NOT NULL DEFAULT 3600, import_wh REAL, export_wh REAL, reactive_import_varh REAL,"
        " reactive_export_varh REAL, covered REAL NOT NULL DEFAULT 0, bounds INTEGER NOT NULL DEFAULT 0,"
        " events INTEGER NOT NULL DEFAULT 0, p_import_max REAL, p_import_sum REAL, p_export_max REAL,"
        " p_export_sum REAL, p_count INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (meter, start_utc)) WITHOUT ROWID;"
        f"INSERT INTO h3 SELECT {cols} FROM hours; DROP TABLE hours; ALTER TABLE h3 RENAME TO hours;"
        " PRAGMA user_version = 3;"
    )
    (state,) = db.execute("SELECT state FROM meters").fetchone()
    state = json.loads(state)
    state["v"] = {k: v for k, v in state["v"].items() if "_t" not in k}  # version 3 kept the totals only
    db.execute("UPDATE meters SET state = ?", (json.dumps(state),))
    db.commit()
    db.close()
    write(path, pushes)  # han run opens it: the columns are added, the views made again
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    rs = rows_for(db, "E0044007000000001", "hour", date(2026, 1, 15), date(2026, 1, 16))[0]
    assert rs[0]["import_kwh"] == pytest.approx(2.0, abs=2e-3) and rs[0]["import_t1_kwh"] is None  # before
    # after the upgrade: the tariffs count from the first reading on (the minute before it is not split)
    assert rs[1]["import_kwh"] == pytest.approx(1.0, abs=2e-3)
    assert rs[1]["import_t2_kwh"] == pytest.approx(59 / 60, abs=2e-3)
    assert rs[2]["export_t2_kwh"] == pytest.approx(0.5, abs=2e-3)
    assert "imp t1" in table(rs, "hour").splitlines()[1]
