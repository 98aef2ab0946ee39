"""Memory stays flat over 10,000 pushes through the whole daemon (replayed capture → journal → SQLite).

Measured as the process's resident set size (RSS) after a warm-up and at the
end: tracemalloc would measure the same but makes the run five times slower.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from daemonkit import KEYS, START, simulator

from han.config import RunConfig, SinkSpec
from han.daemon import Daemon
from han.keyring import KeyRing

PUSHES = 10_000
WARM = 2_000
STATM = "/proc/self/statm"


def rss() -> int:
    with open(STATM) as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists(STATM), reason="needs /proc/self/statm (Linux)")
def test_memory_flat_over_10000_replayed_pushes(tmp_path):
    sim = simulator(seed=21)
    capture = tmp_path / "capture.bin"
    with open(capture, "wb") as fh:
        for frame in sim.frames(START, 10, PUSHES):
            fh.write(frame)
    cfg = RunConfig(
        state_dir=str(tmp_path / "state"),
        replay=str(capture),
        keyring=KeyRing(KEYS),
        sinks=(SinkSpec(f"sqlite:{tmp_path / 'han.db'}"),),
        status_interval=0.5,
    )
    samples: dict[str, int] = {}

    async def main():
        d = Daemon(cfg)
        task = asyncio.ensure_future(d.run())

        async def sample():
            while d.ingest is None or d.ingest.outcomes.counts["accepted"] < WARM:
                await asyncio.sleep(0.005)
            samples["warm"] = rss()
            while True:  # the highest value while the rest is read, decoded and stored
                samples["high"] = max(samples.get("high", 0), rss())
                await asyncio.sleep(0.05)

        sampler = asyncio.ensure_future(sample())
        code = await asyncio.wait_for(task, 120)
        sampler.cancel()
        samples["end"] = rss()
        return code, d

    code, d = asyncio.run(main())
    assert code == 0
    assert d.ingest.outcomes.counts == {"accepted": PUSHES}
    assert d.workers[0].delivered == PUSHES
    mb = {k: round(v / 1e6, 1) for k, v in samples.items()}
    # 8,000 pushes after the warm-up: keeping each push (~10 kB of objects) would add 80 MB;
    # the SQLite page caches of the journal and the sink (2 MB each) may still fill up
    assert samples["high"] - samples["warm"] < 12_000_000, mb
    assert samples["end"] - samples["warm"] < 12_000_000, mb
