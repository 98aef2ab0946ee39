"""The sans-IO decode pipeline: bytes → frames → plain APDUs → :class:`~obis.push.Push`.

``PushDecoder`` is what ``han decode`` and the daemon drive, and what a
library user wants::

    from han.pipeline import PushDecoder
    from decoders.security import Keys

    dec = PushDecoder(Keys(ek=..., ak=...), country="NO")
    for item in dec.feed(chunk):          # any chunking
        if isinstance(item, Push): ...    # else a DecodeError with .offset
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from decoders.errors import DecodeError
from decoders.security import Keys
from decoders.stream import DecodedApdu, StreamDecoder
from obis.code import Obis
from obis.interpret import interpret, interpret_telegram
from obis.profiles import Profile
from obis.push import Push, SecurityInfo


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
        keep_layers: bool = False,
    ) -> None:
        """``keep_layers`` keeps every layer that carried a push in ``Push.layers`` (for ``--explain``)."""
        self.stream = StreamDecoder(
            keys,
            transport=transport,
            system_title=system_title,
            allow_unauthenticated=allow_unauthenticated,
            allow_unverified=allow_unverified,
            annotate=keep_layers,
        )
        self.country = country
        self.profile = profile
        self.timezone = timezone
        self.multipliers = dict(multipliers or {})
        self.ct_ratio = ct_ratio
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
            )
        except DecodeError as exc:
            exc.offset = item.offset  # type: ignore[attr-defined]
            exc.partial = item  # type: ignore[attr-defined]
            return exc
        if self.keep_layers:
            push = replace(push, layers=item)
        return push


def to_push(
    decoded: DecodedApdu,
    *,
    country: str | None = None,
    profile: Profile | None = None,
    timezone: str | None = None,
    multipliers: Mapping[Obis, float] | None = None,
    ct_ratio: float | None = None,
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
    kw = dict(
        security=security,
        profile=profile,
        country=country,
        apdu=decoded.apdu,
        timezone=timezone,
        multipliers=multipliers,
        ct_ratio=ct_ratio,
    )
    if decoded.telegram is not None:
        push = interpret_telegram(decoded.telegram, **kw)
    else:
        push = interpret(decoded.notification, **kw)
    if c is not None and c.security_control & 0x10 and not decoded.verified:
        push = replace(
            push,
            notes=push.notes
            + ("UNVERIFIED: decrypted without checking the authentication tag (no authentication key given)",),
        )
    return push
