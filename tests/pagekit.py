"""A real browser for the page tests: headless Chromium driven through the DevTools protocol.

Standard library only.  Chromium (Debian's ``chromium``) starts with a fresh profile in a
temporary directory and remote debugging on loopback (port 0: it writes the port it chose
to ``DevToolsActivePort``); the page target's websocket carries the protocol's JSON
messages.  The websocket client is the minimum RFC 6455 needs::

    client -> GET /devtools/page/ID  Upgrade: websocket, Sec-WebSocket-Key: K
    server <- 101, Sec-WebSocket-Accept: base64(sha1(K + GUID))
    frame:  FIN|opcode  MASK|len(7, or 126 + 16 bit, or 127 + 64 bit)  [mask key]  payload
            (the client masks what it sends; text 0x1, close 0x8, ping 0x9, pong 0xA, continuation 0x0)

A reader thread sorts the messages: replies (by ``id``) and events.  Every request the page
makes is recorded (``Network.requestWillBeSent``), so a test can show nothing came from
outside; console errors and uncaught exceptions are recorded too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("HAN_CHROMIUM", "/usr/bin/chromium")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def available() -> str | None:
    """The browser's path, or None when it is not installed."""
    return shutil.which(CHROMIUM) or shutil.which("chromium")


class ProtocolError(RuntimeError):
    """An error reply of the DevTools protocol, or a lost connection."""


class WebSocket:
    """A blocking websocket client (text messages only), enough for the DevTools protocol."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        u = urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16))
        path = u.path + ("?" + u.query if u.query else "")
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ProtocolError("the browser closed the websocket during the upgrade")
            head += chunk
        head, self._buf = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise ProtocolError(f"websocket upgrade refused: {lines[0]}")
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        if headers.get("sec-websocket-accept") != accept:
            raise ProtocolError("websocket upgrade: wrong Sec-WebSocket-Accept")
        self.sock.settimeout(None)
        self._send_lock = threading.Lock()

    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise ProtocolError("the browser closed the websocket")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self._send_lock:
            self.sock.sendall(head + mask + masked)

    def send(self, text: str) -> None:
        self._frame(0x1, text.encode())

    def recv(self) -> str:
        """The next whole text message (answering pings on the way)."""
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise ProtocolError("the browser closed the websocket")
            if opcode == 0x9:
                self._frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1, 0x2):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        try:
            self._frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


@dataclass(frozen=True)
class Request:
    url: str
    method: str
    type: str  #: Document, Script, Stylesheet, Fetch, EventSource, Image ...


class Browser:
    """One headless Chromium with one page; ``with Browser() as b: b.goto(url); b.eval("1 + 1")``."""

    def __init__(self, width: int = 412, height: int = 915, scale: float = 1.0, guard: float = 30.0) -> None:
        path = available()
        if path is None:
            raise FileNotFoundError("chromium is not installed (Debian package chromium)")
        self.guard = guard
        self.profile = tempfile.mkdtemp(prefix="han-chromium-")
        args = [
            path, "--headless=new", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
            f"--force-device-scale-factor={scale}", "--no-first-run", "--no-default-browser-check",
            "--disable-gpu", "--disable-extensions", "--disable-background-networking", "--disable-sync",
            "--disable-component-update", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
            "--disable-features=Translate,MediaRouter,OptimizationHints", "about:blank",
        ]  # fmt: skip
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, start_new_session=True)
        self.requests: list[Request] = []
        self.errors: list[str] = []  #: console errors and uncaught exceptions
        self._replies: dict[int, dict] = {}
        self._events: list[dict] = []
        self._cond = threading.Condition()
        self._next = 0
        self._closed = False
        try:
            self.ws = WebSocket(self._page_target())
            self._reader = threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True)
            self._reader.start()
            for domain in ("Page", "Network", "Runtime"):
                self.call(f"{domain}.enable")
            self.call("Network.setCacheDisabled", cacheDisabled=True)
            self.viewport(width, height, scale)
        except BaseException:
            self.close()
            raise

    # -- the browser ---------------------------------------------------------------------------------------
    def _page_target(self) -> str:
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.guard
        while True:
            if self.proc.poll() is not None:
                raise ProtocolError(f"chromium exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                port = int(open(port_file).read().split()[0])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    targets = json.load(r)
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise ProtocolError(f"chromium did not offer its debugging port: {self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            with open(os.path.join(self.profile, "chromium.log"), "rb") as fh:
                return fh.read()[-400:].decode(errors="replace").strip()
        except OSError:
            return ""

    def _read_loop(self) -> None:
        try:
            while True:
                msg = json.loads(self.ws.recv())
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._on_event(msg)
                        self._events.append(msg)
                    self._cond.notify_all()
        except (ProtocolError, OSError, ValueError):
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _on_event(self, msg: dict) -> None:
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Network.requestWillBeSent":
            r = p.get("request", {})
            self.requests.append(Request(r.get("url", ""), r.get("method", ""), p.get("type", "")))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))

    def call(self, method: str, **params: Any) -> dict:
        """Send one protocol command and wait for its reply's ``result``."""
        with self._cond:
            self._next += 1
            mid = self._next
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + self.guard
        with self._cond:
            while mid not in self._replies:
                if self._closed:
                    raise ProtocolError(f"{method}: the browser went away")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProtocolError(f"{method}: no reply within {self.guard} s")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise ProtocolError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def wait_event(self, method: str, since: int = 0, guard: float | None = None) -> dict:
        """The first event ``method`` at or after index ``since`` of the events seen."""
        deadline = time.monotonic() + (guard or self.guard)
        with self._cond:
            while True:
                for ev in self._events[since:]:
                    if ev.get("method") == method:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise ProtocolError(f"gave up waiting for {method}")
                self._cond.wait(left)

    def viewport(self, width: int, height: int, scale: float = 1.0) -> None:
        """The window the page sees (headless windows have a minimum width; this has none)."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=scale,
                  mobile=width < 600)

    def color_scheme(self, scheme: str) -> None:
        """Emulate ``prefers-color-scheme: light | dark``."""
        self.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}])

    # -- the page ------------------------------------------------------------------------------------------
    def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        with self._cond:
            mark = len(self._events)
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise ProtocolError(f"cannot open {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", since=mark)

    def eval(self, expression: str) -> Any:
        """The value of a JS expression in the page (promises awaited)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise ProtocolError(f"{expression!r}: {d.get('exception', {}).get('description') or d.get('text')}")
        return r.get("result", {}).get("value")

    def wait_for(self, expression: str, what: str, guard: float | None = None, poll: float = 0.02) -> Any:
        """Poll a JS expression until it is truthy; its value.  ``guard`` is a failure guard."""
        deadline = time.monotonic() + (guard if guard is not None else self.guard)
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what} ({expression} = {value!r})")
            time.sleep(poll)

    def wait_until(self, cond: Callable[[], Any], what: str, guard: float | None = None) -> Any:
        """Like wait_for, with a Python condition (which may call eval)."""
        deadline = time.monotonic() + (guard if guard is not None else self.guard)
        while True:
            value = cond()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}")
            time.sleep(0.02)

    def screenshot(self, path: str, full_page: bool = True) -> bytes:
        """A PNG of the page (the whole page, not only the window, unless full_page is False)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            m = self.call("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        png = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        with open(path, "wb") as fh:
            fh.write(png)
        return png

    def outside_requests(self, origin: str) -> list[str]:
        """Every request that did not go to ``origin`` (scheme://host:port); data: URLs count as inside."""
        return [r.url for r in self.requests if not (r.url.startswith(origin + "/") or r.url == origin
                                                        or r.url.startswith(("data:", "about:")))]

    # -- teardown ------------------------------------------------------------------------------------------
    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
