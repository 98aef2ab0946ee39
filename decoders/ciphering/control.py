"""The security control byte (SC), decoded in this one place.

::

    bit 7   compression (not supported: refused with a clear error)
    bit 6   key set: 0 = unicast key (GUEK), 1 = broadcast key (GBEK)
    bit 5   E: encryption applied
    bit 4   A: authentication applied
    bits 3..0  security suite (0, 1: AES-GCM-128; 2: AES-GCM-256)

``SecurityControl.of(byte)`` hands out one shared instance per byte value, so
the framers' probes and every push can ask without building objects.
"""

from __future__ import annotations

from dataclasses import dataclass

_SUITE = 0x0F
_AUTHENTICATED = 0x10
_ENCRYPTED = 0x20
_BROADCAST = 0x40
_COMPRESSED = 0x80

#: key length in bytes per security suite
SUITE_KEY_LENGTH = {0: 16, 1: 16, 2: 32}

_MODES = {
    (True, True): "authenticated and encrypted",
    (False, True): "encrypted only (no tag)",
    (True, False): "authenticated only (GMAC)",
    (False, False): "no protection",
}
_SHORT_MODES = {
    (True, True): "authenticated+encrypted",
    (False, True): "encrypted",
    (True, False): "authenticated",
    (False, False): "none",
}


@dataclass(frozen=True, slots=True)
class SecurityControl:
    value: int

    @staticmethod
    def of(value: int) -> "SecurityControl":
        """The (shared) instance for one byte value."""
        return _ALL[value]

    @classmethod
    def build(
        cls,
        *,
        authenticated: bool,
        encrypted: bool,
        suite: int = 0,
        broadcast: bool = False,
        compressed: bool = False,
    ) -> "SecurityControl":
        value = suite | (_AUTHENTICATED if authenticated else 0) | (_ENCRYPTED if encrypted else 0)
        value |= (_BROADCAST if broadcast else 0) | (_COMPRESSED if compressed else 0)
        return cls(value)

    @property
    def suite(self) -> int:
        return self.value & _SUITE

    @property
    def authenticated(self) -> bool:
        return bool(self.value & _AUTHENTICATED)

    @property
    def encrypted(self) -> bool:
        return bool(self.value & _ENCRYPTED)

    @property
    def protected(self) -> bool:
        """Authentication, encryption or both applied."""
        return bool(self.value & (_AUTHENTICATED | _ENCRYPTED))

    @property
    def broadcast(self) -> bool:
        return bool(self.value & _BROADCAST)

    @property
    def compressed(self) -> bool:
        return bool(self.value & _COMPRESSED)

    @property
    def supported(self) -> bool:
        """Not compressed and a suite that exists (what a decrypter can open)."""
        return not self.value & _COMPRESSED and (self.value & _SUITE) in SUITE_KEY_LENGTH

    @property
    def mode(self) -> str:
        """``authenticated+encrypted``, ``encrypted``, ``authenticated`` or ``none``."""
        return _SHORT_MODES[(self.authenticated, self.encrypted)]

    def describe(self) -> str:
        parts = [
            f"suite {self.suite}",
            _MODES[(self.authenticated, self.encrypted)],
            "broadcast key" if self.broadcast else "unicast key",
        ]
        if self.compressed:
            parts.append("compressed")
        return ", ".join(parts)


_ALL = tuple(SecurityControl(v) for v in range(256))
