"""The error hierarchy of the decoders.

Every error names its layer and, where one is known, the likely cause, in one
plain sentence a user can act on.  Callers catch by layer::

    DecodeError
    ├── FramingError         link layer: HDLC, M-Bus, block transfer
    │   ├── ChecksumError    HCS/FCS or M-Bus checksum wrong (noise, bad cable, wrong parity)
    │   ├── TruncatedFrame   the frame ended before its length field said
    │   └── BrokenMessage    a push split over segments/blocks lost one: layer "hdlc", "mbus" or "gbt"
    ├── SecurityError        ciphering layer
    │   ├── KeyMissing       the frame needs a key that was not given
    │   ├── TagMismatch      GCM tag wrong: wrong key or altered frame
    │   ├── DowngradeRefused an unauthenticated frame while an authentication key is set
    │   ├── UnsupportedSecurity  compression, unknown suite, ...
    │   └── MalformedSecurityHeader
    ├── AxdrError            A-XDR data could not be decoded
    ├── ApduError            the APDU is not one we decode, or is malformed
    └── ProfileError         (raised by ``obis``) a profile cannot be applied

Messages never contain key material.
"""

from __future__ import annotations

from typing import Any, Self


class DecodeError(Exception):
    """Base class for everything the decoders raise.

    The context an error carries is declared here, so readers never guess:

    ``offset``/``length``
        where in the input the trouble is (byte offset of the frame or APDU,
        and for noise the run's length); ``None`` when not known.
    ``transport``
        the link layer in use (``"hdlc"``, ``"mbus"``, ``"raw"``) or ``""``.
    ``raw``
        the bytes of the frame that failed, when a framer had them.
    ``partial``
        what was decoded before the failure (a ``DecodedApdu`` without a
        notification) so that explanations can show the layers that did work.
    ``consequence``
        this error follows from damage reported before (not counted twice).
    ``reason``
        a short, stable, machine-readable key (used for counting outcomes).

    What a later layer learns is added with :meth:`add_note` (PEP 678);
    :attr:`message` and ``str()`` read the message with its notes, joined as
    one sentence.
    """

    layer = "decode"
    #: a short, stable, machine-readable reason (used for counting outcomes)
    reason = "error"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        offset: int | None = None,
        length: int | None = None,
        transport: str = "",
        raw: bytes | None = None,
        partial: Any = None,
        consequence: bool = False,
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.offset = offset
        self.length = length
        self.transport = transport
        self.raw = raw
        self.partial = partial
        self.consequence = consequence

    def at(self, offset: int, length: int | None = None) -> Self:
        """Attach the position in the input (and the length of what failed, when known); returns ``self``."""
        self.offset = offset
        if length is not None:
            self.length = length
        return self

    @property
    def message(self) -> str:
        """The message with its notes: a note in parentheses follows after a space, any other after ``; ``."""
        text = str(self.args[0]) if self.args else ""
        for note in getattr(self, "__notes__", ()):
            text += (" " if note.startswith("(") else "; ") + note
        return text

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """``layer: message`` on one line, as printed to users."""
        return f"{self.layer}: {self.message}".replace("\n", " ")


class FramingError(DecodeError):
    layer = "framing"
    reason = "bad_frame"
    #: the HDLC or M-Bus frame as read, its checksums not vouching for it (explanations show it)
    frame: Any = None
    #: the frame's header when its own checksum vouched for it: the reassembler knows whose push broke
    header: Any = None


class ChecksumError(FramingError):
    reason = "bad_checksum"


class TruncatedFrame(FramingError):
    reason = "truncated"


class NotAFrame(FramingError):
    reason = "not_a_frame"


class BrokenMessage(FramingError):
    """A push split over several HDLC segments, M-Bus segments or GBT blocks that cannot be completed.

    Reported once per broken push, by the reassembler of its ``layer``
    (``"hdlc"``, ``"mbus"`` or ``"gbt"``); ``cause`` is a short stable key
    (``missing_first``, ``missing_last``, ``missing_segment``, ``damaged``,
    ``does_not_decode``, ``too_long``, ``incomplete``, ``too_many_senders``).
    The message reads ``<what> broken: <why>; <what was discarded>, the push is lost``.
    """

    def __init__(self, layer: str, message: str, *, reason: str, cause: str, **context: Any) -> None:
        super().__init__(message, reason=reason, **context)
        self.layer = layer
        self.cause = cause


class SecurityError(DecodeError):
    layer = "security"
    reason = "security"


class KeyMissing(SecurityError):
    """The frame needs something that was not given; ``key`` names it.

    ``key`` is ``"encryption"``, ``"authentication"``, ``"dedicated"``,
    ``"broadcast"`` (the key) or ``"system_title"``.  The message says what
    is missing in words; a command line adds how to give it as a note.
    ``otherwise`` is what the caller can do instead, said last, after any
    notes.
    """

    reason = "no_key"

    def __init__(self, message: str, *, key: str | None = None, otherwise: str = "", **context: Any) -> None:
        super().__init__(message, **context)
        self.key = key
        self.otherwise = otherwise

    @property
    def message(self) -> str:
        text = super().message
        return f"{text}; {self.otherwise}" if self.otherwise else text


class TagMismatch(SecurityError):
    reason = "tag_mismatch"


class DowngradeRefused(SecurityError):
    reason = "downgrade"


class UnsupportedSecurity(SecurityError):
    reason = "unsupported_security"


class MalformedSecurityHeader(SecurityError):
    reason = "malformed_security"


class AxdrError(DecodeError):
    layer = "a-xdr"
    reason = "bad_axdr"
    #: the data ended before the value did (more bytes could complete it); False: malformed whatever follows
    truncated = False


class ApduError(DecodeError):
    layer = "apdu"
    reason = "bad_apdu"


class ProfileError(DecodeError):
    layer = "profile"
    reason = "profile"
