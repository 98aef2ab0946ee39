"""``han probe``: find a meter's serial settings, list and security on a port, and the ``han run`` line to use."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable

from ..cli import UsageError

EPILOG = """examples:
  han probe --port /dev/ttyUSB0                        plain meters (Norway, Sweden), or to see what keys are needed
  HAN_KEY=... HAN_AUTH_KEY=... han probe --port /dev/ttyUSB0 --country DK   checks the keys too
  han probe --port /dev/ttyUSB0 --setting "2400 8E1" --seconds 60           one setting, listening longer
keys: --key/--auth-key or HAN_KEY/HAN_AUTH_KEY (the output never shows them).
Each setting is heard for --seconds (default 20: two push intervals of 10 s); the probe stops at the first
setting that gives a push, frames with good checksums, or a P1 text telegram.
Exit status: 0 when a push decoded, 1 otherwise (nothing found, keys needed or wrong)."""

#: listening time per setting: two push intervals of the usual 10 s
DEFAULT_SECONDS = 20.0


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("--port", required=True, metavar="DEVICE", help="the port: /dev/ttyUSB0 ('han ports' lists them)")
    p.add_argument("--key", metavar="HEX", help="encryption key (GUEK, Kamstrup 'gpk60'); better: HAN_KEY")
    p.add_argument("--auth-key", metavar="HEX", help="authentication key (GAK, 'gpk61'); better: HAN_AUTH_KEY")
    p.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        metavar="S",
        help=f"listen this long at each setting (default {DEFAULT_SECONDS:g}: two push intervals of 10 s)",
    )
    p.add_argument(
        "--setting",
        action="append",
        metavar="SPEC",
        help="try only this setting, e.g. '2400 8E1' (repeatable; default: 2400 8N1, 2400 8E1, 9600 8N1,"
        " 115200 8N1, 9600 7E1)",
    )
    p.add_argument("--country", metavar="CC", help="the meter's country (NO, SE, DK, AT, ...), for its profile")
    p.add_argument("--json", action="store_true", help="the result as one JSON object on standard output")


# -- the asyncio shell ------------------------------------------------------------------------------
Event = Callable[[str, object], None]


async def probe(
    port: str,
    settings,
    seconds: float,
    make_decoder: Callable[[], object],
    on_event: Event | None = None,
) -> list:
    """Listen at each setting in turn until one is found; the :class:`~han.probing.Outcome` of each tried.

    ``on_event("listening", setting)`` is called once the port is open at a setting, and
    ``on_event("result", outcome)`` when it is done.  A port that cannot be opened at all
    (missing, no permission, in use) or is lost raises ConnectionError.
    """
    from ..probing import Listening
    from ..sources import SettingRefused, open_serial

    emit = on_event or (lambda kind, what: None)
    outcomes = []
    loop = asyncio.get_running_loop()
    for setting in settings:
        listening = Listening(setting, make_decoder())
        decided = loop.create_future()
        closed = loop.create_future()

        class Reader(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                listening.feed(data)
                if listening.decided and not decided.done():
                    decided.set_result(None)

            def connection_lost(self, exc: Exception | None) -> None:
                if not closed.done():
                    closed.set_result(exc)

        try:
            transport, _ = await open_serial(setting.serial(port), Reader)
        except SettingRefused as exc:
            outcome = listening.refused(str(exc))
            outcomes.append(outcome)
            emit("result", outcome)
            continue
        emit("listening", setting)
        await asyncio.wait({decided, closed}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        lost = closed.done()
        transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(closed), 5.0)  # closed before it is opened again
        except asyncio.TimeoutError:
            pass
        outcome = listening.finish()
        outcomes.append(outcome)
        emit("result", outcome)
        if outcome.found:
            break
        if lost:
            reason = closed.result()
            raise ConnectionError(f"the port was lost ({reason or 'closed'})")
    return outcomes


# -- the command --------------------------------------------------------------------------------
def _settings(args: argparse.Namespace):
    from ..probing import COMMON_SETTINGS, LinkSetting

    if not args.setting:
        return COMMON_SETTINGS
    try:
        return tuple(LinkSetting.parse(text) for text in args.setting)
    except ValueError as exc:
        raise UsageError(f"--setting: {exc}") from None


def _result_text(outcome) -> str:
    link = {"hdlc": "HDLC frames", "mbus": "M-Bus frames", "raw": "bare APDUs", "p1": "P1 text telegrams"}.get(
        outcome.transport or "", "frames"
    )
    check = "checksums good" if outcome.transport in ("hdlc", "mbus") else "the same sender twice"
    if outcome.telegram is not None:
        link = "P1 text telegrams"
        check = "CRC good" if outcome.telegram.crc_ok else "no CRC: DSMR 2.2/3"
    v = outcome.verdict
    if v == "decoded":
        return f"push decoded ({link}, {check})"
    if v == "keys":
        return f"{link} intact ({check}), but no push: {outcome.problem.reason.replace('_', ' ')}"
    if v == "content":
        return f"{link} intact ({check}), but: {outcome.problem.one_line()}"
    if v == "p1":
        why = f": {outcome.problem.one_line()}" if outcome.problem is not None else ""
        return f"{link} intact ({check}), but no push{why}"
    if v == "garbled":
        return f"{outcome.bytes} bytes, no valid frame: {outcome.frames_text()}"
    if v == "refused":
        return f"skipped: {outcome.error}"
    return "no bytes"


def _not_found(outcomes, seconds: float) -> list[str]:
    if any(o.verdict == "garbled" for o in outcomes):
        return [
            "bytes arrive, but no setting gave a frame with good checksums:",
            "  - the adapter does not fit the port: an M-Bus HAN port (RJ45, Norway/Sweden/Austria) needs an M-Bus",
            "    adapter (TSS721); a Kamstrup CCC port is RS232; a P1 port (RJ12) is 5 V TTL, often inverted",
            f"  - the meter pushes rarely: listen longer (--seconds {max(60.0, 3 * seconds):g})",
            "  - a setting not tried: --setting '38400 8N1' (some Slovenian Iskraemeco meters)",
        ]
    return [
        "no bytes at any setting:",
        "  - the meter's port is off: grid operators open it on request (see docs/keys-by-country.md)",
        "  - the cable or adapter: an M-Bus port needs an M-Bus adapter; a P1 port needs its data-request pin",
        "    at 5 V; check the plug (RJ45 pins 1-2 for M-Bus HAN, RJ12 for P1)",
        "  - the wrong port: 'han ports' lists them",
    ]


def report(port: str, outcomes, *, country: str | None, keys_given: bool, seconds: float) -> tuple[list[str], dict]:
    """The closing lines for a person, and the same for --json."""
    from ..probing import config_snippet, keys_text, meter_lines, needs_keys, run_command

    found = next((o for o in outcomes if o.found), None)
    data: dict = {
        "port": port,
        "settings": [
            {"setting": o.setting.label, "result": o.verdict, "bytes": o.bytes, "frames": o.counts, "detail": _result_text(o)}
            for o in outcomes
        ],
        "found": None,
    }
    if found is None:
        return [""] + _not_found(outcomes, seconds), data
    meter = meter_lines(found)
    data.update(found=found.setting.label, transport=found.transport, meter=meter)
    lines = ["", f"found: {found.setting.label}" + (f", {found.transport.upper()}" if found.transport else "")]
    if meter:
        lines.append("meter:")
        lines += [f"  {line}" for line in meter]
    keys = keys_text(found, keys_given)
    lines.append(f"keys: {keys}")
    data["keys"] = keys
    if found.verdict == "content":
        return lines, data
    if found.verdict == "p1":
        lines.append("the telegrams arrive intact but gave no push here: 'han decode --port ... --transport p1' shows why")
    want_keys = needs_keys(found)
    command = run_command(port, found, country=country, keys_needed=want_keys)
    snippet = config_snippet(port, found, country=country, keys_needed=want_keys)
    data.update(run=command, config="\n".join(snippet) + "\n")
    lines += ["", "run it with:" if found.verdict == "decoded" else "once the keys fit, run it with:", f"  {command}"]
    if not country:
        lines.append("  (add --country CC, your country: NO, SE, DK, AT, ... for its profile and time zone)")
    lines += ["or in the configuration file (han run --config FILE):"] + [f"  {line}" if line else "" for line in snippet]
    return lines, data


def run(args: argparse.Namespace) -> int:
    from ..config import decode_options
    from ..keysource import load_keys
    from ..pipeline import PushDecoder
    from ..portlist import describe, open_error, stable_name

    if args.seconds <= 0:
        raise UsageError("--seconds must be more than 0")
    settings = _settings(args)
    keys = load_keys({"--key": args.key, "--auth-key": args.auth_key}).default
    keys_given = keys.ek is not None or keys.ak is not None
    options = decode_options(country=args.country)
    port = args.port
    use = stable_name(port) if "://" not in port else port
    out = sys.stdout if not args.json else sys.stderr

    info = describe(port) if "://" not in port else None
    what = []
    if info is not None:
        what = [x for x in (info.description, info.usb_id, info.serial_number and f"serial {info.serial_number}") if x]
    print(f"han probe: {port}" + (f" ({', '.join(what)})" if what else ""), file=out)
    seconds = args.seconds

    def on_event(kind: str, what: object) -> None:
        if kind == "listening":
            print(f"  {what.label:11} listening up to {seconds:g} s ... ", end="", file=out, flush=True)
        elif kind == "result":
            if what.verdict == "refused":
                print(f"  {what.setting.label:11} ", end="", file=out)
            print(_result_text(what), file=out, flush=True)

    def make_decoder():
        return PushDecoder(keys, transport="auto", options=options)

    try:
        outcomes = asyncio.run(probe(port, settings, seconds, make_decoder, on_event))
    except ConnectionError as exc:
        print("", file=out)
        print(f"han probe: {port}: {open_error(str(exc))}", file=sys.stderr)
        return 1
    lines, data = report(use, outcomes, country=args.country, keys_given=keys_given, seconds=seconds)
    for line in lines:
        print(line, file=out)
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    found = next((o for o in outcomes if o.found), None)
    return 0 if found is not None and found.verdict == "decoded" else 1
