"""Push latency of the live path: a frame written into a pty → its row committed in SQLite.

The daemon runs in-process on a real pseudo terminal (as ``han run --port``); for each of
``n`` pushes the time from ``os.write`` on the master to the SQLite sink's checkpoint
reaching the push is measured (serial read, framing, decryption, counter check, journal
commit, worker wake-up, rebuild, SQLite commit).  Printed, never asserted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import tty
from datetime import datetime, timedelta


async def _measure(n: int) -> dict:
    from decoders.ciphering.security import Keys
    from han.config import RunConfig, SerialSettings, SinkSpec
    from han.daemon import Daemon
    from han.keyring import KeyRing
    from han.simulator import KamstrupSimulator

    keys = Keys(ek=bytes(range(16)), ak=bytes(range(16, 32)))
    sim = KamstrupSimulator(keys, seed=1)
    tmp = tempfile.mkdtemp(prefix="han-bench-")
    master, slave = os.openpty()
    tty.setraw(slave)
    cfg = RunConfig(
        state_dir=os.path.join(tmp, "state"),
        serial=SerialSettings(port=os.ttyname(slave)),
        keyring=KeyRing(keys),
        sinks=(SinkSpec(f"sqlite:{tmp}/han.db"),),
    )
    d = Daemon(cfg)
    task = asyncio.ensure_future(d.run())
    while d.source is None or not d.source.connected.is_set():
        await asyncio.sleep(0.01)
    worker = d.workers[0]
    latencies = []
    start = datetime(2026, 1, 15, 12)
    for i in range(n):
        frame = sim.frame(start + timedelta(seconds=10 * i))
        t0 = time.perf_counter()
        os.write(master, frame)
        while worker.position < i + 1:
            await asyncio.sleep(0)
        latencies.append(time.perf_counter() - t0)
    d.request_stop()
    await task
    os.close(master)
    os.close(slave)
    ms = sorted(x * 1e3 for x in latencies)
    return {"pushes": n, "median_ms": statistics.median(ms), "p95_ms": ms[int(0.95 * (n - 1))], "max_ms": ms[-1]}


def measure(n: int = 200) -> dict:
    return asyncio.run(_measure(n))


if __name__ == "__main__":
    print(measure())
