"""Wired M-Bus (EN 13757-2) long frames carrying DLMS/COSEM APDUs, sans-IO.

Austrian and Polish meters (Kaifa MA309, Sagemcom T210-D) push their
ciphered APDU in M-Bus long frames, split over two or more segments::

    68 | L | L | 68 | C | A | CI | STSAP | DTSAP | data ... | CS | 16
         '-------'      '-- L bytes: C, A, CI and the user data --'
                                        CS = sum(C .. last data byte) mod 256

    CI  0x00..0x0F  a segment, more follow (low nibble = sequence number)
        0x10..0x1F  the last segment (0x10 = the only one, 0x11 = the second, ...)

STSAP/DTSAP (``01 67`` on the meters seen) open every segment and are
stripped; the rest of each segment is joined in order.

**L-field wrap.** A 2021 Sagemcom T210-D firmware sends a first segment of
257 user-data bytes with ``L = 0x01`` (257 mod 256) and a valid checksum and
stop byte at 257.  When the frame does not check out at ``L``, ``L + 256`` is
tried before the frame is declared bad.

:class:`MbusFramer` turns a byte stream (any chunking) into
:class:`MbusFrame` values and :class:`~decoders.errors.FramingError` values;
:class:`MbusReassembler` joins the DLMS segments.
"""

from __future__ import annotations

from dataclasses import dataclass

from .receivebuffer import BufferFramer, ReceiveBuffer
from ..errors import BrokenMessage, ChecksumError, FramingError, TruncatedFrame

START = 0x68
STOP = 0x16
#: largest frame tried (a wrapped L-field: 255 + 256 user-data bytes + 6)
MAX_FRAME = 511 + 6
#: largest reassembled message kept (bounds memory on segments that never end)
MAX_MESSAGE = 64 * 1024

#: C-field values worth naming in annotated dumps
C_FIELDS = {
    0x53: "SND_UD (send user data, FCB=1)",
    0x73: "SND_UD (send user data, FCB=1)",
    0x08: "RSP_UD (respond user data)",
    0x18: "RSP_UD (respond user data, FCB)",
    0x28: "RSP_UD (respond user data, ACD)",
    0x44: "SND_NR (send, no reply)",
    0x46: "SND_IR (installation request)",
}


@dataclass(frozen=True, slots=True)
class MbusFrame:
    """One M-Bus long frame (checksum and stop byte verified unless ``ok`` is False)."""

    c: int
    a: int
    ci: int
    l_field: int  #: the L byte as sent
    length: int  #: the user-data length used (differs from ``l_field`` when it wrapped)
    data: bytes  #: the bytes after CI (STSAP, DTSAP and the segment of the APDU)
    offset: int  #: stream offset of the first 0x68
    raw: bytes  #: the whole frame, 0x68 through 0x16
    checksum: int = 0
    ok: bool = True  #: False only on frames attached to a ChecksumError

    @property
    def wrapped(self) -> bool:
        return self.length != self.l_field

    @property
    def dlms_segment(self) -> bool:
        """CI 0x00..0x1F: a DLMS/COSEM transport segment."""
        return self.ci <= 0x1F

    @property
    def last(self) -> bool:
        return bool(self.ci & 0x10)

    @property
    def sequence(self) -> int:
        return self.ci & 0x0F


def _check(buf: bytes | bytearray, p: int, length: int) -> int:
    """1 when the frame at ``p`` with ``length`` user-data bytes checks out, 0 when not, -1 when incomplete."""
    end = p + length + 6
    if end > len(buf):
        return -1
    cs = sum(buf[p + 4 : p + 4 + length]) & 0xFF
    return 1 if cs == buf[p + 4 + length] and buf[p + 5 + length] == STOP else 0


#: the shortest user data the transport auto-detection takes as evidence of a DLMS link:
#: C, A, CI and two bytes (a short frame of C, A and CI alone is easily made by garbage)
MIN_DLMS_LENGTH = 5


def is_short_frame(buf: bytes | bytearray, p: int) -> bool:
    """A checked frame at ``p`` whose user data is shorter than :data:`MIN_DLMS_LENGTH`."""
    length = buf[p + 1]
    return length < MIN_DLMS_LENGTH and _check(buf, p, length) == 1


def probe(buf: bytes | bytearray, p: int, final: bool = False) -> str:
    """What starts at ``buf[p]``: ``frame``, ``more`` (incomplete), ``bad`` (a header, wrong checksum) or ``no``.

    Used by the transport auto-detection; never raises.
    """
    n = len(buf)
    if buf[p] != START:
        return "no"
    if p + 4 > n:
        return "no" if final else "more"
    if buf[p + 1] != buf[p + 2] or buf[p + 3] != START:
        return "no"
    length = buf[p + 1]
    first = _check(buf, p, length) if length >= 3 else 0
    if first == 1:
        return "frame"
    if first == -1:
        return "bad" if final else "more"
    wrapped = _check(buf, p, length + 256)
    if wrapped == 1:
        return "frame"
    if wrapped == -1 and not final:
        return "more"
    return "bad"


class MbusFramer(BufferFramer):
    """Sans-IO M-Bus long-frame extractor, the twin of :class:`~decoders.link.hdlc.HdlcFramer`.

    ``feed(data)`` returns the frames and framing errors completed by
    ``data``; ``flush()`` ends the input.  Bytes that belong to no frame are
    reported once per run as :class:`NotAFrame` with their count; a frame
    whose checksum or stop byte is wrong (at ``L`` and at ``L + 256``) as
    :class:`ChecksumError`, with the bad frame attached as ``err.frame``.

    Buffer policy (a :class:`~decoders.link.receivebuffer.ReceiveBuffer`):
    at most one candidate frame (<= 517 bytes) plus the unprocessed rest of
    the last ``feed``.  After a bad frame the search restarts one byte after its
    start, so a good frame inside the bad one's claimed length is not lost.
    """

    def __init__(self) -> None:
        # after a bad frame, the bytes it claimed are skipped silently (its error covers them)
        self._rb = ReceiveBuffer("M-Bus frame", "noise, a partial frame, or not M-Bus data", MAX_FRAME)

    # -- internals --------------------------------------------------------
    def _frame(self, buf: bytearray, p: int, length: int, ok: bool = True) -> MbusFrame:
        end = p + length + 6
        return MbusFrame(
            c=buf[p + 4],
            a=buf[p + 5] if length >= 2 else 0,
            ci=buf[p + 6] if length >= 3 else 0,
            l_field=buf[p + 1],
            length=length,
            data=bytes(buf[p + 7 : p + 4 + length]),
            offset=self._rb.base + p,
            raw=bytes(buf[p:end]),
            checksum=buf[p + 4 + length] if end <= len(buf) else 0,
            ok=ok,
        )

    def _scan(self, out: list, final: bool) -> None:
        rb = self._rb
        buf = rb.data
        base = rb.base
        skip = rb.skip
        end = len(buf)
        p = rb.start
        while p < end:
            q = buf.find(START, p)
            if q == -1:
                skip(p, end - p)
                p = end
                break
            if q > p:
                skip(p, q - p)
                p = q
            state = probe(buf, p, final)
            if state == "more":
                break
            if state == "no":
                skip(p, 1)
                p += 1
                continue
            length = buf[p + 1]
            if state == "frame":
                if _check(buf, p, length) != 1:
                    length += 256
                rb.settle(out)
                out.append(self._frame(buf, p, length))
                p += length + 6
                continue
            # bad: a header, but neither length checks out
            avail = end - p - 6
            if avail < length:
                err: FramingError = TruncatedFrame(
                    f"M-Bus frame at offset {base + p} is truncated: its L-field says {length} bytes"
                    f" but only {max(avail, 0)} arrived"
                )
            else:
                err = ChecksumError(
                    f"M-Bus checksum or stop byte wrong in the {length}-byte frame at offset {base + p}"
                    " (a corrupted byte: noise on the line, a bad cable, or wrong serial settings such as parity)"
                )
                err.frame = self._frame(buf, p, length, ok=False)
            err.at(base + p).raw = bytes(buf[p : min(end, p + length + 6)])
            rb.reject(out, err, absorb=min(length + 5, end - p - 1))
            p += 1
        rb.consume(p)


#: senders whose partial messages are kept at once
MAX_SOURCES = 16


@dataclass(slots=True)
class _Pending:
    """One sender's message being joined, or being skipped after it broke."""

    frames: list[MbusFrame]
    offset: int
    last: int = 0  #: the CI sequence number of the sender's last segment
    size: int = 0
    why: str | None = None  #: set once the message broke: its remaining segments are skipped
    cause: str = ""
    discarded: int = 0


class MbusReassembler:
    """Joins DLMS/COSEM M-Bus segments (CI 0x00.. then 0x1n) into one APDU.

    ``push(frame)`` returns what the frame completed: the finished
    :class:`MbusMessage`, :class:`~decoders.errors.BrokenMessage` errors
    (layer ``mbus``, one per broken message), or a :class:`FramingError` for
    a frame that is not a DLMS segment.  Recovery rules, on the CI
    segment numbers:

    * state is kept per sender (the A-field): another address's frames leave
      a pending message alone;
    * segment 0 starts a message: a pending one ends there, reported broken;
    * a segment whose number does not follow the previous one breaks the
      message; it, and segments without a segment 0, are skipped up to the
      last segment (CI 0x1n), where the broken message is reported.
    """

    def __init__(self, max_message: int = MAX_MESSAGE, max_sources: int = MAX_SOURCES) -> None:
        self._open: dict[int, _Pending] = {}
        self._max = max_message
        self._max_sources = max_sources

    def reset(self) -> None:
        self._open.clear()

    @property
    def pending(self) -> int:
        return sum(len(p.frames) for p in self._open.values())

    def push(self, frame: MbusFrame) -> "list[MbusMessage | FramingError]":
        """The messages completed and the errors caused by ``frame`` (one error per broken message)."""
        if not frame.dlms_segment:
            err = FramingError(
                f"M-Bus frame at offset {frame.offset} has CI 0x{frame.ci:02X}, not a DLMS/COSEM transport"
                " segment (CI 0x00..0x1F): an M-Bus meter, not a DLMS push",
                reason="not_dlms",
                offset=frame.offset,
            )
            return [err]
        if len(frame.data) < 2:
            err = FramingError(
                f"M-Bus segment at offset {frame.offset} is too short for its STSAP/DTSAP", offset=frame.offset
            )
            return [err]
        out: list[MbusMessage | FramingError] = []
        seq = frame.sequence
        if seq == 0 and frame.last and not self._open:  # the common one-segment message: no state
            return [self._message((frame,))]
        key = frame.a
        st = self._open.get(key)
        if st is not None:
            if seq == 0:
                if st.why is None:
                    self._break(st, "missing_last", "its last segment never came (a new push began)")
                out.append(self._report(key, st))
                st = None
            elif st.why is None and seq != (st.last + 1) & 0x0F:
                self._break(
                    st, "missing_segment", f"a segment is missing (segment {seq} followed segment {st.last})"
                )
        if st is None:
            if len(self._open) >= self._max_sources:
                old_key, old = next(iter(self._open.items()))
                if old.why is None:
                    self._break(old, "too_many_senders", f"more than {self._max_sources} senders had pushes open")
                out.append(self._report(old_key, old))
            st = self._open[key] = _Pending([], frame.offset)
            if seq != 0:
                self._break(
                    st,
                    "missing_first",
                    f"segment {seq} at offset {frame.offset} arrived without the segment(s) before it"
                    " (the capture started mid-push, or they were lost)",
                )
        st.last = seq
        if st.why is not None:
            st.discarded += 1
            if frame.last:
                out.append(self._report(key, st))
            return out
        st.frames.append(frame)
        st.size += len(frame.data)
        if st.size > self._max:
            self._break(st, "too_long", f"the message exceeds {self._max} bytes")
            if frame.last:
                out.append(self._report(key, st))
            return out
        if frame.last:
            del self._open[key]
            out.append(self._message(tuple(st.frames)))
        return out

    def flush(self) -> "list[BrokenMessage]":
        """End of input: every message still open is broken."""
        out = []
        for key, st in list(self._open.items()):
            if st.why is None:
                self._break(st, "incomplete", "the input ended before its last segment")
            out.append(self._report(key, st))
        return out

    @staticmethod
    def _message(frames: tuple[MbusFrame, ...]) -> "MbusMessage":
        payload = frames[0].data[2:] if len(frames) == 1 else b"".join(f.data[2:] for f in frames)
        return MbusMessage(payload=payload, frames=frames, stsap=frames[0].data[0], dtsap=frames[0].data[1])

    @staticmethod
    def _break(st: _Pending, cause: str, why: str) -> None:
        st.why, st.cause = why, cause
        st.discarded += len(st.frames)
        st.frames = []
        st.size = 0

    def _report(self, key: int, st: _Pending) -> BrokenMessage:
        del self._open[key]
        err = BrokenMessage(
            "mbus",
            f"segmented push from address {key} broken: {st.why}; {st.discarded} segment(s) discarded,"
            " the push is lost",
            reason="broken_segments",
            cause=st.cause,
            offset=st.offset,
        )
        return err


@dataclass(frozen=True, slots=True)
class MbusMessage:
    """A complete DLMS message carried by M-Bus: the APDU and its frames."""

    payload: bytes
    frames: tuple[MbusFrame, ...]
    stsap: int
    dtsap: int


def build_frames(
    apdu: bytes,
    *,
    max_data: int = 245,
    c: int = 0x53,
    a: int = 0xFF,
    stsap: int = 0x01,
    dtsap: int = 0x67,
    first_data: int | None = None,
    wrap_first: bool = False,
) -> list[bytes]:
    """Build the M-Bus long frames carrying ``apdu`` (tests, simulator).

    ``max_data`` bytes of the APDU go into each segment (``first_data`` into
    the first, when given).  ``wrap_first`` writes the first segment's
    L-field modulo 256, as the 2021 Sagemcom firmware does.
    """
    first = max_data if first_data is None else first_data
    chunks = [apdu[:first]] + [apdu[i : i + max_data] for i in range(first, len(apdu), max_data)]
    frames = []
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        ci = (0x10 if last else 0x00) | (i & 0x0F)
        body = bytes((c, a, ci, stsap, dtsap)) + chunk
        length = len(body)
        if length > 255 and not (wrap_first and i == 0):
            raise FramingError(f"M-Bus segment of {length} bytes does not fit an L-field; use a smaller max_data")
        lf = length & 0xFF
        frames.append(bytes((START, lf, lf, START)) + body + bytes((sum(body) & 0xFF, STOP)))
    return frames


__all__ = ["MbusFrame", "MbusFramer", "MbusMessage", "MbusReassembler", "build_frames", "probe"]
