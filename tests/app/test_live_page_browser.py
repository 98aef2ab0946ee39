"""The live page in a real browser (headless Chromium) against ``han run --http``, fed through a pty.

The figures are read from the data attributes the page puts on them (data-w, data-kwh, ...),
and compared with what went into the port (the frame decoded here) or with the API's answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pagekit
import pytest
from daemonkit import wait_until_sync
from livekit import LiveDaemon, p1_number, p1_objects

pytestmark = pytest.mark.skipif(pagekit.available() is None, reason="needs chromium (Debian package chromium)")

POWER = "document.getElementById('power-import').dataset"
BARS = """[...document.querySelectorAll('#hours-chart g.bar')].map(g => [g.dataset.start,
    g.dataset.importKwh === '' ? null : +g.dataset.importKwh, g.dataset.exportKwh === '' ? null : +g.dataset.exportKwh,
    g.dataset.quality])"""
QUIET = "document.getElementById('quiet-warning')"


def _bars(rows: list[dict]) -> list[list]:
    return [[r["start"], r["import_kwh"], r["export_kwh"], r["quality"]] for r in rows]


def test_live_page_follows_the_pushes(tmp_path):
    # push interval 2 s: the port counts as quiet after 6 s without a push (the daemon's watchdog)
    with LiveDaemon(tmp_path / "run", push_interval=2, extra=("--http-capacity", "no-elvia")) as han, \
            pagekit.Browser(width=412, height=915) as b:
        last = han.push()
        han.wait_stored()
        b.goto(han.url + "/")
        b.wait_for("document.body.dataset.ready === '1'", "the page's first figures")

        # the power shown is the last push's
        b.wait_for(f"+{POWER}.w === {last}", f"the page to show {last} W", guard=5)
        meter = b.eval(f"{POWER}.meter")
        assert meter == han.get("/api/latest")["meters"][0]["meter"]
        assert b.eval("document.getElementById('power-import').textContent").endswith("W")

        # a new push reaches the page within 2 s (server-sent events, no reload)
        for _ in range(3):
            before = b.eval(f"{POWER}.time")
            now = han.push()
            b.wait_for(f"{POWER}.time !== {before!r} && +{POWER}.w === {now}", "the new push on the page", guard=2.0)
        b.wait_for("document.getElementById('link-state').dataset.state === 'live'", "the event stream")

        # per-phase figures where the meter sends them (the simulated Kamstrup does)
        phases = b.eval("[...document.querySelectorAll('#phases tbody tr')].map(r => +r.dataset.voltageV)")
        assert len(phases) == 3 and all(200 < v < 260 for v in phases)

        # today's hour bars are /api/energy's rows (a fresh load: the page reads them once)
        han.wait_stored()
        b.goto(han.url + "/")
        b.wait_for("document.body.dataset.ready === '1'", "the page's figures")
        rows = han.get(f"/api/energy?by=hour&meter={meter}")
        assert sum(r["import_kwh"] is not None for r in rows) >= 2, rows
        assert b.eval(BARS) == _bars(rows)
        assert b.eval("+document.getElementById('hours-chart').dataset.bars") == len(rows)
        imported = sum(r["import_kwh"] for r in rows if r["import_kwh"] is not None)
        assert b.eval("+document.getElementById('today-import').dataset.kwh") == pytest.approx(imported)
        # the last hour as a minute series, the month's days
        minutes = han.get(f"/api/minutes?meter={meter}&minutes=60")
        assert 0 < len(minutes) <= 60
        assert b.eval("+document.getElementById('minutes-chart').dataset.points") == len(minutes)
        assert b.eval("+document.getElementById('days-chart').dataset.bars") >= 28
        # the capacity-tariff figure, its hours and the headroom
        month = rows[0]["start"][:7]
        cap = han.get(f"/api/capacity?month={month}&meter={meter}")
        assert cap["rule"] == "no-elvia" and cap["capacity"]["value_kw"] is not None
        assert b.eval("+document.getElementById('capacity-value').dataset.kw") == cap["capacity"]["value_kw"]
        assert b.eval("[...document.querySelectorAll('#capacity-hours li')].map(li => li.dataset.start)") == [
            h["start"] for h in cap["capacity"]["hours"]]
        want, got = cap["capacity"]["headroom_kwh"], b.eval("document.getElementById('capacity-headroom').dataset.kwh")
        assert got == "" if want is None else float(got) == pytest.approx(want)

        # a quiet port shows its warning, and loses it when pushes come again
        han.push()
        b.wait_for(f"{QUIET}.hidden", "no warning while pushes come")
        b.wait_for(f"!{QUIET}.hidden && {QUIET}.dataset.state === 'quiet'", "the quiet-port warning")
        text = b.eval(f"{QUIET}.textContent")
        assert "No push from" in text and "\n" not in text
        b.screenshot(str(tmp_path / "live-page-quiet.png"))
        # the watchdog reopens a silent port (which discards what comes meanwhile): push once it is open
        wait_until_sync(lambda: "open again" in han.log_text(), "the port to be reopened")
        han.push()
        b.wait_for(f"{QUIET}.hidden", "the warning to go when pushes come back")

        # the page loads nothing from outside, and nothing failed in it
        assert b.outside_requests(han.url) == []
        assert {r.type for r in b.requests} >= {"Document", "Script", "Stylesheet", "Fetch", "EventSource"}
        assert b.errors == []
        body = b.eval("document.body.innerText")
        assert "Traceback" not in body and "undefined" not in body and "NaN" not in body

        png = b.screenshot(str(tmp_path / "live-page.png"))
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "Traceback" not in han.log_text()


def test_page_asks_for_the_token(tmp_path):
    """Listening beyond loopback needs a token: without the cookie the page says how to log in, in one line."""
    token = "live-page-test-token"
    with LiveDaemon(tmp_path / "run", listen="0.0.0.0", token=token, history_minutes=5) as han, \
            pagekit.Browser(width=412, height=700) as b:
        b.goto(han.url + "/")
        b.wait_for("document.body.innerText.includes('/login?token=')", "the token prompt")
        prompt = [line for line in b.eval("document.body.innerText").splitlines() if "/login?token=" in line]
        assert len(prompt) == 1 and token not in prompt[0]
        b.goto(f"{han.url}/login?token={token}")  # sets the cookie and redirects to the page
        b.wait_for(f"document.body.dataset.ready === '1' && {POWER}.w !== undefined && {POWER}.w !== ''",
                   "the figures after logging in")
        assert b.eval("document.getElementById('auth-prompt').hidden")
        assert b.outside_requests(han.url) == []
        assert b.errors == []


PHASES = "[...document.querySelectorAll('#phases tbody tr')].map(r => [+r.dataset.voltageV, +r.dataset.currentA, " \
    "+r.dataset.importW, +r.dataset.exportW])"
GAS = "document.getElementById('gas-value').dataset"


def _p1_expected(telegram: bytes) -> dict:
    """What a DSMR 5 telegram says, in the API's units: power and phases in W (the telegram: kW), gas with its time."""
    o = p1_objects(telegram)
    kw = lambda code: round(p1_number(o[code][0]) * 1000, 3)  # noqa: E731
    stamp, reading = o["0-1:24.2.1"]
    local = datetime.strptime(stamp[:12], "%y%m%d%H%M%S")  # Dutch time: S summer (UTC+2), W winter (UTC+1)
    gas_utc = local - timedelta(hours=2 if stamp.endswith("S") else 1)
    return {
        "power": {"import_w": kw("1-0:1.7.0"), "export_w": kw("1-0:2.7.0")},
        "phases": [[p1_number(o[f"1-0:{v}.7.0"][0]), p1_number(o[f"1-0:{a}.7.0"][0]), kw(f"1-0:{i}.7.0"), kw(f"1-0:{e}.7.0")]
                   for v, a, i, e in ((32, 31, 21, 22), (52, 51, 41, 42), (72, 71, 61, 62))],
        "gas": {"value": p1_number(reading), "unit": "m3",
                "time_utc": gas_utc.replace(tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }


def _api_phases(entry: dict) -> list[float]:
    return [x for p in entry["phases"] for x in (p["voltage_v"], p["current_a"], p["import_w"], p["export_w"])]


def _flat(rows: list[list]) -> list:
    return [x for row in rows for x in row]


def test_a_p1_meter_shows_its_kw_as_watts_and_its_gas_with_its_own_time(tmp_path):
    """DSMR 5 sends power in kW (1-0:1.7.0, 21.7.0 ...): the API and the page show W; gas (m3) comes with its own time."""
    with LiveDaemon(tmp_path / "run", meters=("dsmr5",), history_minutes=20) as han, \
            pagekit.Browser(width=412, height=915) as b:
        han.push()
        han.wait_stored()
        want = _p1_expected(han.meters[0].frames[-1])
        (entry,) = han.get("/api/latest")["meters"]
        assert entry["power"] == want["power"]
        assert _api_phases(entry) == _flat(want["phases"])
        assert entry["gas"] == want["gas"]
        gas = next(r for r in entry["registers"] if r["key"] == "gas_reading")
        assert gas["unit"] == "m3" and gas["time_utc"] == want["gas"]["time_utc"] != entry["time_utc"]
        assert next(r for r in entry["registers"] if r["key"] == "active_power_import")["unit"] == "kW"

        b.goto(han.url + "/")
        b.wait_for("document.body.dataset.ready === '1'", "the page's first figures")
        b.wait_for(f"+{POWER}.w === {want['power']['import_w']}", "the P1 meter's power in W")
        assert b.eval("+document.getElementById('power-export').dataset.w") == want["power"]["export_w"]
        assert b.eval(PHASES) == want["phases"]
        assert b.eval("document.getElementById('power-import').textContent").endswith(" W")
        assert not b.eval("document.getElementById('gas').hidden")
        assert b.eval(f"+{GAS}.value") == want["gas"]["value"] and b.eval(f"{GAS}.time") == want["gas"]["time_utc"]
        assert b.eval("document.getElementById('gas-value').textContent").endswith("m³")
        assert entry["water"] is None and b.eval("document.getElementById('water').hidden")  # DSMR 5 has no water meter
        # a new telegram reaches the page as W
        for _ in range(2):
            now = han.push()
            b.wait_for(f"+{POWER}.w === {now}", "the new telegram's power on the page", guard=2.0)
        assert b.eval(PHASES) == _p1_expected(han.meters[0].frames[-1])["phases"]
        assert b.errors == [] and b.outside_requests(han.url) == []
        body = b.eval("document.body.innerText")
        assert "NaN" not in body and "undefined" not in body
        han.wait_stored()
        before = han.get("/api/latest")["meters"][0]
    # a restarted daemon reads the same from its store (the gas reading's own time too)
    with LiveDaemon(tmp_path / "run", meters=("dsmr5",), history_minutes=0) as han:
        (after,) = han.get("/api/latest")["meters"]
        assert after["gas"] == before["gas"] and after["power"] == before["power"]
        assert after["phases"] == before["phases"] and after["registers"] == before["registers"]


def test_the_meter_picker_switches_the_page_between_two_meters_on_two_ports(tmp_path):
    """One daemon, two ptys as two sources, a simulator on each: the picker chooses whose figures the page shows."""
    with LiveDaemon(tmp_path / "run", meters=("kamstrup", "kamstrup"), history_minutes=30, push_interval=2) as han, \
            pagekit.Browser(width=412, height=915) as b:
        han.push(meter=0)
        han.push(meter=1)
        han.wait_stored()
        latest = han.get("/api/latest")
        assert sorted(p["name"] for p in latest["ports"]) == sorted(m.pty.link for m in han.meters)
        assert all(p["state"] == "ok" for p in latest["ports"])
        assert len(latest["meters"]) == 2
        numbers = {e["meter_number"]: e["meter"] for e in latest["meters"]}
        a, b_ = numbers[str(han.meters[0].sim.meter_number)], numbers[str(han.meters[1].sim.meter_number)]

        b.goto(han.url + "/")
        b.wait_for("document.body.dataset.ready === '1'", "the page's first figures")
        picker = "document.getElementById('meter-picker')"
        assert not b.eval(f"{picker}.hidden")
        assert sorted(b.eval(f"[...{picker}.options].map(o => o.value)")) == sorted([a, b_])
        shown = b.eval(f"{POWER}.meter")
        other = b_ if shown == a else a
        other_i = 1 if other == b_ else 0

        def choose(meter: str) -> None:
            b.eval(f"(() => {{ const s = {picker}; s.value = {meter!r}; s.dispatchEvent(new Event('change')); }})()")

        choose(other)
        b.wait_for(f"{POWER}.meter === {other!r}", "the chosen meter's power")
        # the stored figures follow: the hour bars are the chosen meter's
        b.wait_for(f"document.querySelector('#hours-chart g.bar') && {BARS}.length > 0", "the hour bars")
        rows = han.get(f"/api/energy?by=hour&meter={other}")
        b.wait_until(lambda: b.eval(BARS) == _bars(rows), "the chosen meter's hour bars")
        minutes = han.get(f"/api/minutes?meter={other}&minutes=60")
        b.wait_for(f"+document.getElementById('minutes-chart').dataset.points === {len(minutes)}", "its minutes")
        # its pushes update the page; the other meter's do not
        now = han.push(meter=other_i)
        b.wait_for(f"+{POWER}.w === {now}", "the chosen meter's new push", guard=2.0)
        time_before = b.eval(f"{POWER}.time")
        han.push(meter=1 - other_i)
        han.wait_stored()
        assert b.eval(f"{POWER}.meter") == other and b.eval(f"{POWER}.time") == time_before
        # and back: a reload keeps the choice (it is remembered in the browser)
        b.goto(han.url + "/")
        b.wait_for("document.body.dataset.ready === '1'", "the reloaded page")
        assert b.eval(f"{POWER}.meter") == other and b.eval(f"{picker}.value") == other

        # one meter falls silent: its port, and only its, gets the warning
        han.start_pushing(interval=1.0, meters=(1 - other_i,))
        silent = han.meters[other_i].pty.link
        b.wait_for(f"!{QUIET}.hidden && {QUIET}.dataset.ports === {silent!r}", "the silent port's warning", guard=20)
        assert silent in b.eval(f"{QUIET}.textContent")
        # the watchdog reopens the silent port now and then: its state is "closed" for that moment
        expected = {silent: "quiet", han.meters[1 - other_i].pty.link: "ok"}
        wait_until_sync(lambda: {p["name"]: p["state"] for p in han.get("/api/latest")["ports"]} == expected,
                        "the silent port quiet, the other ok")
        han.stop_pushing()
        han.push(meter=other_i)
        b.wait_for(f"{QUIET}.dataset.ports !== {silent!r}", "the warning to go when it pushes again", guard=5)
        b.screenshot(str(tmp_path / "two-meters.png"))
        assert b.errors == [] and b.outside_requests(han.url) == []
    assert "Traceback" not in han.log_text()
