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
from ..frozen import quick_init
from .receivebuffer import BufferFramer, ReceiveBuffer
from ..xdlms.tags import MESSAGE_TAGS, PUSH_TAGS
from ..errors import BrokenMessage, ChecksumError, DecodeError, FramingError, TruncatedFrame

FLAG = 0x7E
MAX_FRAME = 0x7FF + 2  # the 11-bit length plus both flags
MIN_LENGTH = 7  # format(2) + dest(1) + src(1) + control(1) + FCS(2)
LLC_RESPONSE = b"\xe6\xe7\x00"
LLC_COMMAND = b"\xe6\xe6\x00"
#: largest reassembled information field we keep (bounds memory on a stream
#: of segments that never ends)
MAX_MESSAGE = 64 * 1024


@quick_init
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


class HdlcFramer(BufferFramer):
    """Sans-IO HDLC frame extractor.

    ``feed(data)`` returns the frames and framing errors completed by ``data``
    in stream order; ``flush()`` declares the end of input (or an idle line)
    and reports what is left.  Nothing is ever dropped silently: bytes that
    belong to no frame are reported once as :class:`NotAFrame` with their
    count, a frame with a bad checksum as :class:`ChecksumError`, a frame cut
    short by the start of the next one as :class:`TruncatedFrame`.

    Buffer policy (a :class:`~decoders.link.receivebuffer.ReceiveBuffer`):
    it holds at most the current candidate frame (<= 2049 bytes) plus the
    unprocessed part of the last ``feed``, so the work is O(n) in the input.
    After a bad frame the search restarts one byte after its opening flag,
    so a good frame that started inside the bad one's claimed length is not
    lost.
    """

    def __init__(self) -> None:
        # after a bad frame, the bytes skipped up to the next good frame are its own (absorbed, not noise)
        self._rb = ReceiveBuffer("HDLC frame", "noise, a partial frame, or not HDLC data", MAX_FRAME)

    # -- internals --------------------------------------------------------

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

    def _unverified(
        self, buf: bytearray, p: int, stop: int, dlen: int, slen: int, fcs: bool = False, vouched: bool = True
    ) -> HdlcFrame | None:
        """The frame at ``p`` whose header (HCS) checked out but whose body did not, up to ``stop``.

        Attached to the framer's error as ``header`` (and, for a bad FCS, as
        ``frame``): its addresses and S bit tell the reassembler whose message
        the damage broke.  ``info`` is what arrived (without the FCS when
        ``fcs``), and may be cut short.  With ``vouched``, None for a frame
        without an information field: no HCS vouches for its header.
        """
        hlen = 3 + dlen + slen
        length = ((buf[p + 1] & 0x07) << 8) | buf[p + 2]
        info_start = p + 1 + hlen + 2 if length > hlen + 2 else p + 1 + hlen
        if (vouched and length <= hlen + 2) or info_start > len(buf):
            return None
        return HdlcFrame(
            format=(buf[p + 1] << 8) | buf[p + 2],
            dest=bytes(buf[p + 3 : p + 3 + dlen]),
            src=bytes(buf[p + 3 + dlen : p + 3 + dlen + slen]),
            control=buf[p + 3 + dlen + slen],
            info=bytes(buf[info_start : stop - 2 if fcs else stop]),
            offset=self._rb.base + p,
            raw=bytes(buf[p:stop]),
            fcs_ok=False,
        )

    @staticmethod
    def _fcs_ok(buf: bytearray, p: int, length: int) -> bool:
        e = p + 1 + length
        return crc16_x25(buf[p + 1 : e - 2]) == (buf[e - 2] | (buf[e - 1] << 8))

    def _scan(self, out: list, final: bool) -> None:
        rb = self._rb
        buf = rb.data
        base = rb.base
        skip = rb.skip
        end = len(buf)
        p = rb.start
        while p < end:
            q = buf.find(FLAG, p)
            if q == -1:
                skip(p, end - p)
                p = end
                break
            if q > p:
                skip(p, q - p)
                p = q
            h = self._header(buf, p, end)
            if h is None:  # need more bytes for the header
                if final:
                    if end - p > 1:  # a lone trailing flag is not noise
                        skip(p + 1, end - p - 1)
                    p = end
                break
            if h is False:
                # Not a frame start: a closing flag, a doubled flag, or a 0x7E
                # in noise.  Flags themselves are never counted as noise.
                p += 1
                continue
            length, dlen, slen, hcs_ok = h
            if not hcs_ok:
                bad = ChecksumError(
                    f"header checksum (HCS) wrong in the frame at offset {base + p}"
                    " (a corrupted byte: noise on the line, a bad cable, or wrong serial settings such as parity)"
                )
                rb.reject(out, bad.at(base + p))
                bad.raw = bytes(buf[p : min(end, p + 1 + length)])
                p += 1
                continue
            stop = p + 1 + length  # index just past the FCS
            if stop > end:
                inner = self._inner_frame(buf, p, end)
                if inner != -1 or final:
                    cut = TruncatedFrame(
                        f"frame at offset {base + p} is truncated: its length field says {length} bytes"
                        f" but only {end - p - 1} arrived"
                        + (" before the next frame started" if inner != -1 else "")
                    )
                    cut.header = self._unverified(buf, p, inner if inner != -1 else end, dlen, slen)
                    rb.reject(out, cut.at(base + p))
                    p = inner if inner != -1 else p + 1
                    continue
                break  # wait for the rest of the frame
            if not self._fcs_ok(buf, p, length):
                inner = self._inner_frame(buf, p, stop, complete=False)
                if inner != -1:
                    err: FramingError = TruncatedFrame(
                        f"frame at offset {base + p} is truncated: the next frame starts at offset"
                        f" {base + inner}, before the {length} bytes its length field announced"
                    )
                    err.header = self._unverified(buf, p, inner, dlen, slen)
                    nxt = inner
                else:
                    err = ChecksumError(
                        f"frame checksum (FCS) wrong in the {length}-byte frame at offset {base + p}"
                        " (a corrupted byte: noise on the line, a bad cable, or wrong serial settings such as parity)"
                    )
                    nxt = p + 1
                    err.frame = self._unverified(buf, p, stop, dlen, slen, fcs=True, vouched=False)
                    if length > 3 + dlen + slen + 2:  # the HCS vouched for the addresses and the S bit
                        err.header = err.frame
                err.raw = bytes(buf[p:stop])
                rb.reject(out, err.at(base + p))
                p = nxt
                continue
            # a good frame
            rb.settle(out)
            hlen = 3 + dlen + slen
            info_start = p + 1 + hlen + 2 if length > hlen + 2 else p + 1 + hlen
            out.append(
                HdlcFrame(
                    format=(buf[p + 1] << 8) | buf[p + 2],
                    dest=bytes(buf[p + 3 : p + 3 + dlen]),
                    src=bytes(buf[p + 3 + dlen : p + 3 + dlen + slen]),
                    control=buf[p + 3 + dlen + slen],
                    info=bytes(buf[info_start : stop - 2]),
                    offset=base + p,
                    raw=bytes(buf[p:stop]),
                )
            )
            # The closing flag may be the next frame's opening flag: continue at it.
            p = stop
        rb.consume(p)


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


#: senders whose partial messages are kept at once (more than a HAN port ever has)
MAX_SOURCES = 16


def _llc(info: bytes) -> bool:
    return info[:3] == LLC_RESPONSE or info[:3] == LLC_COMMAND


def _i_frame_ns(control: int) -> int:
    """N(S) of an I-frame, or -1 for any other frame."""
    return -1 if control & 0x01 else (control >> 1) & 0x07


@dataclass(slots=True)
class _Pending:
    """One sender's message being joined, or being skipped after it broke."""

    frames: list[HdlcFrame]
    offset: int  #: stream offset of its first segment
    last: int = 0x13  #: control field of the sender's last data frame (for the N(S) sequence)
    size: int = 0
    why: str | None = None  #: set once the message broke: its remaining segments are skipped
    cause: str = ""
    discarded: int = 0
    damaged: bool = False  #: it broke at a frame the framer already reported (a consequence)


class HdlcReassembler:
    """Joins S-bit segments into one message and strips the LLC header.

    ``push(frame)`` returns what the frame completed, in order: finished
    :class:`HdlcMessage` values and :class:`~decoders.errors.BrokenMessage`
    errors (layer ``hdlc``), each broken message reported once.  A damaged
    or lost segment costs only its own push:

    * state is kept per sender (destination and source address): a frame from
      another address is handled on its own and leaves a pending message alone;
    * a segment that starts a message (:meth:`starts`: an LLC header and a
      known APDU tag, or an I-frame with N(S) 0 that does not continue N(S) 7)
      ends the sender's pending message, reported broken, and starts anew;
    * an I-frame whose N(S) does not follow the previous segment's breaks the
      message (one went missing);
    * segments without a first segment, or after a damaged one (reported by
      the framer and passed to :meth:`damaged`), are skipped up to the last
      segment (S bit clear), where the broken message is reported.

    :meth:`retry` splits a joined message that does not decode at its last
    segment that can begin one (the stream decoder asks).
    """

    def __init__(self, max_message: int = MAX_MESSAGE, max_sources: int = MAX_SOURCES) -> None:
        self._open: dict[tuple[bytes, bytes], _Pending] = {}
        self._segmenting: set[tuple[bytes, bytes]] = set()  # senders seen sending segments
        self._max = max_message
        self._max_sources = max_sources

    # -- what a segment says about itself ----------------------------------------
    @staticmethod
    def starts(frame: HdlcFrame, last: int = 0x13) -> bool:
        """``frame`` starts a message: LLC header and a known APDU tag, or an I-frame whose N(S) began anew.

        ``last`` is the control field of the sender's previous data frame: an
        N(S) of 0 after 7 continues a sequence, it does not begin one.
        """
        info = frame.info
        if len(info) > 3 and _llc(info) and info[3] in MESSAGE_TAGS:
            return True
        return _i_frame_ns(frame.control) == 0 and _i_frame_ns(last) != 7

    @staticmethod
    def can_begin(frame: HdlcFrame) -> bool:
        """Weaker evidence (for meters that send no LLC): an LLC header, or a push's APDU tag first."""
        info = frame.info
        return _llc(info) or (bool(info) and info[0] in PUSH_TAGS)

    # -- feeding -------------------------------------------------------------------
    def push(self, frame: HdlcFrame) -> "list[HdlcMessage | BrokenMessage]":
        if not frame.carries_data:
            return []
        if not self._open and not frame.segmented and not self._segmenting:
            return [self.join((frame,))]  # the common case: one frame, one push, no state
        key = (frame.dest, frame.src)
        out: list[HdlcMessage | BrokenMessage] = []
        st = self._open.get(key)
        if st is not None:
            if self.starts(frame, st.last):
                if st.why is None:
                    self._break(st, "missing_last", "its last segment never came (a new push began)")
                out.append(self._report(key, st))
                st = None
            elif st.why is None:
                ns, prev = _i_frame_ns(frame.control), _i_frame_ns(st.last)
                if ns >= 0 and prev >= 0 and ns != (prev + 1) & 0x07:
                    self._break(st, "missing_segment", f"a segment is missing (I-frame N(S) {ns} followed {prev})")
        if st is None:
            if not frame.segmented:
                if key in self._segmenting and not self.can_begin(frame):
                    err = self._error(
                        frame,
                        "missing_first",
                        "its last segment arrived without the segments before it (the capture started"
                        " mid-push, or they were lost)",
                        1,
                    )
                    out.append(err)
                else:
                    out.append(self.join((frame,)))
                return out
            if len(self._segmenting) >= 4 * self._max_sources:
                self._segmenting.clear()
            self._segmenting.add(key)
            st = self._open_for(key, frame, out)
            if not self.can_begin(frame):
                self._break(
                    st,
                    "missing_first",
                    "segments arrived without the first one (the capture started mid-push, or it was lost)",
                )
        st.last = frame.control
        if st.why is not None:
            st.discarded += 1
            if not frame.segmented:
                out.append(self._report(key, st))
            return out
        st.frames.append(frame)
        st.size += len(frame.info)
        if st.size > self._max:
            self._break(st, "too_long", f"it exceeds {self._max} bytes")
            if not frame.segmented:
                out.append(self._report(key, st))
            return out
        if not frame.segmented:
            del self._open[key]
            out.append(self.join(tuple(st.frames)))
        return out

    def damaged(self, frame: HdlcFrame) -> "list[BrokenMessage]":
        """A frame whose header checked out but whose body did not (bad FCS, cut short): its message is lost.

        ``frame`` is the unverified frame the framer attached to its error;
        its addresses and S bit are trustworthy (the HCS covers them).
        """
        if not frame.carries_data:
            return []
        key = (frame.dest, frame.src)
        out: list[BrokenMessage] = []
        st = self._open.get(key)
        if st is not None and self.starts(frame, st.last):  # it began a new push: the pending one ends here
            if st.why is None:
                self._break(st, "missing_last", "its last segment never came (a new push began)")
            out.append(self._report(key, st))
            st = None
        if st is None:
            if not frame.segmented:
                return out  # a single frame: the framer's error is its report
            self._segmenting.add(key)
            st = self._open_for(key, frame, out)
            self._break(st, "damaged", "its first segment was damaged (reported before)")
        elif st.why is None:
            self._break(st, "damaged", f"segment {len(st.frames) + 1} was damaged (reported before)")
        st.damaged = True
        st.discarded += 1
        st.last = frame.control
        if not frame.segmented:
            out.append(self._report(key, st))
        return out

    def retry(self, message: "HdlcMessage") -> "tuple[BrokenMessage, HdlcMessage] | None":
        """Split a joined message that did not decode at its last segment that can begin one.

        Returns the report for the segments before it and the message from it
        on, or None when no later segment can begin a message.
        """
        frames = message.frames
        for i in range(len(frames) - 1, 0, -1):
            if self.can_begin(frames[i]):
                head = self._error(
                    frames[0],
                    "missing_last",
                    "its last segment never came (a later segment began a new push)",
                    i,
                )
                return head, self.join(frames[i:])
        return None

    def undecodable(self, message: "HdlcMessage", cause: DecodeError) -> BrokenMessage:
        """The report for a joined message that does not decode: a segment was most likely lost."""
        err = self._error(
            message.frames[0],
            "does_not_decode",
            f"its {len(message.frames)} joined segments do not decode ({cause.one_line()}), so a segment was"
            " most likely lost",
            len(message.frames),
        )
        err.partial = cause.partial
        return err

    @staticmethod
    def join(frames: "tuple[HdlcFrame, ...]") -> "HdlcMessage":
        payload = frames[0].info if len(frames) == 1 else b"".join(f.info for f in frames)
        llc = None
        if payload[:3] in (LLC_RESPONSE, LLC_COMMAND):
            llc, payload = payload[:3], payload[3:]
        return HdlcMessage(payload=payload, frames=frames, llc=llc)

    def reset(self) -> None:
        self._open.clear()
        self._segmenting.clear()

    @property
    def pending(self) -> int:
        """Segments of incomplete messages held (all senders)."""
        return sum(len(st.frames) for st in self._open.values())

    def flush(self) -> "list[BrokenMessage]":
        """End of input: every message still open is broken."""
        out = []
        for key, st in list(self._open.items()):
            if st.why is None:
                self._break(st, "incomplete", "the input ended before its last segment")
            out.append(self._report(key, st))
        self._segmenting.clear()
        return out

    # -- internals -----------------------------------------------------------------
    def _open_for(self, key: tuple[bytes, bytes], frame: HdlcFrame, out: list) -> _Pending:
        if len(self._open) >= self._max_sources:  # the oldest sender's message gives way
            old_key, old = next(iter(self._open.items()))
            if old.why is None:
                self._break(old, "too_many_senders", f"more than {self._max_sources} senders had pushes open at once")
            out.append(self._report(old_key, old))
        st = self._open[key] = _Pending([], frame.offset)
        return st

    @staticmethod
    def _break(st: _Pending, cause: str, why: str) -> None:
        st.why, st.cause = why, cause
        st.discarded += len(st.frames)
        st.frames = []
        st.size = 0

    def _report(self, key: tuple[bytes, bytes], st: _Pending) -> BrokenMessage:
        del self._open[key]
        err = _broken(key[1], st.why or "", st.cause, st.discarded, st.offset)
        if st.damaged:
            err.consequence = True
        return err

    @staticmethod
    def _error(frame: HdlcFrame, cause: str, why: str, discarded: int) -> BrokenMessage:
        return _broken(frame.src, why, cause, discarded, frame.offset)


def _broken(src: bytes, why: str, cause: str, discarded: int, offset: int) -> BrokenMessage:
    err = BrokenMessage(
        "hdlc",
        f"segmented push from address {src.hex()} broken: {why}; {discarded} segment(s) discarded,"
        " the push is lost",
        reason="broken_segments",
        cause=cause,
        offset=offset,
    )
    return err


@quick_init
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
