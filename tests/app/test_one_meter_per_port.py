"""One port, one meter: short lists without a meter number are filed under the meter of their port.

Norwegian Aidon and Kaifa meters push a short list (active power only) every 2-2.5 s and longer
lists with the meter number every 10 s and hourly.  The corpus captures of both are replayed in
realistic orders (short lists first too) through the real daemon into SQLite, JSON lines, a real
mosquitto (Home Assistant discovery) and a real influxd; every sink must show one meter.  The
short lists are made distinct at run time (another power value, the frame rebuilt with its
checksums); nothing of the captures is stored in the repository.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter

import pytest
from conftest import ROOT, require_vectors
from daemonkit import wait_until
from servers import influxd, mosquitto  # noqa: F401 - session fixtures

from decoders.link.hdlc import HdlcFramer, build_frame
from decoders.ciphering.security import Keys
from han.burstlog import BurstLog
from han.config import ConfigError, RunConfig, SinkSpec, meter_name
from han.daemon import Daemon
from han.identity import HOLD_PUSHES, HOLD_SECONDS, UNKNOWN, SourceIdentity, Stamp
from han.ingest import Ingest
from han.journal import Journal, JournalReader, read_all
from han.keyring import KeyRing
from han.pipeline import PushDecoder
from obis.interpret import InterpretOptions
from han.replay import CounterStore

HAN = [sys.executable, "-m", "han"]
AIDON = "7359992891237028"
KAIFA = "6970631401753985"
POWER = "1.0.1.7.0.255"
ENERGY = "1.0.1.8.0.255"


# -- the rule, sans-IO ---------------------------------------------------------------------
def test_own_identity_first_then_the_source_then_held():
    ident = SourceIdentity()
    assert ident.stamp(None, None, 0.0) == (None, None)  # nothing known yet: held
    assert ident.stamp(None, None, 1.0) == (None, None)
    stamp, release = ident.stamp("M1", "M1", 2.0)
    assert stamp == Stamp("M1", "M1") and release.stamp == stamp and release.count == 2
    assert ident.stamp(None, None, 3.0) == (Stamp("M1", "M1"), None)  # the meter last seen on the source
    # a ciphered meter: its system title, with the number it sent earlier
    assert ident.stamp("4B414D4501DF5E76", "31415926", 4.0)[0] == Stamp("4B414D4501DF5E76", "31415926")
    assert ident.stamp("4B414D4501DF5E76", None, 5.0)[0] == Stamp("4B414D4501DF5E76", "31415926")
    assert ident.stamp(None, None, 6.0)[0] == Stamp("4B414D4501DF5E76", "31415926")
    assert ident.held == 0


def test_the_hold_is_bounded_by_count_and_time_then_the_configured_name():
    ident = SourceIdentity("house")
    for i in range(HOLD_PUSHES):
        assert ident.stamp(None, None, float(i) / 100) == (None, None)
    stamp, release = ident.stamp(None, None, 1.0)  # one too many: the held go out, and this one too
    assert stamp == Stamp("house", None) and release == release.__class__(Stamp("house", None), HOLD_PUSHES)
    assert ident.stamp(None, None, 2.0) == (Stamp("house", None), None)  # no more holding
    assert ident.stamp("M1", "M1", 3.0) == (Stamp("M1", "M1"), None)  # the meter names itself at last
    assert ident.stamp(None, None, 4.0) == (Stamp("M1", "M1"), None)

    ident = SourceIdentity()
    ident.stamp(None, None, 100.0)
    assert ident.expire(100.0 + HOLD_SECONDS - 1) is None
    release = ident.expire(100.0 + HOLD_SECONDS)
    assert release.stamp == Stamp(UNKNOWN, None) and release.count == 1
    assert ident.stamp(None, None, 200.0) == (Stamp(UNKNOWN, None), None)


def test_a_stop_releases_the_held_under_the_fallback():
    ident = SourceIdentity()
    ident.stamp(None, None, 0.0)
    assert ident.release().stamp == Stamp(UNKNOWN, None)
    assert ident.release() is None


def test_the_configured_name_is_checked():
    assert meter_name(" house ") == "house" and meter_name(None) is None
    for bad in ("", "  ", "a/b", "a+b", "x" * 65, 5):
        with pytest.raises(ConfigError, match="meter"):
            meter_name(bad)


# -- the captures ------------------------------------------------------------------------------
def _vectors() -> dict[str, dict]:
    return {v["id"]: v for v in require_vectors("real_vectors.jsonl")}


def variant(frame_hex: str, power: int, new_power: int) -> bytes:
    """The capture with another active power value (a distinct push), its frame rebuilt with HCS and FCS."""
    (f,) = HdlcFramer().feed(bytes.fromhex(frame_hex))
    old, new = b"\x06" + power.to_bytes(4, "big"), b"\x06" + new_power.to_bytes(4, "big")
    assert f.info.count(old) == 1
    return build_frame(f.info.replace(old, new), dest=f.dest, src=f.src, control=f.control)


def aidon(order: str) -> list[bytes]:
    """``s`` a 2.5 s list 1 (each with its own power), ``L`` the hourly list 3 with the meter number."""
    v = _vectors()
    short, long_ = v["aidon_no_list1_ts"], v["aidon_no_list3_6534_ts"]
    power = short["expected"]["obis"][POWER]["value"]
    out = []
    for i, kind in enumerate(order):
        out.append(variant(short["hex"], power, 1000 + i) if kind == "s" else bytes.fromhex(long_["hex"]))
    return out


def kaifa(order: str) -> list[bytes]:
    """``s`` a 2 s list 1, ``2`` the 10 s list 2, ``3`` the hourly list 3 (both with the meter number)."""
    v = _vectors()
    short = v["kaifa_no_list1_2017"]
    power = short["expected"]["obis"][POWER]["value"]
    lists = {"2": v["kaifa_no_list2_2017"]["hex"], "3": v["kaifa_no_list3_2017_midnight"]["hex"]}
    return [
        variant(short["hex"], power, 2000 + i) if kind == "s" else bytes.fromhex(lists[kind])
        for i, kind in enumerate(order)
    ]


def replay(tmp_path, frames: list[bytes], *extra: str, name: str = "run") -> subprocess.CompletedProcess:
    """``han run --replay CAPTURE --country NO`` as a user runs it, into SQLite and JSON lines."""
    capture = tmp_path / f"{name}.hex"
    capture.write_text("\n".join(f.hex() for f in frames) + "\n")
    cmd = HAN + [
        "run", "--replay", str(capture), "--country", "NO", "--state-dir", str(tmp_path / f"{name}-state"),
        "--sink", f"sqlite:{tmp_path / f'{name}.db'}", "--sink", f"jsonl:{tmp_path / f'{name}.jsonl'}", *extra,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out


def stored(db_path) -> tuple[Counter, dict[str, tuple]]:
    """(pushes per meter, the latest view as {obis: (meter, value)})."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        meters = Counter(m for (m,) in con.execute("SELECT meter FROM pushes"))
        readings = Counter(m for (m,) in con.execute("SELECT meter FROM readings"))
        latest = {obis: (meter, value) for meter, obis, value in con.execute("SELECT meter, obis, value FROM latest")}
    finally:
        con.close()
    assert set(readings) == set(meters)
    return meters, latest


def jsonl_meters(path) -> list[str]:
    return [json.loads(line)["meter"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("order", ["sssLss", "Lsssss", "ssLssL"])
def test_aidon_lists_are_one_meter_in_sqlite_and_jsonl(tmp_path, order):
    frames = aidon(order)
    replay(tmp_path, frames)
    meters, latest = stored(tmp_path / "run.db")
    assert meters == {AIDON: order.count("s") + 1}  # list 3 twice is one push (same meter time and content)
    assert latest[ENERGY] == (AIDON, 163777250)
    last_short = max(i for i, k in enumerate(order) if k == "s")
    assert latest[POWER] == (AIDON, 1000 + last_short)  # the newest power, from the newest short list
    assert {m for m, _ in latest.values()} == {AIDON}
    assert jsonl_meters(tmp_path / "run.jsonl") == [AIDON] * len(order)


def test_kaifa_lists_are_one_meter(tmp_path):
    order = "ss2s3ss2"
    replay(tmp_path, kaifa(order))
    meters, latest = stored(tmp_path / "run.db")
    assert meters == {KAIFA: order.count("s") + 2}
    assert latest[ENERGY][0] == KAIFA and latest[ENERGY][1] > 0
    assert latest[POWER] == (KAIFA, 2000 + order.rindex("s"))
    assert "1.0.32.7.0.255" in latest  # voltage from list 2/3, next to the short list's power
    lines = [json.loads(x) for x in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert [x["meter"] for x in lines] == [KAIFA] * len(order)
    assert [x["meter_id"] for x in lines] == [None if k == "s" else KAIFA for k in order]  # the push's own register


def test_short_lists_alone_go_under_the_configured_name_or_unknown(tmp_path):
    frames = aidon("sss")
    replay(tmp_path, frames, "--meter", "house", name="named")
    assert stored(tmp_path / "named.db")[0] == {"house": 3}
    replay(tmp_path, frames, name="plain")
    assert stored(tmp_path / "plain.db")[0] == {UNKNOWN: 3}
    # the configured name is only the last resort: a meter that names itself keeps its name
    replay(tmp_path, aidon("ssLs"), "--meter", "house", name="both")
    assert stored(tmp_path / "both.db")[0] == {AIDON: 4}


def test_more_short_lists_than_the_hold_takes(tmp_path):
    order = "s" * (HOLD_PUSHES + 5) + "L" + "ss"
    replay(tmp_path, aidon(order), "--meter", "house")
    assert stored(tmp_path / "run.db")[0] == {"house": HOLD_PUSHES + 5, AIDON: 3}
    assert jsonl_meters(tmp_path / "run.jsonl") == ["house"] * (HOLD_PUSHES + 5) + [AIDON] * 3


def test_the_config_file_setting(tmp_path):
    conf = tmp_path / "han.toml"
    conf.write_text('[serial]\nmeter = "garage"\n[decode]\ncountry = "NO"\n')
    capture = tmp_path / "c.hex"
    capture.write_text("\n".join(f.hex() for f in aidon("ss")))
    cmd = HAN + ["run", "--config", str(conf), "--replay", str(capture), "--state-dir", str(tmp_path / "st")]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert stored(tmp_path / "st" / "han.db")[0] == {"garage": 2}
    conf.write_text('[serial]\nmeter = ""\n')
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 2 and "meter" in out.stderr and "Traceback" not in out.stderr


# -- the journal: held pushes are durable and keep their order ---------------------------------
def make_ingest(tmp_path, meter=None):
    ring = KeyRing(Keys())
    journal = Journal(str(tmp_path / "journal.db"))
    counters = CounterStore(str(tmp_path / "counters.json")).load()
    decoder = PushDecoder(ring, transport="hdlc", options=InterpretOptions(country="NO"))
    return Ingest(decoder, ring, counters, journal, meter=meter, burst=BurstLog(lambda m: None))


def test_held_pushes_wait_in_the_journal_and_survive_a_restart(tmp_path):
    frames = aidon("sssLs")
    ingest = make_ingest(tmp_path)
    ingest.feed(b"".join(frames[:3]))
    rows = list(read_all(ingest.journal.path))
    assert [(r.held, r.meter) for r in rows] == [(True, None)] * 3  # journaled at once, marked held
    reader = JournalReader(ingest.journal.path)
    assert reader.read_after(0, 100) == []  # the sinks do not see them yet
    ingest.journal.close()  # killed here
    ingest = make_ingest(tmp_path)
    assert ingest.held == 3  # the restart resumes the hold from the journal
    ingest.feed(b"".join(frames[3:]))
    got = reader.read_after(0, 100)
    assert [(r.seq, r.meter, r.meter_id, r.held) for r in got] == [(i, AIDON, AIDON, False) for i in range(1, 6)]
    reader.close()


def test_a_release_while_the_journal_cannot_be_written(tmp_path):
    frames = aidon("ssLs")
    ingest = make_ingest(tmp_path)
    ingest.journal.db.execute("PRAGMA busy_timeout = 0")
    ingest.feed(frames[0])  # held, in the journal
    blocker = sqlite3.connect(ingest.journal.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the journal: appends fail for now
    ingest.feed(frames[1])  # held, in memory
    ingest.feed(frames[2] + frames[3])  # the meter names itself: both held pushes take its identity
    assert ingest.outcomes.counts["journal_error"] >= 1 and len(ingest.pending) == 3
    blocker.execute("ROLLBACK")
    blocker.close()
    assert ingest.commit()
    rows = list(read_all(ingest.journal.path))
    assert [(r.seq, r.meter, r.held) for r in rows] == [(i, AIDON, False) for i in range(1, 5)]
    assert ingest.outcomes.meters[AIDON].pushes == 4


# -- the network sinks ---------------------------------------------------------------------------
def daemon_replay(tmp_path, frames: list[bytes], *sinks: str) -> None:
    capture = tmp_path / "capture.hex"
    capture.write_text("\n".join(f.hex() for f in frames) + "\n")
    cfg = RunConfig(
        state_dir=str(tmp_path / "state"),
        replay=str(capture),
        sinks=tuple(SinkSpec(s) for s in sinks),
        decode_options=InterpretOptions(country="NO"),
        sink_retry_max=0.2,
        status_interval=0.2,
    )
    assert asyncio.run(Daemon(cfg).run()) == 0


def test_home_assistant_sees_one_device(tmp_path, mosquitto):
    from mqttkit import Subscriber, check_discovery

    order = "sssLss"
    url = f"mqtt://127.0.0.1:{mosquitto.port}?prefix=ha_one&topic=han_one"

    async def main():
        sub = Subscriber(mosquitto.port, topics=("ha_one/#", "han_one/#"), name="sub-one-meter")
        await wait_until(sub.subscribed.is_set, "the subscriber")
        await asyncio.get_running_loop().run_in_executor(None, daemon_replay, tmp_path, aidon(order), url)
        await wait_until(lambda: len(sub.states()) == len(order), "a state message per push")
        await sub.close()
        return sub

    sub = asyncio.run(main())
    node = f"han_{AIDON}"
    states = [(t, json.loads(p)) for t, p, r in sub.messages if t.endswith("/state") and not r]
    assert {t for t, _ in states} == {f"han_one/{node}/state"}
    configs = {t: p for t, p, _ in sub.messages if t.startswith("ha_one/sensor/")}
    last_state = {k: v for _, s in states for k, v in s.items()}
    devices = [check_discovery(t, p, last_state)["device"] for t, p in configs.items()]
    assert {t.split("/")[2] for t in configs} == {node}  # one device, no han_unknown
    assert {json.dumps(d["identifiers"]) for d in devices} == {json.dumps([node])}
    assert {d["name"] for d in devices} == {f"Electricity meter {AIDON}"}
    assert {d["serial_number"] for d in devices} == {AIDON}
    keys = {t.split("/")[3] for t in configs}
    assert {"active_power_import", "active_energy_import", "voltage_l1"} <= keys
    assert [s["active_power_import"] for _, s in states] == [
        1000 + i if k == "s" else 1743 for i, k in enumerate(order)
    ]


def test_influxdb_points_carry_the_meter_tag(tmp_path, influxd):
    influxd.query('DROP DATABASE "han_one"')
    influxd.query('CREATE DATABASE "han_one"')
    order = "ss2s3s"
    daemon_replay(tmp_path, kaifa(order), f"influx://127.0.0.1:{influxd.port}?api=v1&db=han_one")
    rows = influxd.series('SELECT * FROM "han" GROUP BY *', "han_one")
    assert len(rows) == len(order)
    assert {r["meter"] for r in rows} == {KAIFA}
    assert {r["meter_id"] for r in rows} == {KAIFA}  # the short lists too: a dashboard filters on it
    shorts = [r for r in rows if r.get("list_id") in (None, "")]
    assert len(shorts) == order.count("s") and all(r["active_power_import_w"] >= 2000 for r in shorts)



# -- a live port, han as a process -----------------------------------------------------------
def test_live_port_kill_9_while_held_then_the_meter_names_itself(tmp_path):
    """Short lists on a real pty wait (han status shows them), han is killed, the restart attributes them."""
    from daemonkit import Pty, wait_until_sync

    frames = aidon("sssLss")
    state = tmp_path / "state"
    pty = Pty(str(tmp_path / "ttyHAN"))

    def journal_rows() -> list[tuple]:
        if not (state / "journal.db").exists():
            return []
        con = sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True)
        try:
            return con.execute("SELECT seq, held, meter FROM journal ORDER BY seq").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    def start() -> subprocess.Popen:
        cmd = HAN + [
            "run", "--port", pty.link, "--country", "NO", "--state-dir", str(state), "--status-interval", "0.2",
            "--sink", f"sqlite:{tmp_path / 'han.db'}", "--sink", f"jsonl:{tmp_path / 'pushes.jsonl'}",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAN_") and k != "JOURNAL_STREAM"}
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT, env=env)
        wait_until_sync(
            lambda: status().get("pid") == proc.pid and status()["input"]["state"] == "connected", "the port to open"
        )
        return proc

    def status() -> dict:
        try:
            return json.loads((state / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    with open(tmp_path / "log.txt", "wb") as log:
        try:
            proc = start()
            for f in frames[:3]:
                pty.write_now(f)
            wait_until_sync(lambda: len(journal_rows()) == 3, "3 held pushes in the journal")
            assert [r[1:] for r in journal_rows()] == [(1, None)] * 3
            wait_until_sync(lambda: status().get("journal", {}).get("held") == 3, "han status to show them")
            out = subprocess.run(HAN + ["status", "--state-dir", str(state)], capture_output=True, text=True, cwd=ROOT)
            assert "held: 3 push(es)" in out.stdout
            assert not (tmp_path / "pushes.jsonl").exists() or (tmp_path / "pushes.jsonl").read_text() == ""
            proc.kill()
            proc.wait()
            proc = start()
            for f in frames[3:]:
                pty.write_now(f)
            wait_until_sync(lambda: len(journal_rows()) == 6 and not any(r[1] for r in journal_rows()), "all 6")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            pty.close()
    assert stored(tmp_path / "han.db")[0] == {AIDON: 6}
    assert jsonl_meters(tmp_path / "pushes.jsonl") == [AIDON] * 6
    assert "Traceback" not in (tmp_path / "log.txt").read_text()
