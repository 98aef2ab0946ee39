"""``han run``: log every push from a serial port (or a replayed capture) to the sinks.

The options of the settings are made from the settings table (han.settings: names, types,
ranges, defaults, help); :func:`overrides` turns what was given into plain values for
han.config, which merges them over the file.
"""

from __future__ import annotations

import argparse

from ..settings import BY_NAME, PRESETS, Setting, help_text, preset_text

EPILOG = """examples:
  han run --port /dev/ttyUSB0                       Kamstrup CCC port, 2400 8N1, SQLite in the state directory
  han run --port /dev/ttyUSB0 --preset mbus         M-Bus HAN adapter, 2400 8E1
  han run --port socket://192.168.1.20:3001         a ser2net / TCP HAN adapter
  han run --config /etc/han/han.toml                everything from a file (see samples/han.toml)
  han run --replay capture.bin --sink jsonl:-       a capture through the same pipeline, to stdout
  han run --source 'mqtt://broker/han/raw/#?share=headend' --keys meters.toml --sink jsonl:pushes.jsonl
                                                    a head-end worker: raw frames from edge bridges (docs/headend.md)
  han run --port /dev/ttyUSB0 --http 8080           the live page at http://127.0.0.1:8080/
keys: HAN_KEY / HAN_AUTH_KEY, systemd credentials han-key / han-auth-key / han-keys,
or [keys] in the config file (mode 600); --key on the command line is visible in ps.
presets: """

#: the option groups of --help and the settings (by name) in each, in order
GROUPS = {
    "input": ("port", "preset", "baud", "parity", "bytesize", "stopbits", "meter"),
    "decoding": (
        "transport", "system_title", "country", "profile", "profiles", "timezone", "multipliers", "ct_ratio",
        "unverified", "allow_unauthenticated",
    ),
    "output and state": ("state_dir", "push_interval", "status_interval", "keep_raw_days"),
    "live page": ("listen", "capacity"),
}  # fmt: skip


def _add(group: argparse._ArgumentGroup, setting: Setting) -> None:
    assert setting.flag
    kw: dict = {"help": help_text(setting), "dest": setting.name}
    if setting.kind == "bool":
        kw.update(action="store_true", default=None)
    else:
        kw["metavar"] = setting.metavar
        if setting.kind in ("texts", "table"):
            kw["action"] = "append"
        elif setting.kind == "int":
            kw["type"] = int
        elif setting.kind == "number":
            kw["type"] = float
        elif setting.name == "parity":
            kw["type"] = str.upper
        if setting.allowed():
            kw["choices"] = setting.allowed()
            kw.pop("metavar")
    group.add_argument(setting.flag, **kw)


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG + ", ".join(
        f"{name} {preset_text(name)}" + (" (default)" if name == BY_NAME["preset"].default else "") for name in PRESETS
    )
    p.add_argument("--config", "-c", metavar="FILE", help="TOML configuration (samples/han.toml)")
    groups = {title: p.add_argument_group(title) for title in GROUPS}
    for title, names in GROUPS.items():
        for name in names:
            _add(groups[title], BY_NAME[name])
    src = groups["input"]
    src.add_argument("--replay", metavar="FILE", help="feed a capture (hex or binary; - for stdin) instead of a port")
    src.add_argument("--pace", action="store_true", help="replay at the meter's own pace (its time stamps)")
    src.add_argument(
        "--source",
        action="append",
        metavar="URL",
        help="read here (repeatable): a serial device, socket://HOST:PORT (ser2net),"
        " mqtt://[USER@]HOST[:PORT]/TOPIC_FILTER?share=GROUP&format=auto|binary|hex|json, mqtts://...",
    )
    dec = groups["decoding"]
    dec.add_argument("--key", metavar="HEX", help="encryption key (GUEK, Kamstrup 'gpk60'); better: HAN_KEY")
    dec.add_argument("--auth-key", metavar="HEX", help="authentication key (GAK, 'gpk61'); better: HAN_AUTH_KEY")
    dec.add_argument(
        "--keys",
        metavar="FILE",
        help="key file (mode 600): [meters.<SYSTEM_TITLE>] key/auth_key, [topics.\"<topic>\"] meter/system_title",
    )
    out = groups["output and state"]
    out.add_argument(
        "--sink",
        action="append",
        metavar="URL",
        help="sqlite:PATH, jsonl:PATH, csv:PATH, jsonl:-, console: (repeatable; default sqlite:STATE_DIR/han.db)",
    )
    out.add_argument("--count", type=int, metavar="N", help="stop after N accepted pushes")
    out.add_argument("--quiet", "-q", action="store_true", help="log warnings and errors only")
    groups["live page"].add_argument(
        "--http-token", metavar="TOKEN", help="the token the live page asks for (better: HAN_HTTP_TOKEN or the"
        " systemd credential han-http-token; this one is visible in ps)")


def overrides(args: argparse.Namespace):
    """What the command line gives, as plain values for :func:`han.config.build_run_config`."""
    from ..config import Overrides

    names = [name for group in GROUPS.values() for name in group]
    return Overrides(
        config=args.config,
        settings={name: getattr(args, name) for name in names if getattr(args, name) is not None},
        keys={"--key": args.key, "--auth-key": args.auth_key},
        sinks=tuple(args.sink or ()),
        replay=args.replay,
        pace=bool(args.pace),
        count=args.count,
        sources=tuple(args.source or ()),
        keys_file=args.keys,
        http_token=args.http_token,
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from .. import logs
    from ..config import build_run_config
    from ..daemon import run_daemon

    cfg = build_run_config(overrides(args))  # a ConfigError is one line, exit status 2 (han.cli)
    handler = logs.setup(logging.WARNING if args.quiet else logging.INFO)
    try:
        return run_daemon(cfg)
    finally:
        logs.teardown(handler)
