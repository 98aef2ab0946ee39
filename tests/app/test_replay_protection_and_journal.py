"""Replay protection, the journal, burst logging and the simulator, without a port."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from daemonkit import KEYS, START, simulator

from decoders.ciphering.security import Keys
from han.burstlog import BurstLog
from han.ingest import Ingest
from han.journal import Journal, read_all
from han.keyring import KeyRing, key_id
from han.pipeline import PushDecoder
from han.replay import CounterStore
from han.simulator import Faults


def make_ingest(tmp_path, keys=KEYS, **kw):
    ring = KeyRing(keys)
    journal = Journal(str(tmp_path / "journal.db"))
    counters = CounterStore(str(tmp_path / "counters.json")).load()
    counters.reconcile(journal)
    lines: list[str] = []
    ingest = Ingest(
        PushDecoder(ring, transport="hdlc", **kw), ring, counters, journal, burst=BurstLog(lines.append)
    )
    return ingest, lines


def test_counter_is_enforced_after_the_tag_check(tmp_path):
    sim = simulator()
    a, b = sim.frame(START), sim.frame(START + timedelta(seconds=10))
    ingest, lines = make_ingest(tmp_path)
    assert len(ingest.feed(a + b + a)) == 2
    assert ingest.outcomes.counts == {"accepted": 2, "replayed": 1}
    assert "invocation counter 1000 of meter 4B414D4501DF5E76 is not above the last accepted 1001" in lines[0]
    # a forged frame with a higher counter (wrong keys) fails its tag and does not move the counter
    forged = simulator(keys=Keys(ek=bytes(16), ak=bytes(16)), counter_start=5000).frame(START)
    ingest.feed(forged)
    assert ingest.outcomes.counts["tag_mismatch"] == 1
    assert ingest.counters.counters == {(sim.system_title, key_id(KEYS)): 1001}


def test_encryption_only_frames_are_counted_too(tmp_path):
    keys = Keys(ek=KEYS.ek)
    sim = simulator(keys=keys)
    sim.security_control = 0x20
    a, b = sim.frame(START), sim.frame(START + timedelta(seconds=10))
    ingest, _ = make_ingest(tmp_path, keys=keys)
    ingest.feed(a + b + a)
    assert ingest.outcomes.counts == {"accepted": 2, "replayed": 1}


def test_plain_frames_have_no_counter(tmp_path):
    sim = simulator(keys=None)
    frame = sim.frame(START)
    ingest, _ = make_ingest(tmp_path, keys=Keys())
    ingest.feed(frame + frame)
    assert ingest.outcomes.counts == {"accepted": 2}  # the SQLite sink refuses the same meter time twice
    assert ingest.counters.counters == {}


def test_counters_survive_a_crash_through_the_journal(tmp_path):
    sim = simulator()
    frames = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(5)]
    ingest, _ = make_ingest(tmp_path)
    ingest.feed(b"".join(frames[:3]))
    ingest.counters.save(ingest.journal.id, ingest.journal.last_seq)
    ingest.feed(frames[3])  # accepted and journaled, then killed before the counters were saved
    ingest.journal.close()
    saved = json.loads((tmp_path / "counters.json").read_text())
    assert list(saved["counters"].values()) == [1002] and saved["seq"] == 3
    ingest, lines = make_ingest(tmp_path)  # the restart takes 1003 from the journal
    ingest.feed(frames[3] + frames[4])
    assert ingest.outcomes.counts == {"accepted": 1, "replayed": 1}
    assert [r.invocation_counter for r in read_all(str(tmp_path / "journal.db"))] == [1000, 1001, 1002, 1003, 1004]


def test_pushes_lost_with_a_full_disk_are_taken_again_when_replayed(tmp_path):
    """Counters saved while pushes wait in memory for a full disk leave those pushes out.

    Before: the counters file took the waiting pushes' counters, so after han stopped (or was
    killed) with the disk still full, replaying the same capture refused them as replays: lost.
    The disk here is full for real: SQLite's page limit refuses the journal's growth.
    """
    sim = simulator()
    frames = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(60)]
    ingest, _ = make_ingest(tmp_path)
    db = ingest.journal.db
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    fed = 0
    while len(ingest.pending) < 3:  # the journal's last page fills up, then it cannot grow
        ingest.feed(frames[fed])
        fed += 1
    journaled = fed - 3
    assert journaled > 0 and ingest.outcomes.counts["journal_error"] == 3
    ingest.counters.save(ingest.journal.id, ingest.journal.last_seq, unjournaled=ingest.unjournaled)
    ingest.journal.close()  # han stops (or is killed) with the disk still full: the last 3 are lost
    saved = json.loads((tmp_path / "counters.json").read_text())
    assert list(saved["counters"].values()) == [1000 + journaled - 1] and saved["seq"] == journaled
    ingest, _ = make_ingest(tmp_path)  # the disk has room again; the same capture replayed
    ingest.feed(b"".join(frames[: fed + 1]))
    assert ingest.outcomes.counts == {"accepted": 4, "replayed": journaled}
    rows = list(read_all(str(tmp_path / "journal.db")))
    assert [r.invocation_counter for r in rows] == list(range(1000, 1000 + fed + 1))
    assert [r.seq for r in rows] == list(range(1, fed + 2))  # one position each, none given twice
    ingest.counters.save(ingest.journal.id, ingest.journal.last_seq, unjournaled=ingest.unjournaled)
    assert list(json.loads((tmp_path / "counters.json").read_text())["counters"].values()) == [1000 + fed]


def test_journal_limit_and_trim(tmp_path):
    sim = simulator()
    ingest, _ = make_ingest(tmp_path)
    ingest.journal.max_rows = 3
    ingest.feed(b"".join(sim.frames(START, 10, 5)))
    assert ingest.journal.last_seq == 5
    assert ingest.journal.trim(1) == 1  # rows 1 (every sink has it) and 2 (past the limit) go
    assert [r.seq for r in read_all(ingest.journal.path)] == [3, 4, 5]
    ingest.journal.trim(5)
    assert ingest.journal.rows() == 0 and ingest.journal.last_seq == 5  # positions are never reused


def test_burst_log():
    lines: list[str] = []
    b = BurstLog(lines.append, quiet=60, every=600)
    for t in range(10):
        b.failure("bad_checksum", f"framing: checksum {t}", float(t))
    b.failure("truncated", "framing: truncated", 10.0)
    assert lines == ["framing: checksum 0"]
    b.success(12.0)
    assert lines[1] == "10 more frame(s) failed in the last 12 s (bad_checksum 9, truncated 1)"
    b.failure("tag_mismatch", "security: tag", 100.0)
    b.tick(130.0)
    b.tick(161.0)  # quiet for a minute: the burst is over (nothing suppressed: no summary)
    assert lines[2:] == ["security: tag"] and not b.in_burst
    for t in range(0, 1300, 10):  # failing on and on: a summary every 10 minutes
        b.failure("not_a_frame", "framing: noise", 1000.0 + t)
    assert lines[3] == "framing: noise" and len(lines) == 6  # at 600 s and 1200 s
    assert lines[-1] == "60 more frame(s) failed in the last 600 s (not_a_frame 60) and still failing"


def test_simulator_values_are_plausible():
    sim = simulator()
    dec = PushDecoder(KEYS)
    pushes = dec.feed(b"".join(sim.frames(datetime(2026, 7, 1, 12), 10, 360)))  # an hour
    assert len(pushes) == 360
    first, last = pushes[0], pushes[-1]
    assert first.profile == "kamstrup_dk" and first.list_id == "Kamstrup_V0001" and len(first.registers) == 33
    assert first.meter_time.dst  # July in Copenhagen
    energy = [p.register("1.1.1.8.0.255").value for p in pushes]
    assert energy == sorted(energy) and energy[-1] > energy[0]
    power = [p.register("1.1.1.7.0.255").value for p in pushes]
    mean_w = sum(power) / len(power)
    assert 100 < mean_w < 5000
    # the energy grows by what the power implies (an hour: Wh = mean W), to within rounding
    assert abs((energy[-1] - energy[0]) - mean_w * 359 / 360) < 0.05 * mean_w + 5
    for p in (first, last):
        phases = [p.register(f"1.1.{c}.7.0.255").value for c in (21, 41, 61)]
        assert abs(sum(phases) - p.register("1.1.1.7.0.255").value) <= 3
        assert all(220 <= p.register(f"1.1.{c}.7.0.255").value <= 240 for c in (32, 52, 72))
        assert 0.8 <= p.register("1.1.13.7.0.255").value <= 1.0
    assert [p.security.invocation_counter for p in pushes] == list(range(1000, 1360))


@pytest.mark.parametrize("seed", range(5))
def test_faults_report_what_stays_intact(seed):
    sim = simulator(seed=seed)
    faults = Faults(noise=0.5, torn=0.2, corrupt=0.2, seed=seed)
    good, wire = [], b""
    for i in range(50):
        ic = sim.counter
        data, intact = faults.apply(sim.frame(START + timedelta(seconds=10 * i)))
        wire += data
        if intact:
            good.append(ic)
    dec = PushDecoder(KEYS)
    got = [x.security.invocation_counter for x in dec.feed(wire) + dec.flush() if hasattr(x, "security")]
    assert got == good


def test_a_bug_on_one_frame_does_not_end_the_stream(tmp_path, monkeypatch):
    from obis.interpret import Interpreter

    sim = simulator()
    frames = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(3)]
    real = Interpreter.interpret
    calls = []

    def flaky(self, notification, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise IndexError("list index out of range")
        return real(self, notification, **kw)

    monkeypatch.setattr(Interpreter, "interpret", flaky)
    monkeypatch.delenv("HAN_DEBUG", raising=False)
    ingest, lines = make_ingest(tmp_path)
    assert len(ingest.feed(b"".join(frames))) == 2
    assert ingest.outcomes.counts == {"accepted": 2, "internal_error": 1}
    assert "internal error on this frame: IndexError" in lines[0]


def test_journal_rows_rebuild_the_same_push():
    """What a sink gets after a restart (rebuilt from the journal) equals what was decoded live."""
    from decoders.xdlms.dsmr import crc16_arc
    from decoders.ciphering.security import protect
    from han.pipeline import push_from_apdu
    from obis.push import SecurityInfo

    text = b"/HAN5\\2SIMULATED\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(260115120000W)\r\n1-0:1.7.0(00.512*kW)\r\n!"
    telegram = text + b"%04X\r\n" % crc16_arc(text)
    dsmr = protect(telegram, keys=KEYS, system_title=b"SAGgp\x00\x00\x07", invocation_counter=3)
    for wire, transport in ((simulator().frame(START), "hdlc"), (dsmr, "raw")):
        dec = PushDecoder(KEYS, transport=transport)
        (live,) = dec.feed(wire) + dec.flush()
        assert live.registers
        s = live.security
        rebuilt = push_from_apdu(
            live.apdu, SecurityInfo(s.system_title, s.invocation_counter, s.security_control, s.verified, s.tag)
        )
        assert rebuilt.registers == live.registers and rebuilt.timestamp == live.timestamp
        assert rebuilt.timestamp_utc == live.timestamp_utc and rebuilt.meter_id == live.meter_id
