"""From a byte stream to plain APDUs: link layer, reassembly, block transfer, deciphering, parsing.

Sans-IO: ``feed(bytes)`` returns what the bytes completed, ``flush()`` ends
the input.  Results come in stream order, each either a
:class:`DecodedApdu` or a :class:`~decoders.errors.DecodeError` (with an
``offset`` attribute: where in the stream the failed frame began, and
``partial``: a :class:`DecodedApdu` holding the layers that did decode, for
annotated dumps).  The daemon and ``han decode`` drive the same object.

Transports::

    hdlc   7E A0xx ... 7E     HDLC frames (S-bit segments joined, LLC stripped)
    mbus   68 L L 68 ... 16   wired M-Bus long frames (CI 0x00.. / 0x1n segments joined)
    raw    DB ... / 0F ...    bare APDUs with no link layer (Luxembourg P1)
    auto   the first of these that yields a complete, checked frame

Whatever the link, an APDU that is a general-block-transfer (0xE0) is
collected block by block first; the joined APDU may be ciphered (0xDB).  A
plaintext that is a DSMR text telegram (``/...!CRC``, the Smarty) is parsed
as one; anything else must be a data-notification.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from . import axdr
from . import hdlc as _hdlc
from . import mbus as _mbus
from . import rawapdu as _raw
from .apdu import DataNotification, parse_data_notification
from .dsmr import Telegram, looks_like_telegram, parse_telegram
from .errors import ApduError, DecodeError, DowngradeRefused, FramingError, NotAFrame, TruncatedFrame
from .gbt import GENERAL_BLOCK_TRANSFER, GbtMessage, GbtReassembler, parse_block
from .hdlc import HdlcFrame, HdlcFramer, HdlcMessage, HdlcReassembler
from .mbus import MbusFrame, MbusFramer, MbusMessage, MbusReassembler
from .rawapdu import RawApdu, RawFramer
from .security import (
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    CipheredApdu,
    Keys,
    is_ciphered,
    parse_ciphered,
    unprotect,
)

TRANSPORTS = ("auto", "hdlc", "mbus", "raw")
#: bytes the auto-detection looks at before it settles on the likeliest link layer anyway
DETECT_LIMIT = 4096
#: bytes that can open a frame or APDU: HDLC flag, M-Bus start, general-glo-/ded-ciphering
_CANDIDATE = re.compile(rb"[\x7e\x68\xdb\xdc]")

LinkMessage = HdlcMessage | MbusMessage
#: keys by the sender's system title (None: the frame names none), e.g. a han.keyring.KeyRing
KeyLookup = Callable[[bytes | None], Keys]


@dataclass(frozen=True, slots=True)
class DecodedApdu:
    """One decoded APDU and every layer that carried it."""

    notification: DataNotification | None  #: None for a DSMR telegram (see ``telegram``) or a partial result
    apdu: bytes  #: the plain APDU
    ciphered: CipheredApdu | None  #: the security header, when the APDU was ciphered
    verified: bool  #: a GCM tag / GMAC was checked
    link: LinkMessage | None  #: the (first) link message that carried it (None for raw APDUs)
    offset: int  #: stream offset of the first byte
    #: every link message that carried it (several for a block transfer)
    links: tuple[LinkMessage, ...] = ()
    gbt: GbtMessage | None = None  #: the general-block-transfer blocks, when it came in blocks
    telegram: Telegram | None = None  #: the DSMR telegram, when the plaintext is one
    wire: bytes = b""  #: the APDU as carried (before deciphering), after link and block reassembly
    transport: str = ""  #: "hdlc", "mbus" or "raw"
    tree: axdr.Node | None = None  #: the body with offsets (only when the decoder annotates)


class StreamDecoder:
    """Bytes in, plain notifications (or typed errors) out.

    ``keys`` are one meter's :class:`~decoders.security.Keys`, or a :data:`KeyLookup`
    that gives each frame the keys of the system title it carries (several meters).
    """

    def __init__(
        self,
        keys: Keys | KeyLookup | None = None,
        *,
        transport: str = "auto",
        system_title: bytes | None = None,
        allow_unauthenticated: bool = False,
        allow_unverified: bool = False,
        annotate: bool = False,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        #: keys by system title, or None when every frame takes ``self.keys``
        self.key_lookup: KeyLookup | None = None if keys is None or isinstance(keys, Keys) else keys
        self.keys = keys if isinstance(keys, Keys) else Keys()
        self.system_title = system_title
        self.allow_unauthenticated = allow_unauthenticated
        self.allow_unverified = allow_unverified
        self.annotate = annotate
        self._transport = transport
        self._framer: HdlcFramer | MbusFramer | RawFramer | None = None
        self._hdlc = HdlcReassembler()
        self._mbus = MbusReassembler()
        self._gbt = GbtReassembler()
        self._gbt_links: list[LinkMessage | None] = []
        self._gbt_offset = 0
        #: the body layouts of this stream's lists: repeated pushes skip the A-XDR tree (see axdr.Templates)
        self._templates = axdr.Templates()
        self._pending = bytearray()  # auto mode: bytes seen before the transport was recognised
        #: a damaged frame was reported: errors of the message it broke are its consequence, not new faults
        self._damaged = False
        #: HDLC segments of a message whose earlier segment was damaged, skipped until its last segment
        self._hdlc_skip: int | None = None
        # transport detection state (auto mode): where to resume, the end of a damaged frame, the fallback
        self._det_pos = 0
        self._det_inside = 0
        self._det_fallback: str | None = None
        if transport != "auto":
            self._lock(transport)

    @property
    def transport(self) -> str:
        """The link layer in use: as forced, as detected, or "auto" while still undecided."""
        return self._transport

    def feed(self, data: bytes | bytearray | memoryview) -> list[DecodedApdu | DecodeError]:
        out: list[DecodedApdu | DecodeError] = []
        if self._framer is None:
            self._pending += data
            chosen = self._detect(final=False)
            if chosen is None:
                return out
            self._lock(chosen)
            data, self._pending = bytes(self._pending), bytearray()
        for item in self._framer.feed(data):  # type: ignore[union-attr]
            self._link_item(item, out)
        return out

    def flush(self) -> list[DecodedApdu | DecodeError]:
        out: list[DecodedApdu | DecodeError] = []
        if self._framer is None:
            if not self._pending:
                return out
            chosen = self._detect(final=True)
            if chosen is None:
                n = len(self._pending)
                self._pending = bytearray()
                err = NotAFrame(
                    f"{n} byte(s) at offset 0 are not part of any HDLC frame, M-Bus frame or APDU"
                    " (noise, wrong serial settings such as the baud rate, or not meter data)"
                )
                err.offset = 0  # type: ignore[attr-defined]
                err.length = n  # type: ignore[attr-defined]
                out.append(err)
                return out
            self._lock(chosen)
            for item in self._framer.feed(bytes(self._pending)):  # type: ignore[union-attr]
                self._link_item(item, out)
            self._pending = bytearray()
        for item in self._framer.flush():  # type: ignore[union-attr]
            self._link_item(item, out)
        for reassembler in (self._hdlc, self._mbus):
            err = reassembler.flush()
            if err is not None:
                self._consequence(err, out)
        err = self._gbt.flush()
        if err is not None:
            self._gbt_links = []
            self._consequence(err, out)
        if self._hdlc_skip is not None:
            err = TruncatedFrame(
                f"segmented message broken by a damaged segment: {self._hdlc_skip} other segment(s) discarded,"
                " the last segment never came"
            )
            self._hdlc_skip = None
            self._consequence(err, out)
        return out

    # -- link layer -----------------------------------------------------------
    def _lock(self, transport: str) -> None:
        self._transport = transport
        self._framer = {"hdlc": HdlcFramer, "mbus": MbusFramer, "raw": RawFramer}[transport]()

    def _detect(self, final: bool) -> str | None:
        """The link layer of the buffered bytes, or None while undecided (or, when final, nothing found).

        The first offset where a complete frame with good checksums (or a
        well-formed ciphered APDU) starts decides, unless a candidate before
        it is still incomplete.  Past :data:`DETECT_LIMIT` bytes, or at the
        end of input, the first candidate with a plausible header decides
        even when its checksum failed, so that wrong serial settings are
        reported as bad checksums rather than noise.
        """
        buf = self._pending
        n = len(buf)
        over = n > DETECT_LIMIT
        # offsets before _det_pos were settled by an earlier call ("no" or "bad" never change with more data)
        p = self._det_pos
        if p == 0 and n and buf[0] == 0x0F:
            state = _raw.probe(buf, 0, final)
            if state == "frame":
                return "raw"
            if state == "more" and not over:
                return None
            p = 1
        for m in _CANDIDATE.finditer(buf, p):
            p = m.start()
            if p < self._det_inside:
                continue
            b = buf[p]
            if b == 0x7E:
                kind, state = "hdlc", _hdlc.probe(buf, p, final)
            elif b == 0x68:
                kind, state = "mbus", _mbus.probe(buf, p, final)
                if state == "frame" and _mbus.is_short_frame(buf, p):
                    continue  # an 8-bit sum over 3 or 4 bytes: too weak to settle the link on
            else:
                kind, state = "raw", _raw.probe(buf, p, final)
            if state == "frame":
                return kind
            if state == "more":
                if not over:
                    self._det_pos = p
                    return None
                state = "bad"
            if state == "badhead":
                self._det_fallback = self._det_fallback or kind
                continue
            if state == "bad":
                self._det_fallback = self._det_fallback or kind
                if kind == "hdlc" and p + 2 < n:
                    self._det_inside = p + 2 + (((buf[p + 1] & 0x07) << 8) | buf[p + 2])
                elif kind == "mbus":
                    self._det_inside = p + 6 + buf[p + 1]
        self._det_pos = n
        if final or over:
            if self._det_fallback is None and over:
                return "hdlc"  # report the noise through the most common framer, and go on
            return self._det_fallback
        return None

    def _consequence(self, err: DecodeError, out: list) -> None:
        """Report ``err``; when it follows a damaged frame, mark it as that damage's consequence."""
        if self._damaged:
            err.consequence = True  # type: ignore[attr-defined]
            err.args = (f"{err.message} (after the damaged frame reported before)",)
        err.transport = self._transport  # type: ignore[attr-defined]
        out.append(err)

    def _link_item(self, item, out: list) -> None:
        if isinstance(item, DecodeError):
            item.transport = self._transport  # type: ignore[attr-defined]
            out.append(item)
            if isinstance(item, NotAFrame):
                return
            self._damaged = True
            frame = getattr(item, "frame", None)
            if isinstance(frame, HdlcFrame) and self._hdlc_skip is None:
                pending = self._hdlc.pending
                self._hdlc.reset()
                if frame.segmented:
                    self._hdlc_skip = pending  # the rest of this message is useless: skip to its last segment
                elif pending:
                    err = FramingError(
                        f"the damaged frame ended a segmented message: {pending} earlier segment(s) discarded"
                    )
                    err.reason = "broken_segments"
                    err.offset = item.offset  # type: ignore[attr-defined]
                    self._consequence(err, out)
            return
        if isinstance(item, HdlcFrame):
            if self._hdlc_skip is not None:
                if not item.carries_data:
                    return
                self._hdlc_skip += 1
                if not item.segmented:
                    err = FramingError(
                        f"segmented message broken by a damaged segment: {self._hdlc_skip} other segment(s) discarded"
                    )
                    err.reason = "broken_segments"
                    err.offset = item.offset  # type: ignore[attr-defined]
                    self._hdlc_skip = None
                    self._consequence(err, out)
                return
            msg = self._hdlc.push(item)
            if msg is None:
                return
            if isinstance(msg, DecodeError):
                msg.offset = item.offset  # type: ignore[attr-defined]
                self._consequence(msg, out)
                return
            self._payload(msg.payload, msg, msg.frames[0].offset, out)
        elif isinstance(item, MbusFrame):
            for got in self._mbus.push(item):
                if isinstance(got, DecodeError):
                    self._consequence(got, out)
                else:
                    self._payload(got.payload, got, got.frames[0].offset, out)
        elif isinstance(item, RawApdu):
            self._payload(item.apdu, None, item.offset, out)

    def _payload(self, payload: bytes, link: LinkMessage | None, offset: int, out: list) -> None:
        if payload[:1] == bytes((GENERAL_BLOCK_TRANSFER,)):
            try:
                block = parse_block(payload)
            except DecodeError as exc:
                self._fail(exc, offset, payload, (link,) if link else (), None, out)
                return
            if self._gbt.pending == 0:
                self._gbt_links, self._gbt_offset = [], offset
            links = tuple(x for x in self._gbt_links + [link] if x is not None)
            for got in self._gbt.push(block):
                if isinstance(got, DecodeError):
                    got.offset = offset  # type: ignore[attr-defined]
                    self._consequence(got, out)
                else:
                    self._damaged = False
                    out.append(self._safe_decode(got.payload, links, got, self._gbt_offset))
            # keep the link messages of the blocks still pending (a broken transfer may restart at block 1)
            if self._gbt.pending == 0:
                self._gbt_links = []
            elif self._gbt.pending == 1:
                self._gbt_links, self._gbt_offset = [link], offset
            else:
                self._gbt_links.append(link)
            return
        self._damaged = False
        out.append(self._safe_decode(payload, (link,) if link else (), None, offset))

    def _fail(self, exc: DecodeError, offset: int, wire: bytes, links, gbt, out: list) -> None:
        exc.offset = offset  # type: ignore[attr-defined]
        exc.transport = self._transport  # type: ignore[attr-defined]
        exc.partial = DecodedApdu(  # type: ignore[attr-defined]
            None, b"", None, False, links[0] if links else None, offset, tuple(links), gbt, None, wire, self._transport
        )
        out.append(exc)

    def _safe_decode(
        self, apdu: bytes, links: tuple[LinkMessage, ...], gbt: GbtMessage | None, offset: int
    ) -> DecodedApdu | DecodeError:
        try:
            return self.decode_apdu(apdu, link=links[0] if links else None, offset=offset, links=links, gbt=gbt)
        except DecodeError as exc:
            exc.offset = offset  # type: ignore[attr-defined]
            exc.transport = self._transport  # type: ignore[attr-defined]
            return exc

    # -- APDU layer -------------------------------------------------------------
    def decode_apdu(
        self,
        apdu: bytes,
        *,
        link: LinkMessage | None = None,
        offset: int = 0,
        links: tuple[LinkMessage, ...] = (),
        gbt: GbtMessage | None = None,
    ) -> DecodedApdu:
        """Decipher (when needed) and parse one APDU; raises DecodeError (with ``partial`` set)."""
        apdu = bytes(apdu)
        if link is not None and not links:
            links = (link,)
        transport = self._transport if self._transport != "auto" else ""
        state: dict = {"ciphered": None, "plain": b"", "verified": False}

        def partial() -> DecodedApdu:
            return DecodedApdu(
                None, state["plain"], state["ciphered"], state["verified"], link, offset, links, gbt, None, apdu,
                transport,
            )

        try:
            if not apdu:
                raise ApduError("the frame carries no APDU")
            if self.key_lookup is not None:
                self.keys = self.key_lookup(_sender_title(apdu) or self.system_title)
            plain = apdu
            ciphered: CipheredApdu | None = None
            verified = False
            if is_ciphered(apdu[0]):
                ciphered = parse_ciphered(apdu)
                state["ciphered"] = ciphered
                result = unprotect(
                    ciphered,
                    self.keys,
                    system_title=self.system_title,
                    allow_unauthenticated=self.allow_unauthenticated,
                    allow_unverified=self.allow_unverified,
                )
                plain, verified = result.apdu, result.verified
                state["plain"], state["verified"] = plain, verified
            elif self.keys.ak is not None and not self.allow_unauthenticated:
                raise DowngradeRefused(
                    "the APDU is not ciphered, but an authentication key is set: refused as a possible downgrade"
                    " (allow unauthenticated frames explicitly if this meter sends plain pushes)"
                )
            else:
                state["plain"] = plain
            if looks_like_telegram(plain):
                telegram = parse_telegram(plain)
                return DecodedApdu(
                    None, plain, ciphered, verified, link, offset, links, gbt, telegram, apdu, transport
                )
            if plain[:1] == bytes((GENERAL_BLOCK_TRANSFER,)):
                raise ApduError(
                    "a general-block-transfer block arrived inside a ciphered APDU; only blocks that carry"
                    " (ciphered) APDUs are supported"
                )
            try:
                notification = parse_data_notification(plain, self._templates)
            except DecodeError as exc:
                if ciphered is not None and not verified and ciphered.security_control & 0x20:
                    exc.args = (
                        f"{exc.message}; the frame was decrypted without a tag check, so a wrong encryption key"
                        " is the likely cause",
                    )
                    exc.reason = "wrong_key"
                raise
            tree = axdr.annotate(plain, notification.body_offset) if self.annotate else None
            return DecodedApdu(
                notification, plain, ciphered, verified, link, offset, links, gbt, None, apdu, transport, tree
            )
        except DecodeError as exc:
            exc.partial = partial()  # type: ignore[attr-defined]
            raise


def _sender_title(apdu: bytes) -> bytes | None:
    """The system title of a general-ciphering APDU (``DB 08 <8 bytes> ...``), else None."""
    if len(apdu) >= 10 and apdu[0] in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING) and apdu[1] == 8:
        return bytes(apdu[2:10])
    return None


__all__ = ["DecodedApdu", "KeyLookup", "StreamDecoder", "TRANSPORTS", "FramingError"]
