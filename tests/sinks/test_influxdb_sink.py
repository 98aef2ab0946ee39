"""The InfluxDB sink end to end: simulator → pty → ``han run`` → real InfluxDB 1.6.7 / VictoriaMetrics → read back.

influxd 1.6.7 takes the v1 ``/write`` (and stores string fields); VictoriaMetrics takes
influxdb-client's ``/api/v2/write`` and keeps every sample it is sent (no de-duplication),
so a point sent twice would show up twice in its export: the exactly-once checks use it.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from daemonkit import KEYS, START, UTC_START, accepted, caught_up, simulator, start, stop, wait_until
from daemonkit import run_config as config
from servers import fresh_db, influxd, victoria  # noqa: F401 - session fixtures

from obis.code import Obis
from obis.push import Push, Register
from sinks.base import Checkpoint, Entry, create_sink, redact



def test_v1_every_push_arrives_with_tags_fields_and_meter_time(tmp_path, pty, influxd):
    db = fresh_db(influxd, "han_v1")
    sim = simulator()
    frames = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(12)]

    async def main():
        d, task = await start(config(tmp_path, pty.link, f"influx://127.0.0.1:{influxd.port}?api=v1&db={db}"))
        for f in frames:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == len(frames) and caught_up(d), "12 pushes delivered")
        assert await stop(d, task) == 0

    asyncio.run(main())
    rows = influxd.series('SELECT * FROM "han" GROUP BY *', db)
    assert [r["time"] for r in rows] == [UTC_START + 10 * i for i in range(12)]
    for r in rows:
        assert r["meter_id"] == "31415926"
        assert r["list_id"] == "Kamstrup_V0001"
        assert r["system_title"] == "4B414D4501DF5E76"
        assert r["active_power_import_w"] > 0
        assert r["voltage_l1_v"] > 200 and r["current_l1_a"] >= 0 and 0 < r["power_factor"] <= 1
        assert r["active_energy_import_wh"] > 0
        assert "clock" not in r and "meter_number" not in r  # the time and the identity are not fields
    energies = [r["active_energy_import_wh"] for r in rows]
    assert energies == sorted(energies)
    fields = {r["fieldKey"]: r["fieldType"] for r in influxd.series('SHOW FIELD KEYS FROM "han"', db)}
    assert fields["active_power_import_w"] == "float" and fields["invocation_counter"] == "integer"
    assert len(fields) == 31  # 32 registers less clock and meter number, plus the invocation counter
    counters = influxd.series('SELECT "invocation_counter" FROM "han"', db)
    assert [r["invocation_counter"] for r in counters] == list(range(1000, 1012))


def test_same_meter_second_never_overwrites_and_a_resent_batch_is_idempotent(tmp_path, pty, influxd):
    """A stuck clock, a clock set back an hour and a local-time meter's repeated autumn hour give pushes
    with the same meter second: each is its own point (the journal position's sub-second discriminator),
    and the same batch sent again (a crash between write and checkpoint) lands on the same points."""
    db = fresh_db(influxd, "han_same")
    sim = simulator(seed=21)
    t = START + timedelta(days=3)
    fall_back = datetime(2026, 10, 25, 2, 30, 0)  # Europe/Copenhagen: 02:30 happens twice
    frames = [
        sim.frame(t), sim.frame(t), sim.frame(t),  # a stuck clock
        sim.frame(t + timedelta(hours=1)), sim.frame(t + timedelta(seconds=10)),  # forward an hour, set back: ...
        sim.frame(t + timedelta(hours=1)),  # ... and the same hour again
        sim.frame(fall_back, dst=True), sim.frame(fall_back, dst=False),  # summer time, then winter time: 2 instants
        sim.frame(fall_back), sim.frame(fall_back),  # a meter that does not say which pass it is
    ]
    url = f"influx://127.0.0.1:{influxd.port}?api=v1&db={db}"

    async def main():
        d, task = await start(config(tmp_path, pty.link, url))
        for f in frames:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == len(frames) and caught_up(d), "every push delivered")
        assert await stop(d, task) == 0

    asyncio.run(main())
    q = 'SELECT count("invocation_counter"), count(distinct("invocation_counter")) FROM "han"'
    (row,) = influxd.series(q, db)
    assert (row["count"], row["count_1"]) == (len(frames), len(frames))
    # the same journal rows sent again: the very same points, no new ones
    sink = create_sink(url)
    asyncio.run(sink.open(Checkpoint("j")))
    pushes = [Entry(i + 1, datetime(2026, 1, 1, tzinfo=timezone.utc), p) for i, p in enumerate(_decoded(frames))]
    asyncio.run(sink.write(pushes))
    asyncio.run(sink.write(pushes))
    asyncio.run(sink.close())
    (row,) = influxd.series(q, db)
    assert (row["count"], row["count_1"]) == (len(frames), len(frames))
    stamps = [r[0] for r in influxd.query('SELECT "invocation_counter" FROM "han"', db, epoch="ns")["results"][0]
              ["series"][0]["values"]]
    assert len(set(stamps)) == len(frames)


def _decoded(frames: list[bytes]) -> list[Push]:
    from han.pipeline import PushDecoder

    dec = PushDecoder(KEYS)
    out = []
    for f in frames:
        out += dec.feed(f)
    return out


def test_outage_and_daemon_restart_every_point_exactly_once(tmp_path, pty, victoria, caplog):
    """VictoriaMetrics (influxdb-client, v2 API) goes away mid-run; the daemon is restarted during the outage."""
    caplog.set_level(logging.INFO)
    sim = simulator(seed=5)
    frames = [sim.frame(START + timedelta(days=30, seconds=10 * i)) for i in range(30)]
    sink = f"influx://127.0.0.1:{victoria.port}?org=home&bucket=han&token=s3cret-token&measurement=outage"
    cfg = config(tmp_path, pty.link, sink)

    async def main():
        d, task = await start(cfg)
        for f in frames[:10]:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 10 and caught_up(d), "the first 10 pushes")
        victoria.stop()  # the outage begins
        for f in frames[10:20]:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 10 + 10 and d.workers[0].state == "failing", "the sink to fail")
        assert d.workers[0].backlog(d.journal.last_seq) > 0
        assert await stop(d, task) == 0  # a restart of the daemon during the outage

        d, task = await start(cfg)
        for f in frames[20:]:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 10, "10 more pushes")
        # the restarted daemon meets the outage too before the server comes back
        await wait_until(lambda: d.workers[0].state == "failing", "the sink to fail again")
        assert not caught_up(d)
        victoria.start()  # the server is back: the backlog drains in order
        await wait_until(lambda: caught_up(d), "the backlog to drain")
        assert await stop(d, task) == 0

    try:
        asyncio.run(main())
    finally:
        if victoria.proc is None:
            victoria.start()
    series = victoria.export('{__name__="outage_active_power_import_w"}', samples=30)
    assert len(series) == 1
    assert series[0]["metric"] == {
        "__name__": "outage_active_power_import_w",
        "meter": "4B414D4501DF5E76",
        "meter_id": "31415926",
        "list_id": "Kamstrup_V0001",
        "system_title": "4B414D4501DF5E76",
    }
    stamps = Counter(series[0]["timestamps"])
    # whole seconds of meter time + the journal position's discriminator (milliseconds: the position mod 1000)
    expected = [(UTC_START + 30 * 86400 + 10 * i) * 1000 + (i + 1) for i in range(30)]
    assert sorted(stamps) == expected
    assert set(stamps.values()) == {1}, "a point was sent twice"
    text = caplog.text
    assert "s3cret-token" not in text
    assert "retrying with back-off" in text and "writing again" in text


def push_with(registers: list[Register], when: datetime) -> Push:
    return Push(registers=tuple(registers), list_id="L1", profile=None, meter_time=None, invoke_id_and_priority=0,
                security=None, meter_id="M1", timestamp_utc=when)


def test_strings_stay_strings_and_a_field_type_conflict_costs_only_that_field(influxd, caplog):
    """400 "field type conflict" (the shard holds the field with another type, e.g. written by an older
    han): the push is written without that field, said once; other shards keep it; nothing is retried."""
    db = fresh_db(influxd, "han_bad")
    t0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    t1 = t0 + timedelta(days=21)  # another shard group: no conflict there
    # the first shard already holds power as a string: a float there is a type conflict (HTTP 400)
    create_sink(f"influx://127.0.0.1:{influxd.port}?api=v1&db={db}")._post_v1(
        f'han,meter_id=other active_power_import_w="x" {(int(t0.timestamp()) - 60) * 10**9}'
    )
    fw = Register(Obis.parse("1.0.0.2.0.255"), "Firmware version", "1.2.3", None, "1.2.3", "visible_string", None, 0,
                  key="firmware_version")
    power = Register(Obis.parse("1.0.1.7.0.255"), "Active power import", 1500, "W", 1500, "double_long_unsigned", 0,
                     1, key="active_power_import")
    entries = [Entry(1, t0, push_with([fw, power], t0)), Entry(2, t0 + timedelta(seconds=10),
               push_with([fw, power], t0 + timedelta(seconds=10))), Entry(3, t1, push_with([fw, power], t1))]
    sink = create_sink(f"influx://127.0.0.1:{influxd.port}?api=v1&db={db}")
    asyncio.run(sink.open(Checkpoint("j")))
    with caplog.at_level(logging.WARNING):
        asyncio.run(sink.write(entries))
    assert asyncio.run(sink.flush()).seq == 3  # acknowledged: a 400 is not retried
    asyncio.run(sink.close())
    assert sink.skipped == 0
    assert caplog.text.count("field active_power_import_w is stored with another type") == 1
    rows = influxd.series('SELECT "firmware_version", "active_power_import_w" FROM "han" WHERE meter_id = \'M1\'', db)
    assert rows == [
        {"time": int(t0.timestamp()), "firmware_version": "1.2.3", "active_power_import_w": None},
        {"time": int(t0.timestamp()) + 10, "firmware_version": "1.2.3", "active_power_import_w": None},
        {"time": int(t1.timestamp()), "firmware_version": "1.2.3", "active_power_import_w": 1500},
    ]


def test_missing_database_and_wrong_api_are_retried_with_a_hint(influxd):
    sink = create_sink(f"influx://127.0.0.1:{influxd.port}?api=v1&db=no_such_db")
    asyncio.run(sink.open(Checkpoint("j")))
    e = Entry(1, datetime(2026, 3, 2, tzinfo=timezone.utc),
              push_with([Register(None, None, 1, "W", 1, "long", 0, 0, key="active_power_import")],
                        datetime(2026, 3, 2, tzinfo=timezone.utc)))
    with pytest.raises(Exception, match="HTTP 404: not found: does the database 'no_such_db' exist"):
        asyncio.run(sink.write([e]))
    sink = create_sink(f"influx://127.0.0.1:{influxd.port}?org=o&bucket=b&token=t0ken")
    asyncio.run(sink.open(Checkpoint("j")))
    with pytest.raises(Exception, match=r"before 1.8 has no /api/v2/write") as info:
        asyncio.run(sink.write([e]))
    assert "t0ken" not in str(info.value)
    asyncio.run(sink.close())


def test_url_parsing_and_secrets_never_shown(monkeypatch):
    s = create_sink("influx://db.local:8086?org=home&bucket=han&token=s3cret")
    assert s.api == "v2" and s.base_url == "http://db.local:8086" and s.bucket == "han"
    assert "s3cret" not in s.name and s.name == "influx://db.local:8086?org=home&bucket=han"
    assert "s3cret" not in redact("influx://db.local:8086?org=home&token=s3cret&bucket=han")
    s = create_sink("influxs://u:pw@db.local?api=v1&db=han&rp=week")
    assert s.api == "v1" and s.base_url == "https://db.local:8086" and s.user == "u" and s.rp == "week"
    assert "pw" not in s.name
    monkeypatch.setenv("HAN_INFLUX_TOKEN", "from-env")
    assert create_sink("influx://h:1", bucket="b")._token == "from-env"
    with pytest.raises(Exception, match="needs a bucket"):
        create_sink("influx://h:1?org=o")
    with pytest.raises(Exception, match="unknown parameter 'bukcet'"):
        create_sink("influx://h:1?bukcet=b")
    with pytest.raises(Exception, match="time must be meter"):
        create_sink("influx://h:1?bucket=b", time="local")


def test_decode_never_imports_network_clients():
    code = (
        "import sys\nfrom han.cli import main\n"
        "import sinks.base\n"
        "bad = [m for m in ('influxdb_client', 'aiomqtt', 'paho') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_sinks_tables_in_the_config_and_the_journal_age_limit(tmp_path):
    import time as _time

    from han.config import Overrides, build_run_config
    from han.journal import Journal, Record

    conf = tmp_path / "han.toml"
    conf.write_text(
        '[serial]\nport = "/dev/ttyUSB0"\n[daemon]\nspool_max_age = 3600\n'
        '[sinks.influx]\nurl = "influx://127.0.0.1:8086"\norg = "home"\nbucket = "han"\n'
        '[sinks.mqtt]\nurl = "mqtt://127.0.0.1"\nprefix = "homeassistant"\n'
        '[sinks.off]\nurl = "jsonl:/tmp/x"\nenabled = false\n'
    )
    cfg = build_run_config(Overrides(config=str(conf)), environ={})
    assert [(s.url, dict(s.options)) for s in cfg.sinks] == [
        ("influx://127.0.0.1:8086", {"org": "home", "bucket": "han"}),
        ("mqtt://127.0.0.1", {"prefix": "homeassistant"}),
    ]
    assert cfg.spool_max_age == 3600
    for spec in cfg.sinks:
        create_sink(spec.url, **dict(spec.options))
    j = Journal(str(tmp_path / "journal.db"), max_age=3600)
    now = _time.time()
    j.append([Record(now - 7200, None, None, None, None, None, False, b"\x0f"),
              Record(now, None, None, None, None, None, False, b"\x0f")])
    assert j.trim_age(now) == 1 and j.rows() == 1
    j.close()
