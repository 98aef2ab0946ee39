"""``han diagnose LOG``: explain an association log (AARQ/AARE, HLS, glo-/ded- APDUs, errors)."""

from __future__ import annotations

import argparse
import json
import sys

from decoders.security import Keys

from .. import keyargs
from ..cli import UsageError
from ..diagnose import Diagnosis, Secrets, diagnose

SYMBOL = {"info": "i", "warning": "!", "error": "X"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Explain a DLMS/COSEM association log: hex frames (HDLC or raw APDUs) among any other text, both directions."
        " Without keys it reads what headers and lengths tell; with keys it decrypts and verifies everything."
    )
    parser.add_argument("log", metavar="LOG", help="log file, or - for standard input")
    parser.add_argument("--key", help="global unicast encryption key (GUEK, 'block cipher key'), hex; or $HAN_KEY")
    parser.add_argument("--auth-key", help="authentication key (AK), hex; or $HAN_AUTH_KEY")
    parser.add_argument("--dedicated-key", help="dedicated key, hex (normally read from the decrypted AARQ)")
    parser.add_argument("--hls-secret", help="HLS secret (password) as text, for mechanisms 2, 3, 4 and 6")
    parser.add_argument("--hls-secret-hex", help="HLS secret as hex")
    parser.add_argument("--client-system-title", help="client system title, hex, when the log has no AARQ")
    parser.add_argument("--server-system-title", help="server system title, hex, when the log has no AARE")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    secrets = Secrets(
        keys=Keys(
            ek=keyargs.key(args.key, "--key", "HAN_KEY"),
            ak=keyargs.key(args.auth_key, "--auth-key", "HAN_AUTH_KEY"),
            dedicated=keyargs.key(args.dedicated_key, "--dedicated-key"),
        ),
        hls_secret=keyargs.secret_text(args.hls_secret, args.hls_secret_hex),
        client_system_title=keyargs.system_title(args.client_system_title, "--client-system-title"),
        server_system_title=keyargs.system_title(args.server_system_title, "--server-system-title"),
    )
    result = diagnose(_read(args.log), secrets)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(render_text(result))
    return 0


def render_text(d: Diagnosis) -> str:
    out: list[str] = []
    frames = sum(1 for p in d.pdus if p.link)
    head = f"{len(d.pdus)} PDU(s)" + (f", {frames} in HDLC frames" if frames else "")
    head += "; decrypted with the keys given" if d.keys_used else "; no keys given: read from headers and lengths"
    out += [f"Association log: {head}", ""]
    by_pdu: dict[int | None, list] = {}
    for f in d.findings:
        by_pdu.setdefault(f.pdu, []).append(f)
    arrow = {"client": "client -> server", "server": "server -> client", None: "direction unknown"}
    for p in d.pdus:
        out.append(f"#{p.number} (line {p.line}) {arrow[p.sender]}: {p.summary}")
        if p.link:
            out.append(f"    {p.link}")
        for label, text in p.details:
            out.append(f"    {label:<20} {text}" if label else f"    {'':<20} {text}")
        for f in by_pdu.get(p.number, []):
            out.append(f"    [{SYMBOL[f.severity]}] {f.text}")
        out.append("")
    others = by_pdu.get(None, [])
    if others:
        out.append("Other findings")
        out += [f"    [{SYMBOL[f.severity]}] {f.text}" for f in others]
        out.append("")
    out += ["Likely cause", f"    {d.cause}"]
    if d.fixes:
        out += ["", "Fix"] + [f"    {i}. {fix}" for i, fix in enumerate(d.fixes, 1)]
    return "\n".join(out)
