"""The sans-IO decode pipeline: bytes → frames → plain APDUs → :class:`~obis.push.Push`.

``PushDecoder`` is what ``han decode`` and the daemon drive, and what a
library user wants::

    from han.pipeline import PushDecoder
    from decoders.security import Keys

    dec = PushDecoder(Keys(ek=..., ak=...))
    for item in dec.feed(chunk):          # any chunking
        if isinstance(item, Push): ...    # else a DecodeError with .offset
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from decoders.apdu import parse_data_notification
from decoders.errors import DecodeError
from decoders.security import Keys
from decoders.stream import DecodedApdu, StreamDecoder
from obis.interpret import interpret
from obis.profiles import Profile
from obis.push import Push, SecurityInfo

if TYPE_CHECKING:
    from .keyring import KeyRing

UNVERIFIED_NOTE = "UNVERIFIED: decrypted without checking the authentication tag (no authentication key given)"


class PushDecoder:
    def __init__(
        self,
        keys: Keys | None = None,
        *,
        transport: str = "auto",
        system_title: bytes | None = None,
        allow_unauthenticated: bool = False,
        allow_unverified: bool = False,
        country: str | None = None,
        profile: Profile | None = None,
        keyring: "KeyRing | None" = None,
    ) -> None:
        options = dict(
            transport=transport,
            system_title=system_title,
            allow_unauthenticated=allow_unauthenticated,
            allow_unverified=allow_unverified,
        )
        if keyring is not None:  # several meters: keys picked by each frame's system title
            from .keyring import KeyRingStreamDecoder

            self.stream: StreamDecoder = KeyRingStreamDecoder(keyring, **options)
        else:
            self.stream = StreamDecoder(keys, **options)
        self.country = country
        self.profile = profile

    def feed(self, data: bytes) -> list[Push | DecodeError]:
        return [self._finish(x) for x in self.stream.feed(data)]

    def flush(self) -> list[Push | DecodeError]:
        return [self._finish(x) for x in self.stream.flush()]

    def _finish(self, item: DecodedApdu | DecodeError) -> Push | DecodeError:
        if isinstance(item, DecodeError):
            return item
        try:
            return to_push(item, country=self.country, profile=self.profile)
        except DecodeError as exc:
            exc.offset = item.offset  # type: ignore[attr-defined]
            return exc
        except Exception as exc:  # noqa: BLE001 - a bug on one frame must not end a stream (or the daemon)
            return internal_error(exc, item.offset)


def internal_error(exc: Exception, offset: int | None = None) -> DecodeError:
    """An unexpected exception while decoding one frame, as a countable error value."""
    if os.environ.get("HAN_DEBUG"):
        raise exc
    err = DecodeError(
        f"internal error on this frame: {type(exc).__name__}: {exc} (a bug: please report it with the frame;"
        " HAN_DEBUG=1 shows the traceback)",
        reason="internal_error",
    )
    if offset is not None:
        err.offset = offset  # type: ignore[attr-defined]
    return err


def to_push(decoded: DecodedApdu, *, country: str | None = None, profile: Profile | None = None) -> Push:
    c = decoded.ciphered
    security = None
    if c is not None:
        security = SecurityInfo(
            system_title=c.system_title,
            invocation_counter=c.invocation_counter,
            security_control=c.security_control,
            verified=decoded.verified,
            tag=c.tag,
        )
    return _push(decoded.notification, decoded.apdu, security, country=country, profile=profile)


def push_from_apdu(
    apdu: bytes, security: SecurityInfo | None, *, country: str | None = None, profile: Profile | None = None
) -> Push:
    """The push of a plain APDU that was already checked (the daemon's journal keeps these); raises DecodeError."""
    return _push(parse_data_notification(apdu), apdu, security, country=country, profile=profile)


def _push(notification, apdu: bytes, security: SecurityInfo | None, *, country, profile) -> Push:
    push = interpret(notification, security=security, profile=profile, country=country, apdu=apdu)
    if security is not None and security.security_control & 0x10 and not security.verified:
        push = replace(push, notes=push.notes + (UNVERIFIED_NOTE,))
    return push
