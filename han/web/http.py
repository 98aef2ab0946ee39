"""The HTTP/1.1 the live page needs, on :func:`asyncio.start_server`: GET and HEAD, keep-alive, streams.

Why not a framework: aiohttp would add ~15 MB of resident memory, eight packages
(most with C extensions that a Pi may have to build) and ~150 ms of imports on a PC
(about a second on a Pi 3) to serve six read-only routes; this is ~200 lines of the
standard library (docs/performance.md has the numbers).

What it accepts, and nothing more::

    GET /path?query HTTP/1.1\r\n        method GET or HEAD (else 405, and the connection closes)
    Name: value\r\n ...                 at most 16 KB of head (else 431); no body (else 400)
    \r\n

A handler returns a :class:`Response`, or a :class:`Stream` that owns the
connection until it ends (server-sent events).  A client that sends nothing for
``IDLE`` seconds, or reads nothing for ``SEND_TIMEOUT`` seconds, is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger("han.http")

HEAD_LIMIT = 16384
IDLE = 30.0  #: seconds a kept-alive connection may wait for its next request
SEND_TIMEOUT = 10.0  #: seconds a response may wait for the client to read it
MAX_CONNECTIONS = 256

REASONS = {200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}
#: sent with every response
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    # the page loads nothing from outside (inline script and style of its own are allowed)
    ("Content-Security-Policy", "default-src 'self' 'unsafe-inline' data:; frame-ancestors 'none'"),
)


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Request:
    method: str  #: GET or HEAD
    path: str  #: percent-decoded
    query: tuple[tuple[str, str], ...]  #: in order, repeats kept
    headers: dict[str, str]  #: lower-case names


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(data, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    return Response(status, body, headers=[("Cache-Control", "no-store"), *(headers or [])])


def error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """``{"error": "<one line>"}``."""
    return json_response({"error": " ".join(message.split())}, status, headers)


class Stream:
    """A response that keeps the connection: :meth:`run` writes to it until it ends or the client goes."""

    headers: list[tuple[str, str]] = []
    content_type = "text/event-stream; charset=utf-8"

    async def run(self, writer: asyncio.StreamWriter) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


Handler = Callable[[Request], Awaitable["Response | Stream"]]


def parse_head(head: bytes) -> Request:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "the request is not HTTP") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "the request line is not HTTP/1.x")
    method, target, _version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or len(headers) >= 100:
            raise BadRequest(400, "a request header is malformed")
        headers[name.lower()] = value.strip()
    if not target.startswith("/"):
        raise BadRequest(400, "the request target must be a path")
    split = urlsplit(target)
    try:
        query = tuple(parse_qsl(split.query, keep_blank_values=True, strict_parsing=False, errors="strict"))
        path = unquote(split.path, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "the query or path is not valid UTF-8 percent-encoding") from None
    return Request(method, path, query, headers)


def encode(resp: Response, head_only: bool, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Status')}",
             f"Content-Type: {resp.content_type}", f"Content-Length: {len(resp.body)}",
             "Connection: keep-alive" if keep_alive else "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (*SECURITY_HEADERS, *resp.headers)]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + resp.body


class HttpServer:
    def __init__(self, handler: Handler, *, max_connections: int = MAX_CONNECTIONS) -> None:
        self.handler = handler
        self.max_connections = max_connections
        self.server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; the port it got (``port`` 0 picks a free one)."""
        self.server = await asyncio.start_server(self._connection, host, port, limit=HEAD_LIMIT, reuse_address=True)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self._writers):
            w.close()
        if self.server is not None:
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= self.max_connections:
            await self._send(writer, encode(error(503, "too many connections; try again later"), False, False))
            writer.close()
            return
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE)
            except asyncio.LimitOverrunError:
                await self._send(writer, encode(error(431, "the request head is larger than 16 KB"), False, False))
                return
            except (asyncio.IncompleteReadError, asyncio.TimeoutError):
                return
            try:
                req = parse_head(head[:-4])
                if req.headers.get("transfer-encoding") or req.headers.get("content-length", "0") != "0":
                    raise BadRequest(400 if req.method in ("GET", "HEAD") else 405,
                                     "the live page is read-only: a request has no body")
            except BadRequest as exc:
                resp = error(exc.status, str(exc), [("Allow", "GET, HEAD")] if exc.status == 405 else None)
                await self._send(writer, encode(resp, False, False))
                return
            keep_alive = req.headers.get("connection", "").lower() != "close"
            if req.method not in ("GET", "HEAD"):
                resp = error(405, f"{req.method}: the live page is read-only (GET and HEAD only)",
                             [("Allow", "GET, HEAD")])
                await self._send(writer, encode(resp, False, False))
                return
            try:
                result = await self.handler(req)
            except Exception as exc:  # noqa: BLE001 - one request's bug never ends the server
                log.error("live page: %s on %s: %s (a bug: please report it)", type(exc).__name__, req.path, exc)
                result = error(500, "internal error (logged by han)")
            if isinstance(result, Stream):
                if req.method == "HEAD":
                    await self._send(writer, encode(Response(200, b"", result.content_type, result.headers), True, False))
                    return
                head_lines = ["HTTP/1.1 200 OK", f"Content-Type: {result.content_type}", "Cache-Control: no-store",
                              "Connection: close"]
                head_lines += [f"{k}: {v}" for k, v in (*SECURITY_HEADERS, *result.headers)]
                writer.write(("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1"))
                await result.run(writer)
                return
            await self._send(writer, encode(result, req.method == "HEAD", keep_alive))
            if not keep_alive:
                return

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), SEND_TIMEOUT)
