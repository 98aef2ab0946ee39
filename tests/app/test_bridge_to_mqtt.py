"""``han bridge`` with the real parts: a pty as the meter's port, the real mosquitto, the spool on disk.

Frames go out whole and in the port's order; while the broker is away they wait in the
spool and are drained in order when it is back, none lost and none twice; the spool keeps
its bound; a bridge killed with kill -9 while frames wait sends them after its restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta

from conftest import ROOT
from daemonkit import START, Pty, simulator, wait_until, wait_until_sync
from mqttkit import Subscriber
from servers import Mosquitto, free_port, mosquitto  # noqa: F401 - session fixture

from han.bridge import Bridge, parse_target
from han.config import SerialSettings
from han.spool import Spool

HAN = [sys.executable, "-m", "han"]


def frames(n: int, seed: int = 1, start: int = 0) -> list[bytes]:
    sim = simulator(seed=seed, counter_start=1000 + start)
    return [sim.frame(START + timedelta(seconds=10 * (start + i))) for i in range(n)]


def bridge(pty: Pty, port: int, topic: str, spool_dir, **kw) -> Bridge:
    target = parse_target(f"mqtt://127.0.0.1:{port}/{topic}", format=kw.pop("format", None))
    spool = Spool(str(spool_dir), max_bytes=kw.pop("max_bytes", 1 << 20))
    b = Bridge(SerialSettings(port=pty.link), target, spool, idle=0.2, status_interval=0, retry_max=0.2, timeout=3, **kw)
    return b


def received(sub: Subscriber, topic: str) -> list[bytes]:
    return [p for t, p, _ in sub.messages if t == topic]


async def _start(b: Bridge) -> tuple[asyncio.Event, asyncio.Future]:
    stop = asyncio.Event()
    task = asyncio.ensure_future(b.run(stop, drain=0))
    await wait_until(lambda: b.source.connected.is_set(), "the port to open")
    return stop, task


async def _stop(b: Bridge, stop: asyncio.Event, task) -> None:
    stop.set()
    await asyncio.wait_for(task, 30)
    b.spool.close()


def test_frames_arrive_whole_and_in_order_noise_as_its_own_message(tmp_path, pty, mosquitto):
    fs = frames(12)
    stream = b"".join(fs[:5]) + b"\x00\x13\x37" + b"".join(fs[5:])
    expected = fs[:5] + [b"\x00\x13\x37"] + fs[5:]

    async def main():
        sub = Subscriber(mosquitto.port, topics=("han/raw/#",), name="bridge-order")
        await sub.subscribed.wait()
        b = bridge(pty, mosquitto.port, "han/raw/order", tmp_path / "spool")
        stop, task = await _start(b)
        for i in range(0, len(stream), 100):  # frames cut across the port's reads
            await pty.write(stream[i : i + 100])
            await asyncio.sleep(0.002)
        await wait_until(lambda: len(received(sub, "han/raw/order")) >= len(expected), "every message")
        await _stop(b, stop, task)
        await sub.close()
        assert (b.counts.frames, b.counts.unframed, b.counts.unframed_bytes) == (12, 1, 3)
        return received(sub, "han/raw/order")

    assert asyncio.run(main()) == expected


def test_hex_payloads(tmp_path, pty, mosquitto):
    fs = frames(3, seed=2)

    async def main():
        sub = Subscriber(mosquitto.port, topics=("han/raw/#",), name="bridge-hex")
        await sub.subscribed.wait()
        b = bridge(pty, mosquitto.port, "han/raw/hex", tmp_path / "spool", format="hex")
        stop, task = await _start(b)
        for f in fs:
            await pty.write(f)
        await wait_until(lambda: len(received(sub, "han/raw/hex")) >= 3, "three messages")
        await _stop(b, stop, task)
        await sub.close()
        return received(sub, "han/raw/hex")

    assert asyncio.run(main()) == [f.hex().upper().encode() for f in fs]


def test_broker_restart_frames_spooled_then_drained_in_order_none_lost_none_twice(tmp_path, pty, mosquitto):
    fs = frames(30, seed=3)
    topic = "han/raw/outage"

    async def main():
        sub = Subscriber(mosquitto.port, topics=("han/raw/#",), name="bridge-outage")
        await sub.subscribed.wait()
        b = bridge(pty, mosquitto.port, topic, tmp_path / "spool")
        stop, task = await _start(b)
        await wait_until(b.connected.is_set, "the broker connection")
        for f in fs[:10]:
            await pty.write(f)
        await wait_until(lambda: len(received(sub, topic)) >= 10, "the first ten")
        mosquitto.stop()
        try:
            await wait_until(lambda: not b.connected.is_set(), "the bridge to see the broker go")
            for f in fs[10:25]:
                await pty.write(f)
                await asyncio.sleep(0.01)
            await wait_until(lambda: b.counts.frames == 25, "25 frames read")
            assert b.spool.pending == 15  # on disk while the broker is away
        finally:
            mosquitto.start()
        for f in fs[25:]:
            await pty.write(f)
        await wait_until(lambda: len(received(sub, topic)) >= 30 and b.spool.pending == 0, "the drain")
        await asyncio.sleep(0.3)  # a duplicate would arrive now
        await _stop(b, stop, task)
        await sub.close()
        return received(sub, topic), b

    got, b = asyncio.run(main())
    assert got == fs
    assert b.counts.published == 30 and b.spool.dropped == 0


def test_spool_keeps_its_bound_dropping_the_oldest_and_counting_them(tmp_path, pty):
    fs = frames(200, seed=4)  # 491-byte frames: 200 of them are ~100 KB, the bound 64 KiB
    away = free_port()  # nothing listens: the broker is away for the whole test

    async def main():
        b = bridge(pty, away, "han/raw/full", tmp_path / "spool", max_bytes=64 * 1024)
        stop, task = await _start(b)
        for f in fs:
            await pty.write(f)
            await asyncio.sleep(0.001)
        await wait_until(lambda: b.counts.frames == 200, "every frame read")
        size, pending, dropped = b.spool.size, b.spool.pending, b.spool.dropped
        kept = [p for _, p in b.spool.peek(1000)]
        await _stop(b, stop, task)
        return size, pending, dropped, kept

    size, pending, dropped, kept = asyncio.run(main())
    assert size <= 64 * 1024 and sum(len(f) + 8 for f in kept) == size
    assert dropped > 0 and pending + dropped == 200
    assert kept == fs[-pending:]  # the newest frames, in order
    assert len([n for n in os.listdir(tmp_path / "spool") if n.startswith("seg-")]) <= 9  # segments of 8 KiB


def _bridge_process(link: str, port: int, spool, log) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("JOURNAL_STREAM", None)
    return subprocess.Popen(
        HAN + ["bridge", "--port", link, "--to", f"mqtt://127.0.0.1:{port}/han/raw/killed", "--spool", str(spool),
               "--status-interval", "0"],
        stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=ROOT,
    )


def _spooled_bytes(spool) -> int:
    return sum(os.path.getsize(os.path.join(spool, n)) for n in os.listdir(spool) if n.startswith("seg-"))


def test_bridge_killed_9_with_frames_in_the_spool_sends_them_after_its_restart(tmp_path, pty):
    fs = frames(12, seed=5)
    broker = Mosquitto()  # its own broker: away until the bridge has been killed
    spool = tmp_path / "spool"
    log = open(tmp_path / "bridge.log", "ab")
    procs = []
    try:
        procs.append(_bridge_process(pty.link, broker.port, spool, log))
        wait_until_sync(lambda: os.path.exists(spool / "lock") and b"reading at" in (tmp_path / "bridge.log").read_bytes(),
                        "the bridge to open the port")
        for f in fs[:8]:
            pty.write_now(f)
        wait_until_sync(lambda: _spooled_bytes(spool) == sum(len(f) + 8 for f in fs[:8]), "eight frames spooled")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(30)
        broker.start()

        async def main():
            sub = Subscriber(broker.port, topics=("han/raw/#",), name="bridge-killed")
            await sub.subscribed.wait()
            procs.append(_bridge_process(pty.link, broker.port, spool, log))
            await wait_until(lambda: len(received(sub, "han/raw/killed")) >= 8, "the spooled frames")
            await wait_until(lambda: (tmp_path / "bridge.log").read_bytes().count(b"reading at") == 2,
                             "the restarted bridge to open the port")
            for f in fs[8:]:
                await pty.write(f)
            await wait_until(lambda: len(received(sub, "han/raw/killed")) >= 12, "the frames after the restart")
            await asyncio.sleep(0.3)
            procs[1].send_signal(signal.SIGTERM)
            assert procs[1].wait(30) == 0
            await sub.close()
            return received(sub, "han/raw/killed")

        assert asyncio.run(main()) == fs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()
        broker.cleanup()
    text = (tmp_path / "bridge.log").read_text()
    print(text)
    assert "connected to mqtt://127.0.0.1:%d/han/raw/killed; 8 frame(s) waiting in the spool" % broker.port in text
    assert "Traceback" not in text
