"""``han run`` end to end, in-process, on a real pseudo terminal: noise, torn frames, unplugging, replays, dead sinks."""

from __future__ import annotations

import asyncio
import stat
import time
import os
from collections import Counter
from datetime import timedelta

import pytest
from daemonkit import KEYS, START, accepted, caught_up, jsonl_counters, simulator, sqlite_counters, start, stop, wait_until
from daemonkit import run_config as config

from han.config import SinkSpec
from han.keyring import KeyRing
from han.simulator import Faults


def test_noise_and_torn_frames_every_good_push_once(tmp_path, pty):
    sim = simulator()
    faults = Faults(noise=0.3, torn=0.15, corrupt=0.1, seed=7)
    good: list[int] = []
    wire: list[bytes] = []
    for i in range(80):
        ic = sim.counter
        data, intact = faults.apply(sim.frame(START + timedelta(seconds=10 * i)))
        wire.append(data)
        if intact:
            good.append(ic)

    async def main():
        d, task = await start(config(tmp_path, pty.link))
        for data in wire:
            await pty.write(data)
        await wait_until(lambda: accepted(d) == len(good) and caught_up(d), f"{len(good)} pushes")
        counts = dict(d.ingest.outcomes.counts)
        assert await stop(d, task) == 0
        return counts

    counts = asyncio.run(main())
    assert 40 < len(good) < 80
    assert sqlite_counters(str(tmp_path / "han.db")) == Counter(good)
    assert jsonl_counters(str(tmp_path / "pushes.jsonl")) == Counter(good)
    assert counts["accepted"] == len(good)
    assert counts["truncated"] + counts["bad_checksum"] >= 80 - len(good)  # each spoiled frame is reported
    assert "replayed" not in counts


def test_unplug_and_replug_loses_nothing(tmp_path, pty):
    sim = simulator(seed=2)

    def frame() -> bytes:
        return sim.frame(START + timedelta(seconds=10 * sim.pushes))

    async def main():
        d, task = await start(config(tmp_path, pty.link))
        first = [frame() for _ in range(10)]
        for f in first:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 10, "10 pushes")
        torn = frame()
        before = d.ingest.outcomes.bytes_in
        await pty.write(torn[:200])  # the adapter is pulled in the middle of a frame
        await wait_until(lambda: d.ingest.outcomes.bytes_in == before + 200, "the first half of a frame")
        pty.unplug()
        await wait_until(lambda: d.source.state != "connected", "the loss to be noticed")
        await asyncio.sleep(0.3)  # a few failed reopen attempts (the daemon keeps trying)
        pty.plug()
        await wait_until(lambda: d.source.connected.is_set() and d.source.connects == 2, "the reconnect")
        for _ in range(10):
            await pty.write(frame())
        await wait_until(lambda: accepted(d) == 20 and caught_up(d), "20 pushes")
        counts = dict(d.ingest.outcomes.counts)
        reconnects = d.source.reconnects
        assert await stop(d, task) == 0
        return counts, reconnects

    counts, reconnects = asyncio.run(main())
    expected = Counter(c for c in range(1000, 1021) if c != 1010)  # 1010 was torn
    assert sqlite_counters(str(tmp_path / "han.db")) == expected
    assert jsonl_counters(str(tmp_path / "pushes.jsonl")) == expected
    assert counts["truncated"] == 1  # the torn frame is reported, not glued to the next one
    assert reconnects == 1


def test_replayed_frame_rejected_and_counter_persisted(tmp_path, pty):
    sim = simulator(seed=3)
    a = sim.frame(START)
    b = sim.frame(START.replace(second=10))
    older = simulator(seed=3, counter_start=900).frame(START.replace(second=20))

    async def first_run():
        d, task = await start(config(tmp_path, pty.link))
        for f in (a, b, a, older):
            await pty.write(f)
        await wait_until(lambda: sum(d.ingest.outcomes.counts.values()) == 4 and caught_up(d), "4 outcomes")
        counts = dict(d.ingest.outcomes.counts)
        assert await stop(d, task) == 0
        return counts

    counts = asyncio.run(first_run())
    assert counts == {"accepted": 2, "replayed": 2}

    async def second_run():  # a restart remembers the counter
        d, task = await start(config(tmp_path, pty.link))
        await pty.write(b)
        await wait_until(lambda: d.ingest.outcomes.counts["replayed"] == 1, "the replay to be rejected")
        assert await stop(d, task) == 0

    asyncio.run(second_run())
    assert sqlite_counters(str(tmp_path / "han.db")) == Counter({1000: 1, 1001: 1})
    assert jsonl_counters(str(tmp_path / "pushes.jsonl")) == Counter({1000: 1, 1001: 1})

    from han.cli import main

    assert (
        main(
            ["state", "--state-dir", str(tmp_path / "state"), "reset-counter", "--system-title", sim.system_title.hex()]
        )
        == 0
    )

    # the reset meter counts from 900 and passes 1000 again: a counter seen before, new content
    again = simulator(seed=3, counter_start=1000).frame(START.replace(minute=5))

    async def third_run():  # after a reset the meter's next frame is accepted whatever its counter
        d, task = await start(config(tmp_path, pty.link))
        await pty.write(older)
        await pty.write(again)
        await wait_until(lambda: accepted(d) == 2 and caught_up(d), "the frames after the reset")
        assert await stop(d, task) == 0

    asyncio.run(third_run())
    assert sqlite_counters(str(tmp_path / "han.db")) == Counter({1000: 2, 1001: 1, 900: 1})
    assert jsonl_counters(str(tmp_path / "pushes.jsonl")) == Counter({1000: 2, 1001: 1, 900: 1})

    # the state directory is private: it holds decrypted readings and the counters
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    private = [p for p in state.rglob("*") if p.is_file() and p.name != "lock"]
    assert {p.name for p in private} >= {"journal.db", "counters.json", "status.json"}
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in private} == {p.name: "0o600" for p in private}


def test_dead_sink_does_not_stop_reading_or_other_sinks(tmp_path, pty):
    sim = simulator(seed=4)
    frames = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(12)]
    missing = tmp_path / "later"  # the jsonl sink's directory does not exist yet: the sink is dead
    cfg = config(
        tmp_path,
        pty.link,
        sinks=(SinkSpec(f"sqlite:{tmp_path / 'han.db'}"), SinkSpec(f"jsonl:{missing / 'pushes.jsonl'}")),
    )

    async def main():
        d, task = await start(cfg)
        sqlite_w, jsonl_w = d.workers
        for f in frames[:6]:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 6 and sqlite_w.position == 6, "6 pushes in SQLite")
        await wait_until(lambda: jsonl_w.state == "failing", "the jsonl sink to fail")
        assert jsonl_w.backlog(d.journal.last_seq) == 6
        status = d.status()
        assert [s["state"] for s in status["sinks"]] == ["ok", "failing"]
        os.mkdir(missing)  # the disk is back
        for f in frames[6:]:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 12 and caught_up(d), "every sink to catch up")
        assert jsonl_w.state == "ok"
        assert await stop(d, task) == 0

    asyncio.run(main())
    expected = Counter(range(1000, 1012))
    assert sqlite_counters(str(tmp_path / "han.db")) == expected
    assert jsonl_counters(str(missing / "pushes.jsonl")) == expected


def test_several_meters_keys_by_system_title(tmp_path, pty):
    from decoders.ciphering.security import Keys

    other_keys = Keys(ek=bytes(range(16)), ak=bytes(range(16, 32)))
    one = simulator(seed=5)
    two = simulator(seed=6, keys=other_keys)
    two.system_title = bytes.fromhex("4B414D4500000002")
    ring = KeyRing(KEYS, {two.system_title: other_keys})

    async def main():
        d, task = await start(config(tmp_path, pty.link, keyring=ring))
        for i in range(3):
            await pty.write(one.frame(START.replace(second=i * 10)) + two.frame(START.replace(second=i * 10)))
        await wait_until(lambda: accepted(d) == 6 and caught_up(d), "6 pushes from two meters")
        status = d.status()
        assert await stop(d, task) == 0
        return status

    status = asyncio.run(main())
    assert set(status["meters"]) == {one.system_title.hex().upper(), two.system_title.hex().upper()}
    keys_ids = {m["key_id"] for m in status["meters"].values()}
    assert len(keys_ids) == 2
    text = repr(status)
    for k in (KEYS.ek, KEYS.ak, other_keys.ek, other_keys.ak):
        assert k.hex() not in text.lower()


def test_pushes_that_arrive_while_the_port_is_reopened_are_read(tmp_path, pty):
    """The watchdog closes a silent port and opens it again: what the port took meanwhile is not thrown away.

    pyserial's open() flushes the input queue; a pty bridge (or a driver whose tty another
    process holds) keeps the meter's bytes while han's end is closed, and han reads them.
    """
    sim = simulator(seed=11)

    def frame() -> bytes:
        return sim.frame(START + timedelta(seconds=10 * sim.pushes))

    async def main():
        d, task = await start(config(tmp_path, pty.link, retry_min=0.5, retry_max=0.5))
        for _ in range(3):
            await pty.write(frame())
        await wait_until(lambda: accepted(d) == 3, "3 pushes")
        d.source.reopen("the test closes it")
        await wait_until(lambda: d.source.state == "waiting", "han's end of the port to be closed")
        for _ in range(4):  # 2 KB: the pty holds them until han opens its end again
            await pty.write(frame())
        await wait_until(lambda: d.source.connects == 2, "the port to be open again")
        await wait_until(lambda: accepted(d) == 7 and caught_up(d), "7 pushes")
        counts = dict(d.ingest.outcomes.counts)
        assert await stop(d, task) == 0
        return counts

    counts = asyncio.run(main())
    assert counts == {"accepted": 7}
    assert sqlite_counters(str(tmp_path / "han.db")) == Counter(range(1000, 1007))


def test_reopening_the_port_while_bytes_arrive_is_never_an_internal_error(tmp_path, pty):
    """The watchdog's reopen, again and again, while the meter writes from another thread.

    Suspected for a soak week's EBADF (it was the MQTT client's, docs/soak.md): closing the port
    (pyserial-asyncio closes it on the loop) while its reader is busy and bytes keep coming, then
    opening it without flushing what it holds.  No error outside a frame; a reopen tears at most
    the frame it cut; every accepted push is stored once.
    """
    import threading

    sim = simulator(seed=12)
    frames = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(120)]
    reopens = 15

    def meter() -> None:
        for f in frames:
            pty.write_now(f)
            time.sleep(0.005)

    async def main():
        d, task = await start(config(tmp_path, pty.link, retry_min=0.01, retry_max=0.05))
        writer = threading.Thread(target=meter)
        writer.start()
        for n in range(reopens):
            await wait_until(lambda: d.source.connects == n + 1, "the port to be open again")
            await asyncio.sleep(0.02 + 0.01 * (n % 3))
            d.source.reopen("the test closes it")
        await asyncio.to_thread(writer.join)
        await wait_until(lambda: d.source.connects == reopens + 1, "the port to be open again")
        await wait_until(lambda: d.ingest.outcomes.bytes_in >= sum(map(len, frames)) - 1, "every byte")
        await asyncio.sleep(0.5)  # the idle flush reports a torn tail
        await wait_until(lambda: caught_up(d), "the sinks")
        counts, internal = dict(d.ingest.outcomes.counts), d.internal_errors
        assert await stop(d, task) == 0
        return counts, internal

    counts, internal = asyncio.run(main())
    assert internal == 0 and "internal_error" not in counts
    assert len(frames) - reopens <= counts["accepted"] <= len(frames)
    stored = sqlite_counters(str(tmp_path / "han.db"))
    assert sum(stored.values()) == counts["accepted"] and set(stored.values()) == {1}


def test_watchdog_warns_when_the_meter_goes_quiet(tmp_path, pty, caplog):
    sim = simulator(seed=7)
    cfg = config(tmp_path, pty.link, push_interval=0.1)

    async def main():
        d, task = await start(cfg)
        await wait_until(lambda: "no push since start" in caplog.text, "the watchdog's warning")
        await wait_until(lambda: d.source.connects >= 2, "the silent port to be reopened")
        # the watchdog goes on reopening the silent port every 0.3 s: write until a push gets through
        while accepted(d) == 0:
            await wait_until(lambda: d.source.connected.is_set(), "the port to be open again")
            await pty.write(sim.frame(START + timedelta(seconds=10 * sim.pushes)))
            await asyncio.sleep(0.1)
        await wait_until(lambda: "pushes arrive again" in caplog.text, "the all-clear")
        status = d.status()
        assert await stop(d, task) == 0
        return status

    with caplog.at_level("WARNING", logger="han"):
        status = asyncio.run(main())
    assert "no bytes since start: the meter is quiet" in caplog.text
    assert status["outcomes"]["accepted"] >= 1 and "replayed" not in status["outcomes"]
    assert status["last_push"]["meter"] == "4B414D4501DF5E76"


def test_dead_database_comes_back(tmp_path, pty):
    sim = simulator(seed=8)
    db = tmp_path / "han.db"
    db.write_bytes(b"this is not a database " * 100)  # a broken file where the database should be

    async def main():
        d, task = await start(config(tmp_path, pty.link))
        sqlite_w, jsonl_w = d.workers
        for i in range(5):
            await pty.write(sim.frame(START + timedelta(seconds=10 * i)))
        await wait_until(lambda: jsonl_w.position == 5 and sqlite_w.state == "failing", "jsonl to go on alone")
        assert "not a database" in sqlite_w.last_error
        db.rename(tmp_path / "broken.db")  # the user moves the broken file away
        await wait_until(lambda: caught_up(d), "the database to catch up")
        assert await stop(d, task) == 0

    asyncio.run(main())
    assert sqlite_counters(str(db)) == Counter(range(1000, 1005))
    assert jsonl_counters(str(tmp_path / "pushes.jsonl")) == Counter(range(1000, 1005))


def test_positions_a_sink_holds_are_never_given_again(tmp_path, pty, caplog):
    """The journal lost its last commits after the sinks got them (a power cut under
    synchronous=NORMAL, simulated by cutting the rows and the sequence): the next pushes
    must get new positions, or the sinks that follow positions would skip them."""
    import sqlite3

    sim = simulator(seed=11)
    frames = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(7)]

    async def run(part):
        d, task = await start(config(tmp_path, pty.link))
        for f in part:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == len(part) and caught_up(d), f"{len(part)} pushes")
        last = d.journal.last_seq
        assert await stop(d, task) == 0
        return last

    assert asyncio.run(run(frames[:5])) == 5
    con = sqlite3.connect(tmp_path / "state" / "journal.db")
    con.execute("DELETE FROM journal WHERE seq > 3")
    con.execute("UPDATE sqlite_sequence SET seq = 3 WHERE name = 'journal'")
    con.commit()
    con.close()
    assert asyncio.run(run(frames[5:])) == 7  # positions 6 and 7, not 4 and 5 again
    ics = [1000 + i for i in range(7)]
    assert sqlite_counters(str(tmp_path / "han.db")) == Counter(ics)
    assert jsonl_counters(str(tmp_path / "pushes.jsonl")) == Counter(ics)
    assert "holds position 5 but the journal ends at 3" in caplog.text


def _good_then(fault: str):
    """Three good pushes, then what the meter's line carries in the ``fault`` case (None: nothing more)."""
    from decoders.ciphering.security import Keys

    sim = simulator(seed=31)
    good = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(3)]
    if fault == "noise":
        faults = Faults(noise=1.0, seed=5)
        return good, lambda: faults.apply(b"")[0]
    if fault == "checksums":
        faults = Faults(corrupt=1.0, seed=6)
        return good, lambda: faults.apply(sim.frame(START + timedelta(seconds=10 * sim.pushes)))[0]
    if fault == "wrong key":
        other = simulator(seed=31, counter_start=5000, keys=Keys(ek=bytes(range(16)), ak=bytes(range(16, 32))))
        return good, lambda: other.frame(START + timedelta(seconds=10 * other.pushes))
    return good, None


@pytest.mark.parametrize(
    "fault, says",
    [
        ("silence", "no bytes for "),
        ("unplug", "port lost ("),
        ("noise", "bytes but no valid push"),
        ("checksums", "HDLC frames found, but their checksums fail: wrong baud rate or parity (now 2400 8N1; "),
        ("wrong key", "HDLC frames with valid checksums, but decryption fails: a wrong key"),
    ],
)
def test_watchdog_names_the_fault(tmp_path, pty, caplog, fault, says):
    """3 good pushes, then one fault: the watchdog's first line names that fault and no other."""
    good, bad = _good_then(fault)
    cfg = config(tmp_path, pty.link, push_interval=0.3)

    async def main():
        d, task = await start(cfg)
        for f in good:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 3, "3 good pushes")
        if fault == "unplug":
            pty.unplug()
        while "watchdog" not in {r.name.split(".")[-1] for r in caplog.records if r.levelname == "WARNING"}:
            if bad is not None:
                await pty.write(bad())
                await asyncio.sleep(0.25)  # longer than the idle flush: each burst is judged on its own
            else:
                await asyncio.sleep(0.05)
            assert not task.done()
        window = dict(d.ingest.outcomes.counts)
        if fault == "unplug":
            pty.plug()
        assert await stop(d, task) == 0
        return window

    with caplog.at_level("WARNING", logger="han"):
        counts = asyncio.run(main())
    first = next(r.getMessage() for r in caplog.records if r.name == "han.watchdog")
    assert first.startswith("no push for "), first
    assert says in first, first
    others = {"no bytes for ", "port lost (", "bytes but no valid push"} - {says}
    if fault in ("noise", "checksums", "wrong key"):
        others = {"no bytes for ", "port lost ("}
    assert not any(o in first for o in others), first
    assert counts["accepted"] == 3
    if fault == "noise":
        assert "HDLC frame" in first and "wrong baud rate or parity" in first
        assert "decryption" not in first
    if fault == "checksums":
        assert "[bad_checksum " in first and counts["bad_checksum"] >= 1
    if fault == "wrong key":
        assert "[tag_mismatch " in first and counts["tag_mismatch"] >= 1


def test_an_error_outside_any_frame_is_the_daemons_count_not_a_push_outcome(tmp_path, pty, caplog, monkeypatch):
    """An exception in the event loop (a library's callback) is counted as ``internal_errors``.

    Push outcomes are for frames; a soak week once counted an EBADF of the MQTT client's socket
    handling as a push ``internal_error``.  ``han status`` shows the count apart.
    """
    import json
    import logging

    from han.status import render

    monkeypatch.delenv("HAN_DEBUG", raising=False)
    sim = simulator(seed=3)

    def boom():
        raise OSError(9, "Bad file descriptor")

    async def main():
        d, task = await start(config(tmp_path, pty.link))
        asyncio.get_running_loop().call_soon(boom)
        await pty.write(sim.frame(START))
        await wait_until(lambda: accepted(d) == 1 and caught_up(d) and d.internal_errors == 1, "the push")
        status_path = tmp_path / "state" / "status.json"

        def status_says() -> bool:
            try:
                return json.loads(status_path.read_text()).get("internal_errors") == 1
            except (OSError, ValueError):
                return False

        await wait_until(status_says, "the status")
        counts = dict(d.ingest.outcomes.counts)
        assert await stop(d, task) == 0
        return counts, json.loads(status_path.read_text())

    with caplog.at_level(logging.ERROR, logger="han"):
        counts, status = asyncio.run(main())
    assert counts == {"accepted": 1}
    assert status["outcomes"] == {"accepted": 1} and status["internal_errors"] == 1
    assert any(
        "internal error: OSError: [Errno 9] Bad file descriptor [Exception in callback " in r.getMessage()
        for r in caplog.records
    )
    shown = render(status, None)
    assert "outcomes: 1 accepted; no failures" in shown
    assert "internal errors: 1 outside any push" in shown
