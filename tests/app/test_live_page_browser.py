"""The live page in a real browser (headless Chromium) against ``han run --http``, fed through a pty.

The figures are read from the data attributes the page puts on them (data-w, data-kwh, ...),
and compared with what went into the port (the frame decoded here) or with the API's answer.
"""

from __future__ import annotations

import pagekit
import pytest
from daemonkit import wait_until_sync
from livekit import LiveDaemon

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
