"""An asyncio HTTP client for the live page's tests: the daemon shares the test's event loop, so no blocking client.

Plain HTTP/1.1 over :func:`asyncio.open_connection` (``Connection: close``), and a
reader of server-sent events.  No mocks: the server is the daemon's own.
"""

from __future__ import annotations

import asyncio
import json

GUARD = 30.0


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:200]!r})"


async def request(port: int, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                  host: str = "127.0.0.1") -> Reply:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = await asyncio.wait_for(reader.read(), GUARD)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    first, *rest = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in rest:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return Reply(int(first.split(" ")[1]), hdrs, body)


async def get_json(port: int, path: str, **kw):
    r = await request(port, path, **kw)
    assert r.status == 200, r
    return r.json()


class Events:
    """One event-stream client: ``await next_event()`` -> (name, data)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.comments: list[str] = []

    @classmethod
    async def open(cls, port: int, headers: dict[str, str] | None = None) -> "Events":
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        lines = ["GET /api/events HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"text/event-stream" in head
        return cls(reader, writer)

    async def next_event(self, guard: float = GUARD) -> tuple[str, object]:
        name, data = "message", []
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), guard)).decode()
            if not line:
                raise ConnectionError("the event stream ended")
            line = line.rstrip("\n")
            if line == "":
                if data:
                    return name, json.loads("\n".join(data))
                name = "message"
                continue
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())

    async def next_named(self, name: str, guard: float = GUARD):
        """The next event called ``name`` (others are skipped); gives up after ``guard`` seconds in all."""
        async def find():
            while True:
                got, data = await self.next_event(guard)
                if got == name:
                    return data

        try:
            return await asyncio.wait_for(find(), guard)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {name} event within {guard} s") from None

    def close(self) -> None:
        self.writer.close()
