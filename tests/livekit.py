"""``han run --http`` as a process, fed by the simulated meter through a real pty: for the live page's tests.

The daemon is the installed command (``python -m han run``), its port a pseudo terminal
(daemonkit.Pty); a history of pushes (one a minute by default, up to now, the meter's clock on the
wall clock) goes in first, so the page has hours and minutes to show.  Several meters are several
ptys, each its own ``--source`` with a simulator of its own; a P1 meter (``dsmr5``) is read with
``--preset p1``.  Shared by the browser test and by ``benchmarks/live_page.py`` (load time, the
README's screenshot).
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

from daemonkit import AK, EK, KEYS, Pty, wait_until_sync

from decoders.xdlms.dsmr import parse_telegram
from han.p1sim import P1Simulator
from han.simulator import KamstrupSimulator

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def power_of(frame: bytes) -> float:
    """The active power import (W) a frame carries, decoded here with the library (not by the daemon)."""
    if frame.startswith(b"/"):  # a P1 telegram: kW
        return round(p1_number(p1_objects(frame)["1-0:1.7.0"][0]) * 1000, 3)
    from han.pipeline import PushDecoder

    (push,) = PushDecoder(KEYS).feed(frame)
    reg = push.register("1-1:1.7.0.255")
    assert reg is not None and reg.unit == "W"
    return float(reg.value)


def p1_objects(telegram: bytes) -> dict[str, tuple[str, ...]]:
    """A P1 telegram's objects as sent: ``1-0:1.7.0`` -> ``('00.412*kW',)``."""
    return {line.ident: line.values for line in parse_telegram(telegram).lines if line.ident}


def p1_number(text: str) -> float:
    return float(text.split("*")[0])


class Meter:
    """One simulated meter writing into a pty of its own: ``kamstrup`` (DLMS in HDLC) or ``dsmr5`` (P1)."""

    def __init__(self, link: str, kind: str = "kamstrup", seed: int = 21, number: int = 31415926) -> None:
        self.kind = kind
        self.pty = Pty(link)
        if kind == "kamstrup":
            self.sim = KamstrupSimulator(KEYS, meter_number=number, counter_start=1000, seed=seed)
        else:
            self.sim = P1Simulator(kind, meter_number=number, seed=seed)
        self.last: datetime | None = None
        self.frames: list[bytes] = []  #: the last frame written (one kept)

    def frame(self, when: datetime) -> bytes:
        self.last = when
        return self.sim.frame(when)

    def write(self, when: datetime | None = None) -> bytes:
        """One push (meter time: now, never twice the same second) into the pty; the frame written."""
        if when is None:
            when = datetime.now(timezone.utc).replace(microsecond=0)
            if self.last is not None and when <= self.last:
                when = self.last + timedelta(seconds=1)
        frame = self.frame(when)
        self.pty.write_now(frame)
        self.frames[:] = [frame]
        return frame


class LiveDaemon:
    """``han run --port PTY --http HOST:PORT`` with an SQLite store and a jsonl file; ``close()`` stops it."""

    def __init__(self, tmp: Path, *, history_minutes: int = 150, listen: str = "127.0.0.1",
                 token: str | None = None, push_interval: float = 1.0, seed: int = 21,
                 history_step: int = 60, extra: tuple[str, ...] = (), meters: tuple[str, ...] = ("kamstrup",)) -> None:
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        assert len(set(meters)) == 1, "one kind of meter (one preset) for all the ports"
        self.meters = [
            Meter(str(self.tmp / ("ttyHAN" if i == 0 else f"ttyHAN{i}")), kind, seed + i, 31415926 + 1111111 * i)
            for i, kind in enumerate(meters)
        ]
        self.pty, self.sim = self.meters[0].pty, self.meters[0].sim
        if len(self.meters) == 1:
            ports = ["--port", self.pty.link]
        else:
            ports = [a for m in self.meters for a in ("--source", m.pty.link)]
        if meters[0] != "kamstrup":
            ports += ["--preset", "p1"]
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
            [sys.executable, "-m", "han", "run", *ports, "--state-dir", str(self.state),
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
                    for m in self.meters:
                        m.write(start + timedelta(seconds=i * history_step))
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
        if s.get("pid") != self.proc.pid:
            return False
        inputs = s.get("sources") or [s["input"]]
        return len(inputs) >= len(self.meters) and all(i["state"] == "connected" for i in inputs)

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

    def push(self, when: datetime | None = None, meter: int = 0) -> float:
        """Write one push (meter time: now) into a meter's port; its active power import (W)."""
        frame = self.meters[meter].write(when)
        self.pushes += 1
        return power_of(frame)

    def start_pushing(self, interval: float = 1.0, meters: tuple[int, ...] | None = None) -> None:
        """A push every ``interval`` seconds from a thread, until stop_pushing (keeps the ports from going quiet)."""
        self._stop = threading.Event()
        which = tuple(range(len(self.meters))) if meters is None else meters

        def run() -> None:
            while not self._stop.wait(interval):
                for i in which:
                    self.push(meter=i)

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
        for m in self.meters:
            m.pty.close()
        self.log.close()
        return rc

    def __enter__(self) -> LiveDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
