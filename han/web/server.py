"""The live page's routes, its files, and its wiring into the daemon (``han run --http HOST:PORT``).

::

    GET /                    static/index.html        no token needed: the page holds no data
    GET /static/<file>       the page's assets         (it asks for the token when the API says 401)
    GET /login?token=...     sets the cookie han_token, redirects to /
    GET /api/latest          the newest push per meter, the ports     \\
    GET /api/energy          han report --format json's rows           |  the token, when one is set
    GET /api/minutes         the last minutes' power                   |  (docs/http-api.md)
    GET /api/capacity        the month's capacity-tariff figure        |
    GET /api/events          server-sent events: push, status         /

Every other method is 405; no response holds a key (the store holds none).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from . import access
from .api import ApiError, Store, p_choice, p_date, p_int, p_meter, p_month, params
from .api import MAX_MINUTES, capacity_rule, q_capacity, q_energy, q_latest, q_minutes
from .http import HttpServer, Request, Response, Stream, error, json_response
from .live import KEEPALIVE, Hub, Latest, event

log = logging.getLogger("han.http")

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json",
    ".txt": "text/plain; charset=utf-8", ".webmanifest": "application/manifest+json",
}
_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def now_iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


class WebServer:
    def __init__(
        self,
        *,
        listen: access.Listen,
        token: str | None,
        store_path: str,
        ports: Callable[[], list[dict[str, Any]]] = list,
        rule: str | None = None,
        static_dir: str = STATIC,
        keepalive: float = KEEPALIVE,
    ) -> None:
        self.listen = listen
        self.token = token
        self.store = Store(store_path)
        self.ports = ports
        self.rule = rule
        self.static_dir = static_dir
        self.latest = Latest()
        self.hub = Hub(keepalive=keepalive)
        self.http = HttpServer(self.handle)
        self.port = listen.port
        self._port_states: dict[str, str] = {}

    @property
    def url(self) -> str:
        return access.Listen(self.listen.host, self.port).url()

    async def start(self) -> str:
        """Read the newest pushes from the store, then listen (OSError when the address is taken)."""
        for row in await self.store.call(q_latest):
            self.latest.add(*row)
        self.port = await self.http.start(self.listen.host, self.listen.port)
        for p in self.ports():
            self._port_states[p["name"]] = p["state"]
        return self.url

    async def close(self) -> None:
        self.hub.close()
        await self.http.close()
        await self.store.close()

    # -- from the daemon (event loop) ------------------------------------------------------------
    def stored(self, entries: list) -> None:
        """Pushes the store committed (sinks.base.Entry): the newest values, one ``push`` event each."""
        from sinks.base import iso_utc, time_utc
        from sinks.sqlite import pack

        for e in entries:
            p = e.push
            regs = p.registers
            values = json.loads(pack(regs))
            m = self.latest.add(
                e.meter, e.meter_id, iso_utc(time_utc(p, e.received)), iso_utc(e.received), p.list_id,
                [(r.obis.dotted if r.obis else None, r.key, r.name, v, r.unit, r.position,
                  None if r.time_utc is None else iso_utc(r.time_utc)) for r, v in zip(regs, values)],
            )
            if self.hub.clients:  # a backlog delivered at start-up, with nobody listening, builds no events
                self.hub.publish("push", self.latest.entry(m))

    def ports_changed(self) -> None:
        """Called every second and on each push: a ``status`` event for each port whose state changed."""
        for p in self.ports():
            if self._port_states.get(p["name"]) != p["state"]:
                self._port_states[p["name"]] = p["state"]
                self.hub.publish("status", p)

    # -- requests --------------------------------------------------------------------------------
    async def handle(self, req: Request) -> Response | Stream:
        path = req.path
        if path == "/" or path == "/index.html":
            return self._file("index.html")
        if path.startswith("/static/"):
            return self._file(path[len("/static/"):])
        if path == "/favicon.ico":
            return self._file("favicon.ico")
        if path == "/login":
            return self._login(req)
        if not path.startswith("/api/"):
            return error(404, f"{path[:80]}: no such page (the page is /, the API /api/...)")
        if not access.allowed(self.token, req.headers):
            return error(401, "a token is needed: open /login?token=... once, or send Authorization: Bearer <token>",
                         [("WWW-Authenticate", 'Bearer realm="han"')])
        try:
            return await self._api(path, req)
        except ApiError as exc:
            return error(exc.status, str(exc))

    async def _api(self, path: str, req: Request) -> Response | Stream:
        q = req.query
        if path == "/api/latest":
            p = params(q, ("meter",))
            meter = p_meter(p)
            meters = self.latest.entries(meter)
            if meter is not None and not meters:
                raise ApiError(404, f"meter: no meter {meter!r} has pushed")
            return json_response({"meters": meters, "ports": self.ports(), "now_utc": now_iso()})
        if path == "/api/energy":
            p = params(q, ("by", "from", "to", "meter"))
            by = p_choice(p, "by", ("hour", "day", "month"), "hour")
            start, end = p_date(p, "from"), p_date(p, "to")
            if start and end and end <= start:
                raise ApiError(400, "to: must be after from (to is exclusive)")
            return json_response(await self.store.call(q_energy, by, start, end, p_meter(p), None))
        if path == "/api/minutes":
            p = params(q, ("meter", "minutes"))
            n = p_int(p, "minutes", 60, 1, MAX_MINUTES)
            return json_response(await self.store.call(q_minutes, p_meter(p), n))
        if path == "/api/capacity":
            p = params(q, ("month", "meter"))
            month = p_month(p, "month")
            return json_response(await self.store.call(q_capacity, p_meter(p), month, self.rule, None))
        if path == "/api/events":
            params(q, ())
            stream = self.hub.stream(lambda: [event("status", p) for p in self.ports()])
            if stream is None:
                raise ApiError(503, "too many event-stream clients; try again later")
            return stream
        raise ApiError(404, f"{path[:80]}: no such endpoint (latest, energy, minutes, capacity, events)")

    def _login(self, req: Request) -> Response:
        try:
            p = params(req.query, ("token",))
        except ApiError as exc:
            return error(exc.status, str(exc))
        if self.token is None:
            return Response(303, b"", headers=[("Location", "/"), ("Cache-Control", "no-store")])
        given = p.get("token")
        if given is None:
            return error(400, "token: missing (open /login?token=<the token han run was given>)")
        if not access.same(given, self.token):
            return error(401, "token: wrong token", [("WWW-Authenticate", 'Bearer realm="han"')])
        return Response(303, b"", headers=[("Location", "/"), ("Cache-Control", "no-store"),
                                           ("Set-Cookie", access.login_cookie(self.token))])

    def _file(self, name: str) -> Response:
        ext = os.path.splitext(name)[1].lower()
        if not _FILE.fullmatch(name) or ext not in TYPES:
            return error(404, f"/static/{name[:80]}: no such file")
        try:
            with open(os.path.join(self.static_dir, name), "rb") as fh:
                body = fh.read()
        except OSError:
            if name == "index.html":
                return error(404, "the live page's files are not installed (han/web/static/); the API is at /api/")
            return error(404, f"/static/{name}: no such file")
        return Response(200, body, TYPES[ext], [("Cache-Control", "no-cache")])


# -- the daemon's side -------------------------------------------------------------------------------
def store_path(cfg) -> str | None:
    """The SQLite store the page reads: the first sqlite sink (the embedded default is one)."""
    from sinks.base import split_url

    for spec in cfg.sink_specs():
        scheme, target = split_url(spec.url)
        if scheme == "sqlite":
            return os.path.abspath(os.path.expanduser(target))
    return None


def port_entries(daemon, now: float) -> list[dict[str, Any]]:
    """/api/latest "ports": each of the daemon's sources (a port, a socket, a broker), ok / quiet / closed."""
    sources = list(getattr(daemon, "sources", None) or ())
    if not sources:
        return [port_entry(daemon, None, now)]
    return [port_entry(daemon, src, now) for src in sources]


def port_entry(daemon, source, now: float) -> dict[str, Any]:
    """One source's entry: quiet after three push intervals without a push from it (the watchdog's limit)."""
    o = daemon.ingest.outcomes if daemon.ingest else None
    last = _last_push(o, source, len(getattr(daemon, "sources", None) or ()) > 1)
    name = source.name if source is not None else (daemon.cfg.serial.port or daemon.cfg.replay or "")
    if source is None or getattr(source, "state", "connected") not in ("connected", "replaying"):
        state = "closed"
    elif not daemon.cfg.replay and now - (last or daemon.started) >= 3 * _interval(daemon, source):
        state = "quiet"
    else:
        state = "ok"
    quiet = None if state == "ok" else round(now - (last or daemon.started), 1)
    return {"name": name, "state": state, "last_push_utc": now_iso(last) if last else None, "quiet_seconds": quiet}


def _interval(daemon, source) -> float:
    """The source's push interval as the watchdog has it (its own learned one with several sources)."""
    watch = daemon.watch_for(source) if source is not None and hasattr(daemon, "watch_for") else None
    return daemon.interval_of(watch) if watch is not None else daemon.push_interval


def _last_push(o, source, several: bool) -> float | None:
    """The time of the source's last push: its stream's (a port), its topics' newest (a broker)."""
    if o is None:
        return None
    if source is None or not several:
        return o.last_push
    streams = getattr(source, "streams", None)  # an MQTT source: a stream per topic
    if streams is not None:
        return max((o.stream_push[t] for t in list(streams) if t in o.stream_push), default=None)
    return o.stream_push.get(getattr(source, "stream_name", None))


async def start_for(daemon) -> WebServer:
    """The page of a daemon about to run; ConfigError (one line) when it cannot be served."""
    from ..settings import ConfigError

    cfg = daemon.cfg
    path = store_path(cfg)
    label = f"--http {cfg.http.host}:{cfg.http.port}"
    if path is None:
        raise ConfigError(f"{label}: the live page reads the SQLite store; add a sqlite sink"
                          " (the default when no sink is given)")
    try:
        rule = capacity_rule(cfg.http_capacity, cfg.decode_options.country, path)
    except ValueError as exc:
        raise ConfigError(f"[http] capacity {exc}") from None
    if cfg.http_token is not None and len(cfg.http_token) < access.SHORT:
        log.warning("live page: the token is shorter than %d characters; a long random one is safer", access.SHORT)
    web = WebServer(listen=cfg.http, token=cfg.http_token, store_path=path,
                    ports=lambda: port_entries(daemon, time.time()), rule=rule)
    try:
        url = await web.start()
    except OSError as exc:
        await web.close()
        raise ConfigError(f"{label}: cannot listen: {exc.strerror or exc}") from None
    log.info("live page at %s%s", url, "" if cfg.http_token is None else " (token required: open /login?token=...)")
    return web
