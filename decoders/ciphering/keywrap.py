"""AES key wrap (RFC 3394), as DLMS uses it to transfer keys.

Security setup (class 64) method ``global_key_transfer`` carries
``{key_id, wrapped_key}`` with the new key wrapped under the master key (KEK):
AES-128 key wrap in suites 0 and 1, AES-256 in suite 2.  A wrapped key is
8 bytes longer than the key; unwrapping checks the integrity value
A6A6A6A6A6A6A6A6, so a wrong KEK or an altered key is detected.

key_id: 0 = global unicast encryption key, 1 = global broadcast encryption
key, 2 = authentication key, 3 = master key (KEK).
"""

from __future__ import annotations

from Crypto.Cipher import AES

from ..errors import SecurityError, TagMismatch

DEFAULT_IV = b"\xa6" * 8

#: key_id of security setup's global_key_transfer
KEY_IDS = {
    0: "global unicast encryption key",
    1: "global broadcast encryption key",
    2: "authentication key",
    3: "master key (KEK)",
}


def _check(kek: bytes, data: bytes, what: str, extra: int) -> None:
    if len(kek) not in (16, 24, 32):
        raise SecurityError(f"key wrap: the KEK is {len(kek)} bytes; 16, 24 or 32 expected", reason="bad_key")
    if len(data) % 8 or len(data) < 16 + extra:
        raise SecurityError(
            f"key wrap: the {what} is {len(data)} bytes; a multiple of 8 of at least {16 + extra} expected",
            reason="bad_key",
        )


def wrap(kek: bytes, key: bytes) -> bytes:
    """Wrap ``key`` (16 or 32 bytes in DLMS) under ``kek``; the result is 8 bytes longer."""
    _check(kek, key, "key to wrap", 0)
    ecb = AES.new(kek, AES.MODE_ECB)
    a = DEFAULT_IV
    r = [key[i : i + 8] for i in range(0, len(key), 8)]
    n = len(r)
    for j in range(6):
        for i in range(n):
            b = ecb.encrypt(a + r[i])
            t = n * j + i + 1
            a = (int.from_bytes(b[:8], "big") ^ t).to_bytes(8, "big")
            r[i] = b[8:]
    return a + b"".join(r)


def unwrap(kek: bytes, wrapped: bytes) -> bytes:
    """Unwrap and check the integrity value; :class:`TagMismatch` on a wrong KEK or altered data."""
    _check(kek, wrapped, "wrapped key", 8)
    ecb = AES.new(kek, AES.MODE_ECB)
    a = wrapped[:8]
    r = [wrapped[i : i + 8] for i in range(8, len(wrapped), 8)]
    n = len(r)
    for j in range(5, -1, -1):
        for i in range(n - 1, -1, -1):
            t = n * j + i + 1
            b = ecb.decrypt((int.from_bytes(a, "big") ^ t).to_bytes(8, "big") + r[i])
            a, r[i] = b[:8], b[8:]
    if a != DEFAULT_IV:
        raise TagMismatch("key unwrap: integrity check failed: the KEK is wrong or the wrapped key was altered")
    return b"".join(r)
