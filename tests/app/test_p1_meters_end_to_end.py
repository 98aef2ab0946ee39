"""P1 meters end to end, as a user runs them: ``han simulate --meter … --pty`` into ``han run --preset p1``.

Real parts only: a pseudo terminal, ``han`` as separate processes, the SQLite store, a JSONL file,
a real ``influxd`` and a real ``mosquitto`` (tests/servers.py) with Home Assistant discovery.
The simulator runs a fast clock (``--interval 0.02 --step 60``: a meter minute every 20 ms), so
three hours of telegrams take seconds.  What should come out is computed from the same simulator,
in this process, with the same seed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from conftest import ROOT
from daemonkit import GUARD, Pty, wait_until_sync
from mqttkit import Subscriber, check_discovery
from servers import influxd, mosquitto  # noqa: F401 - session fixtures

from decoders.link.p1build import build_telegram
from decoders.xdlms.dsmr import parse_telegram
from han.p1sim import P1Simulator

HAN = [sys.executable, "-m", "han"]
UTC = timezone.utc
STEP = 60  #: meter seconds between two telegrams
COUNT = 200  #: telegrams per meter: 3 h 20 min of meter time
#: Wednesday 13 May 2026, 06:00 local: the Dutch normal tariff starts at 07:00, the sun comes up
START = "2026-05-13T06:00:00"


def _env() -> dict:
    e = dict(os.environ)
    e.pop("JOURNAL_STREAM", None)
    e.update(PYTHONPATH=str(ROOT))
    return e


def _expected(meter: str, seed: int) -> list[dict[str, tuple[str, ...]]]:
    """The objects of each telegram ``han simulate --seed`` writes, from the same simulator here."""
    sim = P1Simulator(meter, seed=seed)
    start = sim.utc(datetime.fromisoformat(START))
    return [{x.ident: x.values for x in parse_telegram(t).lines if x.ident}
            for t in sim.frames(start, STEP, COUNT)]


def _p1_time(text: str, tz: str) -> datetime:
    """``YYMMDDhhmmssX`` (local) as UTC (no DST ambiguity in these test hours)."""
    from zoneinfo import ZoneInfo

    local = datetime.strptime(text[:12], "%y%m%d%H%M%S").replace(tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC)


def _dotted(code: str) -> str:
    """``0-1:24.2.1`` as the sinks write OBIS codes: ``0.1.24.2.1.255``."""
    ab, cde = code.split(":")
    return ".".join([*ab.split("-"), *cde.split("."), "255"])


def _number(text: str) -> float:
    return float(text.split("*")[0])


def _run_daemon(tmp_path, link: str, sinks: list[str], preset: str, log) -> subprocess.Popen:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        HAN + ["run", "--port", link, "--preset", preset, "--state-dir", str(state), "--status-interval", "0.2",
               *[a for s in sinks for a in ("--sink", s)]],
        stdout=subprocess.DEVNULL, stderr=log, env=_env(), cwd=ROOT,
    )

    def connected() -> bool:
        assert proc.poll() is None, (tmp_path / "log.txt").read_text()
        try:
            s = json.loads((state / "status.json").read_text())
        except (OSError, ValueError):
            return False
        return s.get("pid") == proc.pid and s["input"]["state"] == "connected"

    wait_until_sync(connected, "han run to open the port")
    return proc


def _jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# meter -> (its time zone, the M-Bus readings with their own time: (key, telegram object, influx field))
METERS = {
    "dsmr5": ("Europe/Amsterdam", [("gas", "0-1:24.2.1", "gas_reading_m3")]),
    "fluvius": ("Europe/Brussels", [("gas", "0-1:24.2.3", "gas_reading_m3"),
                                    ("water", "0-2:24.2.1", "water_reading_m3")]),
    "sweden": ("Europe/Stockholm", []),
}


@pytest.mark.parametrize("meter", sorted(METERS))
def test_simulated_p1_meter_into_every_sink(meter, tmp_path, influxd, mosquitto):
    tz, channels = METERS[meter]
    seed = 17
    expected = _expected(meter, seed)
    db = f"p1_{meter}"
    influxd.query(f'CREATE DATABASE "{db}"')
    topic = f"han_{meter}"
    link = str(tmp_path / "ttyP1")
    sinks = [
        f"sqlite:{tmp_path / 'han.db'}",
        f"jsonl:{tmp_path / 'pushes.jsonl'}",
        f"influx://127.0.0.1:{influxd.port}?api=v1&db={db}",
        f"mqtt://127.0.0.1:{mosquitto.port}?prefix=homeassistant&topic={topic}",
    ]

    async def main() -> Subscriber:
        sub = Subscriber(mosquitto.port, topics=("homeassistant/#", f"{topic}/#"), name=f"p1-{meter}")
        await asyncio.wait_for(sub.subscribed.wait(), GUARD)
        with open(tmp_path / "log.txt", "wb") as log, open(tmp_path / "sim.txt", "wb") as simlog:
            # the simulator first: what it writes before han opens the port waits in the pty
            sim = subprocess.Popen(
                HAN + ["simulate", "--meter", meter, "--pty", "--link", link, "--interval", "0.02",
                       "--step", str(STEP), "--count", str(COUNT), "--start", START, "--seed", str(seed)],
                stdout=subprocess.DEVNULL, stderr=simlog, env=_env(), cwd=ROOT,
            )
            try:
                deadline = time.monotonic() + GUARD
                while not os.path.exists(link):
                    assert sim.poll() is None and time.monotonic() < deadline, (tmp_path / "sim.txt").read_text()
                    await asyncio.sleep(0.02)
                proc = await asyncio.to_thread(_run_daemon, tmp_path, link, sinks, "p1", log)
                assert await asyncio.to_thread(sim.wait, GUARD) == 0  # it waits until han has read the last one
                deadline = time.monotonic() + GUARD
                while len(sub.states()) < COUNT:  # every push on the broker: han has delivered them all
                    assert time.monotonic() < deadline, f"{len(sub.states())} of {COUNT} state messages"
                    await asyncio.sleep(0.05)
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(proc.wait, GUARD) == 0
            finally:
                if sim.poll() is None:
                    sim.kill()
                    sim.wait()
        await asyncio.sleep(0.3)  # nothing more may come
        await sub.close()
        return sub

    sub = asyncio.run(main())
    log = (tmp_path / "log.txt").read_text()
    assert "Traceback" not in log and "error" not in log.lower(), log
    assert f"{COUNT} telegram(s) written" in (tmp_path / "sim.txt").read_text()

    clocks = [_p1_time(e["0-0:1.0.0"][0], tz) for e in expected]
    iso = [c.strftime("%Y-%m-%dT%H:%M:%SZ") for c in clocks]

    # -- JSONL: each telegram once, in order; the M-Bus readings with their own time --------------
    rows = _jsonl(tmp_path / "pushes.jsonl")
    assert [r["time_utc"] for r in rows] == iso
    for row, exp in zip(rows, expected):
        regs = {r["obis"]: r for r in row["registers"]}
        for _medium, obis, _ in channels:
            reading = regs[_dotted(obis)]
            stamp, value = exp[obis]
            assert reading["value"] == pytest.approx(_number(value)) and reading["unit"] == "m3"
            assert reading["time_utc"] == _p1_time(stamp, tz).isoformat()
        timed = {_dotted(obis) for _m, obis, _f in channels} | {"1.0.1.6.0.255"}  # and Belgium's monthly peak
        assert all("time_utc" not in r for k, r in regs.items() if k not in timed)
    if channels:  # the readings' times differ from the telegrams' (a reading every 5 minutes)
        gas = _dotted(channels[0][1])
        own = {r["time_utc"] for row in rows for r in row["registers"] if r["obis"] == gas}
        assert len(own) == (COUNT - 1) * STEP // 300 + 1 and not own >= set(iso)

    # -- SQLite: each telegram one push; the readings view shows the readings' own times ----------
    con = sqlite3.connect(f"file:{tmp_path / 'han.db'}?mode=ro", uri=True)
    try:
        pushes = [r[0] for r in con.execute("SELECT time_utc FROM pushes ORDER BY id")]
        assert pushes == iso
        for medium, obis, _ in channels:
            got = con.execute("SELECT time_utc, value FROM readings WHERE key = ? ORDER BY push_id",
                              (f"{medium}_reading",)).fetchall()
            want = [(_p1_time(e[obis][0], tz).strftime("%Y-%m-%dT%H:%M:%SZ"), _number(e[obis][1])) for e in expected]
            assert len(got) == COUNT
            assert [t for t, _ in got] == [t for t, _ in want]
            assert [float(v) for _, v in got] == pytest.approx([v for _, v in want])
        power = con.execute("SELECT count(*), count(DISTINCT push_id) FROM readings WHERE key = 'active_power_import'"
                            ).fetchone()
        assert power == (COUNT, COUNT)
    finally:
        con.close()

    # -- InfluxDB: one point per telegram at its time; one point per reading at the reading's time --
    points = influxd.series(f'SELECT "active_power_import_kw" FROM "han" WHERE "meter" != \'\'', db)
    times = [datetime.fromtimestamp(p["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for p in points]
    assert Counter(times) == Counter(iso)
    for _medium, obis, field in channels:
        got = influxd.series(f'SELECT "{field}" FROM "han" WHERE "{field}" > 0', db)
        want = {int(_p1_time(e[obis][0], tz).timestamp()): _number(e[obis][1]) for e in expected}
        assert {p["time"]: p[field] for p in got} == pytest.approx(want)
        assert len(got) == len(want)  # the same reading in twenty telegrams is one point

    # -- MQTT: one state message per push; <key>_time beside each reading; HA discovery ----------
    states = sub.states()
    assert len(states) == COUNT and len({s["seq"] for s in states}) == COUNT
    assert [s["time"] for s in states] == iso
    for state, exp in zip(states, expected):
        for medium, obis, _ in channels:
            assert state[medium] == pytest.approx(_number(exp[obis][1]))
            assert datetime.fromisoformat(state[f"{medium}_time"]) == _p1_time(exp[obis][0], tz)
    node = next(t.split("/")[1] for t, _, _ in sub.messages if t.startswith(f"{topic}/") and t.endswith("/state"))
    configs = {t: p for t, p, _ in sub.messages if t.startswith(f"homeassistant/sensor/{node}/")}
    found = {t.split("/")[-2]: check_discovery(t, p, states[-1]) for t, p in configs.items()}
    for medium, _obis, _ in channels:
        c = found[medium]
        assert (c["device_class"], c["unit_of_measurement"], c["state_class"]) == (medium, "m³", "total_increasing")
    assert "active_energy_import_t1" in found if meter != "sweden" else "active_energy_import" in found

    # -- han report --by hour: import/export = the deltas of the tariff sums, and per tariff -------
    out = subprocess.run(HAN + ["report", "--db", str(tmp_path / "han.db"), "--by", "hour", "--format", "json",
                                "--from", START[:10], "--to", "2026-05-14"],
                         capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=GUARD)
    assert out.returncode == 0, out.stderr
    hours = [h for h in json.loads(out.stdout) if h["quality"] == "measured"]
    assert len(hours) == 3  # 06, 07 and 08 h: both boundaries read

    def register(i: int, c: str) -> float:
        e = expected[i]
        if meter == "sweden":
            return _number(e[f"1-0:{c}.8.0"][0]) if c in ("1", "2") else 0.0
        return sum(_number(e[f"1-0:{c}.8.{t}"][0]) for t in (1, 2))

    by_start = {h["start"][:19]: h for h in hours}
    for k in range(3):
        a, b = k * 60, (k + 1) * 60  # the telegrams at the hour's boundaries
        h = by_start[f"2026-05-13T{6 + k:02d}:00:00"]
        assert h["import_kwh"] == pytest.approx(register(b, "1") - register(a, "1"), abs=0.0015)
        assert h["export_kwh"] == pytest.approx(register(b, "2") - register(a, "2"), abs=0.0015)
        if meter != "sweden":
            for d, c in (("import", "1"), ("export", "2")):
                for t in (1, 2):
                    delta = _number(expected[b][f"1-0:{c}.8.{t}"][0]) - _number(expected[a][f"1-0:{c}.8.{t}"][0])
                    assert h[f"{d}_t{t}_kwh"] == pytest.approx(delta, abs=0.0015)
    if meter == "dsmr5":  # 06 h ran on the low tariff (1), 08 h on the normal one (2); the sun came up
        assert by_start["2026-05-13T06:00:00"]["import_t2_kwh"] == 0
        assert by_start["2026-05-13T08:00:00"]["import_t1_kwh"] == 0
        assert sum(h["export_kwh"] for h in hours) > 0


def _telegrams(count: int, seed: int = 5) -> list[bytes]:
    sim = P1Simulator("dsmr5", seed=seed)
    return list(sim.frames(datetime(2026, 1, 15, 11, 0, tzinfo=UTC), 10.0, count))


def test_a_telegram_with_a_bad_crc_gives_no_values_and_one_log_line(tmp_path):
    telegrams = _telegrams(6)
    bad = bytearray(telegrams[3])
    at = bad.index(b"1-0:1.7.0(") + 12
    bad[at : at + 1] = b"9" if bad[at : at + 1] != b"9" else b"8"  # one digit of the power; the CRC stays
    wire = telegrams[:3] + [bytes(bad)] + telegrams[4:]
    pty = Pty(str(tmp_path / "ttyP1"))
    try:
        with open(tmp_path / "log.txt", "wb") as log:
            proc = _run_daemon(tmp_path, pty.link, [f"jsonl:{tmp_path / 'pushes.jsonl'}",
                                                    f"sqlite:{tmp_path / 'han.db'}"], "p1", log)
            for t in wire:
                pty.write_now(t)
            wait_until_sync(lambda: os.path.exists(tmp_path / "pushes.jsonl")
                            and len(_jsonl(tmp_path / "pushes.jsonl")) == 5, "5 pushes")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(GUARD) == 0
    finally:
        pty.close()
    rows = _jsonl(tmp_path / "pushes.jsonl")
    assert [r["timestamp"][11:19] for r in rows] == ["12:00:00", "12:00:10", "12:00:20", "12:00:40", "12:00:50"]
    log = (tmp_path / "log.txt").read_text()
    crc_lines = [line for line in log.splitlines() if "CRC" in line]
    assert len(crc_lines) == 1, log
    assert "gives no values" in crc_lines[0] and "Traceback" not in log
    con = sqlite3.connect(f"file:{tmp_path / 'han.db'}?mode=ro", uri=True)
    try:
        assert con.execute("SELECT count(*) FROM pushes").fetchone() == (5,)
    finally:
        con.close()


def test_dsmr22_preset_reads_a_dsmr_2_2_stream_with_gas_on_the_next_line(tmp_path):
    """9600 7E1 (a pty carries 8N1 bytes; the ASCII is the same), no CRC, no clock, gas as 0-1:24.3.0."""
    telegrams = []
    for i in range(4):
        gas_at = datetime(2026, 1, 15, 10 + i, 0)
        telegrams.append(build_telegram("/ISk5\\2ME382-1003", [
            "0-0:96.1.1(4B414C37303035313131313131313131)",
            f"1-0:1.8.1({1000.5 + i:09.3f}*kWh)",
            f"1-0:1.8.2({2000.25 + 2 * i:09.3f}*kWh)",
            "1-0:2.8.1(00010.000*kWh)",
            "1-0:2.8.2(00020.000*kWh)",
            f"0-0:96.14.0(000{1 + i % 2})",
            "1-0:1.7.0(0001.25*kW)",
            "1-0:2.7.0(0000.00*kW)",
            "0-0:17.0.0(999*A)",
            "0-0:96.3.10(1)",
            "0-0:96.13.1()",
            "0-0:96.13.0()",
            "0-1:24.1.0(3)",
            "0-1:96.1.0(3238313131313131313131313131313131)",
            f"0-1:24.3.0({gas_at:%y%m%d%H%M%S})(08)(60)(1)(0-1:24.2.1)(m3)",
            f"({400.125 + i:09.3f})",
            "0-1:24.4.0(1)",
        ], crc=False))
    pty = Pty(str(tmp_path / "ttyP1"))
    try:
        with open(tmp_path / "log.txt", "wb") as log:
            proc = _run_daemon(tmp_path, pty.link, [f"jsonl:{tmp_path / 'pushes.jsonl'}",
                                                    f"sqlite:{tmp_path / 'han.db'}"], "dsmr22", log)
            for t in telegrams:
                pty.write_now(t)
            wait_until_sync(lambda: os.path.exists(tmp_path / "pushes.jsonl")
                            and len(_jsonl(tmp_path / "pushes.jsonl")) == 4, "4 pushes")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(GUARD) == 0
    finally:
        pty.close()
    log = (tmp_path / "log.txt").read_text()
    assert "Traceback" not in log, log
    rows = _jsonl(tmp_path / "pushes.jsonl")
    assert [r["list_id"] for r in rows] == ["DSMR 2.2/3.0"] * 4
    for i, row in enumerate(rows):
        regs = {r["obis"]: r for r in row["registers"]}
        assert regs[_dotted("1-0:1.8.1")]["value"] == pytest.approx(1000.5 + i)
        assert regs[_dotted("1-0:1.8.2")]["value"] == pytest.approx(2000.25 + 2 * i)
        gas = regs[_dotted("0-1:24.3.0")]  # the object as sent
        assert (gas["value"], gas["unit"]) == (pytest.approx(400.125 + i), "m3")
        # 10:00 + i h in Amsterdam (winter): 09:00 + i h UTC
        assert gas["time_utc"] == datetime(2026, 1, 15, 9 + i, tzinfo=UTC).isoformat()
    con = sqlite3.connect(f"file:{tmp_path / 'han.db'}?mode=ro", uri=True)
    try:
        got = con.execute("SELECT time_utc, value FROM readings WHERE key = 'gas_reading' ORDER BY push_id").fetchall()
    finally:
        con.close()
    assert got == [(f"2026-01-15T{9 + i:02d}:00:00Z", pytest.approx(400.125 + i)) for i in range(4)]
