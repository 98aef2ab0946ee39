"""Cost: recorded ENTSO-E A44 documents served by a local HTTP server, a price CSV, fees.

The documents in tests/app/a44/ were written by hand after the public A44 schema
(Publication_MarketDocument, curve type A03): a spring DST day with 23 hourly prices,
a day of 96 quarter-hour prices and an autumn DST day of 100, each leaving out the
positions that repeat the previous price.  A meter in Brussels imports 1 kWh every hour.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import ROOT
from tariffkit import add_hour, new_store

from han.tariffs.a44 import A44Error, parse

A44 = Path(__file__).with_name("a44")
TOKEN = "test-entsoe-token-0000"
BRUSSELS = "Europe/Brussels"
NS = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"
ACK = """<?xml version="1.0" encoding="UTF-8"?>
<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
  <mRID>ack</mRID><Reason><code>{code}</code><text>{text}</text></Reason>
</Acknowledgement_MarketDocument>"""


def _utc(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=timezone.utc)


class Platform(http.server.BaseHTTPRequestHandler):
    """The transparency platform's day-ahead answer from the recorded documents."""

    requests: list[dict] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        Platform.requests.append(q)
        if q.get("securityToken") != TOKEN:
            return self._send(401, ACK.format(code="999", text="Unauthorized. Missing or invalid security token"))
        a, b = _utc(q["periodStart"]), _utc(q["periodEnd"])
        series = []
        for f in sorted(A44.glob("*.xml")):
            root = ET.parse(f).getroot()
            iv = root.find(f"{{{NS}}}period.timeInterval")
            s = datetime.fromisoformat(iv.find(f"{{{NS}}}start").text.replace("Z", "+00:00"))
            e = datetime.fromisoformat(iv.find(f"{{{NS}}}end").text.replace("Z", "+00:00"))
            if s < b and e > a and q.get("in_Domain") == "10YBE----------2":
                series += root.findall(f"{{{NS}}}TimeSeries")
        if not series:
            return self._send(200, ACK.format(code="999", text="No matching data found for Data item"))
        ET.register_namespace("", NS)
        out = ET.Element(f"{{{NS}}}Publication_MarketDocument")
        out.extend(series)
        self._send(200, ET.tostring(out, encoding="unicode"))

    def _send(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def platform():
    Platform.requests = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Platform)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/api"
    srv.shutdown()
    srv.server_close()


def brussels_store(path: str) -> None:
    db = new_store(path, tz=BRUSSELS)
    for day in (date(2025, 3, 30), date(2025, 10, 2), date(2025, 10, 26)):
        t = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - timedelta(hours=3)
        while t < datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(hours=23):
            from zoneinfo import ZoneInfo

            loc = t.astimezone(ZoneInfo(BRUSSELS))
            if loc.date() == day:
                off = int(loc.utcoffset().total_seconds())
                db.execute("INSERT INTO hours (meter, start_utc, utc_offset, import_wh, export_wh, covered, bounds)"
                           " VALUES ('m1', ?, ?, 1000, 0, 3600, 3)", (int(t.timestamp()), off))
            t += timedelta(hours=1)
    db.close()


def report(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "han", "report", "--db", str(db), *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_a44_documents_fill_left_out_positions():
    spring = parse((A44 / "be-2025-03-30-dst-spring-pt60m.xml").read_bytes())
    assert len(spring) == 23 and {p.seconds for p in spring} == {3600}
    # positions 1-7 50, 8-10 120, 11-23 50 (only 1, 8 and 11 are written)
    assert [p.price for p in spring] == [50] * 7 + [120] * 3 + [50] * 13
    autumn = parse((A44 / "be-2025-10-26-dst-autumn-pt15m.xml").read_bytes())
    assert len(autumn) == 100 and {p.seconds for p in autumn} == {900}
    assert [p.price for p in autumn[11:17]] == [60, 100, 100, 100, 100, 60]
    with pytest.raises(A44Error, match="No matching data"):
        parse(ACK.format(code="999", text="No matching data found").encode())
    with pytest.raises(A44Error, match="not XML"):
        parse(b"<html>")


def tariff(tmp: Path, url: str, token: str = TOKEN, fees: str = "") -> Path:
    p = tmp / "tariffs.toml"
    p.write_text(f'[prices]\nsource = "entsoe"\narea = "10YBE----------2"\ntoken = "{token}"\nurl = "{url}"\n'
                 f"timeout = 3\n{fees}")
    return p


def test_entsoe_cost_per_hour_and_day_dst_and_quarters(tmp_path, platform):
    db = tmp_path / "han.db"
    brussels_store(str(db))
    tariff(tmp_path, platform)
    r = report(db, "--by", "day", "--from", "2025-03-30", "--to", "2025-03-31", "--format", "json")
    assert r.returncode == 0, r.stderr
    # 23 hours of 1 kWh: 20 x 50 + 3 x 120 = 1360 EUR/MWh -> 1.36 EUR
    assert json.loads(r.stdout)[0]["cost"] == {"energy": 1.36, "fees": 0.0, "total": 1.36, "currency": "EUR"}
    r = report(db, "--by", "hour", "--from", "2025-10-02", "--to", "2025-10-03", "--format", "json")
    rows = json.loads(r.stdout)
    # 07:00 local = positions 29-32: (200 + 240 + 240 + 280) / 4 = 240 EUR/MWh -> 0.24 EUR for 1 kWh
    assert [(x["start"][11:16], x["cost"]["energy"]) for x in rows[6:9]] == [("06:00", 0.08), ("07:00", 0.24),
                                                                              ("08:00", 0.08)]
    r = report(db, "--by", "hour", "--from", "2025-10-26", "--to", "2025-10-27", "--format", "json")
    rows = json.loads(r.stdout)
    assert len(rows) == 25
    # the repeated 02:00: summer time 60, winter time positions 13-16 at 100
    assert [(x["start"][11:], x["cost"]["energy"]) for x in rows[2:4]] == [("02:00:00+02:00", 0.06),
                                                                            ("02:00:00+01:00", 0.1)]
    assert sum(x["cost"]["energy"] for x in rows) == pytest.approx(1.54)  # (96 x 60 + 4 x 100) / 4 / 1000
    # everything came from the cache the first fetch filled: the platform can go away now
    n = len(Platform.requests)
    tariff(tmp_path, "http://127.0.0.1:9/api")
    r = report(db, "--by", "day", "--from", "2025-10-02", "--to", "2025-10-03", "--format", "json")
    assert r.returncode == 0 and r.stderr == "" and len(Platform.requests) == n
    assert json.loads(r.stdout)[0]["cost"]["energy"] == pytest.approx(2.08)  # 8320 / 4 / 1000


def test_fees_per_kwh_and_month(tmp_path, platform):
    db = tmp_path / "han.db"
    brussels_store(str(db))
    tariff(tmp_path, platform, fees="[fees]\nper_kwh = 0.05\nper_month = 31\n")
    r = report(db, "--by", "month", "--from", "2025-10-01", "--to", "2025-11-01", "--format", "json")
    cost = json.loads(r.stdout)[0]["cost"]
    # energy 2.08 + 1.54; fees 49 kWh x 0.05 + the whole month's 31
    assert cost == {"energy": 3.62, "fees": 33.45, "total": 37.07, "currency": "EUR"}
    r = report(db, "--by", "day", "--from", "2025-10-26", "--to", "2025-10-27", "--format", "json")
    # a 25-hour day of a 745-hour October: 31 x 25 / 745, plus 25 kWh x 0.05
    assert json.loads(r.stdout)[0]["cost"]["fees"] == pytest.approx(round(31 * 25 / 745 + 1.25, 4))


def test_a_failed_fetch_is_one_line_and_rows_stay(tmp_path, platform):
    db = tmp_path / "han.db"
    brussels_store(str(db))
    tariff(tmp_path, "http://127.0.0.1:9/api")  # nothing listens
    r = report(db, "--by", "day", "--from", "2025-03-30", "--to", "2025-03-31", "--format", "json")
    assert r.returncode == 0
    assert "cannot reach 127.0.0.1:9" in r.stderr and "rows without prices have no cost" in r.stderr
    assert TOKEN not in r.stderr and "Traceback" not in r.stderr
    assert "cost" not in json.loads(r.stdout)[0] and json.loads(r.stdout)[0]["import_kwh"] == 23.0
    tariff(tmp_path, platform, token="wrong")
    r = report(db, "--by", "day", "--from", "2025-03-30", "--to", "2025-03-31")
    assert r.returncode == 0 and "HTTP 401" in r.stderr and "invalid security token" in r.stderr
    assert "wrong" not in r.stderr


def test_csv_prices_hourly_then_quarters(tmp_path):
    db = tmp_path / "han.db"
    s = new_store(str(db))
    add_hour(s, "2025-01-15T10:00", 2.0)
    add_hour(s, "2025-01-15T11:00", 4.0)
    add_hour(s, "2025-01-15T12:00", 1.0)
    s.close()
    (tmp_path / "prices.csv").write_text(
        "start,price\n2025-01-15T10:00+01:00,0.50\n"
        "2025-01-15T11:00+01:00,0.40\n2025-01-15T11:15+01:00,0.80\n2025-01-15T11:30+01:00,0.40\n"
        "2025-01-15T11:45+01:00,0.40\n")
    (tmp_path / "tariffs.toml").write_text('[prices]\nsource = "csv"\nfile = "prices.csv"\ncurrency = "NOK"\n')
    r = report(db, "--by", "hour", "--from", "2025-01-15", "--to", "2025-01-16", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {x["start"][11:16]: x.get("cost") for x in json.loads(r.stdout)}
    # 10:00 2 kWh x 0.50 = 1.00; 11:00 4 kWh x (0.40 + 0.80 + 0.40 + 0.40) / 4 = 2.00;
    # 12:00 has no price (the last row lasts a quarter hour): no cost
    assert rows["10:00"]["total"] == 1.0 and rows["11:00"]["total"] == 2.0 and rows["12:00"] is None
    assert rows["11:00"]["currency"] == "NOK"
    t = report(db, "--by", "hour", "--from", "2025-01-15", "--to", "2025-01-16")
    assert "cost" in t.stdout and max(map(len, t.stdout.splitlines())) <= 80


@pytest.mark.parametrize("text,message", [
    ('[prices]\nsource = "nordpool"', "source must be csv or entsoe"),
    ('[prices]\nsource = "entsoe"\narea = "10YBE----------2"', "needs your token"),
    ('[prices]\nsource = "csv"', "needs file"),
    ('[fees]\nper_kwh = "x"', "per_kwh must be a number"),
])
def test_bad_price_settings_exit_2(tmp_path, text, message, monkeypatch):
    monkeypatch.delenv("HAN_ENTSOE_TOKEN", raising=False)
    db = tmp_path / "han.db"
    brussels_store(str(db))
    (tmp_path / "t.toml").write_text(text)
    r = report(db, "--tariffs", str(tmp_path / "t.toml"), "--from", "2025-03-30", "--to", "2025-03-31")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
