"""``han demo``: the whole logger on a simulated meter, in one process, with no hardware.

A simulated Kamstrup meter writes encrypted pushes into a pseudo terminal;
``han run``'s daemon reads that pty like a serial port, decrypts, checks the
counters, and stores every push in SQLite while printing the live values.
It stops after ``--count`` pushes or on Ctrl-C and says how to look at the data.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from dataclasses import replace

from ..cli import UsageError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--count", "-n", type=int, default=10, metavar="N", help="stop after N pushes (default 10; 0 = until Ctrl-C)"
    )
    p.add_argument(
        "--interval", type=float, default=1.0, metavar="S", help="seconds between pushes (default 1; a real meter: 10)"
    )
    p.add_argument(
        "--state-dir", default="han-demo", metavar="DIR", help="where the database and state go (default ./han-demo)"
    )
    p.add_argument("--seed", type=int, help="random seed for repeatable values")
    p.add_argument(
        "--http", default="127.0.0.1:8080", metavar="HOST:PORT",
        help="serve the live page there (default 127.0.0.1:8080, another free port when that one is taken;"
        " 'off': no page; a non-loopback address needs HAN_HTTP_TOKEN)",
    )


async def _demo(cfg, sim, master: int, interval: float, count: int) -> int:
    from datetime import timedelta

    from ..daemon import Daemon
    from ..simulator import local_now

    daemon = Daemon(cfg)

    async def meter() -> None:
        while daemon.source is None:
            await asyncio.sleep(0.02)
        if daemon.web is not None:
            print(f"han demo: the live page is at {daemon.web.url}"
                  + ("" if count == 0 else f" while the demo runs ({_prog()} demo -n 0 keeps it running)"),
                  file=sys.stderr, flush=True)
        start_utc = sim.utc(local_now(sim.timezone))  # the meter's clock advances in UTC
        n = 0
        while count == 0 or n < count:
            source = daemon.source
            if source is None or not source.connected.is_set():
                await asyncio.sleep(0.05)  # write only while the port is open (opening it discards input)
                continue
            os.write(master, sim.frame(start_utc + timedelta(seconds=interval * n)))
            n += 1
            await asyncio.sleep(interval)

    writer = asyncio.ensure_future(meter())
    try:
        return await daemon.run()
    finally:
        writer.cancel()


def _http(text: str):
    """The page's address and token (HAN_HTTP_TOKEN), or (None, None) for 'off'."""
    if text.lower() in ("off", "no", "none"):
        return None, None
    from ..web.access import TokenError, check_listen, parse_listen, token_from

    try:
        where = parse_listen(text)
        token = token_from(None, os.environ)
        check_listen(where, token)
    except (ValueError, TokenError) as exc:
        raise UsageError(f"--http: {exc}") from None
    return where, token


def _prog() -> str:
    """How the user started han (``.venv/bin/han`` in the quick start), for the hints."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "han" and os.sep in argv0:
        return shlex.quote(os.path.relpath(argv0) if not os.path.isabs(argv0) else argv0)
    return "han"


def run(args: argparse.Namespace) -> int:
    import logging
    import secrets
    import tty

    from decoders.ciphering.security import Keys

    from .. import logs
    from ..config import ConfigError, RunConfig, SerialSettings, SinkSpec
    from ..keyring import KeyRing
    from ..simulator import KamstrupSimulator

    if args.count < 0 or args.interval < 0:
        raise UsageError("--count and --interval must not be negative")
    http, token = _http(args.http)
    state_dir = os.path.abspath(args.state_dir)
    db = os.path.join(state_dir, "han.db")
    keys = Keys(ek=secrets.token_bytes(16), ak=secrets.token_bytes(16))  # a new simulated meter each run
    sim = KamstrupSimulator(keys, seed=args.seed, counter_start=secrets.randbelow(1 << 30) + 1)
    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    cfg = RunConfig(
        state_dir=state_dir,
        serial=SerialSettings(port=port),
        keyring=KeyRing(keys),
        sinks=(SinkSpec(f"sqlite:{db}"), SinkSpec("console:")),
        count=args.count or None,
        push_interval=args.interval or None,
        idle_flush=0.5,
        status_interval=1.0,
        http=http,
        http_token=token,
        http_capacity="no",  # the page shows a capacity-tariff figure: Norway's rule (docs/tariffs.md)
    )
    print(
        f"han demo: a simulated Kamstrup meter ({sim.system_title.hex().upper()}) pushes every {args.interval:g} s"
        f" into {port}; han reads it and stores the pushes in {db}"
        + (f"; stopping after {args.count}" if args.count else "; Ctrl-C stops")
        + "\n",
        file=sys.stderr,
    )
    handler = logs.setup(logging.WARNING)
    try:
        try:
            code = asyncio.run(_demo(cfg, sim, master, args.interval, args.count))
        except ConfigError as exc:
            if http is None or args.http != "127.0.0.1:8080" or "cannot listen" not in str(exc):
                raise
            cfg = replace(cfg, http=http._replace(port=0))  # the default port is taken: any free one
            code = asyncio.run(_demo(cfg, sim, master, args.interval, args.count))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        code = 0
    finally:
        logs.teardown(handler)
        os.close(master)
        os.close(slave)
    q = shlex.quote(db)
    print(
        f"\nThe pushes are in {db}. Look at them with:\n"
        f"  sqlite3 {q} \"SELECT time_utc, value, unit FROM readings WHERE obis = '1.1.1.7.0.255' ORDER BY time_utc\"\n"
        f'  sqlite3 {q} "SELECT name, value, unit FROM latest"\n'
        f"  {_prog()} status --state-dir {shlex.quote(state_dir)}",
        file=sys.stderr,
    )
    return code
