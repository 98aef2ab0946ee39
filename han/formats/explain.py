"""``han decode --explain``: a layer-by-layer annotated dump, for reading and for forum posts.

Every layer that carried a push is shown with offsets, bytes and meaning:
HDLC frames (flag, format, addresses, control, HCS, LLC, FCS) or M-Bus
frames (start, L-fields, C, A, CI, STSAP/DTSAP, checksum, stop), the
general-block-transfer block headers, the ciphered APDU's security header
(system title with the manufacturer, security control bits, invocation
counter, ciphertext, tag), the data-notification header, and the A-XDR tree
of the body with OBIS names and scaled values.  A frame that failed is
explained up to the layer that failed, then the error.

This is a view: it walks structures the decoders already parsed
(``Push.layers`` and ``DecodeError.partial``/``frame``) and formats them.
Lines fit 80 columns: offset, up to six bytes, meaning.
"""

from __future__ import annotations

import textwrap
from typing import IO, Any

from decoders.xdlms import axdr
from decoders.xdlms.cosem_time import CosemDateTime, looks_like_datetime
from decoders.errors import DecodeError, FramingError, NotAFrame
from decoders.link.hdlc import HdlcFrame, HdlcMessage
from decoders.link.mbus import C_FIELDS, MbusMessage
from decoders.ciphering.control import SecurityControl
from obis.code import Obis, looks_like_obis
from obis.names import MANUFACTURERS, obis_name
from obis.push import Push, Register

WIDTH = 80
BYTES_PER_LINE = 6
_OFF = 8  # "  +1234 "
_HEX = BYTES_PER_LINE * 3 + 1
_TEXT = WIDTH - _OFF - _HEX


def _hex(b: bytes) -> str:
    return " ".join(f"{x:02X}" for x in b)


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def title(self, text: str) -> None:
        self.lines.append(text[:WIDTH])

    def rule(self, text: str) -> None:
        self.lines.append(("━━ " + text + " ").ljust(WIDTH, "━")[:WIDTH])

    def note(self, text: str, indent: str = "  ") -> None:
        for line in textwrap.wrap(text, WIDTH - len(indent), subsequent_indent="  ") or [""]:
            self.lines.append(indent + line)

    def row(self, offset: int | None, data: bytes, text: str, *, full: bool = False, depth: int = 0) -> None:
        """One field: its offset, its bytes (all of them up to two lines, else the first six) and meaning."""
        chunks = [data[i : i + BYTES_PER_LINE] for i in range(0, len(data), BYTES_PER_LINE)] or [b""]
        if not full and len(chunks) > 2:
            chunks = [chunks[0]]
            text = f"{text} [{len(data)} bytes]"
        texts = textwrap.wrap(text, _TEXT - 2 * depth, subsequent_indent="  ") or [""]
        n = max(len(chunks), len(texts))
        for i in range(n):
            off = f"+{offset}" if (i == 0 and offset is not None) else ""
            hx = _hex(chunks[i]) if i < len(chunks) else ""
            if i == 1 and len(chunks) == 1 and len(data) > BYTES_PER_LINE:
                hx = "…"
            tx = ("  " * depth + texts[i]) if i < len(texts) else ""
            self.lines.append(f"  {off:<{_OFF - 2}}{hx:<{_HEX}}{tx}".rstrip())


# -- link layer ----------------------------------------------------------------------
def _hdlc_address(b: bytes, role: str) -> str:
    if len(b) == 1:
        return f"{role} address {b[0] >> 1} (0x{b.hex().upper()})"
    if len(b) == 2:
        upper, lower = b[0] >> 1, b[1] >> 1
    else:
        upper = ((b[0] >> 1) << 7) | (b[1] >> 1)
        lower = ((b[2] >> 1) << 7) | (b[3] >> 1)
    return f"{role} address: logical {upper}, physical {lower} ({len(b)} bytes)"


def _hdlc_control(c: int) -> str:
    pf = (c >> 4) & 1
    if c & 0x01 == 0:
        return f"control 0x{c:02X}: I-frame N(S)={(c >> 1) & 7} N(R)={(c >> 5) & 7} P/F={pf} (carries data)"
    if c & 0xEF == 0x03:
        return f"control 0x{c:02X}: UI frame (unnumbered information), P/F={pf}"
    return f"control 0x{c:02X}: supervisory/unnumbered frame (no data)"


def _hdlc_frame(o: _Out, f: HdlcFrame, index: int, count: int, llc: bytes | None, first: bool) -> None:
    raw = f.raw
    length = f.format & 0x7FF
    seg = "segmented: more segments follow" if f.format & 0x0800 else "not segmented (last or only segment)"
    which = f"HDLC frame {index} of {count}" if count > 1 else "HDLC frame"
    o.title(f"{which} · stream offset {f.offset} · {len(raw)} bytes")
    o.row(0, raw[:1], "opening flag")
    o.row(1, raw[1:3], f"format: frame type 3 (0x{f.format >> 12:X}), {seg}, length {length}")
    p = 3
    o.row(p, f.dest, _hdlc_address(f.dest, "destination (client)"))
    p += len(f.dest)
    o.row(p, f.src, _hdlc_address(f.src, "source (server)"))
    p += len(f.src)
    o.row(p, raw[p : p + 1], _hdlc_control(f.control))
    p += 1
    if f.info:
        o.row(p, raw[p : p + 2], "HCS (header checksum): ok")
        p += 2
        info = f.info
        if first and llc is not None and info[:3] == llc:
            kind = "response" if llc[1] == 0xE7 else "command"
            o.row(p, llc, f"LLC: destination LSAP E6, source LSAP {llc[1]:02X} ({kind}), quality 00")
            p += 3
            info = info[3:]
        o.row(p, info, "information: the APDU (or its segment), below")
        p += len(info)
    fcs = raw[len(raw) - 2 :]
    o.row(len(raw) - 2, fcs, "FCS (frame checksum): " + ("ok" if f.fcs_ok else "WRONG: the frame is corrupted"))
    o.row(len(raw), b"\x7e", "closing flag (may open the next frame)")


def _mbus_frame(o: _Out, f, index: int, count: int) -> None:
    raw = f.raw
    which = f"M-Bus long frame {index} of {count}" if count > 1 else "M-Bus long frame"
    o.title(f"{which} · stream offset {f.offset} · {len(raw)} bytes")
    lf = f"L-field {f.l_field}"
    if f.wrapped:
        lf = f"L-field 0x{f.l_field:02X} wrapped: {f.length} user-data bytes (L + 256, a Sagemcom quirk)"
    o.row(0, raw[:4], f"start 68, {lf} (sent twice), start 68")
    o.row(4, raw[4:5], f"C-field 0x{f.c:02X}: " + C_FIELDS.get(f.c, "control"))
    if f.length < 5:  # too short for A, CI, STSAP and DTSAP
        o.row(5, raw[5 : 4 + f.length], "the rest of the user data (too short for a DLMS segment)")
    elif f.length >= 2:
        o.row(5, raw[5:6], f"A-field 0x{f.a:02X}" + (" (broadcast)" if f.a in (0xFE, 0xFF) else f" (address {f.a})"))
    if f.length < 5:
        pass
    elif f.ci <= 0x1F:
        what = "last segment" if f.ci & 0x10 else "more segments follow"
        o.row(6, raw[6:7], f"CI 0x{f.ci:02X}: DLMS segment {f.ci & 0x0F}, {what}")
        o.row(7, raw[7:9], f"STSAP 0x{raw[7]:02X}, DTSAP 0x{raw[8]:02X} (stripped)")
        o.row(9, raw[9 : 4 + f.length], "segment of the APDU, below")
    else:
        o.row(6, raw[6:7], f"CI 0x{f.ci:02X}: not a DLMS transport segment")
        o.row(7, raw[7 : 4 + f.length], "user data")
    o.row(4 + f.length, raw[4 + f.length : 5 + f.length], "checksum: " + ("ok" if f.ok else "WRONG"))
    o.row(5 + f.length, raw[5 + f.length : 6 + f.length], "stop 16")


def _link(o: _Out, msg, block=None, block_index: int = 0, blocks: int = 0) -> None:
    if isinstance(msg, HdlcMessage):
        n = len(msg.frames)
        for i, f in enumerate(msg.frames, 1):
            _hdlc_frame(o, f, i, n, msg.llc, i == 1)
    elif isinstance(msg, MbusMessage):
        n = len(msg.frames)
        for i, f in enumerate(msg.frames, 1):
            _mbus_frame(o, f, i, n)
    if block is not None:
        o.title(f"General-block-transfer block {block.number} ({block_index} of {blocks})")
        what = ("last block" if block.last else "more blocks follow") + (", streaming" if block.streaming else "")
        o.row(0, b"\xe0", "general-block-transfer (0xE0)")
        o.row(1, bytes((block.control,)), f"block control 0x{block.control:02X}: {what}, window {block.window}")
        o.row(2, block.number.to_bytes(2, "big"), f"block number {block.number}")
        o.row(4, block.ack.to_bytes(2, "big"), f"acknowledged block number {block.ack}")
        o.row(6, block.length_bytes, f"block data length {len(block.data)}")
        o.row(block.header_length, block.data, "block data (joined in order, below)")


def _links(o: _Out, layers) -> None:
    links = layers.links or ((layers.link,) if layers.link is not None else ())
    gbt = layers.gbt
    if gbt is not None:
        blocks = gbt.blocks
        for i, block in enumerate(blocks):
            _link(o, links[i] if i < len(links) else None, block, i + 1, len(blocks))
        o.title(f"General-block-transfer: {len(blocks)} blocks joined into {len(gbt.payload)} bytes")
    else:
        for msg in links:
            _link(o, msg)
    if not links and gbt is None:
        if getattr(layers, "transport", "") == "p1":
            o.title("No link layer: a P1 text telegram, framed by its '/' header and '!' end line")
        else:
            o.title("No link layer: a bare APDU")


# -- APDU layers ---------------------------------------------------------------------
def _ciphered(o: _Out, c, wire: bytes, verified: bool, failed: bool) -> None:
    name = {0xDB: "general-glo-ciphering", 0xDC: "general-ded-ciphering"}.get(c.tag, f"ciphered APDU 0x{c.tag:02X}")
    o.title(f"{name.capitalize()} APDU · {len(wire)} bytes")
    o.row(0, wire[:1], f"{name} (0x{c.tag:02X})")
    p = 1
    if c.tag in (0xDB, 0xDC):
        st = c.system_title or b""
        o.row(1, wire[1:2], f"system title length {len(st)}")
        if st:
            flag = st[:3]
            maker = flag.decode("ascii", "replace") if all(0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in flag) else None
            who = f'"{maker}" = {MANUFACTURERS.get(maker.upper(), "manufacturer " + maker)}' if maker else "no FLAG id"
            o.row(2, st, f"system title {st.hex().upper()}: {who}, device {st[3:].hex().upper()}", full=True)
        p = 2 + len(st)
    lbytes = wire[p : c.header_offset]
    o.row(p, lbytes, f"length {len(wire) - c.header_offset}")
    sc = SecurityControl(c.security_control)
    o.row(c.header_offset, bytes((sc.value,)), f"security control 0x{sc.value:02X}: {sc.describe()}")
    o.row(c.header_offset + 1, c.invocation_counter.to_bytes(4, "big"), f"invocation counter {c.invocation_counter}")
    start = c.header_offset + 5
    body_what = "plaintext APDU (authenticated only)" if not sc.encrypted else "ciphertext"
    o.row(start, c.body, body_what)
    if c.auth_tag is not None:
        state = "verified" if verified else ("not checked (no authentication key)" if not failed else "see below")
        o.row(start + len(c.body), c.auth_tag, f"authentication tag (12 bytes): {state}", full=True)
    elif sc.encrypted:
        o.note("(encryption only: no tag, so a wrong key shows up only as an APDU that does not parse)")


def _datetime_text(raw: bytes) -> str:
    t = CosemDateTime.from_bytes(raw)
    parts = []
    try:
        parts.append(t.naive().isoformat(sep=" "))
    except ValueError:
        parts.append("not fully specified")
    parts.append(f"weekday {t.weekday if t.weekday is not None else 'unspecified'}")
    parts.append("deviation unspecified" if t.deviation is None else f"deviation {t.deviation:+d} min")
    st = t.clock_status
    if st is None:
        parts.append("status unspecified")
    else:
        flags = [n for bit, n in ((0x80, "DST"), (0x01, "INVALID"), (0x02, "doubtful")) if st & bit]
        parts.append(f"status 0x{st:02X}" + (f" ({', '.join(flags)})" if flags else ""))
    return ", ".join(parts)


def _notification(o: _Out, push: Push | None, n, plain: bytes) -> None:
    o.title(f"Data-notification (plaintext) · {len(plain)} bytes")
    o.row(0, plain[:1], "data-notification (0x0F)")
    inv = n.invoke_id_and_priority
    flags = []
    if inv & 0x80000000:
        flags.append("high priority")
    if inv & 0x40000000:
        flags.append("service class: confirmed")
    o.row(1, plain[1:5], f"long-invoke-id-and-priority: invoke id {inv & 0xFFFFFF}" + (f", {', '.join(flags)}" if flags else ""))
    if n.datetime is None:
        o.row(5, plain[5:6], "date-time: absent (00)")
    else:
        tagged = n.datetime_encoding == "tagged"
        head = plain[5 : 7 if tagged else 6]
        text = ("date-time as an octet-string (09 0C: a pre-standard form) " if tagged else "date-time ") + _datetime_text(
            n.datetime.raw
        )
        if push is not None and push.timestamp and push.meter_time is n.datetime:
            text += f" → {push.timestamp}"
        o.row(5, head + n.datetime.raw, text, full=True)


def _value_text(d: axdr.Data) -> str:
    tag, v = d
    name = d.type_name.replace("_", "-")
    if tag in (axdr.STRUCTURE, axdr.ARRAY, axdr.COMPACT_ARRAY):
        return f"{name}, {len(v)} element{'s' if len(v) != 1 else ''}"
    if tag == axdr.OCTET_STRING:
        if len(v) == 6 and looks_like_obis(v):
            o = Obis.from_bytes(v)
            nm = obis_name(o)
            return f"octet-string: OBIS {o.dotted}" + (f" ({nm.name})" if nm else "")
        if len(v) == 12 and looks_like_datetime(v):
            return f"octet-string: date-time {_datetime_text(v)}"
        if v and all(0x20 <= b < 0x7F for b in v):
            return f'octet-string "{v.decode("ascii")}"'
        return f"octet-string, {len(v)} bytes"
    if tag in (axdr.VISIBLE_STRING, axdr.UTF8_STRING):
        return f'{name} "{v}"'
    if tag in (axdr.DATE_TIME,):
        return f"date-time {_datetime_text(v)}"
    return f"{name} {v}"


def _register_text(r: Register, with_obis: bool = True) -> str:
    label = r.obis.dotted if r.obis is not None else f"#{r.position}"
    if r.positional:
        label += " (by position)"
    elif not with_obis and r.obis is not None:
        label = ""  # the OBIS code is on the line above
    name = f" {r.name}" if r.name else ""
    if isinstance(r.value, (int, float)) and not isinstance(r.value, bool):
        if r.scaler not in (None, 0) or r.unit:
            value = f"= {r.value}" + (f" {r.unit}" if r.unit else "")
        else:
            value = f"= {r.value} (raw)" if r.scaler is None else f"= {r.value}"
    else:
        value = ""
    return " ".join(f"→ {label}{name} {value}".split())


def _is_descriptor(d: axdr.Data) -> bool:
    if d.tag != axdr.STRUCTURE or len(d.value) != 4:
        return False
    c, ln, a, i = d.value
    return c.tag == axdr.LONG_UNSIGNED and ln.tag == axdr.OCTET_STRING and len(ln.value) == 6 and a.tag == axdr.INTEGER


def _is_scaler_unit(d: axdr.Data) -> bool:
    return d.tag == axdr.STRUCTURE and len(d.value) == 2 and d.value[0].tag == axdr.INTEGER and d.value[1].tag == axdr.ENUM


def _tree(
    o: _Out, node: axdr.Node, plain: bytes, by_pos: dict[int, list[Register]], depth: int, index: int | None, flat: bool
) -> None:
    from obis.units import unit_symbol

    d = node.data
    raw = plain[node.start : node.end]
    if _is_descriptor(d):
        c, ln, a, i = d.value
        ob = Obis.from_bytes(ln.value)
        nm = obis_name(ob)
        text = f"object: class {c.value}, {ob.dotted}" + (f" {nm.name}" if nm else "") + f", attribute {a.value}"
        o.row(node.start, raw, text, depth=depth)
        return
    if _is_scaler_unit(d):
        s, u = d.value
        o.row(node.start, raw, f"scaler {s.value}, unit {u.value} ({unit_symbol(u.value) or 'none'})", depth=depth)
        return
    text = _value_text(d)
    regs = by_pos.get(index, []) if index is not None else []
    if index == 0 and depth == 1 and by_pos.get(-1) is not None:
        text += "  → list version id"
    if regs and d.tag not in (axdr.STRUCTURE, axdr.ARRAY):
        text += "  " + "; ".join(_register_text(r, not flat) for r in regs)
    if node.children:
        o.row(node.start, plain[node.start : node.body], text, depth=depth)
        if regs and d.tag == axdr.STRUCTURE:
            o.note("  " * depth + "; ".join(_register_text(r) for r in regs), indent=" " * (_OFF + _HEX))
        for k, child in enumerate(node.children):
            _tree(o, child, plain, by_pos, depth + 1, k if depth == 0 else None, flat)
        return
    o.row(node.start, raw, text, depth=depth)


def _body(o: _Out, push: Push | None, tree: axdr.Node, plain: bytes) -> None:
    o.title("Notification body (A-XDR)")
    by_pos: dict[int, list[Register]] = {}
    if push is not None:
        for r in push.registers:
            by_pos.setdefault(r.position, []).append(r)
    if push is not None and push.list_id and tree.children:
        first = tree.children[0]
        if first.data.tag in (axdr.VISIBLE_STRING, axdr.OCTET_STRING) and not by_pos.get(0):
            by_pos[-1] = []  # marks element 0 as the list id (it is Push.list_id, not a register)
    flat = push is not None and push.shape in ("flat_pairs", "flat_triples")
    _tree(o, tree, plain, by_pos, 0, None, flat)


def _telegram(o: _Out, push: Push | None, t, plaintext: bool = False) -> None:
    o.title(f"P1 text telegram{' (the plaintext)' if plaintext else ''} · {len(t.raw)} bytes")
    o.row(0, t.raw[:1], f"header: /{t.header}")
    regs = {r.position: r for r in push.registers} if push is not None else {}
    for i, line in enumerate(t.lines):
        r = regs.get(i)
        text = line.text
        if r is not None and r.obis is not None:
            text += "  " + _register_text(r)
        o.row(line.offset, line.text.encode("latin-1")[:BYTES_PER_LINE], text)
    if t.crc is None:
        o.note("no CRC after '!' (not checked)")
    else:
        o.note(f"CRC {t.crc:04X}: " + ("ok" if t.crc_ok else f"WRONG (computed {t.crc_computed:04X})"))


def _summary(o: _Out, push: Push) -> None:
    o.title("Result")
    o.note(f"profile: {push.profile or 'none matched'}" + (f" · list {push.list_id}" if push.list_id else "") + f" · shape {push.shape}")
    if push.timestamp:
        utc = push.timestamp_utc.isoformat() if push.timestamp_utc else "unknown (no deviation, no time zone)"
        o.note(f"meter time: {push.timestamp} (local{', ' + push.timezone if push.timezone else ''}) · UTC {utc}")
    for note in push.notes:
        o.note("note: " + note)


class ExplainWriter:
    """Writes the annotated dump of each push and of each failed frame."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.count = 0

    def _emit(self, o: _Out) -> None:
        if self.count > 1:
            self.out.write("\n")
        self.out.write("\n".join(o.lines) + "\n")

    def write(self, push: Push) -> None:
        self.count += 1
        o = _Out()
        layers = push.layers
        offset = getattr(layers, "offset", 0)
        transport = getattr(layers, "transport", "") or "?"
        o.rule(f"push {self.count} · offset {offset} · {transport.upper()} · decoded")
        if layers is not None:
            _links(o, layers)
            if layers.ciphered is not None:
                _ciphered(o, layers.ciphered, layers.wire, layers.verified, False)
            if layers.telegram is not None:
                _telegram(o, push, layers.telegram, layers.ciphered is not None)
            elif layers.notification is not None:
                _notification(o, push, layers.notification, layers.apdu)
                if layers.tree is not None:
                    _body(o, push, layers.tree, layers.apdu)
        _summary(o, push)
        self._emit(o)

    def error(self, err: DecodeError, label: str = "") -> None:
        self.count += 1
        o = _Out()
        offset = err.offset or 0
        if isinstance(err, NotAFrame):
            n = err.length
            o.rule(f"offset {offset} · not a frame")
            o.note(err.one_line() + (f" [{n} bytes]" if n is not None and str(n) not in err.message else ""))
            self._emit(o)
            return
        o.rule(f"frame at offset {offset} · FAILED ({err.layer}: {err.reason.replace('_', ' ')})")
        frame = err.frame if isinstance(err, FramingError) else None
        partial = err.partial
        if isinstance(frame, HdlcFrame):
            _hdlc_frame(o, frame, 1, 1, None, True)
        elif frame is not None and hasattr(frame, "ci"):
            _mbus_frame(o, frame, 1, 1)
        elif err.raw:
            raw = err.raw
            o.title(f"{len(raw)} bytes as received")
            o.row(0, raw, "the frame (header, then the rest)")
        if partial is not None:
            _links(o, partial)
            if partial.ciphered is not None:
                _ciphered(o, partial.ciphered, partial.wire, partial.verified, True)
            elif partial.wire:
                o.title(f"APDU · {len(partial.wire)} bytes")
                o.row(0, partial.wire, "the APDU as received")
        o.title("✗ failed here")
        o.note(err.one_line())
        self._emit(o)

    def close(self) -> None:
        pass
