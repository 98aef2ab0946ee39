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
    p1     / ... !CRC         P1 text telegrams (DSMR, e-MUCS, Swedish HAN, plain Smarty)
    auto   the first of these that yields a complete, checked frame

A push split over segments or blocks that loses one costs only itself:
the reassemblers keep state per sender, end a pending message at the next
segment that starts one, and report it once as a
:class:`~decoders.errors.BrokenMessage` (layer ``hdlc``, ``mbus`` or
``gbt``); a joined HDLC message that does not decode is retried from its
last segment that can begin a message.

Whatever the link, an APDU that is a general-block-transfer (0xE0) is
collected block by block first; the joined APDU may be ciphered (0xDB).  A
plaintext that is a DSMR text telegram (``/...!CRC``, the Smarty) is parsed
as one; anything else must be a data-notification.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .ciphering.security import CipheredApdu, Keys, is_ciphered, parse_ciphered, unprotect
from .errors import ApduError, DecodeError, DowngradeRefused, FramingError, NotAFrame
from .frozen import quick_init
from .link.gbt import GbtMessage, GbtReassembler, parse_block
from .link.detect import DETECT_LIMIT, TransportDetector
from .link.hdlc import HdlcFrame, HdlcFramer, HdlcMessage, HdlcReassembler
from .link.mbus import MbusFrame, MbusFramer, MbusMessage, MbusReassembler
from .link.p1 import P1Framer, P1Telegram
from .link.raw import RawApdu, RawFramer
from .xdlms import axdr
from .xdlms.apdu import DataNotification, parse_data_notification
from .xdlms.dsmr import Telegram, looks_like_telegram, parse_telegram
from .xdlms.tags import DATA_NOTIFICATION, GENERAL_BLOCK_TRANSFER, GENERAL_DED_CIPHERING, GENERAL_GLO_CIPHERING

TRANSPORTS = ("auto", "hdlc", "mbus", "raw", "p1")
LinkMessage = HdlcMessage | MbusMessage
_GBT_TAG = bytes((GENERAL_BLOCK_TRANSFER,))
#: reasons that mean "these bytes are not a whole APDU" (as opposed to a key or policy problem)
_UNPARSED = frozenset({"bad_axdr", "bad_apdu", "malformed_security", "bad_frame", "truncated"})


def _lost_segment(payload: bytes, err: DecodeError) -> bool:
    """``err`` is what a lost segment does to a joined ``payload``: its bytes do not add up.

    A plain data-notification then fails to parse, a ciphered APDU's length
    field disagrees (so it is never deciphered), a block's length is wrong.
    An APDU of a kind we do not decode, or a deciphered one that does not
    parse (a wrong key), is not a lost segment: its own error stands.
    """
    tag = payload[0] if payload else -1
    if tag == DATA_NOTIFICATION:
        return err.reason in ("bad_axdr", "bad_apdu")
    if tag == GENERAL_BLOCK_TRANSFER:
        return err.reason in ("bad_frame", "truncated")
    return is_ciphered(tag) and err.reason == "malformed_security"


def _joined(link: LinkMessage | None) -> bool:
    """``link`` is an HDLC message joined from several segments (which carry no sequence numbers)."""
    return isinstance(link, HdlcMessage) and len(link.frames) > 1


def _source(link: LinkMessage | None) -> object:
    """Who sent ``link``: the HDLC address pair, the M-Bus A-field, or None for bare APDUs."""
    if isinstance(link, HdlcMessage):
        first = link.frames[0]
        return (first.dest, first.src)
    if isinstance(link, MbusMessage):
        return link.frames[0].a
    return None
#: keys by the sender's system title (None: the frame names none), e.g. a han.keyring.KeyRing
KeyLookup = Callable[[bytes | None], Keys]


@quick_init
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
    transport: str = ""  #: "hdlc", "mbus", "raw" or "p1"
    tree: axdr.Node | None = None  #: the body with offsets (only when the decoder annotates)


class StreamDecoder:
    """Bytes in, plain notifications (or typed errors) out.

    ``keys`` are one meter's :class:`~decoders.ciphering.security.Keys`, or a :data:`KeyLookup`
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
        self._framer: HdlcFramer | MbusFramer | RawFramer | P1Framer | None = None
        self._hdlc = HdlcReassembler()
        self._mbus = MbusReassembler()
        self._gbt = GbtReassembler()
        #: the body layouts of this stream's lists: repeated pushes skip the A-XDR tree (see axdr.Templates)
        self._templates = axdr.Templates()
        self._detector = TransportDetector()  # auto mode: the bytes seen before the transport was recognised
        #: a damaged frame was reported: errors of the message it broke are its consequence, not new faults
        self._damaged = False
        if transport != "auto":
            self._lock(transport)

    @property
    def _pending(self) -> bytearray:
        """The bytes held while the transport is undecided (auto mode)."""
        return self._detector.pending

    @property
    def transport(self) -> str:
        """The link layer in use: as forced, as detected, or "auto" while still undecided."""
        return self._transport

    def feed(self, data: bytes | bytearray | memoryview) -> list[DecodedApdu | DecodeError]:
        out: list[DecodedApdu | DecodeError] = []
        if self._framer is None:
            self._detector.pending += data
            chosen = self._detector.detect(final=False)
            if chosen is None:
                return out
            self._lock(chosen)
            data = self._detector.take()
        for item in self._framer.feed(data):  # type: ignore[union-attr]
            self._link_item(item, out)
        return out

    def flush(self) -> list[DecodedApdu | DecodeError]:
        out: list[DecodedApdu | DecodeError] = []
        if self._framer is None and not self._settle(out):
            if self._detector.pending:
                n = len(self._detector.take())
                out.append(NotAFrame(
                    f"{n} byte(s) at offset 0 are not part of any HDLC frame, M-Bus frame, P1 telegram or APDU"
                    " (noise, wrong serial settings such as the baud rate, or not meter data)",
                    offset=0,
                    length=n,
                ))
            return out
        for item in self._framer.flush():  # type: ignore[union-attr]
            self._link_item(item, out)
        for reassembler in (self._hdlc, self._mbus, self._gbt):
            for err in reassembler.flush():
                self._consequence(err, out)
        return out

    def end_message(self) -> list[DecodedApdu | DecodeError]:
        """The input reached a message boundary (one MQTT message): a frame it left unfinished is
        reported now, not glued to the next message; a push split over segments or blocks carries on."""
        out: list[DecodedApdu | DecodeError] = []
        if self._framer is None and not self._settle(out):
            return self.flush() if self._detector.pending else out
        if self._framer.buffered:  # type: ignore[union-attr]
            for item in self._framer.flush():  # type: ignore[union-attr]
                self._link_item(item, out)
        return out

    # -- link layer -----------------------------------------------------------
    def _settle(self, out: list) -> bool:
        """At the end of input (or of a message): decide the transport from what is held and feed it.
        False when nothing is held or nothing was recognised (the bytes stay held)."""
        if not self._detector.pending:
            return False
        chosen = self._detector.detect(final=True)
        if chosen is None:
            return False
        self._lock(chosen)
        for item in self._framer.feed(self._detector.take()):  # type: ignore[union-attr]
            self._link_item(item, out)
        return True

    def _lock(self, transport: str) -> None:
        self._transport = transport
        self._framer = {"hdlc": HdlcFramer, "mbus": MbusFramer, "raw": RawFramer, "p1": P1Framer}[transport]()

    def _consequence(self, err: DecodeError, out: list) -> None:
        """Report ``err``; when it follows a damaged frame, mark it as that damage's consequence.

        A reassembler that knew which message the damage broke has marked its
        report already (and said so in it).
        """
        if not err.consequence and self._damaged:
            err.consequence = True
            err.add_note("(after the damaged frame reported before)")
        err.transport = self._transport
        out.append(err)

    def _link_item(self, item, out: list) -> None:
        if isinstance(item, DecodeError):
            item.transport = self._transport
            out.append(item)
            if isinstance(item, NotAFrame):
                return
            self._damaged = True
            header = item.header if isinstance(item, FramingError) else None
            if isinstance(header, HdlcFrame):  # the header checked out: the reassembler knows whose push broke
                for err in self._hdlc.damaged(header):
                    self._consequence(err, out)
            return
        if isinstance(item, HdlcFrame):
            for got in self._hdlc.push(item):
                if isinstance(got, DecodeError):
                    self._consequence(got, out)
                else:
                    self._payload(got.payload, got, got.frames[0].offset, out)
        elif isinstance(item, MbusFrame):
            for got in self._mbus.push(item):
                if isinstance(got, DecodeError):
                    self._consequence(got, out)
                else:
                    self._payload(got.payload, got, got.frames[0].offset, out)
        elif isinstance(item, RawApdu):
            self._payload(item.apdu, None, item.offset, out)
        elif isinstance(item, P1Telegram):
            try:
                telegram = parse_telegram(item.raw, crc_checked=True)
            except DecodeError as exc:
                self._fail(exc, item.offset, item.raw, (), None, out)
                return
            self._damaged = False
            out.append(
                DecodedApdu(None, item.raw, None, False, None, item.offset, (), None, telegram, item.raw, "p1")
            )

    def _payload(self, payload: bytes, link: LinkMessage | None, offset: int, out: list) -> None:
        if payload[:1] == _GBT_TAG:
            try:
                block = parse_block(payload)
            except DecodeError as exc:
                if _joined(link) and _lost_segment(payload, exc):
                    self._undecodable(link, exc, out)  # type: ignore[arg-type]
                else:
                    self._fail(exc, offset, payload, (link,) if link else (), None, out)
                return
            for got in self._gbt.push(block, _source(link), link, offset):
                if isinstance(got, DecodeError):
                    self._consequence(got, out)
                else:
                    self._damaged = False
                    out.append(self._safe_decode(got.payload, got.carriers, got, got.offset))
            return
        result = self._safe_decode(payload, (link,) if link else (), None, offset)
        if isinstance(result, DecodeError) and _joined(link) and _lost_segment(payload, result):
            self._undecodable(link, result, out)  # type: ignore[arg-type]
            return
        self._damaged = False
        out.append(result)

    def _undecodable(self, link: HdlcMessage, err: DecodeError, out: list) -> None:
        """A message joined from HDLC segments does not decode: a segment was lost.

        UI segments carry no sequence number, so the join is the first place a
        lost segment shows.  Retried from its last segment that can begin a
        message (a meter that sends no LLC header: the last segment of the
        push before was lost); the retry stands when it decodes or fails for
        a reason other than malformed bytes.  Otherwise the whole join is
        reported once as a broken push (layer ``hdlc``).
        """
        split = self._hdlc.retry(link)
        if split is not None:
            head, tail = split
            offset = tail.frames[0].offset
            if tail.payload[:1] == _GBT_TAG:
                try:
                    parse_block(tail.payload)
                except DecodeError:
                    pass
                else:
                    self._consequence(head, out)
                    self._payload(tail.payload, tail, offset, out)
                    return
            else:
                result = self._safe_decode(tail.payload, (tail,), None, offset)
                if not isinstance(result, DecodeError) or result.reason not in _UNPARSED:
                    self._consequence(head, out)
                    self._damaged = False
                    out.append(result)
                    return
        self._consequence(self._hdlc.undecodable(link, err), out)
        self._damaged = False

    def _fail(self, exc: DecodeError, offset: int, wire: bytes, links, gbt, out: list) -> None:
        exc.at(offset).transport = self._transport
        exc.partial = DecodedApdu(
            None, b"", None, False, links[0] if links else None, offset, tuple(links), gbt, None, wire, self._transport
        )
        out.append(exc)

    def _safe_decode(
        self, apdu: bytes, links: tuple[LinkMessage, ...], gbt: GbtMessage | None, offset: int
    ) -> DecodedApdu | DecodeError:
        try:
            return self.decode_apdu(apdu, link=links[0] if links else None, offset=offset, links=links, gbt=gbt)
        except DecodeError as exc:
            exc.at(offset).transport = self._transport
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
        # what decoded so far: the error's partial result (see the end)
        plain = b""
        ciphered: CipheredApdu | None = None
        verified = False
        try:
            if not apdu:
                raise ApduError("the frame carries no APDU")
            if self.key_lookup is not None:
                self.keys = self.key_lookup(_sender_title(apdu) or self.system_title)
            if is_ciphered(apdu[0]):
                ciphered = parse_ciphered(apdu)
                result = unprotect(
                    ciphered,
                    self.keys,
                    system_title=self.system_title,
                    allow_unauthenticated=self.allow_unauthenticated,
                    allow_unverified=self.allow_unverified,
                )
                plain, verified = result.apdu, result.verified
            elif self.keys.ak is not None and not self.allow_unauthenticated:
                raise DowngradeRefused(
                    "the APDU is not ciphered, but an authentication key is set: refused as a possible downgrade"
                    " (allow unauthenticated frames explicitly if this meter sends plain pushes)"
                )
            else:
                plain = apdu
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
                if ciphered is not None and not verified and ciphered.control.encrypted:
                    exc.add_note(
                        "the frame was decrypted without a tag check, so a wrong encryption key is the likely cause"
                    )
                    exc.reason = "wrong_key"
                raise
            tree = axdr.annotate(plain, notification.body_offset) if self.annotate else None
            return DecodedApdu(
                notification, plain, ciphered, verified, link, offset, links, gbt, None, apdu, transport, tree
            )
        except DecodeError as exc:
            exc.partial = DecodedApdu(
                None, plain, ciphered, verified, link, offset, links, gbt, None, apdu, transport
            )
            raise


def _sender_title(apdu: bytes) -> bytes | None:
    """The system title of a general-ciphering APDU (``DB 08 <8 bytes> ...``), else None."""
    if len(apdu) >= 10 and apdu[0] in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING) and apdu[1] == 8:
        return bytes(apdu[2:10])
    return None


__all__ = ["DETECT_LIMIT", "DecodedApdu", "KeyLookup", "StreamDecoder", "TRANSPORTS", "FramingError"]
