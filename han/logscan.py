"""Find the PDUs in a communication log: hex dumps among prose, as people paste them.

Accepted, in any mix::

    Send AARQ request.                                  <- prose: ignored
    7E A0 7C 03 61 10 AA 6B E6 E6 00 60 6E A1 ...        <- spaced bytes, one frame per line
    TX 12:00:01 7EA07C036110AA6BE6E600606EA1...          <- a prefix, then a run of hex
    00000010  7e a0 7c 03 61 10 aa 6b  e6 e6 00 60 ...   <- hexdump -C (offset and ASCII column dropped)
    60 36 A1 09 06 07 60 85 74 05 08 01 01 8A 02 07      <- a raw APDU (no HDLC), possibly
    80 8B 07 ...                                            wrapped over several lines

Consecutive hex lines form a block.  A block starting with 7E is read as
HDLC (frames are delimited by their length field, so frames written one per
line, several per line, or wrapped are all found); any other block as raw
APDUs, split by the lengths the APDUs declare, or else at line ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from decoders.errors import FramingError
from decoders.link.hdlc import LLC_COMMAND, LLC_RESPONSE, HdlcFrame, HdlcFramer, HdlcReassembler
from decoders.lengths import read_length
from decoders.xdlms.tags import DED_SERVICE_TAGS, GLO_SERVICE_TAGS

_TOKEN = re.compile(r"^(?:0[xX])?((?:[0-9A-Fa-f]{2})+)[,;]?$")
#: the offset column of ``hexdump -C`` ("00000010  7e a0 ..."), which is not data
_OFFSET = re.compile(r"^\s*[0-9A-Fa-f]{8}  ")
MIN_RUN = 3  #: bytes: shorter runs of hex-looking words ("be", "add") are prose
LONG_RUN = 8  #: bytes: a run this long is data even with words around it


@dataclass(frozen=True, slots=True)
class LoggedPdu:
    """One APDU found in the log, with the link-layer facts around it."""

    line: int  #: 1-based line where it starts
    apdu: bytes
    frames: tuple[HdlcFrame, ...] = ()  #: the HDLC frame(s) that carried it (empty for raw APDUs)
    llc: bytes | None = None
    #: "client" or "server" when the link layer says so (LLC E6 E6 / E6 E7)
    link_direction: str | None = None


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """An HDLC frame without an APDU (SNRM, UA, DISC, RR ...) or a framing problem."""

    line: int
    text: str
    problem: bool = False


@dataclass(frozen=True, slots=True)
class LogScan:
    pdus: tuple[LoggedPdu, ...]
    events: tuple[LinkEvent, ...]
    hex_lines: int
    hdlc_frames: int


def _hex_run(line: str, continuation: bool = False) -> bytes | None:
    """The longest run of hex tokens on a line, or None when the line is prose.

    A run counts when it is long (LONG_RUN bytes), or most of the line and at
    least MIN_RUN bytes ("dead beef" in a sentence is prose).  Right after a
    hex line (``continuation``) a short tail of a wrapped frame counts too.
    """
    tokens = _OFFSET.sub("", line).split()
    best: list[str] = []
    run: list[str] = []
    for token in tokens:
        m = _TOKEN.match(token)
        if m:
            run.append(m.group(1))
            continue
        if sum(len(t) for t in run) > sum(len(t) for t in best):
            best = run
        run = []
    if sum(len(t) for t in run) > sum(len(t) for t in best):
        best = run
    data = bytes.fromhex("".join(best)) if best else b""
    if len(data) >= LONG_RUN:
        return data
    if not data or len(best) < 0.6 * len(tokens) or (len(data) < MIN_RUN and not continuation):
        return None
    return data


def _blocks(text: str) -> tuple[list[list[tuple[int, bytes]]], int]:
    blocks: list[list[tuple[int, bytes]]] = []
    current: list[tuple[int, bytes]] = []
    count = 0
    for number, line in enumerate(text.splitlines(), 1):
        data = _hex_run(line, continuation=bool(current))
        if data is None:
            if current:
                blocks.append(current)
                current = []
            continue
        count += 1
        current.append((number, data))
    if current:
        blocks.append(current)
    return blocks, count


def apdu_extent(data: bytes) -> int | None:
    """Total length of the APDU at the start of ``data`` when its header says so, else None."""
    try:
        tag = data[0]
        if 0x60 <= tag <= 0x63 or tag in GLO_SERVICE_TAGS or tag in DED_SERVICE_TAGS:
            length, pos = read_length(data, 1)
            return pos + length
        if tag in (0xDB, 0xDC):
            length, pos = read_length(data, 2 + data[1])
            return pos + length
        if tag == 0x0E:
            return 4
        if tag == 0xD8:
            return 7 if data[2] == 6 else 3
    except (IndexError, ValueError):
        return None
    return None


_U_FRAMES = {0x83: "SNRM", 0x63: "UA", 0x43: "DISC", 0x0F: "DM", 0x87: "FRMR"}


def hdlc_address(raw: bytes) -> str:
    """An HDLC address as on the wire and decoded: ``61 (48)``, ``0223 (logical 1, physical 17)``."""
    if len(raw) == 1:
        return f"{raw.hex().upper()} ({raw[0] >> 1})"
    half = len(raw) // 2
    upper = lower = 0
    for b in raw[:half]:
        upper = (upper << 7) | (b >> 1)
    for b in raw[half:]:
        lower = (lower << 7) | (b >> 1)
    return f"{raw.hex().upper()} (logical {upper}, physical {lower})"


def frame_name(control: int) -> str:
    if control & 0x01 == 0:
        return f"I-frame N(S)={(control >> 1) & 7} N(R)={control >> 5}"
    if control & 0x03 == 0x01:
        kind = {0x01: "RR", 0x05: "RNR"}.get(control & 0x0F, "S-frame")
        return f"{kind} N(R)={control >> 5}"
    if control & 0xEF == 0x03:
        return "UI frame"
    return _U_FRAMES.get(control & 0xEF, f"frame with control 0x{control:02X}")


def _scan_hdlc(block: list[tuple[int, bytes]], pdus: list, events: list) -> int:
    data = b"".join(chunk for _line, chunk in block)
    starts: list[tuple[int, int]] = []  # (offset, line)
    offset = 0
    for line, chunk in block:
        starts.append((offset, line))
        offset += len(chunk)

    def line_at(pos: int) -> int:
        return max((ln for off, ln in starts if off <= pos), default=block[0][0])

    framer, reassembler = HdlcFramer(), HdlcReassembler()
    frames = 0
    for item in framer.feed(data) + framer.flush():
        if not isinstance(item, HdlcFrame):
            events.append(LinkEvent(line_at(item.offset or 0), item.one_line(), True))
            continue
        frames += 1
        if not item.carries_data or not item.info:
            events.append(LinkEvent(line_at(item.offset), f"HDLC {frame_name(item.control)} (no APDU)"))
            continue
        for message in reassembler.push(item):
            if isinstance(message, FramingError):
                events.append(LinkEvent(line_at(item.offset), message.one_line(), True))
                continue
            direction = {LLC_COMMAND: "client", LLC_RESPONSE: "server"}.get(message.llc)
            if message.payload:
                first = message.frames[0]
                pdus.append(LoggedPdu(line_at(first.offset), message.payload, message.frames, message.llc, direction))
    for rest in reassembler.flush():
        events.append(LinkEvent(block[-1][0], rest.one_line(), True))
    return frames


def _scan_raw(block: list[tuple[int, bytes]], pdus: list, events: list) -> None:
    pending = b""
    pending_line = 0
    for line, chunk in block:
        if not pending:
            pending_line = line
        pending += chunk
        while pending:
            extent = apdu_extent(pending)
            if extent is None or extent > len(pending):
                break  # unknown length, or wrapped onto the next line
            pdus.append(LoggedPdu(pending_line, pending[:extent]))
            pending = pending[extent:]
            pending_line = line
        if pending and apdu_extent(pending) is None:
            pdus.append(LoggedPdu(pending_line, pending))  # no length to go by: the line ends it
            pending = b""
    if pending:
        pdus.append(LoggedPdu(pending_line, pending))  # shorter than declared: the decoder reports it


def scan_log(text: str) -> LogScan:
    blocks, hex_lines = _blocks(text)
    pdus: list[LoggedPdu] = []
    events: list[LinkEvent] = []
    frames = 0
    for block in blocks:
        if block[0][1][0] == 0x7E:
            frames += _scan_hdlc(block, pdus, events)
        else:
            _scan_raw(block, pdus, events)
    return LogScan(tuple(pdus), tuple(events), hex_lines, frames)
