"""``han decode``: decode hex dumps or captures of pushed frames."""

from __future__ import annotations

import argparse
import os
import sys

from ..cli import UsageError

EPILOG = """examples:
  han decode samples/kamstrup_dk_radius.hex --key 5AD8...827F --auth-key AFB3...1AE0
  han decode "7E A0 ... 7E" --format json
  cat capture.bin | han decode - --format jsonl
keys may also come from the environment: HAN_KEY, HAN_AUTH_KEY"""


def configure(p: argparse.ArgumentParser) -> None:
    from ..formats import FORMATS

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="hex text, a file of hex text or binary capture, or - for standard input (default: stdin)",
    )
    p.add_argument("--key", metavar="HEX", help="encryption key (GUEK, Kamstrup 'gpk60'); env HAN_KEY")
    p.add_argument("--auth-key", metavar="HEX", help="authentication key (GAK, Kamstrup 'gpk61'); env HAN_AUTH_KEY")
    p.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument(
        "--unverified",
        action="store_true",
        help="decrypt authenticated frames without checking their tag when no authentication key is known"
        " (the output says the values are unverified)",
    )
    p.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="accept frames without authentication although --auth-key is given (otherwise refused as a downgrade)",
    )
    p.add_argument("--system-title", metavar="HEX", help="sender system title for APDUs that carry none (DB 00 ...)")
    p.add_argument("--transport", choices=("auto", "hdlc", "raw"), default="auto", help="link layer (default: auto)")
    p.add_argument("--country", metavar="CC", help="the meter's country (ISO 3166 alpha-2), for country profiles")
    p.add_argument("--profile", metavar="NAME", help="force a meter profile")


def _keys(args: argparse.Namespace):
    from decoders.security import Keys

    from ..inputs import InputError, parse_key

    ek_text = args.key or os.environ.get("HAN_KEY") or None
    ak_text = args.auth_key or os.environ.get("HAN_AUTH_KEY") or None
    try:
        ek = parse_key(ek_text, "--key (HAN_KEY)") if ek_text else None
        ak = parse_key(ak_text, "--auth-key (HAN_AUTH_KEY)") if ak_text else None
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return Keys(ek=ek, ak=ak)


def _writer(fmt: str, out):
    if fmt in ("json", "jsonl"):
        from ..formats.jsonfmt import JsonWriter

        return JsonWriter(out, lines=fmt == "jsonl")
    if fmt == "csv":
        from ..formats.csvfmt import CsvWriter

        return CsvWriter(out)
    if fmt == "xml":
        from ..formats.xmlfmt import XmlWriter

        return XmlWriter(out)
    from ..formats.table import TableWriter

    return TableWriter(out)


def run(args: argparse.Namespace) -> int:
    from decoders.errors import DecodeError, NotAFrame
    from obis.profiles import profile_by_name
    from obis.push import Push

    from ..inputs import InputError, parse_hex, read_input
    from ..pipeline import PushDecoder

    keys = _keys(args)
    system_title = None
    if args.system_title:
        try:
            system_title = parse_hex(args.system_title)
        except InputError as exc:
            raise UsageError(f"--system-title: {exc}") from None
        if len(system_title) != 8:
            raise UsageError("--system-title must be 8 bytes (16 hex digits)")
    profile = None
    if args.profile:
        profile = profile_by_name(args.profile)
        if profile is None:
            raise UsageError(f"unknown profile {args.profile!r} (see 'han profiles')")
    inputs = args.inputs or ["-"]
    if inputs == ["-"] and sys.stdin.isatty():
        raise UsageError("no input: give hex text, a file, or pipe data to standard input")

    writer = _writer(args.format, sys.stdout)
    decoded = failed = 0
    chunk = 1 << 16
    try:
        for arg in inputs:
            try:
                label, data = read_input(arg)
            except InputError as exc:
                print(f"han decode: {exc}", file=sys.stderr)
                failed += 1
                continue
            decoder = PushDecoder(
                keys,
                transport=args.transport,
                system_title=system_title,
                allow_unauthenticated=args.allow_unauthenticated,
                allow_unverified=args.unverified,
                country=args.country,
                profile=profile,
            )
            pushes_here = 0
            noise: list[DecodeError] = []  # reported at the end: a note if pushes were found, else a failure
            view = memoryview(data)
            # feed in chunks and write as pushes complete: memory stays flat on big captures
            steps = [view[i : i + chunk] for i in range(0, len(data), chunk)] + [None]
            for piece in steps:
                results = decoder.feed(piece) if piece is not None else decoder.flush()
                for item in results:
                    if isinstance(item, Push):
                        writer.write(item)
                        decoded += 1
                        pushes_here += 1
                    elif isinstance(item, NotAFrame):
                        noise.append(item)
                    else:
                        print(f"han decode: {label}: offset {getattr(item, 'offset', 0)}: {item.one_line()}", file=sys.stderr)
                        failed += 1
            for item in noise:
                where = f"{label}: offset {getattr(item, 'offset', 0)}"
                if pushes_here:
                    print(f"han decode: {where}: note: {item.one_line()}", file=sys.stderr)
                else:
                    print(f"han decode: {where}: {item.one_line()}", file=sys.stderr)
                    failed += 1
            if not data:
                print(f"han decode: {label}: no data", file=sys.stderr)
                failed += 1
    finally:
        writer.close()
        sys.stdout.flush()
    return 0 if failed == 0 and decoded > 0 else 1
