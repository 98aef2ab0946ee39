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
from test_influxdb_sink import UTC_START, fresh_db

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
    uid = re.search(r"^\s*uid:\s*(\S+)", ds_yaml, re.M)[1]
    assert "type: influxdb" in ds_yaml and "apiVersion: 1" in ds_yaml
    assert "apiVersion: 1" in (GRAFANA / "provisioning" / "dashboards" / "han.yaml").read_text()
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
        assert p["datasource"]["uid"] == uid
        for t in p["targets"]:
            assert t["rawQuery"] and "query" in t
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
