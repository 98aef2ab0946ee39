"""The sans-IO decode pipeline: bytes → frames → plain APDUs → :class:`~obis.push.Push`.

``PushDecoder`` is what ``han decode`` and the daemon drive, and what a
library user wants::

    from han.pipeline import PushDecoder
    from decoders.ciphering.security import Keys

    dec = PushDecoder(Keys(ek=..., ak=...), country="NO")
    for item in dec.feed(chunk):          # any chunking
        if isinstance(item, Push): ...    # else a DecodeError with .offset
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Mapping

from decoders.xdlms import axdr
from decoders.xdlms.apdu import parse_data_notification
from decoders.xdlms.dsmr import Telegram, looks_like_telegram, parse_telegram
from decoders.errors import DecodeError
from decoders.ciphering.control import SecurityControl
from decoders.ciphering.security import Keys
from decoders.stream import DecodedApdu, StreamDecoder
from obis.code import Obis
from obis.interpret import interpret, interpret_telegram
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
        timezone: str | None = None,
        multipliers: Mapping[Obis, float] | None = None,
        ct_ratio: float | None = None,
        profiles: tuple[Profile, ...] | None = None,
        keep_layers: bool = False,
        keyring: "KeyRing | None" = None,
    ) -> None:
        """``keep_layers`` keeps every layer that carried a push in ``Push.layers`` (for ``--explain``).

        ``keyring`` (several meters) picks each frame's keys by its system title instead of ``keys``.
        ``profiles`` is the catalogue profiles are chosen from (:func:`obis.profiles.catalogue`).
        """
        options = dict(
            transport=transport,
            system_title=system_title,
            allow_unauthenticated=allow_unauthenticated,
            allow_unverified=allow_unverified,
            annotate=keep_layers,
        )
        if keyring is not None:
            from .keyring import KeyRingStreamDecoder

            self.stream: StreamDecoder = KeyRingStreamDecoder(keyring, **options)
        else:
            self.stream = StreamDecoder(keys, **options)
        self.country = country
        self.profile = profile
        self.timezone = timezone
        self.multipliers = dict(multipliers or {})
        self.ct_ratio = ct_ratio
        self.profiles = profiles
        self.keep_layers = keep_layers

    @property
    def transport(self) -> str:
        return self.stream.transport

    def feed(self, data: bytes | bytearray | memoryview) -> list[Push | DecodeError]:
        return [self._finish(x) for x in self.stream.feed(data)]

    def flush(self) -> list[Push | DecodeError]:
        return [self._finish(x) for x in self.stream.flush()]

    def _finish(self, item: DecodedApdu | DecodeError) -> Push | DecodeError:
        if isinstance(item, DecodeError):
            return item
        try:
            push = to_push(
                item,
                country=self.country,
                profile=self.profile,
                timezone=self.timezone,
                multipliers=self.multipliers,
                ct_ratio=self.ct_ratio,
                profiles=self.profiles,
            )
        except DecodeError as exc:
            exc.at(item.offset).partial = item
            return exc
        except Exception as exc:  # noqa: BLE001 - a bug on one frame must not end a stream (or the daemon)
            return internal_error(exc, item.offset)
        if self.keep_layers:
            push = replace(push, layers=item)
        return push


def internal_error(exc: Exception, offset: int | None = None) -> DecodeError:
    """An unexpected exception while decoding one frame, as a countable error value."""
    if os.environ.get("HAN_DEBUG"):
        raise exc
    err = DecodeError(
        f"internal error on this frame: {type(exc).__name__}: {exc} (a bug: please report it with the frame;"
        " HAN_DEBUG=1 shows the traceback)",
        reason="internal_error",
        offset=offset,
    )
    return err


def to_push(
    decoded: DecodedApdu,
    *,
    country: str | None = None,
    profile: Profile | None = None,
    timezone: str | None = None,
    multipliers: Mapping[Obis, float] | None = None,
    ct_ratio: float | None = None,
    profiles: tuple[Profile, ...] | None = None,
) -> Push:
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
    return _push(
        decoded.telegram or decoded.notification,
        decoded.apdu,
        security,
        country=country,
        profile=profile,
        timezone=timezone,
        multipliers=multipliers,
        ct_ratio=ct_ratio,
        profiles=profiles,
    )


def push_from_apdu(apdu: bytes, security: SecurityInfo | None, **options) -> Push:
    """The push of a plain APDU that already passed its checks (the daemon's journal keeps these).

    ``options`` are :func:`to_push`'s (country, profile, timezone, multipliers, ct_ratio, profiles);
    raises DecodeError.
    """
    if looks_like_telegram(apdu):
        content = parse_telegram(apdu)
    else:
        content = parse_data_notification(apdu, _thread_templates())  # a journal holds the same lists again and again
    return _push(content, apdu, security, **options)


_local = threading.local()


def _thread_templates() -> axdr.Templates:
    """This thread's template cache for :func:`push_from_apdu` (the daemon's sink threads call it)."""
    templates = getattr(_local, "templates", None)
    if templates is None:
        templates = _local.templates = axdr.Templates()
    return templates


def _push(content, apdu: bytes, security: SecurityInfo | None, **options) -> Push:
    if isinstance(content, Telegram):
        push = interpret_telegram(content, security=security, apdu=apdu, **options)
    else:
        push = interpret(content, security=security, apdu=apdu, **options)
    if security is not None and SecurityControl.of(security.security_control).authenticated and not security.verified:
        push = replace(push, notes=push.notes + (UNVERIFIED_NOTE,))
    return push
