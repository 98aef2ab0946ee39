"""``han decode --port``: live decoding from a real pseudo terminal, as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

from daemonkit import AK, EK, START, simulator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAN = [sys.executable, "-m", "han"]
ENV = dict(os.environ, HAN_KEY=EK.hex(), HAN_AUTH_KEY=AK.hex(), PYTHONPATH=ROOT)


class Writer(threading.Thread):
    """The simulated meter: a push every ``interval`` seconds into the pty (``spoil`` changes one frame)."""

    def __init__(self, pty, interval: float = 0.15, spoil=None, start_after: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.pty, self.interval, self.spoil, self.start_after = pty, interval, spoil, start_after
        self.stop = threading.Event()
        self.sim = simulator()

    def run(self) -> None:
        if self.stop.wait(self.start_after):
            return
        i = 0
        while not self.stop.is_set():
            frame = self.sim.frame(START + timedelta(seconds=10 * i))
            if self.spoil is not None:
                frame = self.spoil(i, frame)
            self.pty.write_now(frame)
            i += 1
            time.sleep(self.interval)


def decode(pty, *args: str, writer: Writer | None = None, timeout: float = 30, interrupt_after: float | None = None):
    writer = writer or Writer(pty)
    proc = subprocess.Popen(
        HAN + ["decode", "--port", pty.link, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    writer.start()
    try:
        if interrupt_after is not None:
            time.sleep(interrupt_after)
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        writer.stop.set()
        writer.join(5)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def test_count_ends_it(pty):
    rc, out, err = decode(pty, "--count", "3", "--format", "jsonl")
    assert rc == 0, err
    pushes = [json.loads(line) for line in out.splitlines()]
    assert len(pushes) == 3
    counters = [p["security"]["invocation_counter"] for p in pushes]  # pushes before the port opened are gone
    assert counters == list(range(counters[0], counters[0] + 3))
    assert all(p["meter_id"] == "31415926" and p["security"]["verified"] for p in pushes)
    assert f"han decode: reading {pty.link} at 2400 8N1 (Ctrl-C ends)" in err


def test_seconds_end_it_and_pushes_come_as_they_arrive(pty):
    rc, out, err = decode(pty, "--seconds", "1.5", "--format", "jsonl", "--preset", "mbus")
    assert rc == 0, err
    assert 3 <= len(out.splitlines()) <= 15
    assert "at 2400 8E1" in err  # a pty is opened 8N1 whatever the setting; the setting is still the one given


def test_ctrl_c_ends_it_with_the_status_of_a_file(pty):
    rc, out, err = decode(pty, "--summary", interrupt_after=1.5)
    assert rc == 0, err
    assert "Traceback" not in err
    assert "summary:" in err and "decoded" in err and "push 1 · Kamstrup_V0001" in out


def test_a_torn_frame_is_reported_when_the_line_goes_idle(pty):
    def spoil(i: int, frame: bytes) -> bytes:
        return frame[:200] if i == 1 else frame

    rc, out, err = decode(pty, "--count", "2", "--format", "jsonl", writer=Writer(pty, interval=1.2, spoil=spoil))
    assert rc == 1  # as for a file: a frame failed
    assert len(out.splitlines()) == 2
    assert re.search(r"offset \d+: framing: frame at offset \d+ is truncated", err), err


def test_no_data(pty):
    rc, out, err = decode(pty, "--seconds", "0.5", writer=Writer(pty, start_after=60))
    assert rc == 1 and out == ""
    assert f"{pty.link}: no data (is the meter's port enabled? 'han probe' checks)" in err


def test_wrong_key_is_one_line_per_frame(pty):
    env_key = {"HAN_AUTH_KEY": "A1B2C3D4E5F60718293A4B5C6D7E8F90"}
    proc = subprocess.Popen(
        HAN + ["decode", "--port", pty.link, "--seconds", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**ENV, **env_key}, cwd=ROOT,
    )  # fmt: skip
    w = Writer(pty)
    w.start()
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        w.stop.set()
        w.join(5)
    assert proc.returncode == 1 and out == ""
    assert "security: GCM tag mismatch" in err and "Traceback" not in err


def test_port_options_need_a_port_and_valid_values():
    r = subprocess.run(HAN + ["decode", "--baud", "9600", "x"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "--baud is for --port (a live serial port)" in r.stderr
    r = subprocess.run(HAN + ["decode", "--port", "/dev/null", "--baud", "0"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "--baud must be at least 1" in r.stderr
    r = subprocess.run(HAN + ["decode", "--port", "/nonexistent/tty", "--seconds", "1"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "no such port ('han ports' lists the ports)" in r.stderr
