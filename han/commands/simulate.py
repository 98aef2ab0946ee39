"""``han simulate``: a simulated meter writing to a port, a pty, a file or stdout.

The Kamstrup meter (the default) sends encrypted DLMS pushes in HDLC frames; ``--meter dsmr5``,
``fluvius`` or ``sweden`` sends P1 text telegrams (:mod:`han.p1sim`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ..cli import UsageError

EPILOG = """examples:
  han simulate --pty --link /tmp/ttyHAN --interval 10      a pseudo terminal han run can read: han run --port /tmp/ttyHAN
  han simulate --out /dev/ttyUSB1 --baud 2400              a real serial port (a null-modem cable to the logger)
  han simulate --out capture.bin --count 1000 --interval 0  a capture for han run --replay / han decode
  han simulate --count 3 --interval 0                       hex frames on stdout
  han simulate --meter dsmr5 --pty --link /tmp/ttyP1        a Dutch P1 port: han run --port /tmp/ttyP1 --preset p1
  han simulate --meter fluvius --count 2 --interval 0       two Belgian telegrams as text on stdout
Without --key/--auth-key (or HAN_KEY/HAN_AUTH_KEY) new keys are generated and printed once to stderr.
P1 meters (dsmr5, fluvius, sweden) send plain text telegrams: no keys."""

#: --meter: the Kamstrup DLMS meter, or a P1 meter of han.p1sim.METERS
METERS = ("kamstrup", "dsmr5", "fluvius", "sweden")


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    where = p.add_argument_group("output")
    where.add_argument(
        "--out",
        "-o",
        metavar="TARGET",
        default="-",
        help="serial device, pyserial URL, file (.hex = hex text), or - (default)",
    )
    where.add_argument(
        "--pty", action="store_true", help="create a pseudo terminal and write to it (its name goes to stderr)"
    )
    where.add_argument("--link", metavar="PATH", help="with --pty: a symlink to the pty's name")
    where.add_argument(
        "--format",
        choices=("auto", "hex", "binary"),
        default="auto",
        help="hex text or binary (auto: hex for .hex files, and for stdout unless P1 text)",
    )
    where.add_argument(
        "--baud", type=int, help="baud rate of a serial device (default: the meter's, 2400 or P1's 115200)"
    )
    where.add_argument(
        "--parity", choices=("N", "E", "O"), type=str.upper, default="N", help="parity of a serial device (default N)"
    )
    what = p.add_argument_group("pushes")
    what.add_argument(
        "--meter",
        choices=METERS,
        default="kamstrup",
        help="kamstrup: DLMS pushes in HDLC (default); dsmr5, fluvius, sweden: P1 text telegrams",
    )
    what.add_argument("--count", "-n", type=int, metavar="N", help="stop after N pushes (default: run until Ctrl-C)")
    what.add_argument(
        "--interval",
        type=float,
        metavar="S",
        help="seconds between pushes; 0 = as fast as possible (default: the meter's: 10, DSMR 5 and Fluvius 1)",
    )
    what.add_argument(
        "--step",
        type=float,
        metavar="S",
        help="meter-time seconds between pushes (default: --interval, or 10 when it is 0)",
    )
    what.add_argument("--start", metavar="ISO", help="meter time of the first push, local (default: now)")
    what.add_argument("--key", metavar="HEX", help="encryption key (default HAN_KEY, else generated)")
    what.add_argument("--auth-key", metavar="HEX", help="authentication key (default HAN_AUTH_KEY, else generated)")
    what.add_argument("--plain", action="store_true", help="send unencrypted pushes")
    what.add_argument(
        "--encryption-only", action="store_true", help="encrypt without authentication (security control 0x20)"
    )
    what.add_argument(
        "--meter-number",
        type=int,
        metavar="N",
        help="meter number (default: random); the system title is KAME + its 4 bytes (P1: in the equipment id)",
    )
    what.add_argument(
        "--counter-start",
        type=int,
        metavar="N",
        help="first invocation counter (default: seconds since 2020, so it grows across runs)",
    )
    what.add_argument("--seed", type=int, help="random seed for repeatable values")
    bad = p.add_argument_group("line faults (probability per push)")
    bad.add_argument("--noise", type=float, default=0.0, metavar="P", help="random bytes before a frame")
    bad.add_argument("--torn", type=float, default=0.0, metavar="P", help="a frame cut short")
    bad.add_argument("--corrupt", type=float, default=0.0, metavar="P", help="a frame with one bit flipped")


def simulator_keys(args: argparse.Namespace):
    """(Keys or None for plain, generated?)"""
    import secrets

    from decoders.ciphering.security import Keys

    from ..keysource import load_keys

    if args.plain:
        return None, False
    given = load_keys({"--key": args.key, "--auth-key": args.auth_key}).default
    generated = given.ek is None
    ek = given.ek or secrets.token_bytes(16)
    if args.encryption_only:
        ak = None
    elif given.ak:
        ak = given.ak
    elif generated:
        ak = secrets.token_bytes(16)
    else:
        raise UsageError("give --auth-key too (or --encryption-only)")
    return Keys(ek=ek, ak=ak), generated


def make_simulator(args: argparse.Namespace, keys):
    from ..simulator import KamstrupSimulator

    counter = args.counter_start if args.counter_start is not None else int(time.time()) - 1_577_836_800
    return KamstrupSimulator(
        keys,
        meter_number=args.meter_number,
        counter_start=max(counter, 1),
        seed=args.seed,
        security_control=0x20 if args.encryption_only else 0x30,
    )


def _drain(slave: int, guard: float = 2.0) -> None:
    """Wait (at most ``guard`` seconds) until a reader has taken what the pty holds: closing the master
    hangs the line up, and Linux then throws away the slave's unread input (the last push would be lost).
    The kernel moves written bytes to the slave's queue a moment later, so the queue must stay empty
    for a while, not just once."""
    import fcntl
    import struct
    import termios

    deadline = time.monotonic() + guard
    empty = 0
    while time.monotonic() < deadline and empty < 5:
        time.sleep(0.02)
        try:
            unread = struct.unpack("i", fcntl.ioctl(slave, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return
        empty = 0 if unread else empty + 1


def _opener(args: argparse.Namespace, *, text: bool = False):
    """(write function, close function, hex?) for the chosen output (``text``: P1 telegrams, text already)."""
    target = args.out
    hexfmt = args.format == "hex" or (
        args.format == "auto" and (target.endswith(".hex") or (target == "-" and not text))
    )
    if args.pty:
        import tty

        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        if args.link:
            tmp = args.link + ".tmp"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(name, tmp)
            os.replace(tmp, args.link)
        print(f"han simulate: writing to pty {name}" + (f" (link {args.link})" if args.link else ""), file=sys.stderr)
        hexfmt = args.format == "hex"

        def write(data: bytes) -> None:
            os.write(master, data)

        def close() -> None:
            _drain(slave)
            if args.link and os.path.islink(args.link):
                os.unlink(args.link)
            os.close(master)
            os.close(slave)

        return write, close, hexfmt
    if target == "-":
        out = sys.stdout.buffer

        def write(data: bytes) -> None:
            out.write(data)
            out.flush()

        return write, lambda: None, hexfmt
    from ..sources import is_device

    if "://" in target or is_device(target):
        import serial

        try:
            port = serial.serial_for_url(target, baudrate=args.baud or 2400, parity=args.parity)
        except (serial.SerialException, ValueError) as exc:
            raise UsageError(f"cannot open {target}: {exc}") from None
        return port.write, port.close, False
    try:
        fh = open(target, "wb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None

    def write_file(data: bytes) -> None:
        fh.write(data)
        fh.flush()

    return write_file, fh.close, hexfmt


def print_keys(keys) -> None:
    ak = f" HAN_AUTH_KEY={keys.ak.hex().upper()}" if keys.ak else ""
    print(
        "han simulate: generated keys for this simulated meter (shown once; give them to han run):\n"
        f"  HAN_KEY={keys.ek.hex().upper()}{ak}",
        file=sys.stderr,
    )


def _p1_simulator(args: argparse.Namespace):
    """The P1 meter of ``--meter``; the DLMS key options do not apply to its plain telegrams."""
    from ..p1sim import METERS as P1

    given = [flag for flag, v in (("--key", args.key), ("--auth-key", args.auth_key),
                                  ("--encryption-only", args.encryption_only),
                                  ("--counter-start", args.counter_start)) if v]
    if given:
        raise UsageError(f"{given[0]} does not apply to --meter {args.meter}: P1 telegrams are plain text")
    from ..p1sim import P1Simulator

    return P1Simulator(P1[args.meter], meter_number=args.meter_number, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    from datetime import datetime, timedelta

    from ..simulator import Faults, local_now

    if (args.interval is not None and args.interval < 0) or (args.count is not None and args.count < 0):
        raise UsageError("--interval and --count must not be negative")
    p1 = args.meter != "kamstrup"
    if p1:
        keys, generated = None, False
        sim = _p1_simulator(args)
        if args.interval is None:
            args.interval = sim.meter.interval
        if args.baud is None:
            args.baud = sim.meter.baud
    else:
        keys, generated = simulator_keys(args)
        sim = make_simulator(args, keys)
        if args.interval is None:
            args.interval = 10.0
    step = args.step or args.interval or (sim.meter.interval if p1 else 10.0)
    try:
        start = datetime.fromisoformat(args.start) if args.start else local_now(sim.timezone)
    except ValueError:
        raise UsageError(f"--start {args.start!r} is not an ISO date-time (2026-11-21T12:00:00)") from None
    start_utc = sim.utc(start)  # the meter's clock advances in UTC
    faults = Faults(noise=args.noise, torn=args.torn, corrupt=args.corrupt, seed=args.seed)
    write, close, hexfmt = _opener(args, text=p1)
    if generated:
        print_keys(keys)
    if p1:
        m = sim.meter
        ident = bytes.fromhex(sim.equipment_id).decode()
        ident = f"; equipment id {ident}" if any("{equipment_id}" in line for line in m.lines) else ""
        print(f"han simulate: {m.description}{ident}; {m.serial} (han run --preset p1)", file=sys.stderr)
    else:
        print(f"han simulate: meter {sim.meter_number}, system title {sim.system_title.hex().upper()}",
              file=sys.stderr)
    what = "telegram(s)" if p1 else "push(es)"
    n = 0
    began = time.monotonic()
    try:
        while args.count is None or n < args.count:
            frame = sim.frame(start_utc + timedelta(seconds=step * n))
            data, _ = faults.apply(frame)
            write((data.hex().upper() + "\n").encode() if hexfmt else data)
            n += 1
            if args.interval and (args.count is None or n < args.count):
                delay = began + n * args.interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
    except KeyboardInterrupt:
        pass
    finally:
        close()
    print(f"han simulate: {n} {what} written", file=sys.stderr)
    return 0
