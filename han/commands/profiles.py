"""``han profiles``: the meter profiles the decoder knows, how each is chosen, and profile files of your own."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from ..advice import advise
from ..cli import UsageError
from decoders.stream import TRANSPORTS

EPILOG = """A profile is chosen by list id, manufacturer (system title), --country and the list's shape;
'han decode --profile NAME' forces one.

examples:
  han profiles                                   the built-in profiles
  han profiles at_wiener_netze                   one profile's lists, layouts and registers
  han profiles kaifa_kfm001 --toml               a profile in the TOML form --profiles FILE reads
  han profiles --template capture.hex --key HEX --country AT -o my-meter.toml
                                                 a starting profile from a capture's lists
  han profiles --profiles my-meter.toml          check a profile file and list it with the built-ins
then: han decode capture.hex --key HEX --profiles my-meter.toml"""


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("name", nargs="?", metavar="NAME", help="show one profile's registers")
    p.add_argument("--toml", action="store_true", help="print the profile(s) as TOML, the form --profiles reads")
    p.add_argument(
        "--profiles", metavar="FILE", action="append", default=[], help="load (and check) profiles from a TOML file"
    )
    t = p.add_argument_group("template from a capture")
    t.add_argument(
        "--template",
        metavar="CAPTURE",
        help="write a starting profile file from the lists in a capture (hex text or binary, - for stdin)",
    )
    t.add_argument("--output", "-o", metavar="FILE", help="write the template to FILE (default: standard output)")
    t.add_argument("--template-name", metavar="NAME", default="my_meter", help="the profile's name (default my_meter)")
    t.add_argument("--key", metavar="HEX", help="encryption key (GUEK); env HAN_KEY")
    t.add_argument("--auth-key", metavar="HEX", help="authentication key (GAK); env HAN_AUTH_KEY")
    t.add_argument(
        "--unverified", action="store_true", help="decrypt authenticated frames without the authentication key"
    )
    t.add_argument("--system-title", metavar="HEX", help="sender system title for APDUs that carry none")
    t.add_argument("--transport", choices=TRANSPORTS, default="auto", help="link layer")
    t.add_argument("--country", metavar="CC", help="the meter's country: the profile applies only there")


def _unit(spec) -> str:
    if spec.scaler is None:
        return "raw (resolution unknown)"
    unit = spec.unit or ""
    return f"x10^{spec.scaler} {unit}".strip() if spec.scaler else unit


def _catalogue(args: argparse.Namespace):
    from obis.profile_file import ProfileFileError, load_profiles
    from obis.profiles import catalogue

    try:
        loaded = load_profiles(args.profiles) if args.profiles else ()
    except ProfileFileError as exc:
        raise UsageError(str(exc)) from None
    return loaded, catalogue(loaded)


def run(args: argparse.Namespace) -> int:
    if args.template:
        return _template(args)
    from obis.profile_file import profile_toml

    loaded, profiles = _catalogue(args)
    out = sys.stdout.write
    if args.name:
        p = next((x for x in profiles if x.name == args.name), None)
        if p is None:
            raise UsageError(f"unknown profile {args.name!r} (one of: {', '.join(x.name for x in profiles)})")
        if args.toml:
            out(profile_toml(p))
            return 0
        origin = " (loaded)" if p in loaded else ""
        out(f"{p.name}{origin}: {p.description}\n")
        for label, value in (
            ("list ids", ", ".join(p.list_ids) or "-"),
            ("manufacturer", ", ".join(p.manufacturers or ((p.manufacturer,) if p.manufacturer else ())) or "any"),
            ("countries", (", ".join(p.countries) or "any") + (" (only these)" if p.country_only else "")),
            ("list shapes", ", ".join(p.shapes) or "any"),
            ("time zone", p.timezone or "-"),
            ("link", p.link or "-"),
            ("source", p.source or "-"),
        ):
            out(textwrap.fill(f"{label}: {value}", 79, initial_indent="  ", subsequent_indent="    ") + "\n")
        for layout in p.layouts:
            names = ", ".join(o.dotted if o else "?" for o in layout.obis)
            out(textwrap.fill(f"layout '{layout.name}': {names}", 79, initial_indent="  ", subsequent_indent="    ") + "\n")
        for note in p.notes:
            out(textwrap.fill(f"note: {note}", 79, initial_indent="  ", subsequent_indent="    ") + "\n")
        for r in p.registers:
            out(f"    {r.obis.dotted:<17} {r.name:<36.36} {_unit(r)}".rstrip() + "\n")
        return 0
    if args.toml:
        out("\n".join(profile_toml(p) for p in (loaded or profiles)))
        return 0
    width = max(len(p.name) for p in profiles)
    out(f"{'profile':<{width}}  {'country':<8}{'list id':<16}shape\n")
    for p in profiles:
        countries = ",".join(p.countries) or "any"
        lists = ",".join(p.list_ids) or "-"
        mark = "  (loaded)" if p in loaded else ""
        out(f"{p.name:<{width}}  {countries:<8}{lists:<16}{','.join(p.shapes) or 'any'}{mark}\n")
        out(textwrap.fill(p.description, 79, initial_indent="    ", subsequent_indent="    ") + "\n")
    return 0


def _template(args: argparse.Namespace) -> int:
    from decoders.errors import DecodeError, NotAFrame
    from decoders.stream import StreamDecoder
    from obis.profile_template import TemplateBuilder, TemplateError
    from obis.profiles import ISO_3166

    from .. import keyargs
    from ..keysource import load_keys
    from ..inputs import InputError, open_input

    if args.name or args.toml or args.profiles:
        raise UsageError("--template makes a profile file of its own: leave out NAME, --toml and --profiles")
    import re

    if not re.match(r"^[A-Za-z0-9_.-]{1,60}$", args.template_name):
        raise UsageError(f"--template-name {args.template_name!r}: use letters, digits, '_', '-' or '.'")
    country = None
    if args.country:
        country = args.country.strip().upper()
        if country not in ISO_3166:
            raise UsageError(f"--country {args.country!r} is not an ISO 3166 alpha-2 code (NO, SE, DK, AT, ...)")
    if args.output and os.path.exists(args.output):
        raise UsageError(f"--output {args.output}: the file exists; remove it or choose another name")
    keys = load_keys({"--key": args.key, "--auth-key": args.auth_key}).default
    stream = StreamDecoder(
        keys,
        transport=args.transport,
        system_title=keyargs.system_title(args.system_title),
        allow_unverified=args.unverified,
    )
    try:
        label, chunks = open_input(args.template)
    except InputError as exc:
        raise UsageError(f"--template: {exc}") from None
    builder = TemplateBuilder(country)
    failures: list[DecodeError] = []

    def take(items) -> None:
        for item in items:
            if isinstance(item, DecodeError):
                if not isinstance(item, NotAFrame):
                    failures.append(advise(item))
            elif item.notification is not None:
                c = item.ciphered
                builder.add(item.notification, c.system_title[:3].decode("ascii", "replace") if c and c.system_title else None)
            else:
                builder.telegrams += 1

    try:
        for data in chunks:
            take(stream.feed(data))
    except InputError as exc:
        raise UsageError(f"--template: {exc}") from None
    take(stream.flush())
    for err in failures[:3]:
        print(f"han profiles: {label}: offset {getattr(err, 'offset', 0)}: {err.one_line()}", file=sys.stderr)
    if len(failures) > 3:
        print(f"han profiles: {label}: {len(failures) - 3} more frame(s) failed", file=sys.stderr)
    try:
        text = builder.render(args.template_name, os.path.basename(label) if label not in ("stdin", "argument") else label)
    except TemplateError as exc:
        print(f"han profiles: {exc}", file=sys.stderr)
        return 1
    if args.output:
        try:
            with open(args.output, "x", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise UsageError(f"--output {args.output}: {exc.strerror}") from None
        print(f"han profiles: wrote {args.output} ({builder.pushes} push(es)); fill in obis, name, unit and scaler,"
              f" then: han decode CAPTURE --profiles {args.output}", file=sys.stderr)  # fmt: skip
    else:
        sys.stdout.write(text)
    return 0
