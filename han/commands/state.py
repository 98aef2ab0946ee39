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
    u = sub.add_parser(
        "replay-unknown",
        help="decode the kept frames of meters that had no keys, now that their keys were added",
        description="Decode the frames han run kept in <state-dir>/unknown because their meters had no keys."
        " Those whose keys are now given go into the journal once (the next han run delivers them to the"
        " sinks) and are removed; those still without keys stay.  Stop han run first.",
    )
    u.add_argument("--keys", metavar="FILE", help="key file (mode 600) with [meters.<SYSTEM_TITLE>] tables")
    u.add_argument("--config", "-c", metavar="FILE", help="take the keys from this han.toml ([keys]) too")
    u.add_argument("--state-dir", metavar="DIR", dest="state_dir_sub", help=argparse.SUPPRESS)


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
    if args.action == "replay-unknown":
        return replay_unknown(state_dir, store, journal_path, args)
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


def replay_unknown(state_dir: str, store, journal_path: str, args: argparse.Namespace) -> int:
    """Kept frames of meters without keys into the journal, exactly once (see han.unknown)."""
    from ..config import read_config
    from ..daemon import lock_state_dir
    from ..ingest import Ingest
    from ..journal import Journal, JournalError
    from ..keysource import load_keys
    from ..pipeline import PushDecoder
    from ..settings import ConfigError
    from ..unknown import UnknownStore

    try:
        data = read_config(args.config) if args.config else {}
        keyring = load_keys(
            {}, config_keys=data.get("keys", {}), config_path=args.config, files=(args.keys,) if args.keys else ()
        )
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    unknown = UnknownStore(state_dir)
    segments = unknown.segments()
    if not segments:
        print(f"han state: no frames of unknown meters kept in {state_dir}", file=sys.stderr)
        return 0
    try:
        lock = lock_state_dir(state_dir)  # han run must not start meanwhile
    except ConfigError as exc:
        raise UsageError(f"{exc}: stop it first (systemctl stop han)") from None
    try:
        try:
            journal = Journal(journal_path)
        except JournalError as exc:
            raise UsageError(str(exc)) from None
        try:
            return _replay(unknown, segments, keyring, store, journal)
        finally:
            journal.close()
    finally:
        os.close(lock)


def _replay(unknown, segments, keyring, store, journal) -> int:
    from ..burstlog import BurstLog
    from ..ingest import Ingest
    from ..pipeline import PushDecoder

    store.reconcile(journal)
    when = [0.0]

    def decoder(_name=None):
        return PushDecoder(keyring, transport="raw")

    ingest = Ingest(decoder(), keyring, store, journal, clock=lambda: when[0], decoders=decoder,
                    burst=BurstLog(lambda m: None))  # fmt: skip
    remaining = []
    taken = replayed = failed = 0
    meters: set[str] = set()
    for path in segments:
        for frame in unknown.frames(path):
            when[0] = frame.received
            before = dict(ingest.outcomes.counts)
            pushes = ingest.feed(frame.apdu, frame.stream) + ingest.flush(frame.stream)
            after = ingest.outcomes.counts
            if after["no_key"] > before.get("no_key", 0):
                remaining.append(frame)
            elif pushes:
                taken += len(pushes)
                meters.add(frame.system_title)
            elif after["replayed"] > before.get("replayed", 0):
                replayed += 1  # in the journal already (an earlier replay that ended before it could clean up)
            else:
                failed += 1
    if not ingest.commit():
        print("han state: the journal cannot be written (a full disk?); nothing was removed", file=sys.stderr)
        return 1
    store.save(journal.id, journal.last_seq)
    unknown.replace_all(remaining)
    print(
        f"{taken} push(es) of {len(meters)} meter(s) decoded into the journal (the next han run delivers them);"
        f" {len(remaining)} frame(s) still without keys kept"
        + (f"; {replayed} taken before" if replayed else "")
        + (f"; {failed} that do not decode dropped (wrong key?)" if failed else ""),
        file=sys.stderr,
    )
    return 0
