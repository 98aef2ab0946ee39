"""DSMR / IEC 62056-21 P1 text telegrams (the plaintext of the Luxembourg Smarty's ciphered APDU).

::

    /XXX5\\identification       header: '/', manufacturer, identification
    (empty line)
    1-3:0.2.8(50)                 one object per line: OBIS(value)(value)...
    1-0:1.8.0(001234.567*kWh)     a value may carry a unit after '*'
    !1A2B                         '!' and the CRC-16 (ARC: poly 0xA001 reflected, init 0)
                                  over every byte from '/' through '!'

Only the syntax is parsed here; the OBIS text, numbers and units are turned
into registers by ``obis``.  A CRC that does not match is an error; a
telegram without one (some meters omit it) is accepted and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ApduError
from ..link.crc import crc16_arc  # noqa: F401 - the P1 checksum, shared with the P1 framer and writer

_LINE = re.compile(r"^(\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}(?:\*\d{1,3})?)((?:\([^()]*\))+)\s*$")
_VALUES = re.compile(r"\(([^()]*)\)")

@dataclass(frozen=True, slots=True)
class TelegramLine:
    ident: str | None  #: the OBIS text (``1-0:1.8.0``), None for a line that is not an object
    values: tuple[str, ...]  #: the text inside each pair of parentheses
    text: str  #: the line as sent
    offset: int  #: offset of the line in the telegram


@dataclass(frozen=True, slots=True)
class Telegram:
    header: str  #: the identification line without the leading '/'
    lines: tuple[TelegramLine, ...]
    crc: int | None  #: the CRC as sent, None when the meter sends none
    crc_computed: int
    raw: bytes

    @property
    def crc_ok(self) -> bool | None:
        return None if self.crc is None else self.crc == self.crc_computed


def looks_like_telegram(data: bytes) -> bool:
    return data[:1] == b"/"


def parse_telegram(data: bytes) -> Telegram:
    """Parse one telegram; raises :class:`ApduError` when it is not one, is cut short, or its CRC is wrong."""
    data = bytes(data)
    if not looks_like_telegram(data):
        raise ApduError("the plaintext is not a DSMR telegram (it does not start with '/')")
    bang = data.find(b"!")
    if bang == -1:
        raise ApduError("DSMR telegram has no '!' end line (truncated)")
    text = data[: bang + 1].decode("latin-1")
    tail = data[bang + 1 :].decode("latin-1").strip()
    crc: int | None = None
    if tail:
        if not re.fullmatch(r"[0-9A-Fa-f]{4}", tail[:4]) or tail[4:].strip():
            raise ApduError(f"DSMR telegram ends with {tail[:12]!r} after '!'; a 4-digit hex CRC was expected")
        crc = int(tail[:4], 16)
    computed = crc16_arc(data[: bang + 1])
    if crc is not None and crc != computed:
        raise ApduError(
            f"DSMR telegram CRC {crc:04X} does not match the computed {computed:04X} (a corrupted telegram)",
            reason="bad_checksum",
        )
    raw_lines = text.split("\n")
    header = raw_lines[0].rstrip("\r")[1:]
    lines: list[TelegramLine] = []
    pos = len(raw_lines[0]) + 1
    for raw in raw_lines[1:]:
        line = raw.rstrip("\r")
        start = pos
        pos += len(raw) + 1
        if not line or line == "!":
            continue
        m = _LINE.match(line)
        if m:
            lines.append(TelegramLine(m.group(1), tuple(_VALUES.findall(m.group(2))), line, start))
        else:
            lines.append(TelegramLine(None, (), line, start))
    return Telegram(header, tuple(lines), crc, computed, data)


__all__ = ["Telegram", "TelegramLine", "crc16_arc", "looks_like_telegram", "parse_telegram"]
