"""``han bridge``: forward raw frames from a serial port to an MQTT broker (an edge bridge at the meter).

See :mod:`han.bridge` for what goes where, and the README's "Bridge at the meter".
"""

from __future__ import annotations

import argparse

from ..settings import BY_NAME, PRESETS, preset_text

EPILOG = """examples:
  han bridge --port /dev/ttyUSB0 --to mqtt://broker.lan:1883/han/raw/house
  han bridge --port /dev/ttyAMA0 --preset mbus --to 'mqtts://bridge@broker:8883/han/raw/flat-12?ca=/etc/han/ca.pem'
  han bridge --port /dev/ttyUSB0 --to mqtt://broker:1883/han/raw/house --format hex   (amsreader's hex text)
the password: in the URL, or HAN_MQTT_PASSWORD, or the systemd credential han-mqtt-password (never logged).
TLS: mqtts://...?ca=FILE[&cert=FILE&key=FILE] (a client certificate and its key).
The spool (default STATE_DIR/bridge-<name>) holds frames while the broker is away: append-only files,
bounded by --spool-max (oldest dropped and counted), fsync'ed every --sync-every seconds while frames wait.
presets: """


def configure(p: argparse.ArgumentParser) -> None:
    from .run import _add

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG + ", ".join(
        f"{name} {preset_text(name)}" + (" (default)" if name == BY_NAME["preset"].default else "") for name in PRESETS
    )
    src = p.add_argument_group("input")
    for name in ("port", "preset", "baud", "parity", "bytesize", "stopbits"):
        _add(src, BY_NAME[name])
    src.add_argument("--transport", choices=("auto", "hdlc", "mbus", "raw"), default="auto",
                     help="link layer that frames are cut by (default auto: recognised from the bytes)")
    out = p.add_argument_group("output")
    out.add_argument("--to", required=True, metavar="URL",
                     help="mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC, e.g. mqtt://broker:1883/han/raw/house")
    out.add_argument("--format", choices=("binary", "hex"), help="payload: the frame's bytes (default) or hex text")
    out.add_argument("--spool", metavar="DIR", help="spool directory (default STATE_DIR/bridge-<last topic level>)")
    out.add_argument("--spool-max", metavar="MIB", type=float, default=16.0,
                     help="the spool's bound in MiB (default 16); the oldest frames are dropped beyond it")
    out.add_argument("--sync-every", metavar="S", type=float, default=5.0,
                     help="fsync waiting frames at most every S seconds (0: every frame; default 5)")
    _add(out, BY_NAME["state_dir"])
    out.add_argument("--status-interval", metavar="S", type=float, default=300.0,
                     help="seconds between status lines in the log (default 300; 0: none)")
    out.add_argument("--quiet", "-q", action="store_true", help="log warnings and errors only")


def build(args: argparse.Namespace):
    """The bridge the command line describes; ConfigError (one line) when it does not add up."""
    import os
    import re

    from ..bridge import Bridge, parse_target
    from ..config import SerialSettings, default_state_dir, ensure_state_dir
    from ..settings import ConfigError
    from ..spool import Spool, SpoolError

    values = {}
    for name in ("port", "preset", "baud", "parity", "bytesize", "stopbits"):
        v = getattr(args, name)
        if v is not None:
            values[name] = BY_NAME[name].check(v, from_flag=True)
    if not values.get("port"):
        raise ConfigError("give the meter's serial port, e.g. --port /dev/ttyUSB0")
    baud, parity, bytesize, stopbits = PRESETS[values.get("preset", BY_NAME["preset"].default)]
    serial = SerialSettings(
        port=values["port"],
        baudrate=values.get("baud", baud),
        parity=values.get("parity", parity),
        bytesize=values.get("bytesize", bytesize),
        stopbits=float(values.get("stopbits", stopbits)),
    )
    target = parse_target(args.to, format=args.format)
    try:
        import aiomqtt  # noqa: F401 - the mqtt extra
    except ImportError:
        from sinks.base import install_hint

        raise ConfigError(f"han bridge needs aiomqtt, which is not installed: {install_hint('mqtt')}") from None
    if args.spool_max <= 0 or args.sync_every < 0:
        raise ConfigError("--spool-max must be positive and --sync-every not negative")
    spool_dir = args.spool
    if not spool_dir:
        state = ensure_state_dir(args.state_dir or default_state_dir())
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", target.topic.rsplit("/", 1)[-1]) or "raw"
        spool_dir = os.path.join(state, f"bridge-{name}")
    try:
        spool = Spool(spool_dir, max_bytes=int(args.spool_max * 1024 * 1024), sync_every=args.sync_every)
    except SpoolError as exc:
        raise ConfigError(str(exc)) from None
    return Bridge(
        serial, target, spool, transport=args.transport, status_interval=args.status_interval
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from .. import logs
    from ..bridge import run_bridge

    bridge = build(args)
    handler = logs.setup(logging.WARNING if args.quiet else logging.INFO)
    try:
        return run_bridge(bridge)
    finally:
        logs.teardown(handler)
