"""P1 text telegrams (DSMR, e-MUCS, Swedish HAN, plain Smarty) delimited in a byte stream, sans-IO.

::

    /ISK5\\2M550T-1012\\r\\n        header: '/', 3-letter maker, baud digit, identification
    \\r\\n                          an empty line
    1-0:1.8.1(001234.567*kWh)\\r\\n  one COSEM object per line (values parsed by decoders.xdlms.dsmr)
    ...
    !6EEE\\r\\n                     '!', CRC-16/ARC over '/' .. '!' as 1-4 hex digits (DSMR >= 4)
    !\\r\\n                         DSMR 2.2 / 3.0: no CRC

:class:`P1Framer` turns a stream into :class:`P1Telegram` values (CRC
checked) and :class:`~decoders.errors.DecodeError` reports: noise between
telegrams (:class:`NotAFrame`, one per run), a telegram whose CRC fails
(:class:`ChecksumError`: it gives no values), one torn by a new ``/``
header before its ``!`` or cut by the end of input (:class:`TruncatedFrame`),
and one with a malformed end line.  After each it resynchronises at the next
``/``.  A meter that sent CRCs does not lose them: a later telegram without
one is refused as torn at its end line.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ChecksumError, FramingError, TruncatedFrame
from .crc import crc16_arc
from .receivebuffer import BufferFramer, ReceiveBuffer

#: the longest telegram waited for (DSMR 5 allows 1024 characters per text message; real telegrams
#: with four M-Bus channels stay under 3 kB): noise with a '/' cannot make the framer hold more
MAX_TELEGRAM = 8192
#: bytes after a telegram without CRC taken as its trailer rather than noise (a gateway's, e.g.
#: EasyMeter Q3D behind a COM-1: "  25803103" and a row of 0xFF before the next telegram)
TRAILER = 256
_HEX = frozenset(b"0123456789ABCDEFabcdef")
_LETTER = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_PRINTABLE = frozenset(range(0x20, 0x7F)) - {0x2F}
HINT = "noise, a telegram cut by the start of logging, or wrong serial settings such as 115200 8N1 vs 9600 7E1"


@dataclass(frozen=True, slots=True)
class P1Telegram:
    raw: bytes  #: '/' through the end line, CRLF included
    offset: int  #: stream offset of the '/'
    crc: int | None  #: the CRC as sent (checked), None for a DSMR 2.2/3 telegram that carries none


def plausible_header(buf: bytes | bytearray, p: int) -> bool | None:
    """``buf[p:]`` starts like a telegram header (``/XXX`` and a baud character: a 3-letter maker id,
    then a digit in DSMR, ``-`` for some heat meters); None while too few bytes have arrived."""
    if len(buf) < p + 5:
        tail = buf[p + 1 :]
        return None if all(b in _LETTER for b in tail[:3]) and all(b in _PRINTABLE for b in tail[3:]) else False
    return buf[p + 1] in _LETTER and buf[p + 2] in _LETTER and buf[p + 3] in _LETTER and buf[p + 4] in _PRINTABLE


def _end(buf: bytes | bytearray, bang: int, final: bool) -> tuple[int, int | None] | str:
    """(end, crc) of the end line at ``buf[bang]`` == '!'; ``"more"`` while incomplete; ``"bad"`` when malformed."""
    nl = buf.find(b"\n", bang + 1, bang + 16)
    if nl == -1:
        if len(buf) - bang < 16 and not final:
            return "more"
        tail = bytes(buf[bang + 1 : bang + 16]).rstrip(b"\r")
        if final and 0 < len(tail) <= 4 and all(b in _HEX for b in tail):
            return len(buf), int(tail, 16)  # the last telegram of a file, its CRLF missing
        return "bad"
    digits = bytes(buf[bang + 1 : nl]).rstrip(b"\r").rstrip(b" ")
    if not digits:
        return nl + 1, None
    if len(digits) <= 4 and all(b in _HEX for b in digits):
        return nl + 1, int(digits, 16)
    return "bad"


def probe(buf: bytes | bytearray, p: int, final: bool = False) -> str:
    """What starts at ``buf[p]``: ``frame`` (a whole telegram, CRC good or absent), ``more``, ``bad``
    (a telegram whose CRC fails), ``badhead`` (a header whose end never came) or ``no``.  Never raises."""
    head = plausible_header(buf, p)
    if head is None:
        return "no" if final else "more"
    if not head:
        return "no"
    bang = buf.find(b"!", p, p + MAX_TELEGRAM)
    if bang == -1:
        return "badhead" if final or len(buf) - p >= MAX_TELEGRAM else "more"
    torn = buf.find(b"/", p + 1, bang)
    while torn != -1 and plausible_header(buf, torn) is False:
        torn = buf.find(b"/", torn + 1, bang)
    if torn != -1:
        return "badhead"
    end = _end(buf, bang, final)
    if end == "more":
        return "more"
    if end == "bad":
        return "bad"
    crc = end[1]  # type: ignore[index]
    if crc is None:
        return "frame" if buf.find(b"(", p, bang) != -1 else "no"
    return "frame" if crc16_arc(buf[p : bang + 1]) == crc else "bad"


class P1Framer(BufferFramer):
    """Sans-IO splitter of a stream of P1 text telegrams, the CRC checked.

    Buffer policy (a :class:`~decoders.link.receivebuffer.ReceiveBuffer`): at
    most one candidate telegram (bounded by :data:`MAX_TELEGRAM`) plus the
    unprocessed rest of the last ``feed``.
    """

    def __init__(self) -> None:
        self._rb = ReceiveBuffer("P1 telegram", HINT, MAX_TELEGRAM)
        self._crc_seen = False  #: this meter sends CRCs: a telegram without one lost its end line

    def _scan(self, out: list, final: bool) -> None:
        rb = self._rb
        buf = rb.data
        base = rb.base
        n = len(buf)
        p = rb.start
        while p < n:
            if buf[p] != 0x2F:  # '/'
                q = buf.find(b"/", p)
                q = n if q == -1 else q
                rb.skip(p, q - p)
                p = q
                continue
            head = plausible_header(buf, p)
            if head is None and not final:
                break
            if not head:
                rb.skip(p, 1)
                p += 1
                continue
            bang = rb.search(b"!", p)
            # a new header before the '!': this telegram was torn (the meter reset, bytes were lost)
            if bang == -1:  # wait for it (the search resumes where it stopped), within the cap
                if not (final or rb.full(p)):
                    break
                bang = n
            # a new header before the '!': this telegram was torn (the meter reset, bytes were lost)
            torn = buf.find(b"/", p + 1, bang)
            while torn != -1 and not plausible_header(buf, torn):
                torn = buf.find(b"/", torn + 1, bang)
            if torn != -1:
                self._torn(out, p, torn, "a new telegram starts before its '!' end line")
                p = torn
                continue
            if bang == n:
                why = "no '!' end line arrived" if final else f"no '!' within {MAX_TELEGRAM} bytes"
                self._torn(out, p, n, why)
                p = n
                continue
            end = _end(buf, bang, final)
            if end == "more":
                break
            if end == "bad":
                line = bytes(buf[bang : bang + 12]).split(b"\n")[0].rstrip(b"\r")
                err = FramingError(
                    f"P1 telegram at offset {base + p}: its end line {line!r} is not '!' and a 4-digit hex CRC"
                    f" ({HINT})",
                    offset=base + p,
                    raw=bytes(buf[p : bang + 1]),
                )
                rb.reject(out, err, absorb=0)
                p = bang + 1
                continue
            stop, crc = end  # type: ignore[misc]
            if crc is None and self._crc_seen:
                self._torn(out, p, stop, "its end line has no CRC although this meter sends one")
                p = stop
                continue
            if crc is not None:
                computed = crc16_arc(buf[p : bang + 1])
                if computed != crc:
                    err = ChecksumError(
                        f"P1 telegram at offset {base + p}: CRC {crc:04X} does not match the computed"
                        f" {computed:04X}, so it gives no values (a corrupted telegram or wrong serial settings)",
                        offset=base + p,
                        raw=bytes(buf[p:stop]),
                    )
                    rb.reject(out, err, absorb=0)
                    p = stop
                    continue
                self._crc_seen = True
            rb.settle(out, absorb=TRAILER if crc is None else 0)
            out.append(P1Telegram(bytes(buf[p:stop]), base + p, crc))
            p = stop
        rb.consume(p)

    def _torn(self, out: list, p: int, q: int, why: str) -> None:
        rb = self._rb
        err = TruncatedFrame(
            f"P1 telegram at offset {rb.offset(p)} is incomplete: {why}; it gives no values",
            offset=rb.offset(p),
            raw=bytes(rb.data[p:q]),
        )
        rb.reject(out, err, absorb=0)


__all__ = ["MAX_TELEGRAM", "P1Framer", "P1Telegram", "plausible_header", "probe"]
