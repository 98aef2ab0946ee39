"""From a byte stream to plain DataNotifications: framing, reassembly, deciphering, APDU parsing.

Sans-IO: ``feed(bytes)`` returns what the bytes completed, ``flush()`` ends
the input.  Results come in stream order, each either a
:class:`DecodedApdu` or a :class:`~decoders.errors.DecodeError` (with an
``offset`` attribute: where in the stream the failed frame began).  The
daemon and ``han decode`` drive the same object.
"""

from __future__ import annotations

from dataclasses import dataclass

from .apdu import DataNotification, parse_data_notification
from .errors import ApduError, DecodeError
from .hdlc import FLAG, HdlcFramer, HdlcFrame, HdlcMessage, HdlcReassembler
from .security import CipheredApdu, Keys, is_ciphered, parse_ciphered, unprotect

TRANSPORTS = ("auto", "hdlc", "raw")
#: first bytes of a bare APDU (raw transport)
_RAW_STARTS = frozenset((0x0F, 0xDB, 0xDC))


@dataclass(frozen=True, slots=True)
class DecodedApdu:
    notification: DataNotification
    apdu: bytes  #: the plain APDU
    ciphered: CipheredApdu | None  #: the security header, when the APDU was ciphered
    verified: bool  #: a GCM tag / GMAC was checked
    link: HdlcMessage | None  #: the frames that carried it (None for raw APDUs)
    offset: int  #: stream offset of the first byte


class StreamDecoder:
    """Bytes in, plain notifications (or typed errors) out."""

    def __init__(
        self,
        keys: Keys | None = None,
        *,
        transport: str = "auto",
        system_title: bytes | None = None,
        allow_unauthenticated: bool = False,
        allow_unverified: bool = False,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        self.keys = keys or Keys()
        self.system_title = system_title
        self.allow_unauthenticated = allow_unauthenticated
        self.allow_unverified = allow_unverified
        self._transport = transport
        self._framer = HdlcFramer()
        self._reassembler = HdlcReassembler()
        self._raw = bytearray()
        self._raw_offset = 0
        self._seen = 0

    @property
    def transport(self) -> str:
        return self._transport

    def feed(self, data: bytes) -> list[DecodedApdu | DecodeError]:
        if self._transport == "auto":
            self._transport = self._detect(data)
            if self._transport == "auto":
                self._raw += data  # not decided yet (only whitespace-free noise so far)
                return []
            if self._raw:
                data, self._raw = bytes(self._raw) + bytes(data), bytearray()
        if self._transport == "raw":
            self._raw += data
            return []
        out: list[DecodedApdu | DecodeError] = []
        for item in self._framer.feed(data):
            self._handle(item, out)
        return out

    def flush(self) -> list[DecodedApdu | DecodeError]:
        out: list[DecodedApdu | DecodeError] = []
        if self._transport in ("raw", "auto") and self._raw:
            raw, self._raw = bytes(self._raw), bytearray()
            if self._transport == "auto":
                # never decided: decode as HDLC to report what the bytes are
                for item in self._framer.feed(raw):
                    self._handle(item, out)
            else:
                out.append(self._safe_decode(raw, None, self._raw_offset))
                self._raw_offset += len(raw)
        for item in self._framer.flush():
            self._handle(item, out)
        err = self._reassembler.flush()
        if err is not None:
            out.append(err)
        return out

    # -- internals ------------------------------------------------------------
    def _detect(self, data: bytes) -> str:
        buf = bytes(self._raw) + bytes(data)
        if not buf:
            return "auto"
        if buf[0] == FLAG:
            return "hdlc"
        if buf[0] in _RAW_STARTS:
            return "raw"
        return "hdlc"  # anything else: let the framer find frames and report noise

    def _handle(self, item: HdlcFrame | DecodeError, out: list) -> None:
        if isinstance(item, DecodeError):
            out.append(item)
            return
        msg = self._reassembler.push(item)
        if msg is None:
            return
        if isinstance(msg, DecodeError):
            msg.offset = item.offset  # type: ignore[attr-defined]
            out.append(msg)
            return
        out.append(self._safe_decode(msg.payload, msg, msg.frames[0].offset))

    def _safe_decode(self, apdu: bytes, link: HdlcMessage | None, offset: int) -> DecodedApdu | DecodeError:
        try:
            return self.decode_apdu(apdu, link=link, offset=offset)
        except DecodeError as exc:
            exc.offset = offset  # type: ignore[attr-defined]
            return exc

    def decode_apdu(self, apdu: bytes, *, link: HdlcMessage | None = None, offset: int = 0) -> DecodedApdu:
        """Decipher (when needed) and parse one APDU; raises DecodeError."""
        if not apdu:
            raise ApduError("the frame carries no APDU")
        ciphered: CipheredApdu | None = None
        verified = False
        plain = apdu
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
            from .errors import DowngradeRefused

            raise DowngradeRefused(
                "the APDU is not ciphered, but an authentication key is set: refused as a possible downgrade"
                " (allow unauthenticated frames explicitly if this meter sends plain pushes)"
            )
        try:
            notification = parse_data_notification(plain)
        except DecodeError as exc:
            if ciphered is not None and not verified:
                exc.args = (
                    f"{exc.message}; the frame was decrypted without a tag check, so a wrong encryption key"
                    " is the likely cause",
                )
            raise
        return DecodedApdu(notification, plain, ciphered, verified, link, offset)
