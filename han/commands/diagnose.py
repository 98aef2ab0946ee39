"""``han diagnose LOG``: explain an association log (AARQ/AARE, HLS, glo-/ded- APDUs, errors)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from decoders.ciphering.security import Keys

from .. import keyargs
from ..cli import UsageError
from ..diagnose import Diagnosis, Secrets, Severity, diagnose

SYMBOL = {Severity.INFO: "i", Severity.WARNING: "!", Severity.ERROR: "X"}


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


WIDTH = 110
LABEL = 21


def _wrap(text: str, indent: int, first: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=" " * indent + first,
        subsequent_indent=" " * (indent + len(first)),
        break_on_hyphens=False,
    ) or [" " * indent + first]


def _detail(label: str, text: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=f"    {label:<{LABEL}}",
        subsequent_indent=" " * (4 + LABEL),
        break_on_hyphens=False,
    ) or [f"    {label}"]


def _summary(a: dict) -> list[str]:
    rows: list[tuple[str, str]] = []
    if a["application_context"]:
        rows.append(("application context", a["application_context"]["text"]))
    if a["mechanism"]:
        rows.append(("mechanism", f"{a['mechanism']['id']} = {a['mechanism']['name']}"))
    for who in ("client", "server"):
        st = a[f"{who}_system_title"]
        if st:
            text = st["hex"] + (f' "{st["text"]}"' if st["text"] else "")
            text += f" (manufacturer id {st['manufacturer']})" if st["manufacturer"] and not st["text"] else ""
            rows.append((f"{who} system title", text + (" - a placeholder" if st["placeholder"] else "")))
    dk = a["dedicated_key"]
    if dk["proposed"] is not None:
        text = f"proposed, {dk['length']} bytes ({dk['how']})" if dk["proposed"] else f"none ({dk['how']})"
        rows.append(("dedicated key", text))
    hls = a["hls"]
    if hls["state"] != "not used":
        text = hls["state"]
        p3 = hls["pass3"]
        if p3:
            key = f", under the {p3['key']} key" if p3["key"] else ""
            text += f"; pass 3 in PDU #{p3['pdu']} as {p3['apdu']} ({p3['tag']}){key}"
        rows.append(("HLS", text))
    ics = "; ".join(
        f"{c['sender']} under the {c['key']} key: " + ", ".join(f"{v['value']} (#{v['pdu']})" for v in c["values"])
        for c in a["invocation_counters"]
    )
    if ics:
        rows.append(("invocation counters", ics))
    out = ["Summary"]
    for label, text in rows:
        out += _detail(label, text)
    return out + [""] if rows else []


def render_text(d: Diagnosis) -> str:
    frames = sum(1 for p in d.pdus if p.link)
    head = f"{len(d.pdus)} PDU(s)" + (f", {frames} in HDLC frames" if frames else "")
    head += "; decrypted with the keys given" if d.keys_used else "; no keys given: read from headers and lengths"
    out = [f"Association log: {head}", ""]
    out += _summary(d.association)
    by_pdu: dict[int | None, list] = {}
    for f in d.findings:
        by_pdu.setdefault(f.pdu, []).append(f)
    arrow = {"client": "client -> server", "server": "server -> client", None: "direction unknown"}
    for p in d.pdus:
        out += _wrap(f"#{p.number} (line {p.line}) {arrow[p.sender]}: {p.summary}", 0)
        if p.link:
            out += _wrap(p.link, 4)
        for label, text in p.details:
            out += _detail(label, text)
        for f in by_pdu.get(p.number, []):
            out += _wrap(f.text, 4, f"[{SYMBOL[f.severity]}] ")
        out.append("")
    others = by_pdu.get(None, [])
    if others:
        out.append("Other findings")
        for f in others:
            out += _wrap(f.text, 4, f"[{SYMBOL[f.severity]}] ")
        out.append("")
    out += ["Likely cause"] + _wrap(d.cause, 4)
    if d.fixes:
        out += ["", "Fix"]
        for i, fix in enumerate(d.fixes, 1):
            out += _wrap(fix, 4, f"{i}. ")
    return "\n".join(out)
