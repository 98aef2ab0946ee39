"""The Grafana dashboard (samples/grafana): every panel's InfluxQL runs on a real InfluxDB 1.6.7 and returns
data that ``han run`` wrote there (Grafana's macros substituted the way Grafana does)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import pytest
from daemonkit import START, caught_up, simulator, wait_until
from servers import influxd  # noqa: F401 - session fixture
from daemonkit import accepted, start, stop
from daemonkit import run_config as config
from daemonkit import UTC_START
from servers import fresh_db

from conftest import ROOT

GRAFANA = ROOT / "samples" / "grafana"
STEP = 15 * 60  #: meter time between pushes: 50 hours of data in 200 pushes


def dashboard() -> dict:
    return json.loads((GRAFANA / "dashboards" / "han.json").read_text())


def test_dashboard_structure_and_provisioning():
    d = dashboard()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 30
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    ds_yaml = (GRAFANA / "provisioning" / "datasources" / "han.yaml").read_text()
    assert re.search(r"^\s*uid:\s*(\S+)", ds_yaml, re.M)
    assert "type: influxdb" in ds_yaml and "apiVersion: 1" in ds_yaml
    # importing prompts for the data source (__inputs); every query goes through the datasource variable,
    # which import sets to the chosen one and provisioning resolves to the InfluxDB data source
    (inp,) = d["__inputs"]
    assert inp["type"] == "datasource" and inp["pluginId"] == "influxdb"
    (var,) = [v for v in d["templating"]["list"] if v["type"] == "datasource"]
    assert var["query"] == "influxdb" and var["current"]["value"] == "${" + inp["name"] + "}"
    uid = "${" + var["name"] + "}"
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"]["uid"] == uid
    assert json.dumps(d).count("${" + inp["name"] + "}") == 1
    assert "apiVersion: 1" in (GRAFANA / "provisioning" / "dashboards" / "han.yaml").read_text()
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
        assert p["datasource"]["uid"] == uid
        for t in p["targets"]:
            assert t["rawQuery"] and "query" in t
            assert t.get("datasource", p["datasource"])["uid"] == uid
            assert "from(" not in t["query"], "InfluxQL, not Flux"
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for want in ("power now", "voltage", "current", "power per phase", "power factor", "energy per hour", "energy per day"):
        assert want in titles


def test_every_panel_query_returns_data_written_by_the_daemon(tmp_path, pty, influxd):
    db = fresh_db(influxd, "han_grafana")
    sim = simulator(seed=9)
    n = 200
    frames = [sim.frame(START + timedelta(seconds=STEP * i)) for i in range(n)]

    async def main():
        d, task = await start(config(tmp_path, pty.link, f"influx://127.0.0.1:{influxd.port}?api=v1&db={db}"))
        for f in frames:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == n and caught_up(d), f"{n} pushes delivered")
        assert await stop(d, task) == 0

    asyncio.run(main())
    macros = {
        "$timeFilter": f"time >= {UTC_START}s AND time <= {UTC_START + STEP * n}s",
        "$__interval": "15m",
        "$timezone": "Europe/Copenhagen",
        "$meter": "31415926",
    }

    def substitute(q: str) -> str:
        for k, v in macros.items():
            q = q.replace(k, v)
        assert "$" not in q.replace("/^", "").replace("$/", ""), q
        return q

    d = dashboard()
    for var in d["templating"]["list"]:
        if var["type"] == "query":
            rows = influxd.series(var["query"], db)
            assert [r["value"] for r in rows] == ["31415926"], var["name"]
    for p in d["panels"]:
        for t in p["targets"]:
            q = substitute(t["query"])
            rows = influxd.series(q, db)
            assert rows, f"panel {p['title']!r} {t['refId']}: no rows for {q}"
            columns = set(rows[0]) - {"time"}
            for c in columns:
                assert any(r[c] is not None for r in rows), f"panel {p['title']!r}: column {c} is all null (a typo?)"
            if "per hour" in p["title"]:
                assert len(rows) >= 40 and all(r["import"] >= 0 for r in rows if r["import"] is not None)
            if "per day" in p["title"]:
                assert len(rows) >= 2


def _write(influxd, db: str, lines: list[str]) -> None:
    import urllib.request

    req = urllib.request.Request(f"{influxd.url}/write?db={db}&precision=s", "\n".join(lines).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


def _panel_query(title: str, **macros: str) -> str:
    (p,) = [p for p in dashboard()["panels"] if p["title"] == title]
    q = p["targets"][0]["query"]
    for k, v in macros.items():
        q = q.replace(k, v)
    return q


def test_energy_bars_hourly_meter_lands_on_its_hour_and_one_bar_per_local_day(influxd):
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    db = fresh_db(influxd, "han_grafana_bars")
    # a meter that sends its registers once an hour, 5 s after it: hour h (UTC) uses 100 * (h + 1) Wh
    t0 = int(datetime(2026, 1, 15, tzinfo=timezone.utc).timestamp())
    total, lines = 0, []
    for h in range(11):
        lines.append(f"han,meter_id=H1 active_energy_import_wh={total},active_energy_export_wh=0 {t0 + h * 3600 + 5}")
        total += 100 * (h + 1)
    # a meter that sends every 15 minutes, 100 Wh each (9.6 kWh a local day), 2026-01-13 00:00 to 01-15 12:00 Oslo
    oslo = ZoneInfo("Europe/Oslo")
    d0 = int(datetime(2026, 1, 13, tzinfo=oslo).timestamp())
    for i in range(2 * 96 + 48 + 1):
        lines.append(f"han,meter_id=D1 active_energy_import_wh={100 * i},active_energy_export_wh=0 {d0 + 900 * i}")
    _write(influxd, db, lines)

    q = _panel_query("Energy per hour", **{"$timeFilter": f"time >= {t0 + 3600}s AND time <= {t0 + 10 * 3600 + 1800}s",
                                           "$meter": "H1"})
    bars = {r["time"]: r["import"] for r in influxd.series(q, db)}
    # the bar of hour h starts at h:01 and holds that hour's 100 * (h + 1) Wh (not the hour before's);
    # the bucket holding the range's start has its bar too (InfluxDB reads the bucket before it)
    assert min(bars) == t0 + 60
    for h in range(0, 10):
        assert bars[t0 + h * 3600 + 60] == pytest.approx((h + 1) / 10), h

    now = int(datetime(2026, 1, 15, 12, tzinfo=oslo).timestamp())
    q = _panel_query("Energy per day", **{"$timeFilter": f"time >= {(now - 86400) * 1000}ms AND time <= {now * 1000}ms",
                                          "$meter": "D1", "$timezone": "Europe/Oslo"})
    days = [(datetime.fromtimestamp(r["time"], oslo).strftime("%m-%d %H:%M"), r["import"]) for r in influxd.series(q, db)]
    # the default 24 hours: yesterday's whole day and today so far (00:00 to 12:00: 4.8 kWh), one bar each
    assert days == [("01-14 00:01", pytest.approx(9.6)), ("01-15 00:01", pytest.approx(4.8))]
