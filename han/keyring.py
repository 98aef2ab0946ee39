"""Keys for several meters, picked by the system title a frame carries.

A HAN port usually has one meter, but a logger can read several (an M-Bus
adapter shared by two meters, a ser2net concentrator).  The ring holds a
default :class:`~decoders.ciphering.security.Keys` and one per system title.  It is a
key lookup (:data:`decoders.stream.KeyLookup`): a decoder given a ring calls
it with each frame's system title before it removes the frame's protection.

``key_id`` is a short fingerprint of a key set (never the keys): the
invocation counters are kept per system title *and* key, so a re-keyed meter
starts a fresh counter by itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from decoders.ciphering.security import Keys


@dataclass(frozen=True)
class KeyRing:
    default: Keys = field(default_factory=Keys)
    meters: Mapping[bytes, Keys] = field(default_factory=dict)

    def keys_for(self, system_title: bytes | None) -> Keys:
        if system_title is not None:
            keys = self.meters.get(bytes(system_title))
            if keys is not None:
                return keys
        return self.default

    __call__ = keys_for  # a KeyRing is a key lookup: system title -> Keys

    def key_id(self, system_title: bytes | None) -> str:
        return key_id(self.keys_for(system_title))

    def __repr__(self) -> str:  # never the keys
        return f"KeyRing(default={self.default!r}, meters={len(self.meters)})"

    @property
    def empty(self) -> bool:
        return not (self.default.ek or self.default.ak or self.meters)


def key_id(keys: Keys) -> str:
    """A fingerprint of a key set: 8 hex digits of a SHA-256 over the keys (``none`` without keys).

    It identifies which keys were in use without revealing them.
    """
    material = b"".join((k or b"") + b"|" for k in (keys.ek, keys.ak, keys.broadcast, keys.dedicated))
    if material == b"||||":
        return "none"
    return hashlib.sha256(b"han key id\0" + material).hexdigest()[:8]
