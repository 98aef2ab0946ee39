"""The watchdog watches each source on its own: two meters on two ptys as two --sources.

One meter stops: exactly its port is warned about and reopened, the other goes on without a
word; it starts again: "pushes arrive again" for it.  Real ptys, the simulator, the daemon.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from daemonkit import KEYS, START, Pty, run_config, start, stop, wait_until
from han.simulator import KamstrupSimulator
from han.sources.spec import SourceSpec
from han.watchdog import SourceWatch


def _watch_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "han.watchdog"]


def test_a_silent_meter_is_warned_about_and_reopened_the_other_goes_on(tmp_path, caplog):
    a, b = Pty(str(tmp_path / "ttyA")), Pty(str(tmp_path / "ttyB"))
    sims = {
        "a": KamstrupSimulator(KEYS, meter_number=11111111, counter_start=1000, seed=3),
        "b": KamstrupSimulator(KEYS, meter_number=22222222, counter_start=1000, seed=4),
    }
    ptys = {"a": a, "b": b}
    on = {"a": True, "b": True}
    cfg = run_config(
        tmp_path, a.link, sources=(SourceSpec("serial", a.link), SourceSpec("serial", b.link)), push_interval=0.5
    )

    async def meters(stop_writing: asyncio.Event) -> None:
        while not stop_writing.is_set():
            for key, sim in sims.items():
                if on[key]:
                    await ptys[key].write(sim.frame(START + timedelta(seconds=10 * sim.pushes)))
            await asyncio.sleep(0.1)

    async def main():
        d, task = await start(cfg)
        src_a, src_b = d.sources
        watch_a, watch_b = d.watches
        await wait_until(lambda: src_b.connected.is_set(), "the second port to open")
        stop_writing = asyncio.Event()
        writer = asyncio.ensure_future(meters(stop_writing))
        await wait_until(lambda: watch_a.last_push and watch_b.last_push, "pushes from both meters")
        on["b"] = False
        await wait_until(lambda: any(line.startswith(f"{b.link}: no push for ") for line in _watch_lines(caplog)),
                         "the warning about the silent meter")
        await wait_until(lambda: src_b.connects >= 2, "the silent port to be reopened")
        pushes_a = watch_a.last_push
        await wait_until(lambda: watch_a.last_push > pushes_a, "the other meter to go on")
        on["b"] = True  # the watchdog reopens the silent port every 1.5 s: pushes get through between
        await wait_until(lambda: f"{b.link}: pushes arrive again" in _watch_lines(caplog), "the all-clear")
        stop_writing.set()
        await writer
        connects = src_a.connects, src_b.connects
        status = d.status()
        assert await stop(d, task) == 0
        return connects, status

    try:
        with caplog.at_level("INFO", logger="han"):
            (connects_a, connects_b), status = asyncio.run(main())
    finally:
        a.close()
        b.close()
    lines = _watch_lines(caplog)
    assert not [line for line in lines if a.link in line], lines  # the meter that went on: no word
    assert all(line.startswith(f"{b.link}: ") for line in lines), lines  # each line names its source
    silent = [line for line in lines if "no push for" in line]
    assert silent and all("no bytes" in line for line in silent), silent
    assert connects_a == 1 and connects_b >= 2
    reopened = [r.getMessage() for r in caplog.records if "reopening the port" in r.getMessage()]
    assert reopened and all(m.startswith(f"{b.link}: the port has been silent") for m in reopened), reopened
    # one meter still pushing: the sinks were never told the source is offline
    assert "status for the sinks: offline" not in caplog.text
    assert [s["name"] for s in status["sources"]] == [a.link, b.link]


def test_each_source_learns_its_own_push_interval():
    fast, slow = SourceWatch(None), SourceWatch(None)
    for i in range(5):
        fast.pushed(100.0 + 2 * i)
        fast.committed()
        slow.pushed(100.0 + 10 * i)
        slow.committed()
    assert fast.interval(None, 5.0) == 2.0 and slow.interval(None, 5.0) == 10.0
    assert SourceWatch(None).interval(None, 5.0) == 5.0  # nothing learned yet: the daemon's
    assert slow.interval(3.0, 5.0) == 3.0  # a configured push interval wins


def test_the_all_clear_comes_once_per_silence():
    w = SourceWatch(None)
    w.pushed(1.0)
    assert not w.committed()
    w.warned_at = 5.0
    w.failed("bad_checksum")
    assert w.window == {"bad_checksum": 1}
    assert not w.committed()  # no new push yet
    w.pushed(6.0)
    assert w.window == {} and w.committed() and w.warned_at is None
    assert not w.committed()
