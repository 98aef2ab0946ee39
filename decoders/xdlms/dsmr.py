"""DSMR / IEC 62056-21 P1 text telegrams: the syntax, for every way one arrives.

A telegram comes from a P1 port (framed by :mod:`decoders.link.p1`) or as
the plaintext of a Luxembourg Smarty's ciphered APDU; both are parsed here::

    /XXX5\\identification       header: '/', manufacturer, identification
    (empty line)
    1-3:0.2.8(50)                 one object per line: OBIS(value)(value)...
    1-0:1.8.0(001234.567*kWh)     a value may carry a unit after '*'
    0-1:24.3.0(...)(m3)           DSMR 2.2/3 gas: its value on the next line,
    (00012.345)                   which is joined to the object above
    !1A2B                         '!' and the CRC-16 (ARC: poly 0xA001 reflected, init 0)
                                  over every byte from '/' through '!'

Only the syntax is parsed here, in one pass over the lines and without a
regular expression per line; the OBIS text, numbers and units are turned
into registers by ``obis``.  A CRC that does not match is an error; a
telegram without one (DSMR 2.2/3, some meters) is accepted and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import ApduError
from ..link.crc import crc16_arc

_IDENT = re.compile(r"\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}(?:\*\d{1,3})?")
_CRC = re.compile(r"[0-9A-Fa-f]{1,4}")
#: identifiers seen well-formed (a meter sends the same few dozen again and again)
_GOOD_IDENTS: set[str] = set()


class TelegramLine(NamedTuple):
    ident: str | None  #: the OBIS text (``1-0:1.8.0``), None for a line that is not an object
    values: tuple[str, ...]  #: the text inside each pair of parentheses
    text: str  #: the line as sent (a DSMR 2.2/3 continuation line joined with CRLF)
    offset: int  #: offset of the line in the telegram


#: object lines seen, by their text: a line that repeats is parsed once and comes back as the same
#: object, so obis.interpret.dsmr can tell an unchanged line by identity and keep its register
_KNOWN_LINES: dict[str, TelegramLine] = {}
_KNOWN_MAX = 4096


@dataclass(frozen=True, slots=True)
class Telegram:
    header: str  #: the identification line without the leading '/'
    lines: tuple[TelegramLine, ...]
    crc: int | None  #: the CRC as sent, None when the meter sends none
    crc_computed: int | None  #: the CRC computed over '/' .. '!', None when there is none to compare with
    raw: bytes

    @property
    def crc_ok(self) -> bool | None:
        return None if self.crc is None else self.crc == self.crc_computed


def looks_like_telegram(data: bytes) -> bool:
    return data[:1] == b"/"


def _good_ident(ident: str) -> bool:
    if ident in _GOOD_IDENTS:
        return True
    if _IDENT.fullmatch(ident) is None:
        return False
    if len(_GOOD_IDENTS) >= 4096:
        _GOOD_IDENTS.clear()
    _GOOD_IDENTS.add(ident)
    return True


def parse_telegram(data: bytes, *, crc_checked: bool = False) -> Telegram:
    """Parse one telegram; raises :class:`ApduError` when it is not one, is cut short, or its CRC is wrong.

    ``crc_checked``: the framer has checked the CRC already (it is not computed again).
    Whatever follows the end line (a gateway's trailer) is ignored.
    """
    data = bytes(data)
    if not looks_like_telegram(data):
        raise ApduError("the plaintext is not a DSMR telegram (it does not start with '/')")
    bang = data.find(b"!")
    if bang == -1:
        raise ApduError("DSMR telegram has no '!' end line (truncated)")
    nl = data.find(b"\n", bang)
    tail = data[bang + 1 : nl if nl != -1 else len(data)].decode("latin-1").strip()
    crc: int | None = None
    if tail:
        if not _CRC.fullmatch(tail):
            raise ApduError(f"DSMR telegram ends with {tail[:12]!r} after '!'; a 4-digit hex CRC was expected")
        crc = int(tail, 16)
    computed = None if crc is None else crc if crc_checked else crc16_arc(data[: bang + 1])
    if crc is not None and crc != computed:
        raise ApduError(
            f"DSMR telegram CRC {crc:04X} does not match the computed {computed:04X} (a corrupted telegram)",
            reason="bad_checksum",
        )
    rows = data[:bang].decode("latin-1").split("\n")
    first = rows[0]
    header = (first[:-1] if first[-1:] == "\r" else first)[1:]
    lines: list[TelegramLine] = []
    append = lines.append
    new = tuple.__new__
    good = _GOOD_IDENTS
    known = _KNOWN_LINES
    pos = len(first) + 1
    for row in rows[1:]:
        start = pos
        pos += len(row) + 1
        hit = known.get(row)
        if hit is not None:
            if hit[3] != start:  # the same line at another offset (of another layout): remember it there now
                hit = known[row] = new(TelegramLine, (hit[0], hit[1], hit[2], start))
            append(hit)
            continue
        line = row[:-1] if row[-1:] == "\r" else row
        if not line:
            continue
        i = line.find("(")
        if i > 0 and line[-1] == ")":
            ident = line[:i]
            values = line[i + 1 : -1].split(")(")
            if (ident in good or _good_ident(ident)) and line.count("(") == len(values) == line.count(")"):
                hit = new(TelegramLine, (ident, tuple(values), line, start))
                if len(known) >= _KNOWN_MAX:
                    known.clear()
                known[row] = hit
                append(hit)
                continue
        elif i == 0 and line[-1] == ")" and lines and lines[-1].ident is not None:
            values = line[1:-1].split(")(")
            if line.count("(") == len(values) == line.count(")"):  # DSMR 2.2/3: the value of the line above
                last = lines[-1]
                lines[-1] = TelegramLine(last.ident, last.values + tuple(values), f"{last.text}\r\n{line}", last.offset)
                continue
        append(new(TelegramLine, (None, (), line, start)))
    return Telegram(header, tuple(lines), crc, computed, data)


__all__ = ["Telegram", "TelegramLine", "crc16_arc", "looks_like_telegram", "parse_telegram"]
