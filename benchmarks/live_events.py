"""The live page (``han run --http``): push -> server-sent event latency, the daemon's peak RSS, page load.

``python -m benchmarks.live_events [--pushes N] [--clients N]``

A real ``han run --port PTY --http 127.0.0.1:PORT`` process reads simulated pushes
from a pty; this process writes the frames and holds ``--clients`` event-stream
clients open.  Measured:

* latency: ``os.write`` of a frame on the pty -> its ``push`` event read by a client
  (serial read, decrypt, journal, SQLite commit, the event to every client), over all
  clients and pushes: median, p95, max;
* the daemon's peak RSS (VmHWM) with the page and the clients open, and the same
  daemon without ``--http`` for comparison;
* page load: ``GET /`` and every ``/static/...`` asset it names, over keep-alive-less
  HTTP (what a browser's first visit does), median of 20; and the bytes in all;
* import time of the web stack (``han.web.server``) on top of the daemon's own
  imports, which ``han run`` without ``--http`` never pays.

Printed, never asserted (docs/performance.md records a run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from datetime import datetime, timedelta

KEYS = (bytes(range(16)), bytes(range(16, 32)))  # a benchmark meter's keys, not a real one's


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


async def _client(port: int, arrivals: dict[int, list[float]], ready: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    ready.append(1)
    name = None
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"event:"):
                name = line[6:].strip()
            elif line.startswith(b"data:") and name == b"push":
                t = time.perf_counter()
                counter = json.loads(line[5:])["time_utc"]
                arrivals.setdefault(counter, []).append(t)
    finally:
        writer.close()


def _daemon(tmp: str, port_link: str, http: str | None) -> subprocess.Popen:
    env = dict(os.environ, HAN_KEY=KEYS[0].hex(), HAN_AUTH_KEY=KEYS[1].hex())
    args = [sys.executable, "-m", "han", "run", "--port", port_link, "--state-dir", os.path.join(tmp, "state"),
            "--quiet", "--push-interval", "10"]
    if http:
        args += ["--http", http]
    return subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL)


async def _run(pushes: int, clients: int, http: bool, gap: float) -> dict:
    from decoders.ciphering.security import Keys
    from han.simulator import KamstrupSimulator

    sim = KamstrupSimulator(Keys(ek=KEYS[0], ak=KEYS[1]), seed=1)
    tmp = tempfile.mkdtemp(prefix="han-live-bench-")
    master, slave = os.openpty()
    tty.setraw(slave)
    port = _free_port()
    proc = _daemon(tmp, os.ttyname(slave), f"127.0.0.1:{port}" if http else None)
    out: dict = {}
    try:
        db = os.path.join(tmp, "state", "han.db")
        deadline = time.monotonic() + 30
        while True:  # the daemon is up when the page answers (or, without it, when the store exists)
            if http:
                try:
                    if (await _http_get(port, "/api/latest"))[0] == 200:
                        break
                except OSError:
                    pass
            elif os.path.exists(db):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the daemon did not start")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the port opened (opening discards input)
        arrivals: dict[str, list[float]] = {}
        ready: list = []
        tasks = [asyncio.ensure_future(_client(port, arrivals, ready)) for _ in range(clients if http else 0)]
        while len(ready) < len(tasks):
            await asyncio.sleep(0.01)
        sent: dict[str, float] = {}
        start = datetime(2026, 1, 15, 12)
        for i in range(pushes):
            when = start + timedelta(seconds=10 * i)
            frame = sim.frame(when)
            key = sim.utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")
            sent[key] = time.perf_counter()
            os.write(master, frame)
            await asyncio.sleep(gap)
        await asyncio.sleep(1.0)
        if http:
            lat = sorted((t - sent[k]) * 1e3 for k, ts in arrivals.items() if k in sent for t in ts)
            got = sum(len(ts) for ts in arrivals.values())
            out.update(events=got, expected=pushes * clients, median_ms=round(statistics.median(lat), 1),
                       p95_ms=round(lat[int(0.95 * (len(lat) - 1))], 1), max_ms=round(lat[-1], 1))
            out.update(await _page(port))
        out["daemon_peak_rss_mb"] = round(_hwm_mb(proc.pid), 1)
        for t in tasks:
            t.cancel()
    finally:
        proc.terminate()
        proc.wait(30)
        os.close(master)
        os.close(slave)
    return out


async def _page(port: int) -> dict:
    status, index = await _http_get(port, "/")
    if status != 200:
        return {"page": "no page files (han/web/static/) in this tree"}
    assets = sorted(set(re.findall(rb'(?:src|href)="(/static/[^"]+)"', index)))
    times = []
    size = 0
    for _ in range(20):
        t0 = time.perf_counter()
        _, body = await _http_get(port, "/")
        size = len(body)
        bodies = await asyncio.gather(*(_http_get(port, a.decode()) for a in assets))
        size += sum(len(b) for _, b in bodies)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"page_load_ms": round(statistics.median(times), 1), "page_bytes": size, "assets": len(assets)}


def _import_ms() -> float:
    code = ("import time, han.daemon; t = time.perf_counter(); import han.web.server;"
            " print((time.perf_counter() - t) * 1e3)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(5)]
    return round(statistics.median(runs), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pushes", type=int, default=100)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--gap", type=float, default=0.2, help="seconds between pushes (default 0.2)")
    a = ap.parse_args()
    result = {"with_page": asyncio.run(_run(a.pushes, a.clients, True, a.gap)),
              "without_page": asyncio.run(_run(a.pushes, 0, False, a.gap)),
              "web_import_ms": _import_ms()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
