"""OBIS codes (IEC 62056-6-1): six value groups A-B:C.D.E*F.

Accepted forms, all equal::

    Obis.parse("1.1.1.8.0.255")     dotted, as in the Kamstrup documents
    Obis.parse("1-1:1.8.0.255")     IEC form
    Obis.parse("1-1:1.8.0")         IEC short form (F = 255)
    Obis.parse("1-1:1.8.0*255")
    Obis.from_bytes(b"\\x01\\x01\\x01\\x08\\x00\\xff")
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IEC = re.compile(r"^\s*(\d+)-(\d+):(\d+)\.(\d+)\.(\d+)(?:[.*](\d+))?\s*$")
_DOTTED = re.compile(r"^\s*(\d+)\.(\d+)\.(\d+)\.(\d+)\.(\d+)\.(\d+)\s*$")


class ObisError(ValueError):
    """A text or byte string that is not an OBIS code."""


@dataclass(frozen=True, slots=True, order=True)
class Obis:
    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    def __post_init__(self) -> None:
        for v in (self.a, self.b, self.c, self.d, self.e, self.f):
            if not 0 <= v <= 255:
                raise ObisError(f"OBIS value groups are 0..255, got {v}")

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Obis":
        if len(raw) != 6:
            raise ObisError(f"an OBIS code is 6 bytes, got {len(raw)}")
        cached = _CACHE.get(raw)
        if cached is None:
            if len(_CACHE) >= CACHE_MAX:  # codes from a hostile or broken port must not grow memory forever
                _CACHE.clear()
            cached = _CACHE[bytes(raw)] = cls(*raw)
        return cached

    @classmethod
    def parse(cls, text: str) -> "Obis":
        m = _DOTTED.match(text) or _IEC.match(text)
        if not m:
            raise ObisError(f"{text!r} is not an OBIS code (expected 1.1.1.8.0.255 or 1-1:1.8.0)")
        groups = [int(g) if g is not None else 255 for g in m.groups()]
        return cls(*groups)

    def __bytes__(self) -> bytes:
        return bytes((self.a, self.b, self.c, self.d, self.e, self.f))

    @property
    def dotted(self) -> str:
        """``1.1.1.8.0.255``: the form used in JSON output."""
        return f"{self.a}.{self.b}.{self.c}.{self.d}.{self.e}.{self.f}"

    @property
    def iec(self) -> str:
        """``1-1:1.8.0.255``."""
        return f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}.{self.f}"

    @property
    def short(self) -> str:
        """``1-1:1.8.0`` (F omitted when it is 255)."""
        base = f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}"
        return base if self.f == 255 else f"{base}*{self.f}"

    def __str__(self) -> str:
        return self.dotted


#: one object per code seen (a meter sends the same few dozen codes in every push); emptied when full
_CACHE: dict[bytes, Obis] = {}
CACHE_MAX = 4096


def looks_like_obis(raw: bytes) -> bool:
    """Whether a 6-byte octet-string is plausibly an OBIS code in a push list.

    A (media) is 0..15 and F is 255 or a small billing-period number; a 6-byte
    meter number or text rarely passes both.
    """
    return len(raw) == 6 and raw[0] <= 15 and (raw[5] == 255 or raw[5] <= 101)
