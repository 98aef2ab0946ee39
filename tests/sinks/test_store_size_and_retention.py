"""The compact raw store: size per push, pruning after rollup, and converting a version-2 database."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone

from decoders.ciphering.security import Keys
from han.pipeline import PushDecoder
from han.simulator import KamstrupSimulator
from sinks.store import retention
from sinks.base import Checkpoint, Entry, create_sink, iso_utc, push_key, time_utc
from sinks.sqlite import SqliteSink

UTC = timezone.utc


def pushes(n: int, step: int, start=datetime(2025, 1, 15, tzinfo=UTC)):
    sim = KamstrupSimulator(None, meter_number=12345678, seed=3)
    return PushDecoder(Keys()).feed(b"".join(sim.frames(start, step, n)))


def write(path, ps, **options):
    async def go():
        s = create_sink(f"sqlite:{path}", **options)
        await s.open(Checkpoint("j", 0))
        es = [Entry(i + 1, p.timestamp_utc, p) for i, p in enumerate(ps)]
        for i in range(0, len(es), 200):
            await s.write(es[i : i + 200])
        await s.close()

    asyncio.run(go())


def test_a_push_takes_less_than_1000_bytes(tmp_path):
    path = tmp_path / "han.db"
    ps = pushes(5000, 10)
    write(path, ps, keep_raw_days=None)
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = sum(r[0] for r in db.execute(
        "SELECT sum(pgsize) FROM dbstat WHERE name IN ('pushes', 'pushes_time', 'pushes_list')"
        " OR name LIKE 'sqlite_autoindex_pushes%'"))
    assert len(ps[0].registers) == 33  # the list identifier and 32 registers
    assert raw / len(ps) < 1000, raw / len(ps)
    assert path.stat().st_size / len(ps) < 1000
    # the readings view gives every register of every push, as before
    assert db.execute("SELECT count(DISTINCT push_id), count(*) FROM readings").fetchone() == (5000, 5000 * 33)
    assert db.execute("SELECT count(*) FROM latest").fetchone()[0] == 33


def test_pruning_keeps_hours(tmp_path):
    path = tmp_path / "han.db"
    ps = pushes(3 * 24 * 60 + 1, 60)  # three days, a push a minute
    write(path, ps, keep_raw_days=None)
    db = sqlite3.connect(path, isolation_level=None)
    hours_before = db.execute("SELECT count(*), sum(import_wh) FROM hours").fetchone()
    deleted, minutes = retention.prune(db, 1.0, chunk=500)
    assert deleted == 2 * 24 * 60
    oldest = db.execute("SELECT min(time_utc) FROM pushes").fetchone()[0]
    assert oldest == "2025-01-17T00:00:00Z"
    assert db.execute("SELECT min(minute) FROM minutes").fetchone()[0] * 60 >= datetime(
        2025, 1, 17, tzinfo=UTC).timestamp()
    assert minutes > 0
    assert db.execute("SELECT count(*), sum(import_wh) FROM hours").fetchone() == hours_before


def test_the_sink_prunes_in_the_background(tmp_path):
    path = tmp_path / "han.db"
    ps = pushes(3 * 24 * 60 + 1, 60)
    sink = SqliteSink(str(path), keep_raw_days=1, prune_every=0.05)

    async def go():
        await sink.open(Checkpoint("j", 0))
        await sink.write([Entry(i + 1, p.timestamp_utc, p) for i, p in enumerate(ps)])
        for _ in range(200):
            if sink._pruner is not None and sink._pruner.pruned:
                break
            await asyncio.sleep(0.05)
        await sink.close()

    asyncio.run(go())
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM pushes").fetchone()[0] == 24 * 60 + 1


V2 = """
CREATE TABLE pushes (id INTEGER PRIMARY KEY, meter TEXT NOT NULL, push_key TEXT NOT NULL, time_utc TEXT NOT NULL,
    meter_time TEXT, received_utc TEXT NOT NULL, meter_id TEXT, list_id TEXT, profile TEXT,
    invocation_counter INTEGER, security TEXT, verified INTEGER NOT NULL DEFAULT 0, UNIQUE (meter, push_key));
CREATE INDEX pushes_time ON pushes (time_utc);
CREATE TABLE readings (push_id INTEGER NOT NULL REFERENCES pushes (id), meter TEXT NOT NULL, time_utc TEXT NOT NULL,
    obis TEXT, name TEXT, key TEXT, value, unit TEXT, position INTEGER NOT NULL,
    PRIMARY KEY (push_id, position)) WITHOUT ROWID;
CREATE INDEX readings_obis_time ON readings (obis, time_utc);
CREATE TABLE han_position (sink TEXT PRIMARY KEY, journal TEXT NOT NULL, seq INTEGER NOT NULL);
PRAGMA user_version = 2;
"""


def test_a_version_2_database_is_converted(tmp_path):
    path = tmp_path / "han.db"
    db = sqlite3.connect(path)
    db.executescript(V2)
    ps = pushes(800, 10)
    for i, p in enumerate(ps):
        t = iso_utc(time_utc(p, p.timestamp_utc))
        pid = db.execute(
            "INSERT INTO pushes (meter, push_key, time_utc, received_utc, list_id, security) VALUES (?,?,?,?,?,?)",
            ("12345678", push_key(p), t, t, p.list_id, "none")).lastrowid
        db.executemany("INSERT INTO readings VALUES (?,?,?,?,?,?,?,?,?)", [
            (pid, "12345678", t, r.obis_text, r.name, r.key, r.value if not isinstance(r.value, list) else str(r.value),
             r.unit, r.position) for r in p.registers])
    db.execute("INSERT INTO han_position VALUES ('han', 'j', 800)")
    db.commit()
    before = db.execute("SELECT push_id, obis, value FROM readings ORDER BY push_id, position").fetchall()
    db.close()
    more = pushes(1000, 10)[800:]  # the daemon goes on where it stopped
    write(path, more[:0], keep_raw_days=None)  # open: converts
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    assert db.execute("SELECT type FROM sqlite_master WHERE name = 'readings'").fetchone()[0] == "view"
    after = db.execute("SELECT push_id, obis, value FROM readings ORDER BY push_id, position").fetchall()
    assert after == before
    e = [float(p.register("1.1.1.8.0.255").value) for p in (ps[0], ps[-1])]
    assert db.execute("SELECT sum(import_wh) FROM hours").fetchone()[0] == __import__("pytest").approx(e[1] - e[0])


def test_a_meter_clock_a_year_ahead_prunes_nothing_recent(tmp_path):
    path = tmp_path / "han.db"
    ps = pushes(3 * 24 * 60 + 1, 60)
    (future,) = pushes(1, 60, start=datetime(2026, 1, 18, tzinfo=UTC))
    entries = [Entry(i + 1, p.timestamp_utc, p) for i, p in enumerate(ps)]
    entries.append(Entry(len(ps) + 1, ps[-1].timestamp_utc + timedelta(seconds=60), future))

    async def go():
        s = create_sink(f"sqlite:{path}", keep_raw_days=None)
        await s.open(Checkpoint("j", 0))
        await s.write(entries)
        await s.close()

    asyncio.run(go())
    db = sqlite3.connect(path, isolation_level=None)
    deleted, _ = retention.prune(db, 1.0)
    assert deleted == 2 * 24 * 60 + 1  # by arrival: up to a day before the last push came (00:01)
    assert db.execute("SELECT count(*) FROM pushes").fetchone()[0] == 24 * 60 + 1
