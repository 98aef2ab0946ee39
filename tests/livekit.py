"""``han run --http`` as a process, fed by the simulated meter through a real pty: for the live page's tests.

The daemon is the installed command (``python -m han run``), its port a pseudo terminal
(daemonkit.Pty); a history of pushes (one a minute by default, up to now, the meter's clock on the
wall clock) goes in first, so the page has hours and minutes to show.  Shared by the
browser test and by ``benchmarks/live_page.py`` (load time, the README's screenshot).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from daemonkit import AK, EK, KEYS, Pty, simulator, wait_until_sync

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def power_of(frame: bytes) -> float:
    """The active power import (W) a frame carries, decoded here with the library (not by the daemon)."""
    from han.pipeline import PushDecoder

    (push,) = PushDecoder(KEYS).feed(frame)
    reg = push.register("1-1:1.7.0.255")
    assert reg is not None and reg.unit == "W"
    return float(reg.value)


class LiveDaemon:
    """``han run --port PTY --http HOST:PORT`` with an SQLite store and a jsonl file; ``close()`` stops it."""

    def __init__(self, tmp: Path, *, history_minutes: int = 150, listen: str = "127.0.0.1",
                 token: str | None = None, push_interval: float = 1.0, seed: int = 21,
                 history_step: int = 60, extra: tuple[str, ...] = ()) -> None:
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.pty = Pty(str(self.tmp / "ttyHAN"))
        self.sim = simulator(seed=seed)
        self.pushes = 0
        self.state = self.tmp / "state"
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        env.update(HAN_KEY=EK.hex(), HAN_AUTH_KEY=AK.hex(), PYTHONPATH=str(ROOT))
        env.pop("HAN_HTTP_TOKEN", None)
        if token:
            env["HAN_HTTP_TOKEN"] = token
        self.log = open(self.tmp / "daemon.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "han", "run", "--port", self.pty.link, "--state-dir", str(self.state),
             "--status-interval", "0.2", "--push-interval", str(push_interval),
             "--sink", f"sqlite:{self.tmp / 'han.db'}", "--sink", f"jsonl:{self.tmp / 'pushes.jsonl'}",
             "--http", f"{listen}:{self.port}", *extra],
            stdout=subprocess.DEVNULL, stderr=self.log, env=env, cwd=ROOT,
        )  # fmt: skip
        try:
            wait_until_sync(self._connected, "han run to open the port")
            wait_until_sync(self._serving, "han run to serve the page")
            if history_minutes:
                now = datetime.now(timezone.utc).replace(microsecond=0)
                start = now - timedelta(minutes=history_minutes)
                for i in range(history_minutes * 60 // history_step):
                    self.pty.write_now(self.sim.frame(start + timedelta(seconds=i * history_step)))
                    self.pushes += 1
                self.wait_stored()
        except BaseException:
            self.close()
            raise

    def _connected(self) -> bool:
        assert self.proc.poll() is None, f"han run exited: {self.log_text()}"
        try:
            s = json.loads((self.state / "status.json").read_text())
        except (OSError, ValueError):
            return False
        return s.get("pid") == self.proc.pid and s["input"]["state"] == "connected"

    def _serving(self) -> bool:
        assert self.proc.poll() is None, f"han run exited: {self.log_text()}"
        try:
            self.get("/api/latest")
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except OSError:
            return False
        return True

    def stored(self) -> int:
        try:
            with open(self.tmp / "pushes.jsonl", "rb") as fh:
                return sum(1 for _ in fh)
        except OSError:
            return 0

    def wait_stored(self) -> None:
        wait_until_sync(lambda: self.stored() >= self.pushes, f"{self.pushes} pushes stored")

    def push(self, when: datetime | None = None) -> float:
        """Write one push (meter time: now) into the port; its active power import (W)."""
        if when is None:  # the wall clock, but never twice the same second (a real meter's clock moves on)
            when = datetime.now(timezone.utc).replace(microsecond=0)
            if self.sim.last is not None and when <= self.sim.last:
                when = self.sim.last + timedelta(seconds=1)
        frame = self.sim.frame(when)
        self.pty.write_now(frame)
        self.pushes += 1
        return power_of(frame)

    def start_pushing(self, interval: float = 1.0) -> None:
        """A push every ``interval`` seconds from a thread, until stop_pushing (keeps the port from going quiet)."""
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.wait(interval):
                self.push()

        self._pusher = threading.Thread(target=run, name="meter", daemon=True)
        self._pusher.start()

    def stop_pushing(self) -> None:
        if getattr(self, "_pusher", None) is not None:
            self._stop.set()
            self._pusher.join()
            self._pusher = None

    def get(self, path: str):
        """The JSON answer of an API path (urllib's HTTPError for an error status)."""
        req = urllib.request.Request(self.url + path)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.tmp / "daemon.log").read_text(errors="replace")

    def close(self) -> int | None:
        self.stop_pushing()
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            rc = self.proc.returncode
        self.pty.close()
        self.log.close()
        return rc

    def __enter__(self) -> LiveDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
