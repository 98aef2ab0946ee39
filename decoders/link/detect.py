"""Which link layer a byte stream carries (HDLC, M-Bus, P1 text or bare APDUs), decided from its first bytes, sans-IO.

Shared by :class:`decoders.stream.StreamDecoder` (``transport="auto"``) and
:class:`decoders.link.split.FrameSplitter` (the edge bridge): both hold the
bytes that arrived before the link layer was recognised in
:attr:`TransportDetector.pending`, ask :meth:`TransportDetector.detect`, and
once it names a transport feed the held bytes to that framer.
"""

from __future__ import annotations

import re

from . import hdlc as _hdlc
from . import mbus as _mbus
from . import p1 as _p1
from . import raw as _raw
from ..xdlms.tags import DATA_NOTIFICATION

#: bytes the auto-detection looks at before it settles on the likeliest link layer anyway
DETECT_LIMIT = 4096
#: bytes that can open a frame or APDU: HDLC flag, M-Bus start, general-glo-/ded-ciphering, P1 '/'
_CANDIDATE = re.compile(rb"[\x7e\x68\xdb\xdc/]")
_LINK_START = re.compile(rb"[\x7e\x68]")


def checked_frame_inside(buf: bytes | bytearray, p: int, final: bool) -> bool | None:
    """An HDLC or M-Bus frame with a good checksum starts inside the bare APDU found at ``p``
    (None: one may, but it has not fully arrived).

    A bare APDU has no checksum of its own, so such a frame is better
    evidence: the APDU is the inside of a frame whose beginning was lost.
    """
    waiting = False
    for m in _LINK_START.finditer(buf, p + 1, _raw.end_of(buf, p)):
        q = m.start()
        if buf[q] == 0x7E:
            state = _hdlc.probe(buf, q, final)
        else:
            state = _mbus.probe(buf, q, final)
            if state == "frame" and _mbus.is_short_frame(buf, q):
                continue
        if state == "frame":
            return True
        waiting = waiting or state == "more"
    return None if waiting else False


class TransportDetector:
    """The bytes seen before the transport was recognised, and the resumable detection over them."""

    __slots__ = ("pending", "_pos", "_inside", "_fallback")

    def __init__(self) -> None:
        self.pending = bytearray()
        self._pos = 0  # offsets before it were settled by an earlier call ("no" or "bad" never change)
        self._inside = 0  # the end of a damaged frame: candidates inside it are its own bytes
        self._fallback: str | None = None

    def detect(self, final: bool) -> str | None:
        """The link layer of :attr:`pending`, or None while undecided (or, when final, nothing found).

        The first offset where a complete frame with good checksums (or a
        well-formed ciphered APDU) starts decides, unless a candidate before
        it is still incomplete.  Past :data:`DETECT_LIMIT` bytes, or at the
        end of input, the first candidate with a plausible header decides
        even when its checksum failed, so that wrong serial settings are
        reported as bad checksums rather than noise.
        """
        buf = self.pending
        n = len(buf)
        over = n > DETECT_LIMIT
        p = self._pos
        if p == 0 and n and buf[0] == DATA_NOTIFICATION:
            state = _raw.probe(buf, 0, final)
            if state == "frame":
                inside = checked_frame_inside(buf, 0, final or over)
                if inside is None:
                    return None
                if not inside:
                    return "raw"
                state = "no"
            if state == "more" and not over:
                return None
            p = 1
        for m in _CANDIDATE.finditer(buf, p):
            p = m.start()
            if p < self._inside:
                continue
            b = buf[p]
            if b == 0x7E:
                kind, state = "hdlc", _hdlc.probe(buf, p, final)
            elif b == 0x68:
                kind, state = "mbus", _mbus.probe(buf, p, final)
                if state == "frame" and _mbus.is_short_frame(buf, p):
                    continue  # an 8-bit sum over 3 or 4 bytes: too weak to settle the link on
            elif b == 0x2F:
                kind, state = "p1", _p1.probe(buf, p, final)
                if state == "more" and over:
                    continue  # a '/' and three letters in binary data: no telegram came of it
                if state == "no":
                    continue
            else:
                kind, state = "raw", _raw.probe(buf, p, final)
            if state == "frame":
                if kind == "raw":
                    inside = checked_frame_inside(buf, p, final or over)
                    if inside is None:  # a frame inside it is still arriving: wait for it
                        self._pos = p
                        return None
                    if inside:
                        continue  # a ciphered APDU inside a frame whose start was lost (the logger began mid-push)
                return kind
            if state == "more":
                if not over:
                    self._pos = p
                    return None
                state = "bad"
            if state == "badhead":
                self._fallback = self._fallback or kind
                continue
            if state == "bad":
                self._fallback = self._fallback or kind
                if kind == "hdlc" and p + 2 < n:
                    self._inside = p + 2 + (((buf[p + 1] & 0x07) << 8) | buf[p + 2])
                elif kind == "mbus":
                    self._inside = p + 6 + buf[p + 1]
        self._pos = n
        if final or over:
            if self._fallback is None and over:
                return "hdlc"  # report the noise through the most common framer, and go on
            return self._fallback
        return None

    def take(self) -> bytes:
        """The held bytes, handed to the framer once the transport is known; the buffer is emptied."""
        data, self.pending = bytes(self.pending), bytearray()
        return data


__all__ = ["DETECT_LIMIT", "TransportDetector", "checked_frame_inside"]
