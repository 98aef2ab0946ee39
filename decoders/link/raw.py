"""Bare APDUs with no link layer, delimited in a byte stream, sans-IO.

The Luxembourg "Smarty" (Sagemcom T210-D) sends a general-glo-ciphering APDU
on its P1 port with no HDLC or M-Bus around it, one every 10 s.  Ciphered
APDUs carry their own length::

    DB | 08 | system title (8) | BER length | SC | IC (4) | ciphertext [| tag]
    DC   00   (no system title)

so a stream of them is delimited by that length.  A plain data-notification
(``0F``) has no length field: its end is where its A-XDR body ends, so it is
delimited by parsing it.

:class:`RawFramer` turns a stream into :class:`RawApdu` values and
:class:`~decoders.errors.NotAFrame` reports for the bytes between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..xdlms import axdr
from .receivebuffer import BufferFramer, ReceiveBuffer
from ..errors import AxdrError, FramingError, TruncatedFrame
from ..ciphering.control import SecurityControl
from ..lengths import read_length
from ..xdlms.tags import DATA_NOTIFICATION, GENERAL_DED_CIPHERING, GENERAL_GLO_CIPHERING

#: the largest bare APDU accepted (the biggest push seen is ~650 bytes); a
#: bogus length in noise cannot make the framer wait for megabytes
MAX_APDU = 16 * 1024
CIPHERED = (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)


@dataclass(frozen=True, slots=True)
class RawApdu:
    apdu: bytes
    offset: int


def _ciphered_end(buf: bytes | bytearray, p: int, final: bool) -> int | str:
    """End offset of a DB/DC APDU at ``p``; ``"more"`` when incomplete; ``"no"`` when implausible."""
    n = len(buf)
    if p + 2 > n:
        return "no" if final else "more"
    st_len = buf[p + 1]
    if st_len not in (0, 8):
        return "no"
    lpos = p + 2 + st_len
    if lpos >= n:
        return "no" if final else "more"
    first = buf[lpos]
    if first >= 0x80 and lpos + 1 + (first & 0x7F) > n:
        return "no" if final else "more"
    try:
        length, pos = read_length(buf, lpos)
    except (IndexError, ValueError):
        return "no"
    if length < 6 or length > MAX_APDU:  # SC, IC and at least one byte of ciphertext
        return "no"
    if pos < n:
        sc = SecurityControl.of(buf[pos])
        # no compression, a defined suite, and some protection applied
        if not sc.supported or not sc.protected:
            return "no"
        if sc.authenticated and length < 5 + 12:
            return "no"
    end = pos + length
    if end > n:
        return "short" if final else "more"
    return end


def _notification_end(buf: bytes | bytearray, p: int, final: bool) -> int | str:
    """End offset of a plain data-notification at ``p`` (parsed to find it), or ``"more"``/``"no"``."""
    n = len(buf)
    if p + 7 > n:
        return "no" if final else "more"
    pos = p + 5
    first = buf[pos]
    if first == 0x00:
        pos += 1
    elif first == 0x0C:
        pos += 13
    elif first == 0x09 and buf[pos + 1] == 0x0C:
        pos += 14
    else:
        return "no"
    if pos >= n:
        return "no" if final else "more"
    if buf[pos] not in (axdr.STRUCTURE, axdr.ARRAY, axdr.OCTET_STRING):
        return "no"
    window = bytes(buf[pos : p + MAX_APDU])
    try:
        _value, end = axdr.decode_at(window, 0)
    except AxdrError as exc:
        if final or n - p >= MAX_APDU or not exc.truncated:  # malformed, not short: more bytes cannot help
            return "no"
        return "more"
    return pos + end


def probe(buf: bytes | bytearray, p: int, final: bool = False, *, plain: bool = True) -> str:
    """What starts at ``buf[p]``: ``frame``, ``more`` (incomplete) or ``no``.  Never raises."""
    tag = buf[p]
    if tag in CIPHERED:
        r = _ciphered_end(buf, p, final)
    elif tag == DATA_NOTIFICATION and plain:
        r = _notification_end(buf, p, final)
    else:
        return "no"
    if r == "short":
        return "bad"
    return r if isinstance(r, str) else "frame"


def end_of(buf: bytes | bytearray, p: int) -> int:
    """Where the bare APDU that :func:`probe` called a ``frame`` at ``p`` ends (``len(buf)`` if unsure)."""
    r = _ciphered_end(buf, p, True) if buf[p] in CIPHERED else _notification_end(buf, p, True)
    return r if isinstance(r, int) else len(buf)


class RawFramer(BufferFramer):
    """Sans-IO splitter of a stream of bare APDUs (``DB``/``DC`` ciphered, ``0F`` plain).

    Bytes before, between or after the APDUs are reported once per run as
    :class:`NotAFrame`.  Buffer policy (a
    :class:`~decoders.link.receivebuffer.ReceiveBuffer`): at most one candidate
    APDU (bounded by :data:`MAX_APDU`) plus the unprocessed rest of the last ``feed``.
    """

    def __init__(self) -> None:
        self._rb = ReceiveBuffer("APDU", "noise, a partial APDU, or not DLMS data", MAX_APDU)
        self._seen = False

    def _scan(self, out: list, final: bool) -> None:
        rb = self._rb
        buf = rb.data
        base = rb.base
        end = len(buf)
        p = rb.start
        while p < end:
            tag = buf[p]
            if tag in CIPHERED:
                r = _ciphered_end(buf, p, final)
            elif tag == DATA_NOTIFICATION:
                r = _notification_end(buf, p, final)
            else:
                r = "no"
            if r == "more":
                break
            if final and r in ("no", "short") and base + p == 0 and not self._seen and (
                tag in CIPHERED or tag == DATA_NOTIFICATION
            ):
                # a single pasted APDU that does not delimit cleanly: hand it over whole, so that
                # the APDU layer names what is wrong with it (length, left-over bytes, A-XDR)
                out.append(RawApdu(bytes(buf[p:end]), base + p))
                p = end
                break
            if r == "short":
                # a plausible ciphered header whose body never arrived: say so rather than "noise"
                err = TruncatedFrame(
                    f"ciphered APDU at offset {base + p} is truncated: its length field says more bytes"
                    f" than the {end - p} that arrived",
                    offset=base + p,
                    raw=bytes(buf[p:end]),
                )
                rb.reject(out, err, absorb=0)
                p = end
                break
            if r == "no":
                rb.skip(p, 1)
                p += 1
                continue
            rb.settle(out)
            self._seen = True
            out.append(RawApdu(bytes(buf[p:r]), base + p))
            p = r  # type: ignore[assignment]
        rb.consume(p)


__all__ = ["RawApdu", "RawFramer", "end_of", "probe", "MAX_APDU"]
