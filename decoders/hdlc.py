"""HDLC (IEC 62056-46 frame type 3) framing for push data, sans-IO.

Frame layout, as meters send it (no byte stuffing: 0x7E may occur anywhere
inside a frame, so frames are delimited by their length field)::

    7E | A S L L L L L L L L L L L | dest | src | ctl | HCS | info ... | FCS | 7E
         '---- format, 2 bytes ---'  1/2/4  1/2/4   1     2               2
         type 0xA, S = segmentation, 11-bit length = bytes between the flags

The HCS covers format..control and is absent when there is no information
field.  Both checksums are CRC-16/X.25, stored little-endian.  Addresses end
at the first byte whose least significant bit is 1.

:class:`HdlcFramer` turns a byte stream (any chunking) into
:class:`HdlcFrame` values and :class:`~decoders.errors.FramingError` values;
:class:`HdlcReassembler` joins S-bit segments and strips the LLC header.
"""

from __future__ import annotations

from dataclasses import dataclass

from .crc import crc16_x25, fcs_bytes
from .noise import NoiseRun
from .errors import ChecksumError, DecodeError, FramingError, TruncatedFrame

FLAG = 0x7E
MAX_FRAME = 0x7FF + 2  # the 11-bit length plus both flags
MIN_LENGTH = 7  # format(2) + dest(1) + src(1) + control(1) + FCS(2)
LLC_RESPONSE = b"\xe6\xe7\x00"
LLC_COMMAND = b"\xe6\xe6\x00"
#: largest reassembled information field we keep (bounds memory on a stream
#: of segments that never ends)
MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    """One HDLC frame whose HCS and FCS were verified."""

    format: int  #: the 16-bit frame format field
    dest: bytes  #: destination address as on the wire (1, 2 or 4 bytes)
    src: bytes  #: source address as on the wire
    control: int
    info: bytes  #: information field (empty for frames without one)
    offset: int  #: stream offset of the opening flag
    raw: bytes  #: the frame from its opening flag through the FCS (the closing flag may be shared)
    #: False only on the unverified frame attached to a ChecksumError (``err.frame``)
    fcs_ok: bool = True

    @property
    def length(self) -> int:
        return self.format & 0x7FF

    @property
    def segmented(self) -> bool:
        """S bit: more segments of this message follow."""
        return bool(self.format & 0x0800)

    @property
    def header_length(self) -> int:
        return 3 + len(self.dest) + len(self.src)

    @property
    def carries_data(self) -> bool:
        """I-frames (control bit 0 clear) and UI frames (0x03/0x13) carry APDUs."""
        return (self.control & 0x01) == 0 or (self.control & 0xEF) == 0x03


def _address_length(buf: bytes | bytearray, start: int, end: int) -> int:
    """Length of the HDLC address at ``start`` (1, 2 or 4), or 0 if invalid/incomplete."""
    for n in (1, 2, 3, 4):
        if start + n > end:
            return 0
        if buf[start + n - 1] & 0x01:
            return n if n != 3 else 0
    return 0


class HdlcFramer:
    """Sans-IO HDLC frame extractor.

    ``feed(data)`` returns the frames and framing errors completed by ``data``
    in stream order; ``flush()`` declares the end of input (or an idle line)
    and reports what is left.  Nothing is ever dropped silently: bytes that
    belong to no frame are reported once as :class:`NotAFrame` with their
    count, a frame with a bad checksum as :class:`ChecksumError`, a frame cut
    short by the start of the next one as :class:`TruncatedFrame`.

    Buffer policy: the buffer holds at most the current candidate frame
    (<= 2049 bytes) plus the unprocessed part of the last ``feed``; consumed
    bytes are deleted once per ``feed``, so the work is O(n) in the input.
    After a bad frame the search restarts one byte after its opening flag,
    so a good frame that started inside the bad one's claimed length is not
    lost.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]
        self._noise = NoiseRun("HDLC frame", "noise, a partial frame, or not HDLC data")
        self._absorb = False  # skipped bytes belong to the last reported bad frame

    # -- public API -------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> list[HdlcFrame | FramingError]:
        self._buf += data
        out: list[HdlcFrame | FramingError] = []
        self._scan(out, final=False)
        return out

    def flush(self) -> list[HdlcFrame | FramingError]:
        """End of input: report a pending partial frame and trailing noise."""
        out: list[HdlcFrame | FramingError] = []
        self._scan(out, final=True)
        self._report_noise(out)
        self._base += len(self._buf)
        self._buf.clear()
        self._absorb = False
        return out

    @property
    def buffered(self) -> int:
        """Bytes currently held (for tests of the buffer bound)."""
        return len(self._buf)

    # -- internals --------------------------------------------------------
    def _skip(self, pos: int, n: int) -> None:
        if self._absorb:
            return
        self._noise.add(self._base + pos, n)

    def _report_noise(self, out: list) -> None:
        self._noise.report(out)

    def _error(self, out: list, err: FramingError, pos: int) -> None:
        self._report_noise(out)
        err.offset = self._base + pos  # type: ignore[attr-defined]
        out.append(err)
        self._absorb = True

    @staticmethod
    def _header(buf: bytes | bytearray, p: int, end: int):
        """Parse a candidate header at flag position ``p``.

        Returns ``None`` when more bytes are needed, ``False`` when ``p`` cannot
        start a frame, else ``(length, dlen, slen, hcs_ok)``.
        """
        if p + 3 > end:
            return None
        f0 = buf[p + 1]
        if f0 & 0xF0 != 0xA0:
            return False
        length = ((f0 & 0x07) << 8) | buf[p + 2]
        if length < MIN_LENGTH:
            return False
        dlen = _address_length(buf, p + 3, end)
        if dlen == 0:
            return None if p + 7 > end else False
        slen = _address_length(buf, p + 3 + dlen, end)
        if slen == 0:
            return None if p + 3 + dlen + 4 > end else False
        hlen = 3 + dlen + slen  # format + addresses + control
        if length < hlen + 2:
            return False
        if length == hlen + 2:  # no information field: no HCS
            return (length, dlen, slen, True)
        if length < hlen + 4:
            return False
        if p + 1 + hlen + 2 > end:
            return None
        hcs = buf[p + 1 + hlen] | (buf[p + 2 + hlen] << 8)
        return (length, dlen, slen, crc16_x25(buf[p + 1 : p + 1 + hlen]) == hcs)

    def _inner_frame(self, buf: bytearray, start: int, end: int, complete: bool = True) -> int:
        """Offset of a frame starting inside ``(start, end)``, or -1.

        With ``complete`` the frame must lie wholly before ``end`` with a good
        FCS; without, a header with a good HCS is enough evidence.
        """
        q = buf.find(FLAG, start + 1, end)
        limit = end if complete else len(buf)
        while q != -1:
            h = self._header(buf, q, limit)
            if h and h[3]:
                length = h[0]
                if not complete:
                    return q
                if q + 1 + length <= end and self._fcs_ok(buf, q, length):
                    return q
            q = buf.find(FLAG, q + 1, end)
        return -1

    @staticmethod
    def _fcs_ok(buf: bytearray, p: int, length: int) -> bool:
        e = p + 1 + length
        return crc16_x25(buf[p + 1 : e - 2]) == (buf[e - 2] | (buf[e - 1] << 8))

    def _scan(self, out: list, final: bool) -> None:
        buf = self._buf
        end = len(buf)
        p = 0
        while p < end:
            q = buf.find(FLAG, p)
            if q == -1:
                self._skip(p, end - p)
                p = end
                break
            if q > p:
                self._skip(p, q - p)
                p = q
            h = self._header(buf, p, end)
            if h is None:  # need more bytes for the header
                if final:
                    if end - p > 1:  # a lone trailing flag is not noise
                        self._skip(p + 1, end - p - 1)
                    p = end
                break
            if h is False:
                # Not a frame start: a closing flag, a doubled flag, or a 0x7E
                # in noise.  Flags themselves are never counted as noise.
                p += 1
                continue
            length, dlen, slen, hcs_ok = h
            if not hcs_ok:
                self._error(
                    out,
                    ChecksumError(
                        f"header checksum (HCS) wrong in the frame at offset {self._base + p}"
                        " (a corrupted byte: noise on the line, a bad cable, or wrong serial settings such as parity)"
                    ),
                    p,
                )
                out[-1].raw = bytes(buf[p : min(end, p + 1 + length)])  # type: ignore[attr-defined]
                p += 1
                continue
            stop = p + 1 + length  # index just past the FCS
            if stop > end:
                inner = self._inner_frame(buf, p, end)
                if inner != -1 or final:
                    self._error(
                        out,
                        TruncatedFrame(
                            f"frame at offset {self._base + p} is truncated: its length field says {length} bytes"
                            f" but only {end - p - 1} arrived"
                            + (" before the next frame started" if inner != -1 else "")
                        ),
                        p,
                    )
                    p = inner if inner != -1 else p + 1
                    continue
                break  # wait for the rest of the frame
            if not self._fcs_ok(buf, p, length):
                inner = self._inner_frame(buf, p, stop, complete=False)
                if inner != -1:
                    err: FramingError = TruncatedFrame(
                        f"frame at offset {self._base + p} is truncated: the next frame starts at offset"
                        f" {self._base + inner}, before the {length} bytes its length field announced"
                    )
                    nxt = inner
                else:
                    err = ChecksumError(
                        f"frame checksum (FCS) wrong in the {length}-byte frame at offset {self._base + p}"
                        " (a corrupted byte: noise on the line, a bad cable, or wrong serial settings such as parity)"
                    )
                    nxt = p + 1
                    hlen = 3 + dlen + slen
                    info_start = p + 1 + hlen + 2 if length > hlen + 2 else p + 1 + hlen
                    err.frame = HdlcFrame(  # type: ignore[attr-defined]
                        format=(buf[p + 1] << 8) | buf[p + 2],
                        dest=bytes(buf[p + 3 : p + 3 + dlen]),
                        src=bytes(buf[p + 3 + dlen : p + 3 + dlen + slen]),
                        control=buf[p + 3 + dlen + slen],
                        info=bytes(buf[info_start : stop - 2]),
                        offset=self._base + p,
                        raw=bytes(buf[p:stop]),
                        fcs_ok=False,
                    )
                err.raw = bytes(buf[p:stop])  # type: ignore[attr-defined]
                self._error(out, err, p)
                p = nxt
                continue
            # a good frame
            self._report_noise(out)
            self._absorb = False
            hlen = 3 + dlen + slen
            info_start = p + 1 + hlen + 2 if length > hlen + 2 else p + 1 + hlen
            out.append(
                HdlcFrame(
                    format=(buf[p + 1] << 8) | buf[p + 2],
                    dest=bytes(buf[p + 3 : p + 3 + dlen]),
                    src=bytes(buf[p + 3 + dlen : p + 3 + dlen + slen]),
                    control=buf[p + 3 + dlen + slen],
                    info=bytes(buf[info_start : stop - 2]),
                    offset=self._base + p,
                    raw=bytes(buf[p:stop]),
                )
            )
            # The closing flag may be the next frame's opening flag: continue at it.
            p = stop
        del buf[:p]
        self._base += p


def probe(buf: bytes | bytearray, p: int, final: bool = False) -> str:
    """What starts at ``buf[p]``: ``frame`` (checksums good), ``more``, ``bad`` (a good header, a bad FCS),
    ``badhead`` (a header whose HCS is wrong) or ``no``.

    Used by the transport auto-detection; never raises.
    """
    if buf[p] != FLAG:
        return "no"
    end = len(buf)
    h = HdlcFramer._header(buf, p, end)
    if h is None:
        return "no" if final else "more"
    if h is False:
        return "no"
    length, _dlen, _slen, hcs_ok = h
    if not hcs_ok:
        return "badhead"  # a header that fails its own checksum: its length means nothing
    if p + 1 + length > end:
        return "bad" if final else "more"
    e = p + 1 + length
    return "frame" if crc16_x25(buf[p + 1 : e - 2]) == (buf[e - 2] | (buf[e - 1] << 8)) else "bad"


class HdlcReassembler:
    """Joins S-bit segments into one message and strips the LLC header.

    ``push(frame)`` returns ``None`` while a segmented message is incomplete
    (or for a frame that carries no data), the finished
    :class:`HdlcMessage`, or a :class:`FramingError` when a sequence breaks.
    """

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._frames: list[HdlcFrame] = []
        self._size = 0
        self._max = max_message

    def push(self, frame: HdlcFrame) -> "HdlcMessage | FramingError | None":
        if not frame.carries_data:
            return None
        pending = self._frames
        if pending and (frame.dest != pending[0].dest or frame.src != pending[0].src):
            self.reset()
            err = FramingError(
                f"segmented message from address {pending[0].src.hex()} was interrupted by a frame from"
                f" {frame.src.hex()}; {len(pending)} segment(s) discarded"
            )
            err.reason = "broken_segments"
            return err
        pending.append(frame)
        self._size += len(frame.info)
        if self._size > self._max:
            n = len(pending)
            self.reset()
            err = FramingError(f"segmented message exceeds {self._max} bytes; {n} segment(s) discarded")
            err.reason = "broken_segments"
            return err
        if frame.segmented:
            return None
        frames = tuple(pending)
        payload = frames[0].info if len(frames) == 1 else b"".join(f.info for f in frames)
        self.reset()
        llc = None
        if payload[:3] in (LLC_RESPONSE, LLC_COMMAND):
            llc, payload = payload[:3], payload[3:]
        return HdlcMessage(payload=payload, frames=frames, llc=llc)

    def reset(self) -> None:
        self._frames = []
        self._size = 0

    @property
    def pending(self) -> int:
        """Segments of an incomplete message held."""
        return len(self._frames)

    def flush(self) -> FramingError | None:
        """End of input with a segmented message still open."""
        if not self._frames:
            return None
        n = len(self._frames)
        self.reset()
        return TruncatedFrame(f"segmented message incomplete: {n} segment(s) received, the last segment never came")


@dataclass(frozen=True, slots=True)
class HdlcMessage:
    """A complete link-layer message: the APDU and the frames that carried it."""

    payload: bytes
    frames: tuple[HdlcFrame, ...]
    llc: bytes | None


# -- building frames (tests, simulator) -----------------------------------------
def build_frame(
    info: bytes,
    *,
    dest: bytes = b"\x41",
    src: bytes = b"\x03",
    control: int = 0x13,
    segmented: bool = False,
) -> bytes:
    """Build one HDLC frame with flags, HCS (when there is info) and FCS."""
    hlen = 3 + len(dest) + len(src)
    length = hlen + (2 + len(info) if info else 0) + 2
    if length > 0x7FF:
        raise FramingError(f"information field too long for one frame ({len(info)} bytes); segment it")
    fmt = 0xA000 | (0x0800 if segmented else 0) | length
    head = fmt.to_bytes(2, "big") + dest + src + bytes([control])
    body = head + fcs_bytes(head) + info if info else head
    return b"\x7e" + body + fcs_bytes(body) + b"\x7e"


def build_frames(
    apdu: bytes,
    *,
    dest: bytes = b"\x41",
    src: bytes = b"\x03",
    llc: bytes | None = LLC_RESPONSE,
    max_info: int = 1010,
    control: int = 0x13,
    segment_control: int = 0x03,
) -> list[bytes]:
    """Build the frame(s) carrying ``apdu``, segmenting with the S bit when needed.

    The LLC header goes into the first segment only, as Iskraemeco meters do.
    """
    data = (llc or b"") + apdu
    chunks = [data[i : i + max_info] for i in range(0, len(data), max_info)] or [b""]
    frames = []
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        frames.append(
            build_frame(chunk, dest=dest, src=src, control=control if last else segment_control, segmented=not last)
        )
    return frames


__all__ = [
    "HdlcFrame",
    "HdlcFramer",
    "HdlcMessage",
    "HdlcReassembler",
    "build_frame",
    "build_frames",
    "probe",
    "DecodeError",
]
