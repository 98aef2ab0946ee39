"""The live page's server (``han run --http``): token rules, parameters, each endpoint, the event stream.

A real daemon reads the simulator's pushes from a real pty and serves the API in
the same event loop; the tests talk HTTP to it over loopback (tests/webkit.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from daemonkit import START, accepted, caught_up, simulator, start, stop, wait_until
from daemonkit import run_config as config
from webkit import Events, get_json, request

from han.config import ConfigError, Overrides, build_run_config
from han.web.access import Listen

LOOPBACK = Listen("127.0.0.1", 0)
TOKEN = "a-long-random-live-page-token-0123"


def web_config(tmp_path, link, **kw):
    kw.setdefault("http", LOOPBACK)
    return config(tmp_path, link, f"sqlite:{tmp_path / 'han.db'}", **kw)


async def push(pty, sim, n: int = 1, step: int = 10) -> None:
    for _ in range(n):
        await pty.write(sim.frame(START + timedelta(seconds=step * sim.pushes)))


# -- the token rules -----------------------------------------------------------------------------------
def test_loopback_needs_no_token_and_any_other_address_needs_one(tmp_path):
    def build(listen, token=None, environ=None):
        return build_run_config(
            Overrides(settings={"port": "/dev/x", "listen": listen}, http_token=token), environ=environ or {}
        )

    assert build("8080").http == Listen("127.0.0.1", 8080)
    assert build("[::1]:8080").http.loopback and build("localhost:1").http.loopback
    for address in ("0.0.0.0:8080", "192.168.1.20:80", "[::]:8080", "pi.local:8080"):
        with pytest.raises(ConfigError, match="not a loopback address: set a token"):
            build(address)
    assert build("0.0.0.0:8080", TOKEN).http_token == TOKEN
    assert build("0.0.0.0:8080", environ={"HAN_HTTP_TOKEN": TOKEN}).http_token == TOKEN
    cred = tmp_path / "creds"
    cred.mkdir()
    (cred / "han-http-token").write_text(TOKEN + "\n")
    assert build("0.0.0.0:8080", environ={"CREDENTIALS_DIRECTORY": str(cred)}).http_token == TOKEN
    for bad in ("host:port", "1.2.3.4", ":80", "[::1]8080", "1:2:3"):
        with pytest.raises(ConfigError, match="--http"):
            build(bad)
    with pytest.raises(ConfigError, match="HAN_HTTP_TOKEN is empty"):
        build("0.0.0.0:1", environ={"HAN_HTTP_TOKEN": " "})


def test_the_config_file_takes_http_listen_and_capacity(tmp_path):
    conf = tmp_path / "han.toml"
    conf.write_text('[serial]\nport = "/dev/x"\n[http]\nlisten = "127.0.0.1:8123"\ncapacity = "no-elvia"\n')
    cfg = build_run_config(Overrides(config=str(conf)), environ={})
    assert cfg.http == Listen("127.0.0.1", 8123) and cfg.http_capacity == "no-elvia"
    conf.write_text('[serial]\nport = "/dev/x"\n[http]\nlisen = "127.0.0.1:8123"\n')
    with pytest.raises(ConfigError, match=r"unknown setting \[http\] 'lisen'"):
        build_run_config(Overrides(config=str(conf)), environ={})


def test_han_run_off_loopback_without_a_token_exits_2_with_one_line(tmp_path):
    capture = tmp_path / "capture.hex"
    capture.write_text("7e\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HAN_HTTP_TOKEN", "CREDENTIALS_DIRECTORY")}
    r = subprocess.run([sys.executable, "-m", "han", "run", "--replay", str(capture), "--http", "0.0.0.0:0",
                        "--state-dir", str(tmp_path / "st")], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "not a loopback address" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "st").exists()  # nothing started


def test_bearer_cookie_login_and_wrong_tokens(tmp_path, pty):
    async def main():
        d, task = await start(web_config(tmp_path, pty.link, http=Listen("0.0.0.0", 0), http_token=TOKEN))
        port = d.web.port
        try:
            assert (await request(port, "/api/latest")).status == 401
            r = await request(port, "/api/latest", headers={"Authorization": "Bearer wrong"})
            assert r.status == 401 and set(r.json()) == {"error"} and TOKEN not in r.body.decode()
            assert (await request(port, "/api/latest", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
            assert (await request(port, "/api/latest", headers={"Cookie": f"han_token={TOKEN}x"})).status == 401
            r = await request(port, "/login?token=nope")
            assert r.status == 401 and "set-cookie" not in r.headers
            r = await request(port, f"/login?token={TOKEN}")
            assert r.status == 303 and r.headers["location"] == "/"
            cookie = r.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
            value = cookie.split(";")[0]
            assert (await request(port, "/api/latest", headers={"Cookie": f"other=1; {value}"})).status == 200
            events = await Events.open(port, {"Cookie": value})  # EventSource sends the cookie
            events.close()
            # the page itself holds no data: it loads without the token and asks for it on a 401
            assert (await request(port, "/")).status in (200, 404)
        finally:
            assert await stop(d, task) == 0

    asyncio.run(main())


def test_read_only_and_malformed_parameters_are_one_line_400s(tmp_path, pty):
    async def main():
        d, task = await start(web_config(tmp_path, pty.link))
        port = d.web.port
        try:
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                r = await request(port, "/api/latest", method=method)
                assert r.status == 405 and r.headers["allow"] == "GET, HEAD" and "read-only" in r.json()["error"]
            r = await request(port, "/api/latest", method="HEAD")
            assert r.status == 200 and r.body == b"" and int(r.headers["content-length"]) > 0
            cases = {
                "/api/energy?by=week": "by",
                "/api/energy?from=2026-13-01": "from",
                "/api/energy?to=yesterday": "to",
                "/api/energy?from=2026-02-01&to=2026-01-01": "to",
                "/api/energy?meter=": "meter",
                "/api/energy?colour=red": "colour",
                "/api/energy?by=day&by=hour": "by",
                "/api/minutes?minutes=0": "minutes",
                "/api/minutes?minutes=1441": "minutes",
                "/api/minutes?minutes=ten": "minutes",
                "/api/capacity?month=2026-13": "month",
                "/api/capacity?month=March": "month",
                "/api/latest?x=1": "x",
                "/api/events?since=1": "since",
                "/api/energy?from=%ff": "UTF-8",
            }
            for path, name in cases.items():
                r = await request(port, path)
                assert r.status == 400, (path, r)
                message = r.json()["error"]
                assert name in message and "\n" not in message, (path, message)
            r = await request(port, "/api/energy?meter=nosuch")
            assert r.status == 404 and "meter" in r.json()["error"]
            assert (await request(port, "/api/nothing")).status == 404
            assert (await request(port, "/static/../../etc/passwd")).status == 404
        finally:
            assert await stop(d, task) == 0

    asyncio.run(main())


# -- the endpoints against a daemon fed through a pty ----------------------------------------------------
def test_each_endpoint_serves_what_the_store_holds(tmp_path, pty):
    sim = simulator()

    async def main():
        d, task = await start(web_config(tmp_path, pty.link, http_capacity="no"))
        port = d.web.port
        try:
            empty = await get_json(port, "/api/latest")
            assert empty["meters"] == [] and empty["ports"][0]["name"] == pty.link
            assert await get_json(port, "/api/energy") == [] and await get_json(port, "/api/minutes") == []
            await push(pty, sim, 400)  # 4000 s of pushes from 12:00: a full hour and more
            await wait_until(lambda: accepted(d) == 400 and caught_up(d), "400 pushes")
            latest = await get_json(port, "/api/latest")
            energy = await get_json(port, "/api/energy?by=hour&from=2026-01-15&to=2026-01-16")
            by_meter = await get_json(port, "/api/energy?by=day&meter=31415926")
            minutes = await get_json(port, "/api/minutes?minutes=30")
            capacity = await get_json(port, "/api/capacity?month=2026-01")
            default_capacity = await get_json(port, "/api/capacity")
        finally:
            assert await stop(d, task) == 0
        return latest, energy, by_meter, minutes, capacity, default_capacity

    latest, energy, by_meter, minutes, capacity, default_capacity = asyncio.run(main())
    (m,) = latest["meters"]
    assert m["meter_number"] == "31415926" and m["time_utc"].endswith("Z") and m["received_utc"].endswith("Z")
    regs = {r["key"]: r for r in m["registers"]}
    assert regs["active_power_import"]["obis"] == "1-1:1.7.0.255" and regs["active_power_import"]["unit"] == "W"
    assert m["power"]["import_w"] == float(regs["active_power_import"]["value"])
    assert [p["phase"] for p in m["phases"]] == [1, 2, 3]
    assert m["phases"][0]["voltage_v"] == float(regs["voltage_l1"]["value"])
    # the store's own latest view holds the same values
    import sqlite3

    con = sqlite3.connect(tmp_path / "han.db")
    stored = {o: v for o, v in con.execute("SELECT obis, value FROM latest WHERE meter = ?", (m["meter"],))}
    con.close()
    assert {r["obis"]: r["value"] for r in m["registers"]} == {
        f"{o.split('.')[0]}-{o.split('.')[1]}:{'.'.join(o.split('.')[2:])}": v for o, v in stored.items()
    }
    # /api/energy is han report --format json, row for row
    report = json.loads(subprocess.run(
        [sys.executable, "-m", "han", "report", "--db", str(tmp_path / "han.db"), "--format", "json",
         "--by", "hour", "--from", "2026-01-15", "--to", "2026-01-16"], capture_output=True, text=True, check=True,
    ).stdout)
    assert energy == report and any(r["quality"] == "measured" for r in energy)
    assert by_meter and all(r["meter"] == m["meter"] for r in by_meter)
    assert 25 <= len(minutes) <= 30 and all(r["pushes"] >= 1 for r in minutes)
    assert minutes[-1]["import_w_mean"] > 0 and "+01:00" in minutes[-1]["start"]
    month = json.loads(subprocess.run(
        [sys.executable, "-m", "han", "report", "--db", str(tmp_path / "han.db"), "--format", "json",
         "--by", "month", "--capacity", "no", "--from", "2026-01-01", "--to", "2026-02-01"],
        capture_output=True, text=True, check=True,
    ).stdout)
    assert capacity == {"meter": m["meter"], "month": "2026-01", "rule": "no", "capacity": month[0]["capacity"]}
    assert capacity["capacity"]["value_kw"] > 0
    assert default_capacity == capacity


def test_without_a_rule_the_capacity_is_null_and_a_missing_page_leaves_the_api(tmp_path, pty):
    async def main():
        d, task = await start(web_config(tmp_path, pty.link))
        d.web.static_dir = str(tmp_path / "no-static")
        try:
            r = await request(d.web.port, "/")
            assert r.status == 404 and "not installed" in r.json()["error"]
            cap = await get_json(d.web.port, "/api/capacity?month=2026-01")
            assert cap == {"meter": None, "month": "2026-01", "rule": None, "capacity": None}
        finally:
            assert await stop(d, task) == 0

    asyncio.run(main())


def test_an_unknown_capacity_rule_stops_the_daemon_with_one_line(tmp_path, pty):
    from han.daemon import Daemon

    with pytest.raises(ConfigError, match=r"\[http\] capacity 'no-such': no such rule; known: .*no-elvia"):
        asyncio.run(Daemon(web_config(tmp_path, pty.link, http_capacity="no-such")).run())


def test_events_push_per_stored_push_and_status_when_the_port_goes_quiet_and_back(tmp_path, pty):
    sim = simulator(seed=3)

    async def main():
        d, task = await start(web_config(tmp_path, pty.link, push_interval=0.3))
        d.web.hub.keepalive = 0.2
        try:
            ev = await Events.open(d.web.port)
            first = await ev.next_named("status")
            assert set(first) == {"name", "state", "last_push_utc", "quiet_seconds"}
            await push(pty, sim)
            got = await ev.next_named("push")
            latest = await get_json(d.web.port, "/api/latest")
            assert got == latest["meters"][0]
            quiet = await ev.next_named("status")
            assert quiet["state"] == "quiet" and quiet["quiet_seconds"] >= 0.9 and quiet["name"] == pty.link

            async def meter():  # the watchdog reopens a silent port (input written meanwhile is lost): keep pushing
                while True:
                    if d.source.connected.is_set():
                        await push(pty, sim)
                    await asyncio.sleep(0.1)

            writer = asyncio.ensure_future(meter())
            while (back := await ev.next_named("status"))["state"] != "ok":
                assert back["state"] in ("quiet", "closed")
            writer.cancel()
            assert back["quiet_seconds"] is None and back["last_push_utc"].endswith("Z")
            await asyncio.sleep(0.5)
            assert ": keep-alive" in ev.comments
            pty.unplug()
            while (closed := await ev.next_named("status"))["state"] != "closed":
                pass
            pty.plug()
            ev.close()
        finally:
            assert await stop(d, task) == 0

    asyncio.run(main())


def test_fifty_event_clients_all_get_the_push(tmp_path, pty):
    sim = simulator(seed=4)

    async def main():
        d, task = await start(web_config(tmp_path, pty.link))
        try:
            clients = await asyncio.gather(*(Events.open(d.web.port) for _ in range(50)))
            await wait_until(lambda: len(d.web.hub.clients) == 50, "50 clients")
            await push(pty, sim)
            got = await asyncio.gather(*(c.next_named("push") for c in clients))
            latest = await get_json(d.web.port, "/api/latest")
            assert all(g == latest["meters"][0] for g in got)
            await push(pty, sim)
            again = await asyncio.gather(*(c.next_named("push") for c in clients))
            assert len({json.dumps(g, sort_keys=True) for g in again}) == 1 and again[0] != got[0]
            for c in clients:
                c.close()
        finally:
            assert await stop(d, task) == 0

    asyncio.run(main())


def test_a_client_that_stops_reading_is_dropped_and_the_others_go_on(tmp_path):
    """The hub never waits for a client: a full queue drops it (real sockets, the server without a daemon)."""
    import socket

    from han.web.server import WebServer

    async def main():
        web = WebServer(listen=LOOPBACK, token=None, store_path=str(tmp_path / "none.db"))
        web.hub.queue = 4
        await web.start()
        try:
            stuck = socket.create_connection(("127.0.0.1", web.port))
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
            reader = await Events.open(web.port)
            await wait_until(lambda: len(web.hub.clients) == 2, "2 clients")
            big = {"x": "y" * 200_000}
            for i in range(100):
                web.hub.publish("push", {**big, "i": i})
                got = await reader.next_named("push")
                assert got["i"] == i
                if web.hub.dropped:
                    break
            assert web.hub.dropped == 1 and len(web.hub.clients) == 1
            reader.close()
            stuck.close()
        finally:
            await web.close()

    asyncio.run(main())


def test_tokens_are_printable_ascii_without_cookie_separators():
    from han.web.access import TokenError, token_from

    for bad in ("has space", "semi;colon", 'quo"te', "nørsk-token-0123456789"):
        with pytest.raises(TokenError, match="printable ASCII"):
            token_from(bad, {})
    assert token_from(f"  {TOKEN}\n", {}) == TOKEN
