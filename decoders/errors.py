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


class DecodeError(Exception):
    """Base class for everything the decoders raise."""

    layer = "decode"
    #: a short, stable, machine-readable reason (used for counting outcomes)
    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def one_line(self) -> str:
        """``layer: message`` on one line, as printed to users."""
        return f"{self.layer}: {self.message}".replace("\n", " ")


class FramingError(DecodeError):
    layer = "framing"
    reason = "bad_frame"


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

    def __init__(self, layer: str, message: str, *, reason: str, cause: str) -> None:
        super().__init__(message, reason=reason)
        self.layer = layer
        self.cause = cause


class SecurityError(DecodeError):
    layer = "security"
    reason = "security"


class KeyMissing(SecurityError):
    reason = "no_key"


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
