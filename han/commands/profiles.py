"""``han profiles``: the meter profiles the decoder knows, and how each is chosen."""

from __future__ import annotations

import argparse
import sys
import textwrap


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        "A profile is chosen by list id, manufacturer (system title), --country and the list's shape;\n"
        "'han decode --profile NAME' forces one."
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="show one profile's registers")


def _unit(spec) -> str:
    if spec.scaler is None:
        return "raw (resolution unknown)"
    unit = spec.unit or ""
    return f"x10^{spec.scaler} {unit}".strip() if spec.scaler else unit


def run(args: argparse.Namespace) -> int:
    from obis.profiles import PROFILES, profile_by_name

    from ..cli import UsageError

    out = sys.stdout.write
    if args.name:
        p = profile_by_name(args.name)
        if p is None:
            raise UsageError(f"unknown profile {args.name!r} (one of: {', '.join(x.name for x in PROFILES)})")
        out(f"{p.name}: {p.description}\n")
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
    width = max(len(p.name) for p in PROFILES)
    out(f"{'profile':<{width}}  {'country':<8}{'list id':<16}shape\n")
    for p in PROFILES:
        countries = ",".join(p.countries) or "any"
        lists = ",".join(p.list_ids) or "-"
        out(f"{p.name:<{width}}  {countries:<8}{lists:<16}{','.join(p.shapes) or 'any'}\n")
        out(textwrap.fill(p.description, 79, initial_indent="    ", subsequent_indent="    ") + "\n")
    return 0
