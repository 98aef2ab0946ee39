"""``han state``: look after the daemon's state directory (while the daemon is stopped)."""

from __future__ import annotations

import argparse
import os
import sys

from ..cli import UsageError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="the daemon's state directory (default $STATE_DIRECTORY or ~/.local/state/han)",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser(
        "reset-counter",
        help="forget the last invocation counter of a meter (after the meter was reset or re-keyed)",
        description="Forget the last accepted invocation counter of one meter (every key), or of all meters,"
        " so that its next frame is accepted whatever its counter.  Stop han run first.",
    )
    r.add_argument("--system-title", metavar="HEX", help="the meter's system title (default: every meter)")
    r.add_argument("--state-dir", metavar="DIR", dest="state_dir_sub", help=argparse.SUPPRESS)
    sub.add_parser("counters", help="list the stored invocation counters")


def run(args: argparse.Namespace) -> int:
    from ..config import default_state_dir
    from ..daemon import COUNTERS_FILE, JOURNAL_FILE, state_dir_in_use
    from ..journal import Journal, JournalError
    from ..keyargs import system_title
    from ..replay import CounterStore

    state_dir = getattr(args, "state_dir_sub", None) or args.state_dir or default_state_dir()
    state_dir = os.path.abspath(os.path.expanduser(state_dir))
    if not os.path.isdir(state_dir):
        raise UsageError(f"no state directory {state_dir} (--state-dir?)")
    try:
        store = CounterStore(os.path.join(state_dir, COUNTERS_FILE)).load()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    journal_path = os.path.join(state_dir, JOURNAL_FILE)
    if args.action == "counters":
        if os.path.exists(journal_path) and not state_dir_in_use(state_dir):
            store.reconcile(Journal(journal_path))
        for (st, kid), ic in sorted(store.counters.items()):
            print(f"{st.hex().upper()}  key {kid}  last accepted counter {ic}")
        if not store.counters:
            print("no counters stored")
        return 0
    pid = state_dir_in_use(state_dir)
    if pid:
        raise UsageError(f"han run (pid {pid}) is using {state_dir}: stop it first (systemctl stop han)")
    st = system_title(args.system_title)
    try:
        journal = Journal(journal_path)
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    try:
        store.reconcile(journal)
        if st is not None and not any(title == st for title, _ in store.counters):
            known = sorted({title.hex().upper() for title, _ in store.counters})
            print(
                f"han state: no counter stored for meter {st.hex().upper()} in {state_dir} (nothing reset); "
                + (f"known: {', '.join(known)}" if known else "no meter has a stored counter"),
                file=sys.stderr,
            )
            return 1
        n = store.reset(st)
        # the file now covers the whole journal, so the reset counters are not taken back from it
        store.save(journal.id, journal.last_seq)
    finally:
        journal.close()
    who = f"meter {st.hex().upper()}" if st else "every meter"
    print(f"reset {n} counter(s) of {who}; the next frame is accepted whatever its counter", file=sys.stderr)
    return 0
