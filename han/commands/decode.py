"""``han decode``: decode hex dumps or captures of pushed frames."""

from __future__ import annotations

import argparse
import sys
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)

from ..advice import advise
from ..cli import UsageError
from decoders.stream import TRANSPORTS

if TYPE_CHECKING:
    from obis.interpret import InterpretOptions

EPILOG = """examples:
  han decode samples/kamstrup_dk_radius.hex --key 5AD8...827F --auth-key AFB3...1AE0
  han decode "7E A0 ... 7E" --format json
  han decode capture.bin --country SE --summary
  han decode "68 FA FA 68 53 FF 00 01 67 DB 08 ..." --key ... --explain
  cat capture.bin | han decode - --format jsonl
  han decode --port /dev/ttyUSB0 --preset mbus          live from the meter's port, until Ctrl-C
  han decode --port /dev/ttyUSB0 --count 3 --format jsonl
keys may also come from the environment: HAN_KEY, HAN_AUTH_KEY
'han profiles' lists the meter profiles"""


def configure(p: argparse.ArgumentParser) -> None:
    from ..formats import FORMATS

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="hex text, a file of hex text (labelled lines such as 'RX: 7E A1 ...' too) or binary capture,"
        " or - for standard input, decoded as it arrives (default: stdin)",
    )
    port = p.add_argument_group("live from a serial port (instead of INPUT)")
    port.add_argument("--port", metavar="DEVICE", help="decode live from this port: /dev/ttyUSB0 ('han ports', 'han probe')")
    for name in ("preset", "baud", "parity", "bytesize", "stopbits"):
        _serial_option(port, name)
    port.add_argument("--count", type=int, metavar="N", help="stop after N pushes")
    port.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds")
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
    p.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="auto",
        help="link layer: HDLC (7E ...), M-Bus long frames (68 L L 68 ...), bare APDUs (DB ..., 0F ...),"
        " P1 text telegrams (/... !CRC);"
        " default: recognised from the data",
    )
    p.add_argument(
        "--country",
        metavar="CC",
        help="the meter's country (ISO 3166 alpha-2: NO, SE, DK, FI, AT, CH, LU, PL, SI, ...): picks country"
        " profiles (Kamstrup energy in 10 Wh in NO, Wh in SE) and the default time zone",
    )
    p.add_argument("--profile", metavar="NAME", help="force a meter profile (see 'han profiles')")
    p.add_argument(
        "--profiles",
        metavar="FILE",
        action="append",
        default=[],
        help="load meter profiles from a TOML file, chosen before the built-in ones (repeatable;"
        " 'han profiles --template CAPTURE' writes a starting one)",
    )
    p.add_argument(
        "--timezone",
        metavar="ZONE",
        help="the meter's time zone for local times sent without a UTC deviation (IANA name, e.g. Europe/Oslo;"
        " default: the country's, else the profile's)",
    )
    p.add_argument(
        "--multiplier",
        metavar="OBIS=FACTOR",
        action="append",
        default=[],
        help="multiply one register after scaling, e.g. 1.1.31.7.0.255=50 (repeatable; wins over --ct-ratio)",
    )
    p.add_argument(
        "--ct-ratio",
        metavar="RATIO",
        help="current-transformer ratio for meters that send secondary values, e.g. 200/5 or 40:"
        " multiplies currents, powers and energies (not voltages or power factors)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="annotated dump instead of values: every layer's bytes with offsets and meaning (80 columns),"
        " failed frames up to the layer that failed",
    )
    p.add_argument(
        "--summary",
        action="store_true",
        help="count frames by outcome on standard error (shown anyway for several frames in table output)",
    )


def _serial_option(group, name: str) -> None:
    """A serial option as ``han run`` has it: flag, help, type and choices from the settings table."""
    from ..settings import BY_NAME, help_text

    setting = BY_NAME[name]
    kw: dict = {"dest": name, "help": help_text(setting), "metavar": setting.metavar}
    if setting.kind == "int":
        kw["type"] = int
    elif setting.kind == "number":
        kw["type"] = float
    elif name == "parity":
        kw["type"] = str.upper
    if setting.allowed():
        kw["choices"] = setting.allowed()
        kw.pop("metavar")
    group.add_argument(setting.flag, **kw)


def serial_settings(args: argparse.Namespace):
    """The port's SerialSettings from --port and the serial options, each checked as ``han run`` checks it."""
    from ..config import SerialSettings
    from ..settings import BY_NAME, DEFAULTS, PRESETS

    preset = BY_NAME["preset"].check(args.preset or DEFAULTS["preset"], from_flag=True)
    values = dict(zip(("baud", "parity", "bytesize", "stopbits"), PRESETS[preset]))
    for name in values:
        given = getattr(args, name)
        if given is not None:
            values[name] = BY_NAME[name].check(given, from_flag=True)
    return SerialSettings(args.port, values["baud"], values["parity"], values["bytesize"], float(values["stopbits"]))


def _keys(args: argparse.Namespace):
    from ..keysource import load_keys

    return load_keys({"--key": args.key, "--auth-key": args.auth_key}).default


def _writer(fmt: str, out, explain: bool = False):
    if explain:
        from ..formats.explain import ExplainWriter

        return ExplainWriter(out)
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


#: (flag, dest) of the options that only make sense with --port
_PORT_ONLY = (
    ("--preset", "preset"), ("--baud", "baud"), ("--parity", "parity"), ("--bytesize", "bytesize"),
    ("--stopbits", "stopbits"), ("--count", "count"), ("--seconds", "seconds"),
)  # fmt: skip


def decode_options(args: argparse.Namespace) -> InterpretOptions:
    """Country, time zone, profile and multipliers from the command line; ConfigError when one is wrong."""
    from ..config import decode_options

    return decode_options(
        country=args.country,
        timezone=args.timezone,
        profile=args.profile,
        profile_files=args.profiles,
        multipliers=args.multiplier,
        ct_ratio=args.ct_ratio,
    )


def _problems(chunks, label: str) -> int:
    """Report the lines of hex text that failed since the last call; their count."""
    problems = chunks.take_problems()
    for line, message in problems:
        print(f"han decode: {label}: line {line}: {message}", file=sys.stderr)
    return len(problems)


def _skipped(chunks, label: str) -> None:
    """A note on lines of hex text that held only a label (a logger's own messages), skipped."""
    lines = chunks.skipped
    if lines:
        shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        print(f"han decode: {label}: note: {len(lines)} line(s) without hex skipped (line {shown})", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from decoders.errors import DecodeError, NotAFrame
    from obis.push import Push

    from ..inputs import InputError, open_input, parse_hex
    from ..pipeline import PushDecoder
    from ..summary import Summary

    keys = _keys(args)
    system_title = None
    if args.system_title:
        try:
            system_title = parse_hex(args.system_title)
        except InputError as exc:
            raise UsageError(f"--system-title: {exc}") from None
        if len(system_title) != 8:
            raise UsageError("--system-title must be 8 bytes (16 hex digits)")
    options = decode_options(args)
    if args.explain and args.format != "table":
        raise UsageError("--explain is a view of its own: leave out --format")
    live = [flag for flag, name in _PORT_ONLY if getattr(args, name) is not None]
    if args.port:
        if args.inputs:
            raise UsageError("give INPUT or --port, not both")
        if (args.count is not None and args.count < 1) or (args.seconds is not None and args.seconds <= 0):
            raise UsageError("--count and --seconds must be more than 0")
        from .decodeport import decode_port

        settings = serial_settings(args)

        def make_decoder():
            return PushDecoder(
                keys,
                transport=args.transport,
                system_title=system_title,
                allow_unauthenticated=args.allow_unauthenticated,
                allow_unverified=args.unverified,
                keep_layers=args.explain,
                options=options,
            )

        return decode_port(args, settings, make_decoder, _writer(args.format, sys.stdout, args.explain))
    if live:
        raise UsageError(f"{live[0]} is for --port (a live serial port)")
    inputs = args.inputs or ["-"]
    if inputs == ["-"] and sys.stdin.isatty():
        raise UsageError("no input: give hex text, a file, or pipe data to standard input")

    writer = _writer(args.format, sys.stdout, args.explain)
    explain_error = getattr(writer, "error", None)
    summary = Summary()
    decoded = failed = 0
    # the decoder gets a few frames at a time: the pushes of one feed() stay few, so they die young
    # (a 64 KiB feed held ~130 pushes at once, and the garbage collector's work grew with them)
    step = 1 << 12
    try:
        for arg in inputs:
            try:
                label, chunks = open_input(arg)
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
                keep_layers=args.explain,
                options=options,
            )
            pushes_here = 0
            size = 0
            noise: list[DecodeError] = []  # reported at the end: a note if pushes were found, else a failure

            def pieces():
                # read in chunks, feed in steps, write as pushes complete: memory stays flat on big captures
                nonlocal size, failed
                try:
                    for data in chunks:
                        size += len(data)
                        view = memoryview(data)
                        for i in range(0, len(data), step):
                            yield decoder.feed(view[i : i + step])
                        failed += _problems(chunks, label)
                        if chunks.live:
                            sys.stdout.flush()  # a pipe: each push out as soon as its frame is complete
                except InputError as exc:
                    print(f"han decode: {exc}", file=sys.stderr)
                    failed += 1
                failed += _problems(chunks, label)
                yield decoder.flush()

            for results in pieces():
                for item in results:
                    summary.add(item)
                    if isinstance(item, Push):
                        writer.write(item)
                        decoded += 1
                        pushes_here += 1
                        continue
                    advise(item)  # the option that gives a missing key
                    if explain_error is not None:
                        explain_error(item, label)
                    if isinstance(item, NotAFrame):
                        noise.append(item)
                    else:
                        print(f"han decode: {label}: offset {getattr(item, 'offset', 0)}: {item.one_line()}", file=sys.stderr)
                        failed += 1
            _skipped(chunks, label)
            for item in noise:
                where = f"{label}: offset {getattr(item, 'offset', 0)}"
                if pushes_here:
                    print(f"han decode: {where}: note: {item.one_line()}", file=sys.stderr)
                else:
                    print(f"han decode: {where}: {item.one_line()}", file=sys.stderr)
                    failed += 1
            if not size:
                print(f"han decode: {label}: no data", file=sys.stderr)
                failed += 1
    finally:
        writer.close()
        sys.stdout.flush()
    if args.summary or (args.format == "table" and summary.frames > 1):
        for line in summary.render():
            print(line, file=sys.stderr)
    return 0 if failed == 0 and decoded > 0 else 1
