"""The sink interface and the embedded sinks: schema, exactly-once across crash windows, lazy loading."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from asyncio import run
from datetime import datetime, timedelta, timezone

import pytest
from conftest import ROOT, SAMPLES, SEED_AK, SEED_EK
from daemonkit import KEYS, START, simulator

from han.pipeline import PushDecoder
from sinks.base import Checkpoint, Entry, SinkError, create_sink, meter_of, push_key, redact, split_url, time_utc

RECEIVED = datetime(2026, 1, 15, 11, 0, 5, tzinfo=timezone.utc)


def entries(n: int, first_seq: int = 1, seed: int = 1) -> list[Entry]:
    sim = simulator(seed=seed)
    dec = PushDecoder(KEYS)
    pushes = dec.feed(b"".join(sim.frames(START, 10, n)))
    assert len(pushes) == n
    return [Entry(first_seq + i, RECEIVED + timedelta(seconds=10 * i), p) for i, p in enumerate(pushes)]


def test_urls_and_registry():
    assert split_url("sqlite:/var/lib/han/han.db") == ("sqlite", "/var/lib/han/han.db")
    assert split_url("sqlite:///var/lib/han/han.db") == ("sqlite", "/var/lib/han/han.db")
    assert split_url("jsonl:-") == ("jsonl", "-")
    assert redact("mqtt://user:secret@host:1883/x") == "mqtt://user:***@host:1883/x"
    with pytest.raises(SinkError, match="unknown sink 'influxdb'.*sqlite:"):
        create_sink("influxdb:http://localhost:8086")
    with pytest.raises(SinkError, match="SCHEME:TARGET"):
        create_sink("/var/lib/han/han.db")
    with pytest.raises(SinkError, match="unknown option"):
        create_sink("jsonl:/tmp/x.jsonl", colour="red")


def test_decode_never_imports_sinks_or_sqlite():
    code = (
        "import sys\nfrom han.cli import main\n"
        f"rc = main(['decode', {str(SAMPLES / 'kamstrup_dk_radius.hex')!r}, '--key', {SEED_EK.hex()!r},"
        f" '--auth-key', {SEED_AK.hex()!r}, '--format', 'jsonl'])\n"
        "assert rc == 0\n"
        "bad = [m for m in ('sqlite3', 'sinks.sqlite', 'sinks.base', 'serial', 'serial_asyncio', 'influxdb_client')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_meter_time_and_keys():
    e = entries(1)[0]
    assert meter_of(e.push) == "4B414D4501DF5E76"
    assert push_key(e.push).startswith("ic:1000:") and push_key(e.push) == push_key(entries(1)[0].push)
    # Kamstrup sends local time without a deviation: obis places it with the profile's zone (CET in January)
    assert time_utc(e.push, RECEIVED) == datetime(2026, 1, 15, 11, 0, 0, tzinfo=timezone.utc)


def test_sqlite_schema_and_values(tmp_path):
    db = str(tmp_path / "han.db")
    sink = create_sink(f"sqlite:{db}")
    assert run(sink.open(Checkpoint("j1"))) == Checkpoint("j1", 0)
    batch = entries(3)
    run(sink.write(batch))
    assert run(sink.flush()) == Checkpoint("j1", 3)
    # readable by another connection (the sqlite3 shell) while the sink is open
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = con.execute(
        "SELECT meter, time_utc, obis, name, key, value, unit FROM readings WHERE obis = '1.1.1.8.0.255' ORDER BY time_utc"
    ).fetchall()
    assert [r[1] for r in rows] == ["2026-01-15T11:00:00Z", "2026-01-15T11:00:10Z", "2026-01-15T11:00:20Z"]
    assert rows[0][0] == "4B414D4501DF5E76" and rows[0][3] == "Active energy A14" and rows[0][6] == "Wh"
    assert rows[0][4] == "active_energy_import" and rows[0][5] < rows[2][5]  # energy grows
    current = con.execute("SELECT value, unit FROM readings WHERE obis = '1.1.31.7.0.255'").fetchone()
    assert isinstance(current[0], float) and current[1] == "A"
    push = con.execute(
        "SELECT substr(push_key, 1, 8), meter_time, invocation_counter, security, verified, list_id, profile, meter_id"
        " FROM pushes ORDER BY id"
    ).fetchone()
    assert push == (
        "ic:1000:",
        "2026-01-15T12:00:00+01:00",
        1000,
        "authenticated+encrypted",
        1,
        "Kamstrup_V0001",
        "kamstrup_dk",
        "31415926",
    )
    latest = dict(con.execute("SELECT obis, value FROM latest").fetchall())
    assert len(latest) == 33 and latest["1.1.1.8.0.255"] == rows[2][5]
    con.close()
    run(sink.close())


def test_sqlite_keeps_its_own_position(tmp_path):
    """Killed after the commit but before the daemon stored the checkpoint: the database's own record wins."""
    db = f"sqlite:{tmp_path / 'han.db'}"
    batch = entries(4)
    sink = create_sink(db)
    run(sink.open(Checkpoint("j1")))
    run(sink.write(batch[:3]))
    run(sink.close())  # no flush, no checkpoint stored by the daemon
    sink = create_sink(db)
    assert run(sink.open(Checkpoint("j1", 0))).seq == 3
    run(sink.write(batch))  # the daemon re-sends from its (older) checkpoint
    run(sink.close())
    # a new journal (state directory wiped): pushes already stored are recognised by (meter, counter)
    sink = create_sink(db)
    assert run(sink.open(Checkpoint("j2", 0))).seq == 0
    run(sink.write([Entry(i + 1, e.received, e.push) for i, e in enumerate(batch)]))
    run(sink.close())
    con = sqlite3.connect(tmp_path / "han.db")
    assert con.execute("SELECT count(*), count(DISTINCT push_key) FROM pushes").fetchone() == (4, 4)
    assert con.execute("SELECT count(*) FROM readings").fetchone() == (4 * 33,)  # 32 registers and the list id


@pytest.mark.parametrize("scheme", ["jsonl", "csv"])
def test_file_sink_cuts_an_unacknowledged_tail(tmp_path, scheme):
    """Killed after writing a batch but before its checkpoint was stored: the batch is cut and written again."""
    url = f"{scheme}:{tmp_path / ('out.' + scheme)}"
    batch = entries(5)
    sink = create_sink(url)
    ckpt = run(sink.open(Checkpoint("j1")))
    run(sink.write(batch[:2]))
    ckpt = run(sink.flush())  # stored by the daemon
    run(sink.write(batch[2:4]))
    run(sink.flush())  # ... and killed before this checkpoint was stored
    run(sink.close())
    sink = create_sink(url)
    assert run(sink.open(ckpt)).seq == 2
    run(sink.write(batch[2:]))
    run(sink.flush())
    run(sink.close())
    text = (tmp_path / ("out." + scheme)).read_text()
    if scheme == "jsonl":
        lines = [json.loads(x) for x in text.splitlines()]
        assert [x["security"]["invocation_counter"] for x in lines] == [1000, 1001, 1002, 1003, 1004]
        assert lines[0]["time_utc"] == "2026-01-15T11:00:00Z" and lines[0]["received_utc"] == "2026-01-15T11:00:05Z"
    else:
        rows = list(csv.reader(text.splitlines()))
        assert rows[0] == ["time_utc", "meter", "meter_id", "obis", "name", "key", "value", "unit", "received_utc"]
        assert len(rows) == 1 + 5 * 33
        assert rows[1][3:7] == ["1.1.0.2.129.255", "List version identifier", "list_id", "Kamstrup_V0001"]
        assert rows[2][:5] == [
            "2026-01-15T11:00:00Z",
            "4B414D4501DF5E76",
            "31415926",
            "1.1.1.8.0.255",
            "Active energy A14",
        ]


def test_file_sink_rotated_by_someone_else(tmp_path):
    path = tmp_path / "out.jsonl"
    batch = entries(3)
    sink = create_sink(f"jsonl:{path}")
    run(sink.open(Checkpoint("j1")))
    run(sink.write(batch[:2]))
    ckpt = run(sink.flush())
    run(sink.close())
    path.unlink()  # logrotate
    sink = create_sink(f"jsonl:{path}")
    assert run(sink.open(ckpt)).seq == 2
    run(sink.write(batch[2:]))
    run(sink.close())
    assert len(path.read_text().splitlines()) == 1


def test_console_line(tmp_path, capsys):
    sink = create_sink("console:")
    assert sink.live
    run(sink.open(Checkpoint("j1", 7)))
    run(sink.write(entries(1, first_seq=8)))
    assert run(sink.flush()).seq == 8
    out = capsys.readouterr().out
    assert out.startswith("2026-01-15 11:00:00Z  4B414D4501DF5E76  import ") and " kWh" in out and "L1 " in out


def test_same_counter_or_time_with_new_content_is_a_new_push(tmp_path):
    """A re-keyed or reset meter counts from the start again, a stuck clock repeats its time:
    those pushes are new and must be stored; the same push received twice is stored once."""
    first = entries(3)
    restarted = entries(3, first_seq=4, seed=2)  # the same counters and times, other readings
    assert [push_key(e.push).split(":")[1] for e in first] == [push_key(e.push).split(":")[1] for e in restarted]
    sink = create_sink(f"sqlite:{tmp_path / 'han.db'}")
    run(sink.open(Checkpoint("j1", 0)))
    run(sink.write(first + restarted))
    run(sink.flush())
    run(sink.close())
    sink = create_sink(f"sqlite:{tmp_path / 'han.db'}")
    run(sink.open(Checkpoint("j2", 0)))  # a new journal re-sends everything: nothing new
    run(sink.write([Entry(i + 1, e.received, e.push) for i, e in enumerate(first + restarted)]))
    run(sink.flush())
    run(sink.close())
    con = sqlite3.connect(tmp_path / "han.db")
    assert con.execute("SELECT count(*), count(DISTINCT push_key) FROM pushes").fetchone() == (6, 6)
