"""What an edge bridge publishes, unpacked into the bytes a stream decoder takes (sans-IO).

One MQTT message is one of these (``format=auto`` tells them apart by their first bytes)::

    binary   7E A0 .. 7E [7E A0 .. 7E ...]    HDLC frames, M-Bus frames (68 L L 68 .. 16), or a bare
             68 L L 68 .. 16                  APDU (DB .., 0F .., E0 ..): the bytes as they are
             DB 08 <system title> ..
    tibber   08 .. 7E A0 .. 7E [.. 7E ..]     Tibber Pulse: an envelope before the 7E flag, and newer
                                              firmware batches several frames in one message; the
                                              HDLC frames are cut out by their length fields
    hex      7EA0..7E / DB08.. / 0201..      amsreader's "HEX dump" mode: upper-case hex text of a frame,
                                              a whole push, or the DLMS body alone (02.. / 01..: a
                                              structure or array, given the data-notification header
                                              0F 00000000 00 that the body lacks; no value is invented)
    json     {"data": "7EA0..7E"}             amsreader's debug topic: the hex in a ``data`` field
    p1       /XXX5\\ident ... !CRC             a P1 text telegram, passed on as is (the stream decoder
                                              recognises P1 telegrams; hex and JSON data may hold one too)

A JSON message without a ``data`` field (a Tibber status message, amsreader's
decoded values) is not meter data: it is ``ignored`` and counted as such.
Anything else is a :class:`PayloadError` with a one-line reason; the worker
counts it and goes on.

A new format plugs in as one function ``bytes -> Payload`` in :data:`UNPACKERS`
(the name is what ``format=`` takes) and, when ``auto`` should recognise it,
one test in :func:`detect`.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass

#: a data-notification header for a bare DLMS body: tag 0F, long-invoke-id 0, no date-time
BODY_HEADER = bytes.fromhex("0F0000000000")
HDLC_FLAG = 0x7E


class PayloadError(ValueError):
    """A message that is not meter data in the format asked for; ``reason`` is its count's name."""

    def __init__(self, message: str, reason: str = "malformed_payload") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Payload:
    kind: str  #: binary, tibber, hex, json, p1, ignored
    data: bytes  #: what the stream decoder gets (empty when ignored)
    note: str = ""  #: why a message was ignored


def _binary(message: bytes) -> Payload:
    if not message:
        raise PayloadError("an empty message")
    first = message[0]
    if first in (HDLC_FLAG, 0x68, 0xDB, 0xDC, 0xDD, 0x0F, 0xE0):
        return Payload("binary", message)
    if HDLC_FLAG in message:
        return _tibber(message)
    raise PayloadError(
        f"{len(message)} byte(s) starting {message[:4].hex(' ').upper()} are no HDLC or M-Bus frame, APDU,"
        " hex text, JSON or P1 telegram"
    )


def _tibber(message: bytes) -> Payload:
    """The HDLC frames inside a Tibber Pulse message, cut out by their length fields (envelopes skipped)."""
    frames = bytearray()
    i = message.find(HDLC_FLAG)
    while 0 <= i < len(message) - 2:
        if message[i + 1] & 0xF0 == 0xA0:
            length = ((message[i + 1] & 0x07) << 8) | message[i + 2]
            end = i + 1 + length
            if length >= 7 and end < len(message) and message[end] == HDLC_FLAG:
                frames += message[i : end + 1]
                i = message.find(HDLC_FLAG, end + 1)
                continue
        i = message.find(HDLC_FLAG, i + 1)
    if not frames:
        raise PayloadError(
            f"{len(message)} byte(s) starting {message[:4].hex(' ').upper()} hold a 7E flag but no whole HDLC frame"
            " (a Tibber envelope around a truncated frame?)"
        )
    return Payload("tibber", bytes(frames))


def _hex(message: bytes, kind: str = "hex") -> Payload:
    text = message.strip()
    if text[:2] in (b"0x", b"0X"):
        text = text[2:]
    text = text.replace(b" ", b"").replace(b"\n", b"").replace(b"\r", b"")
    try:
        data = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise PayloadError(f"{kind}: {len(message)} character(s) that are not whole hex pairs") from None
    if not data:
        raise PayloadError(f"{kind}: no hex digits")
    if data[0] in (0x01, 0x02):  # the DLMS body alone (amsreader): a structure or an array
        return Payload(kind, BODY_HEADER + data)
    return Payload(kind, data)


def _json(message: bytes) -> Payload:
    try:
        doc = json.loads(message)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"json: not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(doc, dict) or "data" not in doc:
        return Payload("ignored", b"", "a JSON message without a data field (a status or values message)")
    data = doc["data"]
    if not isinstance(data, str):
        raise PayloadError(f"json: the data field must be hex text, got {type(data).__name__}")
    return _hex(data.encode("ascii", "replace"), "json")


def _p1(message: bytes) -> Payload:
    """P1 text telegrams: passed on as they are; the stream decoder recognises them (decoders.detect)."""
    return Payload("p1", message)


def _is_hex(message: bytes) -> bool:
    text = message.strip()
    if text[:2] in (b"0x", b"0X"):
        text = text[2:]
    return bool(text) and text.isascii() and all(c in b"0123456789abcdefABCDEF \r\n" for c in text)


def detect(message: bytes) -> str:
    """The format of one message (``format=auto``), by its first bytes."""
    head = message.lstrip()[:1]
    if head == b"{":
        return "json"
    if head == b"/":
        return "p1"
    if _is_hex(message):
        return "hex"
    return "binary"


#: format name -> unpacker; ``auto`` picks one by :func:`detect`
UNPACKERS: dict[str, Callable[[bytes], Payload]] = {"binary": _binary, "hex": _hex, "json": _json, "p1": _p1}
FORMATS = ("auto", *UNPACKERS)


def unpack(message: bytes, fmt: str = "auto") -> Payload:
    """One message as decoder input; raises PayloadError in one line."""
    if not message:
        raise PayloadError("an empty message")
    return UNPACKERS[detect(message) if fmt == "auto" else fmt](message)
