"""Public-key primitives of security suites 1 and 2: ECDH, the key derivation, ECDSA.

* Points travel as raw ``X || Y`` (64 bytes for P-256, 96 for P-384), no 04 prefix.
* Signatures are raw ``R || S`` (64 / 96 bytes), not DER.
* Key agreement (e.g. general-ciphering's agreed-key C(1e,1s)): ``Z`` is the
  x-coordinate of d * Q; the key is the NIST SP 800-56A concatenation KDF::

      K = HASH(00000001 || Z || AlgorithmID || originator ST || recipient ST)[:key length]
      AlgorithmID = 60 85 74 05 08 03 0x   (2.16.756.5.8.3.x; x = 0 for AES-GCM-128)

  Checked against the Green Book general-ciphering example for suite 1;
  the suite 2 algorithm id (x = 1, AES-GCM-256) follows the same table but has
  no published example here.
"""

from __future__ import annotations

from Crypto.Hash import SHA256, SHA384
from Crypto.Protocol import DH
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS

from ..errors import SecurityError, TagMismatch
from ..ciphering.suites import SUITES

#: 2.16.756.5.8.3.x: the cryptographic algorithm ids used in the KDF's OtherInfo
ALGORITHM_ID = {1: bytes.fromhex("60857405080300"), 2: bytes.fromhex("60857405080301")}
_HASH = {1: SHA256, 2: SHA384}
_COORD = {"P-256": 32, "P-384": 48}


def _suite(suite: int):
    if suite not in (1, 2):
        raise SecurityError(
            f"security suite {suite} has no public-key operations (suites 1 and 2 do)", reason="bad_suite"
        )
    return SUITES[suite]


def public_key(suite: int, xy: bytes) -> ECC.EccKey:
    """An ECC public key from raw ``X || Y``."""
    curve = _suite(suite).curve
    size = _COORD[curve]
    if len(xy) != 2 * size:
        raise SecurityError(f"a {curve} public key is {2 * size} bytes (X || Y); got {len(xy)}", reason="bad_key")
    try:
        return ECC.construct(
            curve=curve, point_x=int.from_bytes(xy[:size], "big"), point_y=int.from_bytes(xy[size:], "big")
        )
    except ValueError:
        raise SecurityError(f"the {curve} public key is not a point on the curve", reason="bad_key") from None


def private_key(suite: int, d: bytes) -> ECC.EccKey:
    return ECC.construct(curve=_suite(suite).curve, d=int.from_bytes(d, "big"))


def public_bytes(key: ECC.EccKey) -> bytes:
    """Raw ``X || Y`` of a key's public point."""
    point = key.pointQ
    size = point.size_in_bytes()
    return int(point.x).to_bytes(size, "big") + int(point.y).to_bytes(size, "big")


def shared_secret(suite: int, own_private: bytes, peer_public: bytes) -> bytes:
    """ECDH ``Z``: the x-coordinate of own_private * peer_public."""
    return DH.key_agreement(
        static_priv=private_key(suite, own_private), static_pub=public_key(suite, peer_public), kdf=lambda z: z
    )


def derive_key(suite: int, z: bytes, originator_system_title: bytes, recipient_system_title: bytes) -> bytes:
    """The concatenation KDF (one round: both key lengths fit one hash output)."""
    s = _suite(suite)
    other = ALGORITHM_ID[suite] + originator_system_title + recipient_system_title
    return _HASH[suite].new(b"\x00\x00\x00\x01" + z + other).digest()[: s.key_length]


def sign(suite: int, private: bytes, data: bytes) -> bytes:
    """ECDSA over HASH(data), raw ``R || S`` (deterministic per RFC 6979)."""
    return DSS.new(private_key(suite, private), "deterministic-rfc6979").sign(_HASH[suite].new(data))


def verify(suite: int, public: bytes, data: bytes, signature: bytes) -> None:
    """Check a raw ``R || S`` signature; :class:`TagMismatch` when it does not verify."""
    key = public_key(suite, public)
    try:
        DSS.new(key, "fips-186-3").verify(_HASH[suite].new(data), signature)
    except ValueError:
        raise TagMismatch(
            "ECDSA signature does not verify: wrong public key, altered data, or a DER signature"
            " where raw R||S is expected"
        ) from None
