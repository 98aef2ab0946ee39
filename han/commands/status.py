"""``han status``: what the daemon is doing, from its status file."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..cli import UsageError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="the daemon's state directory (default $STATE_DIRECTORY or ~/.local/state/han)",
    )
    p.add_argument("--json", action="store_true", help="print the status file as JSON")


def run(args: argparse.Namespace) -> int:
    from ..atomic import read_json
    from ..config import default_state_dir
    from ..daemon import STATUS_FILE, state_dir_in_use
    from ..status import render

    state_dir = os.path.abspath(os.path.expanduser(args.state_dir or default_state_dir()))
    path = os.path.join(state_dir, STATUS_FILE)
    try:
        data = read_json(path)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{path} is unreadable: {exc}") from None
    if data is None:
        raise UsageError(f"no status in {state_dir}: han run has not run with this state directory (--state-dir?)")
    pid = state_dir_in_use(state_dir)
    if args.json:
        data["running"] = bool(pid)
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(data, pid))
    return 0 if pid else 1
