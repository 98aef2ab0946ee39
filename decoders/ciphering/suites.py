"""DLMS/COSEM security suites and the security control byte.

::

    suite  name                              symmetric     keys  sign/agree      hash     key wrap
      0    AES-GCM-128                       AES-GCM-128    16   -               -        AES-128 KW
      1    ECDH-ECDSA-AES-GCM-128-SHA-256    AES-GCM-128    16   P-256           SHA-256  AES-128 KW
      2    ECDH-ECDSA-AES-GCM-256-SHA-384    AES-GCM-256    32   P-384           SHA-384  AES-256 KW

    security control byte:  C K E A | suite
                            | | | '- 0x10 authentication (GCM tag / GMAC)
                            | | '--- 0x20 encryption
                            | '----- 0x40 key set: broadcast key (GBEK) instead of unicast (GUEK)
                            '------- 0x80 compression

Parsing and describing the byte is :class:`decoders.ciphering.security.SecurityControl`;
this module builds it and names the suites.
"""

from __future__ import annotations

from dataclasses import dataclass

from .control import SUITE_KEY_LENGTH, SecurityControl


@dataclass(frozen=True, slots=True)
class SecuritySuite:
    id: int
    name: str
    key_length: int  #: bytes of EK, AK, KEK and dedicated keys
    curve: str | None  #: ECDH/ECDSA curve (suites 1 and 2)
    hash: str | None  #: hash of the KDF and the signatures


SUITES: dict[int, SecuritySuite] = {
    0: SecuritySuite(0, "AES-GCM-128", SUITE_KEY_LENGTH[0], None, None),
    1: SecuritySuite(1, "ECDH-ECDSA-AES-GCM-128-SHA-256", SUITE_KEY_LENGTH[1], "P-256", "SHA-256"),
    2: SecuritySuite(2, "ECDH-ECDSA-AES-GCM-256-SHA-384", SUITE_KEY_LENGTH[2], "P-384", "SHA-384"),
}


def security_control(
    *,
    authenticated: bool,
    encrypted: bool,
    suite: int = 0,
    broadcast: bool = False,
    compressed: bool = False,
) -> SecurityControl:
    """Build the security control byte; ``security_control(authenticated=True, encrypted=True).value == 0x30``."""
    if suite not in SUITES:
        raise ValueError(f"security suite {suite} does not exist (0, 1 or 2)")
    return SecurityControl.build(
        authenticated=authenticated, encrypted=encrypted, suite=suite, broadcast=broadcast, compressed=compressed
    )
