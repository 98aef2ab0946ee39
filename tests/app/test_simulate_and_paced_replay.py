"""``han simulate`` to files and stdout, and ``han run --replay --pace`` pacing by meter time."""

from __future__ import annotations

import asyncio
import json

from daemonkit import AK, EK, KEYS, START, simulator
from han.cli import main
from han.pipeline import PushDecoder
from han.sources import ReplaySource


def test_simulate_to_a_file_then_decode(tmp_path, capsys):
    out = tmp_path / "capture.hex"
    code = main(
        [
            "simulate",
            "--out",
            str(out),
            "--count",
            "3",
            "--interval",
            "0",
            "--key",
            EK.hex(),
            "--auth-key",
            AK.hex(),
            "--counter-start",
            "7",
            "--start",
            "2026-03-01T10:00:00",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    assert len(out.read_text().splitlines()) == 3
    capsys.readouterr()
    assert main(["decode", str(out), "--key", EK.hex(), "--auth-key", AK.hex(), "--format", "jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["security"]["invocation_counter"] for x in lines] == [7, 8, 9]
    assert [x["timestamp"] for x in lines] == [
        "2026-03-01T10:00:00+01:00",
        "2026-03-01T10:00:10+01:00",
        "2026-03-01T10:00:20+01:00",
    ]


def test_simulate_generates_keys_once(tmp_path, capsys):
    out = tmp_path / "capture.bin"
    assert main(["simulate", "--out", str(out), "--count", "2", "--interval", "0"]) == 0
    err = capsys.readouterr().err
    assert err.count("HAN_KEY=") == 1 and err.count("HAN_AUTH_KEY=") == 1
    ek = err.split("HAN_KEY=")[1].split()[0]
    ak = err.split("HAN_AUTH_KEY=")[1].split()[0]
    assert main(["decode", str(out), "--key", ek, "--auth-key", ak, "--format", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_simulate_line_faults_to_stdout(capsys):
    code = main(
        [
            "simulate",
            "--count",
            "20",
            "--interval",
            "0",
            "--key",
            EK.hex(),
            "--auth-key",
            AK.hex(),
            "--noise",
            "0.5",
            "--torn",
            "0.3",
            "--seed",
            "2",
        ]
    )
    assert code == 0
    wire = bytes.fromhex("".join(capsys.readouterr().out.split()))
    dec = PushDecoder(KEYS)
    results = dec.feed(wire) + dec.flush()
    reasons = {getattr(x, "reason", "push") for x in results}
    assert "push" in reasons and "truncated" in reasons and "not_a_frame" in reasons


def test_paced_replay_waits_by_meter_time(tmp_path):
    sim = simulator(seed=9)
    capture = tmp_path / "capture.bin"
    capture.write_bytes(b"".join(sim.frames(START, 10, 4)))
    dec = PushDecoder(KEYS)
    waits: list[float] = []

    async def wait(stop, seconds):
        waits.append(seconds)

    async def main_():
        src = ReplaySource(str(capture), dec.feed, dec.flush, pace=True, wait=wait)
        await src.run(asyncio.Event())

    asyncio.run(main_())
    assert waits == [10.0, 10.0, 10.0]
