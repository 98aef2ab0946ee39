"""``han run``: log every push from a serial port (or a replayed capture) to the sinks."""

from __future__ import annotations

import argparse

from ..cli import UsageError

EPILOG = """examples:
  han run --port /dev/ttyUSB0                       Kamstrup CCC port, 2400 8N1, SQLite in the state directory
  han run --port /dev/ttyUSB0 --preset mbus         M-Bus HAN adapter, 2400 8E1
  han run --port socket://192.168.1.20:3001         a ser2net / TCP HAN adapter
  han run --config /etc/han/han.toml                everything from a file (see samples/han.toml)
  han run --replay capture.bin --sink jsonl:-       a capture through the same pipeline, to stdout
keys: HAN_KEY / HAN_AUTH_KEY, systemd credentials han-key / han-auth-key / han-keys,
or [keys] in the config file (mode 600); --key on the command line is visible in ps.
presets: kamstrup-ccc 2400 8N1 (default), mbus 2400 8E1, p1 115200 8N1"""


def configure(p: argparse.ArgumentParser) -> None:
    from decoders.stream import TRANSPORTS

    from ..config import PRESETS

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("--config", "-c", metavar="FILE", help="TOML configuration (samples/han.toml)")
    src = p.add_argument_group("input")
    src.add_argument(
        "--port", metavar="DEVICE", help="serial device (/dev/ttyUSB0) or pyserial URL (socket://host:port)"
    )
    src.add_argument("--preset", choices=tuple(PRESETS), help="serial settings preset (default kamstrup-ccc: 2400 8N1)")
    src.add_argument("--baud", type=int, metavar="N", help="baud rate")
    src.add_argument("--parity", choices=("N", "E", "O", "M", "S"), type=str.upper, help="parity")
    src.add_argument("--bytesize", type=int, choices=(5, 6, 7, 8), help="data bits")
    src.add_argument("--stopbits", type=float, choices=(1, 1.5, 2), help="stop bits")
    src.add_argument(
        "--meter",
        metavar="NAME",
        help="the meter's name when its pushes never name it (no system title, no meter number; default unknown)",
    )
    src.add_argument("--replay", metavar="FILE", help="feed a capture (hex or binary; - for stdin) instead of a port")
    src.add_argument(
        "--pace", action="store_true", default=None, help="replay at the meter's own pace (its time stamps)"
    )
    dec = p.add_argument_group("decoding")
    dec.add_argument("--key", metavar="HEX", help="encryption key (GUEK, Kamstrup 'gpk60'); better: HAN_KEY")
    dec.add_argument("--auth-key", metavar="HEX", help="authentication key (GAK, 'gpk61'); better: HAN_AUTH_KEY")
    dec.add_argument("--transport", choices=TRANSPORTS, help="link layer (default hdlc)")
    dec.add_argument("--system-title", metavar="HEX", help="sender system title for APDUs that carry none")
    dec.add_argument("--country", metavar="CC", help="the meter's country, for country profiles")
    dec.add_argument("--profile", metavar="NAME", help="force a meter profile")
    dec.add_argument(
        "--profiles", metavar="FILE", action="append", help="load meter profiles from a TOML file (repeatable)"
    )
    dec.add_argument("--timezone", metavar="ZONE", help="the meter's time zone when its profile has none (Europe/Oslo)")
    dec.add_argument("--multiplier", action="append", metavar="OBIS=FACTOR", help="scale a register (repeatable)")
    dec.add_argument("--ct-ratio", metavar="RATIO", help="current-transformer ratio, e.g. 200/5")
    dec.add_argument(
        "--unverified",
        action="store_true",
        default=None,
        help="decrypt without the authentication key (values marked unverified)",
    )
    dec.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        default=None,
        help="accept frames without authentication although an authentication key is set",
    )
    out = p.add_argument_group("output and state")
    out.add_argument(
        "--sink",
        action="append",
        metavar="URL",
        help="sqlite:PATH, jsonl:PATH, csv:PATH, jsonl:-, console: (repeatable; default sqlite:STATE_DIR/han.db)",
    )
    out.add_argument(
        "--state-dir",
        metavar="DIR",
        help="journal, counters, checkpoints, status (default $STATE_DIRECTORY or ~/.local/state/han)",
    )
    out.add_argument(
        "--push-interval", type=float, metavar="S", help="the meter's push interval for the watchdog (default: learned)"
    )
    out.add_argument(
        "--status-interval", type=float, metavar="S", help="seconds between status file updates (default 5)"
    )
    out.add_argument("--count", type=int, metavar="N", help="stop after N accepted pushes")
    out.add_argument("--quiet", "-q", action="store_true", help="log warnings and errors only")


def run(args: argparse.Namespace) -> int:
    import logging

    from .. import logs
    from ..config import ConfigError, build_run_config
    from ..daemon import run_daemon

    try:
        cfg = build_run_config(args)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    handler = logs.setup(logging.WARNING if args.quiet else logging.INFO)
    try:
        return run_daemon(cfg)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    finally:
        logs.teardown(handler)
