"""``han probe`` on a real pseudo terminal, with a simulated meter at each common serial setting.

How a pty can stand for a wrong baud rate or parity
---------------------------------------------------
A pty passes bytes unchanged whatever its termios says, and Linux keeps only
part of what a reader sets on it: the baud rate and stop bits stay (read back
with ``termios.tcgetattr`` on the slave), parity and 7 data bits are dropped
(the pty stays CS8 without PARENB; han opens a pty 8N1 at the baud rate asked
for, see ``han.sources.open_serial``).  So the test meter works out what a
real UART at the probe's current setting would receive, and writes that:

* the meter has its true setting (say 2400 8E1) and pushes frames;
* before each push it reads the pty's baud rate back from the kernel
  (``tcgetattr``: what the probe really set on the port) and takes the data
  bits and parity from the setting the probe says it is listening at (its
  ``listening`` event, sent once the port is open; the command prints the
  same line).  If the two baud rates disagree the probe is between settings,
  and the receiver is taken as 8N1 at the kernel's baud rate.  Each event
  also checks that the kernel holds the baud rate the probe announced;
* it writes ``uartline.received(frame, meter, receiver)``: the bit stream of
  the frame at the meter's setting, sampled the way a 16550 receiver at the
  probe's setting samples it (see ``tests/uartline.py``).  At the right
  setting that is the frame itself; at a wrong one it is what a wrong baud
  rate or parity really gives: garbage, shifted bits, framing lost.

The meter and the probe share one event loop, so "read the setting, write the
bytes" happens between two steps of the probe, never in the middle of a
reopen.  Even if a push did straddle a change of setting, it could only cost
a push (bytes garbled for the old setting read at the new one), never make a
wrong setting look right: the probe never leaves a setting that gave a push.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import termios
import threading
import time
from datetime import timedelta

import pytest
from daemonkit import AK, EK, KEYS, START, simulator
from uartline import Line, received

from decoders.ciphering.security import Keys
from decoders.xdlms.dsmr import crc16_arc
from han.commands.probe import probe, report
from han.pipeline import PushDecoder
from han.probing import COMMON_SETTINGS, LinkSetting, Listening, keys_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAN = [sys.executable, "-m", "han"]
SPEEDS = {getattr(termios, n): int(n[1:]) for n in dir(termios) if n[:1] == "B" and n[1:].isdigit()}
WINDOW = 0.5  #: seconds the probe listens at each setting
INTERVAL = 0.12  #: seconds between the meter's pushes
OTHER_AK = bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90")


def line_of(setting: LinkSetting) -> Line:
    return Line(setting.baud, setting.bytesize, setting.parity, int(setting.stopbits))


def p1_telegram(n: int) -> bytes:
    body = (
        "/ISk5\\2MT382-1000\r\n\r\n"
        "1-3:0.2.8(42)\r\n"
        f"0-0:1.0.0(2601151200{n % 60:02d}W)\r\n"
        f"1-0:1.8.1(001234.{n % 1000:03d}*kWh)\r\n"
        "1-0:1.7.0(00.512*kW)\r\n"
        "!"
    ).encode("ascii")
    return body + f"{crc16_arc(body):04X}\r\n".encode("ascii")


class Meter:
    """A meter at ``line`` on the pty: what the probe's current setting would receive (see the module docstring)."""

    def __init__(self, pty, line: Line, frames) -> None:
        self.pty = pty
        self.line = line
        self.frames = frames
        self.announced: Line | None = None
        self.baud_mismatches: list[tuple[int, int]] = []

    def kernel_baud(self) -> int:
        return SPEEDS[termios.tcgetattr(self.pty.slave)[4]]

    def on_event(self, kind: str, what) -> None:
        if kind == "listening":
            self.announced = line_of(what)
            if self.kernel_baud() != what.baud:
                self.baud_mismatches.append((self.kernel_baud(), what.baud))

    def receiver(self) -> Line:
        baud = self.kernel_baud()
        if self.announced is None or self.announced.baud != baud:
            return Line(baud)
        return self.announced

    def wire(self, frame: bytes) -> bytes:
        return received(frame, self.line, self.receiver())

    async def run(self) -> None:
        for frame in self.frames:
            await self.pty.write(self.wire(frame))
            await asyncio.sleep(INTERVAL)


def kamstrup_frames(keys: Keys | None = KEYS):
    sim = simulator(keys=keys)
    i = 0
    while True:
        yield sim.frame(START + timedelta(seconds=10 * i))
        i += 1


def p1_frames():
    i = 0
    while True:
        yield p1_telegram(i)
        i += 1


def run_probe(pty, meter: Meter, *, keys: Keys | None = KEYS, settings=COMMON_SETTINGS, window: float = WINDOW):
    async def main():
        task = asyncio.ensure_future(meter.run())
        try:
            return await probe(
                pty.link, settings, window, lambda: PushDecoder(keys, transport="auto"), meter.on_event
            )
        finally:
            task.cancel()

    return asyncio.run(main())


@pytest.mark.parametrize("setting", COMMON_SETTINGS, ids=lambda s: s.label.replace(" ", "-"))
def test_probe_finds_the_meter_at_each_setting(pty, setting):
    p1 = setting.bytesize == 7
    meter = Meter(pty, line_of(setting), p1_frames() if p1 else kamstrup_frames())
    outcomes = run_probe(pty, meter)
    assert not meter.baud_mismatches, "the port holds the baud rate the probe announced"
    *before, last = outcomes
    assert last.setting == setting
    assert [o.setting for o in before] == list(COMMON_SETTINGS[: len(before)])
    for o in before:  # every wrong setting heard bytes, and none of them made a valid frame
        assert o.verdict == "garbled", (o.setting.label, o.verdict, o.counts)
        assert o.bytes > 0 and not o.found
    if p1:
        assert last.verdict == "decoded" and last.transport == "p1"
        assert last.telegram.crc_ok and last.telegram.header.startswith("ISk5")
        assert last.push.register("1-0:1.7.0").value == 0.512
        lines, data = report(pty.link, outcomes, country=None, keys_given=False, seconds=WINDOW)
        text = "\n".join(lines)
        assert "P1 text telegram: 4 lines, CRC good" in text and "Iskraemeco" in text
        assert "keys: none needed (P1 text telegrams are plain)" in text
        assert data["found"] == "9600 7E1"
        assert data["run"] == f"han run --port {pty.link} --preset dsmr22 --transport p1"
        assert 'preset = "dsmr22"' in data["config"] and 'transport = "p1"' in data["config"]
        return
    assert last.verdict == "decoded" and last.transport == "hdlc"
    push = last.push
    assert push.meter_id == "31415926" and push.list_id == "Kamstrup_V0001"
    assert push.security.verified and push.security.security_control == 0x30
    lines, data = report(pty.link, outcomes, country="DK", keys_given=True, seconds=WINDOW)
    text = "\n".join(lines)
    assert "manufacturer: Kamstrup" in text and "meter number: 31415926" in text
    assert "security: authenticated+encrypted (security control 0x30)" in text
    assert "the keys given work" in text
    flags = f"--preset {setting.preset}" if setting.preset else f"--baud {setting.baud}"
    assert data["run"] == (
        f"HAN_KEY=<encryption key> HAN_AUTH_KEY=<authentication key> han run --port {pty.link} {flags} --country DK"
    )
    assert f'port = "{pty.link}"' in data["config"]


def test_wrong_settings_give_what_a_uart_would():
    """The model itself: the right setting passes bytes through; wrong ones spoil them as a UART does."""
    frame = next(kamstrup_frames())
    n8, e8 = Line(2400), Line(2400, 8, "E")
    assert received(frame, e8, e8) == frame
    assert received(frame, e8, n8) != frame  # parity bits read as stop bits: framing lost where they are 0
    assert received(frame, n8, Line(9600)) != frame and received(frame, Line(9600), n8) != frame
    text = p1_telegram(1)
    as_8n1 = received(text, Line(9600, 7, "E"), Line(9600))
    assert as_8n1 != text and bytes(b & 0x7F for b in as_8n1) == text  # the parity bit lands in bit 7


@pytest.mark.parametrize(
    "keys, verdict, words",
    [
        (None, "keys", "needed: the encryption key (GUEK) and the authentication key (GAK)"),
        (Keys(ek=EK, ak=OTHER_AK), "keys", "the keys given do not fit: security: GCM tag mismatch"),
        (Keys(ek=EK), "keys", "needed: the encryption key (GUEK) and the authentication key (GAK)"),
        (KEYS, "decoded", "the keys given work"),
    ],
    ids=["no-keys", "wrong-auth-key", "no-auth-key", "right-keys"],
)
def test_probe_says_whether_the_keys_work(pty, keys, verdict, words):
    meter = Meter(pty, Line(2400), kamstrup_frames())
    (outcome,) = run_probe(pty, meter, keys=keys, settings=(LinkSetting(2400),))
    assert outcome.verdict == verdict and outcome.found
    assert words in keys_text(outcome, keys_given=keys is not None)
    lines, data = report(pty.link, [outcome], country=None, keys_given=keys is not None, seconds=WINDOW)
    assert "manufacturer: Kamstrup" in "\n".join(lines)
    assert data["run"].startswith("HAN_KEY=<encryption key> HAN_AUTH_KEY=<authentication key> han run")


def test_plain_meter_needs_no_keys(pty):
    meter = Meter(pty, Line(2400, 8, "E"), kamstrup_frames(keys=None))
    outcomes = run_probe(pty, meter, keys=None)
    assert [o.verdict for o in outcomes] == ["garbled", "decoded"]
    lines, data = report(pty.link, outcomes, country="NO", keys_given=False, seconds=WINDOW)
    assert "keys: none needed (the meter sends plain pushes)" in lines
    assert data["run"] == f"han run --port {pty.link} --preset mbus --country NO"
    assert "HAN_KEY" not in data["config"] and 'preset = "mbus"' in data["config"]


def test_a_dsmr5_meter_at_115200_8n1(pty):
    """The usual P1 port: found at 115200 8N1, decoded, and the run line uses the p1 preset."""
    meter = Meter(pty, Line(115200), p1_frames())
    outcomes = run_probe(pty, meter, keys=None)
    assert [o.verdict for o in outcomes] == ["garbled", "garbled", "garbled", "decoded"]
    found = outcomes[-1]
    assert found.setting == LinkSetting(115200) and found.transport == "p1"
    lines, data = report(pty.link, outcomes, country="NL", keys_given=False, seconds=WINDOW)
    text = "\n".join(lines)
    assert "found: 115200 8N1, P1" in text and "specification: " in text and "P1 text telegram: 4 lines" in text
    assert data["run"] == f"han run --port {pty.link} --preset p1 --transport p1 --country NL"


def test_a_p1_telegram_that_gives_no_push_still_names_the_setting():
    """Intact telegrams the decoder did not turn into pushes (here: it was told HDLC) still decide the setting."""
    listening = Listening(LinkSetting(115200), PushDecoder(None, transport="hdlc"))
    listening.feed(p1_telegram(1) + p1_telegram(2))
    assert listening.decided
    outcome = listening.finish()
    assert outcome.verdict == "p1" and outcome.found and outcome.transport == "p1"
    lines, data = report("/dev/ttyUSB0", [outcome], country=None, keys_given=False, seconds=WINDOW)
    assert data["run"] == "han run --port /dev/ttyUSB0 --preset p1 --transport p1"
    assert any("gave no push" in line for line in lines)


def test_silence_at_every_setting(pty):
    outcomes = run_probe(pty, Meter(pty, Line(2400), iter(())), window=0.2)
    assert [o.verdict for o in outcomes] == ["silent"] * len(COMMON_SETTINGS)
    lines, data = report(pty.link, outcomes, country=None, keys_given=False, seconds=0.2)
    assert data["found"] is None and "no bytes at any setting:" in lines


def test_listening_vouches_only_for_checked_frames():
    """Noise that happens to hold DB 08 ... is no meter: bare APDUs need the same sender twice."""
    frame = next(kamstrup_frames())
    listening = Listening(LinkSetting(2400), PushDecoder(None, transport="auto"))
    spoiled = bytearray(frame)
    spoiled[100] ^= 0x01  # a bad FCS
    listening.feed(bytes(spoiled))
    assert not listening.decided
    assert listening.finish().verdict == "garbled"


# -- the command, as a user runs it -------------------------------------------------------------------
def test_han_probe_command(pty, tmp_path):
    """``han probe`` in a shell: a meter at 2400 8E1 whose keys are in the environment."""
    meter = Meter(pty, Line(2400, 8, "E"), kamstrup_frames())
    env = dict(os.environ, HAN_KEY=EK.hex(), HAN_AUTH_KEY=AK.hex(), PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        HAN + ["probe", "--port", pty.link, "--seconds", "2", "--country", "DK"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    out: list[str] = []
    stop = threading.Event()

    def read() -> None:  # the command's progress says which setting it listens at, before a line ends
        import re

        buf = ""
        while chunk := os.read(proc.stdout.fileno(), 4096):
            buf += chunk.decode()
            out.append(chunk.decode())
            for m in re.finditer(r"(\d+ [5-8][NEO]1) +listening up to", buf):
                meter.on_event("listening", LinkSetting.parse(m.group(1)))
            buf = buf[buf.rfind("listening up to") + 1 :] if "listening up to" in buf else buf

    def write() -> None:
        frames = kamstrup_frames()
        while not stop.is_set():
            pty.write_now(meter.wire(next(frames)))
            time.sleep(INTERVAL)

    threads = [threading.Thread(target=read), threading.Thread(target=write)]
    for t in threads:
        t.start()
    try:
        rc = proc.wait(timeout=60)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    err = proc.stderr.read()
    text = "".join(out)
    assert rc == 0, text + err
    assert "2400 8N1    listening up to 2 s ... " in text and "no valid frame" in text
    assert "2400 8E1    listening up to 2 s ... push decoded (HDLC frames, checksums good)" in text
    assert "found: 2400 8E1, HDLC" in text and "manufacturer: Kamstrup" in text
    assert (
        f"  HAN_KEY=<encryption key> HAN_AUTH_KEY=<authentication key> han run --port {pty.link} --preset mbus"
        " --country DK" in text
    )
    assert EK.hex() not in text.lower() and EK.hex() not in err.lower()


def test_han_probe_missing_port(tmp_path):
    r = subprocess.run(
        HAN + ["probe", "--port", str(tmp_path / "ttyNONE"), "--seconds", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert r.returncode == 1
    assert r.stderr.endswith("ttyNONE: no such port ('han ports' lists the ports)\n")
    assert "Traceback" not in r.stderr


def test_han_probe_bad_setting():
    r = subprocess.run(
        HAN + ["probe", "--port", "/dev/null", "--setting", "fast"], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 2 and "--setting: 'fast' is not a serial setting such as '2400 8E1'" in r.stderr
