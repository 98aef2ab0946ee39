"""A byte stream cut into whole frames, for forwarding them one message each (the edge bridge), sans-IO.

``feed(bytes)`` returns the :class:`Piece` values the bytes completed, in
stream order; ``flush()`` ends the input (an idle line, a closed port) and
returns what is left.  Every byte that goes in comes out once, in order::

    stream:  7E A0.. 7E 7E A0.. 7E 00 00 7E A0.. 7E
             '--frame-' '--frame-' noise '--frame-'
    pieces:  Piece(frame, "hdlc")  Piece(frame, "hdlc")  Piece(b"\\0\\0", "")  Piece(frame, "hdlc")

A frame is what the link layer's own framer accepts (HDLC with good HCS and
FCS, an M-Bus long frame with a good checksum, a bare ciphered or plain
APDU); the link layer is recognised as the stream decoder does it
(:class:`~decoders.link.detect.TransportDetector`) or forced.  HDLC frames
go out with both flags (a flag shared by two frames is given to each;
flags with nothing between them are delimiters, not data).
Bytes no framer accepts (noise, a frame with a bad checksum, a frame cut
short) come out as unframed pieces, so the receiver reports them: they are
joined while they run, and cut at :data:`MAX_UNFRAMED` bytes so that
a line of noise never grows the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

from .detect import TransportDetector
from .hdlc import FLAG, HdlcFrame, HdlcFramer
from .mbus import MbusFrame, MbusFramer
from .raw import RawApdu, RawFramer

TRANSPORTS = ("auto", "hdlc", "mbus", "raw")
#: the longest unframed piece: noise beyond it goes out in pieces of this size
MAX_UNFRAMED = 4096
_FLAG = bytes((FLAG,))


@dataclass(frozen=True, slots=True)
class Piece:
    """One message's worth of the stream: a whole frame (``kind`` = its link layer) or unframed bytes (``""``)."""

    data: bytes
    kind: str  #: "hdlc", "mbus", "raw", or "" for bytes no framer accepted
    offset: int  #: stream offset of the first byte

    @property
    def framed(self) -> bool:
        return bool(self.kind)


class FrameSplitter:
    """Bytes in, whole frames and unframed runs out (see the module docstring)."""

    def __init__(self, transport: str = "auto") -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        self._forced = transport
        self._transport = transport
        self._framer: HdlcFramer | MbusFramer | RawFramer | None = None
        self._framer_base = 0  # stream offset of the framer's (or the detector's) first byte
        self._detector = TransportDetector()
        self._held = bytearray()  # the bytes not yet handed out, from stream offset _base
        self._base = 0
        self._fed = 0  # stream offset of the next byte
        self._closing = -1  # stream offset of the closing flag the last HDLC frame went out with
        if transport != "auto":
            self._lock(transport)

    @property
    def transport(self) -> str:
        """The link layer in use: as forced, as detected, or "auto" while still undecided."""
        return self._transport

    @property
    def held(self) -> int:
        """Bytes received and not yet handed out (bounded: a candidate frame plus the last chunk)."""
        return len(self._held)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Piece]:
        out: list[Piece] = []
        if not data:
            return out
        self._held += data
        self._fed += len(data)
        if self._framer is None:
            self._detector.pending += data
            chosen = self._detector.detect(final=False)
            if chosen is None:
                return out
            self._lock(chosen)
            data = self._detector.take()
        self._items(self._framer.feed(data), out)  # type: ignore[union-attr]
        settled = self._fed - self._framer.buffered  # type: ignore[union-attr]
        if settled - self._base >= MAX_UNFRAMED:
            self._gap(settled, out)
        return out

    def flush(self) -> list[Piece]:
        """End of input: the last frames, then every byte still held as unframed pieces."""
        out: list[Piece] = []
        if self._framer is None:
            chosen = self._detector.detect(final=True) if self._detector.pending else None
            if chosen is None:
                self._detector = TransportDetector()
                self._framer_base = self._fed
                self._gap(self._fed, out)
                return out
            self._lock(chosen)
            self._items(self._framer.feed(self._detector.take()), out)  # type: ignore[union-attr]
        self._items(self._framer.flush(), out)  # type: ignore[union-attr]
        self._gap(self._fed, out)
        return out

    # -- internals ----------------------------------------------------------------------------
    def _lock(self, transport: str) -> None:
        self._transport = transport
        self._framer = {"hdlc": HdlcFramer, "mbus": MbusFramer, "raw": RawFramer}[transport]()

    def _items(self, items: list, out: list[Piece]) -> None:
        for item in items:
            if isinstance(item, (HdlcFrame, MbusFrame)):
                start, data = self._framer_base + item.offset, item.raw
            elif isinstance(item, RawApdu):
                start, data = self._framer_base + item.offset, item.apdu
            else:
                continue  # a framing error: its bytes go out unframed (a gap), where the receiver reports them
            self._gap(start, out)
            end = start + len(data)
            if isinstance(item, HdlcFrame):
                data = data + _FLAG  # the closing flag (it may be the next frame's opening flag)
            out.append(Piece(data, self._transport, start))
            self._drop(end)
            self._closing = end

    def _gap(self, upto: int, out: list[Piece]) -> None:
        """Hand out the held bytes before stream offset ``upto`` as unframed pieces (HDLC flags alone are not)."""
        n = upto - self._base
        if n <= 0:
            return
        gap = bytes(self._held[:n])
        offset = self._base
        if self._transport == "hdlc":
            if not gap.strip(_FLAG):
                gap = b""  # flags alone delimit frames that went out with flags of their own
            elif offset == self._closing and gap[:1] == _FLAG:
                gap, offset = gap[1:], offset + 1  # the frame before went out with this closing flag
        for i in range(0, len(gap), MAX_UNFRAMED):
            out.append(Piece(gap[i : i + MAX_UNFRAMED], "", offset + i))
        self._drop(upto)

    def _drop(self, upto: int) -> None:
        del self._held[: upto - self._base]
        self._base = upto


__all__ = ["FrameSplitter", "MAX_UNFRAMED", "Piece"]
