"""DLMS/COSEM ciphering (security suites 0, 1 and 2: AES-GCM) for pushed and exchanged APDUs.

General ciphering, as every HAN meter sends it::

    DB | 08 | system title (8) | len | SC | IC (4) | ciphertext ... | tag (12)
    DC   (0 = no system title)   BER    '--- security header ---'    only when SC has A

Service-specific glo-/ded- APDUs (C8 glo-get-request, D3 ded-action-request, ...)
carry no system title: ``tag | len | SC | IC | ... | tag``.

The security control byte (SC) is :class:`decoders.ciphering.control.SecurityControl`.

IV = system title || IC.  With A and E: AAD = SC || AK, 12-byte tag.
E only: plain counter mode, no tag.  A only: GMAC over SC || AK || APDU.

Keys never appear in messages, reprs or logs.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from . import gcm
from ..frozen import quick_init
from .control import SUITE_KEY_LENGTH, SecurityControl
from ..errors import (
    DowngradeRefused,
    KeyMissing,
    MalformedSecurityHeader,
    SecurityError,
    TagMismatch,
    UnsupportedSecurity,
)
from ..lengths import encode_length, read_length
from ..xdlms.tags import (
    CIPHERED_TAGS,
    DATA_NOTIFICATION,
    DED_SERVICE_TAGS,
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    GLO_SERVICE_TAGS,
    SERVICE_TAGS,
)

TAG_LENGTH = 12


def _hidden(_: object) -> str:
    return "<hidden>"


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys for one meter or association.  Their repr never shows them."""

    ek: bytes | None = field(default=None, repr=False)  #: global unicast encryption key (GUEK)
    ak: bytes | None = field(default=None, repr=False)  #: authentication key (GAK)
    broadcast: bytes | None = field(default=None, repr=False)  #: global broadcast encryption key (GBEK)
    dedicated: bytes | None = field(default=None, repr=False)  #: dedicated key of an association

    def __repr__(self) -> str:
        given = [n for n in ("ek", "ak", "broadcast", "dedicated") if getattr(self, n)]
        return f"Keys({', '.join(given) or 'none'} given)"

    __str__ = __repr__


@quick_init
@dataclass(frozen=True, slots=True)
class CipheredApdu:
    """A parsed ciphered APDU, before decryption.

    ``body`` is the ciphertext (or, when only authenticated, the plain APDU)
    without the tag.  Offsets are relative to the APDU's first byte, for
    annotated dumps.
    """

    tag: int
    system_title: bytes | None  #: None for service-specific APDUs
    security_control: int
    invocation_counter: int
    body: bytes
    auth_tag: bytes | None
    header_offset: int  #: offset of the security control byte

    @property
    def control(self) -> SecurityControl:
        return SecurityControl.of(self.security_control)

    @property
    def dedicated(self) -> bool:
        return self.tag == GENERAL_DED_CIPHERING or self.tag in DED_SERVICE_TAGS

    @property
    def general(self) -> bool:
        return self.tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)


@quick_init
@dataclass(frozen=True, slots=True)
class Unprotected:
    """The result of removing protection: the plain APDU and how far to trust it."""

    apdu: bytes
    header: CipheredApdu
    #: True when a GCM tag / GMAC was checked and matched
    verified: bool


def is_ciphered(tag: int) -> bool:
    return tag in CIPHERED_TAGS


def parse_ciphered(apdu: bytes | memoryview) -> CipheredApdu:
    """Parse the security header of a general (0xDB/0xDC) or service-specific ciphered APDU.

    The length field must account for every remaining byte: bytes left over
    or missing are an error, never ignored.
    """
    n = len(apdu)
    if n < 2:
        raise MalformedSecurityHeader("ciphered APDU is too short to hold a security header")
    tag = apdu[0]
    pos = 1
    system_title: bytes | None = None
    try:
        if tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
            st_len = apdu[1]
            if st_len not in (0, 8):
                raise MalformedSecurityHeader(
                    f"system title length is {st_len}; 8 (or 0 when configured separately) expected"
                )
            system_title = bytes(apdu[2 : 2 + st_len])
            pos = 2 + st_len
        elif tag not in GLO_SERVICE_TAGS and tag not in DED_SERVICE_TAGS:
            raise MalformedSecurityHeader(f"tag 0x{tag:02X} is not a ciphered APDU")
        length, pos = read_length(apdu, pos)
    except (IndexError, ValueError) as exc:
        raise MalformedSecurityHeader(f"ciphered APDU header is malformed ({exc})") from None
    remaining = n - pos
    if length != remaining:
        raise MalformedSecurityHeader(
            f"ciphered APDU length field says {length} bytes but {remaining} follow"
            + (" (frame truncated?)" if length > remaining else " (extra bytes after the APDU)")
        )
    if length < 5:
        raise MalformedSecurityHeader("ciphered APDU is too short for its security control and invocation counter")
    sc = apdu[pos]
    ic = int.from_bytes(apdu[pos + 1 : pos + 5], "big")
    data_start = pos + 5
    if SecurityControl.of(sc).authenticated:
        if n - data_start < TAG_LENGTH:
            raise MalformedSecurityHeader("authenticated APDU is too short to hold its 12-byte tag")
        body = bytes(apdu[data_start : n - TAG_LENGTH])
        auth_tag: bytes | None = bytes(apdu[n - TAG_LENGTH :])
    else:
        body = bytes(apdu[data_start:])
        auth_tag = None
    return CipheredApdu(tag, system_title, sc, ic, body, auth_tag, pos)


def _check_key(name: str, key: bytes | None, suite: int, which: str) -> bytes:
    """``key`` when it fits the suite; ``which`` names it for :class:`KeyMissing` (``"encryption"``, ...)."""
    want = SUITE_KEY_LENGTH[suite]
    if key is None:
        raise KeyMissing(f"this frame needs the {name}", key=which)
    if len(key) != want:
        raise SecurityError(
            f"the {name} is {len(key)} bytes but security suite {suite} uses {want}-byte keys",
            reason="bad_key",
        )
    return key


def _plausible_plain_apdu(data: bytes) -> bool:
    """A cheap test of whether decrypted bytes look like a plain xDLMS APDU."""
    if not data:
        return False
    t = data[0]
    if t == DATA_NOTIFICATION:  # data-notification: invoke id, then date-time 00 / 0C / 09 0C
        return len(data) > 6 and data[5] in (0x00, 0x0C, 0x09)
    return t in SERVICE_TAGS or t in (0xD8, 0xD9, 0xDA, 0x60, 0x61, 0x62, 0x63) or data[:1] == b"/"


def unprotect(
    ciphered: CipheredApdu,
    keys: Keys,
    *,
    system_title: bytes | None = None,
    allow_unauthenticated: bool = False,
    allow_unverified: bool = False,
) -> Unprotected:
    """Remove the protection from a parsed ciphered APDU.

    ``system_title`` is the sender's system title for APDUs that carry none
    (service-specific APDUs, ``DB 00``).  ``allow_unauthenticated`` accepts a
    frame without the authentication bit although an authentication key is
    set (otherwise refused as a possible downgrade).  ``allow_unverified``
    decrypts an authenticated frame without checking its tag when no
    authentication key is known; the result has ``verified=False``.
    """
    sc = SecurityControl.of(ciphered.security_control)
    if sc.compressed:
        raise UnsupportedSecurity(
            f"security control 0x{sc.value:02X} says the APDU is compressed; compression is not supported"
        )
    if sc.suite not in SUITE_KEY_LENGTH:
        raise UnsupportedSecurity(
            f"security control 0x{sc.value:02X} names security suite {sc.suite}; only suites 0, 1 and 2 exist"
        )
    st = ciphered.system_title or system_title
    if not st:
        raise KeyMissing(
            "the APDU carries no system title and none was configured; the sender's system title is needed for the IV",
            key="system_title",
        )
    if len(st) != 8:
        raise MalformedSecurityHeader(f"system title must be 8 bytes, got {len(st)}")
    if keys.ak is not None and not sc.authenticated and not allow_unauthenticated:
        raise DowngradeRefused(
            f"security control 0x{sc.value:02X} has no authentication, but an authentication key is set:"
            " refused as a possible downgrade or altered frame (allow unauthenticated frames explicitly if the"
            " meter really sends them)"
        )
    if not sc.authenticated and not sc.encrypted:
        return Unprotected(ciphered.body, ciphered, False)

    if ciphered.dedicated:
        ek_name, ek, which = "dedicated key", keys.dedicated, "dedicated"
    elif sc.broadcast:
        ek_name, ek, which = "broadcast encryption key (GBEK)", keys.broadcast, "broadcast"
    else:
        ek_name, ek, which = "encryption key (GUEK)", keys.ek, "encryption"
    ek = _check_key(ek_name, ek, sc.suite, which)
    iv = st + ciphered.invocation_counter.to_bytes(4, "big")
    scb = bytes((sc.value,))

    if sc.authenticated and keys.ak is None:
        if not allow_unverified:
            raise KeyMissing(
                f"this frame is authenticated (security control 0x{sc.value:02X}) and needs the authentication key",
                key="authentication",
                otherwise="or decrypt it unverified if your grid operator gave you no authentication key",
            )
        if not sc.encrypted:
            return Unprotected(ciphered.body, ciphered, False)
        return Unprotected(gcm.ctr(ek, iv, ciphered.body), ciphered, False)

    if sc.authenticated:
        ak = _check_key("authentication key", keys.ak, sc.suite, "authentication")
        if sc.encrypted:
            plain = gcm.decrypt_verify(ek, iv, scb + ak, ciphered.body, ciphered.auth_tag)
        else:
            ok = hmac.compare_digest(gcm.gmac(ek, iv, scb + ak + ciphered.body), ciphered.auth_tag)
            plain = ciphered.body if ok else None
        if plain is None:
            raise _tag_mismatch(ciphered, ek, iv, sc)
        return Unprotected(plain, ciphered, True)

    # encryption only: GCM counter mode starts at J0 + 1 = IV || 00000002
    return Unprotected(gcm.ctr(ek, iv, ciphered.body), ciphered, False)


def _tag_mismatch(ciphered: CipheredApdu, ek: bytes, iv: bytes, sc: SecurityControl) -> TagMismatch:
    if sc.encrypted:
        trial = gcm.ctr(ek, iv, ciphered.body[:16])
        if _plausible_plain_apdu(trial):
            return TagMismatch(
                "GCM tag mismatch: the encryption key decrypts the frame to a plausible APDU, so the"
                " authentication key is probably wrong (or the frame was altered); no values are given"
            )
        return TagMismatch(
            "GCM tag mismatch: the encryption key is probably wrong (it does not decrypt to a valid APDU),"
            " or the frame was altered; no values are given"
        )
    return TagMismatch(
        "GMAC tag mismatch: wrong authentication or encryption key, or the frame was altered; no values are given"
    )


def protect(
    apdu: bytes,
    *,
    keys: Keys,
    system_title: bytes,
    invocation_counter: int,
    security_control: int = 0x30,
    tag: int = GENERAL_GLO_CIPHERING,
    include_system_title: bool = True,
) -> bytes:
    """Protect a plain APDU: the inverse of :func:`parse_ciphered` + :func:`unprotect`.

    ``tag`` is 0xDB/0xDC for general ciphering, or a service-specific glo-/ded-
    tag (then the system title is used for the IV but not sent).
    """
    sc = SecurityControl.of(security_control)
    if not sc.supported:
        raise UnsupportedSecurity(f"cannot protect with security control 0x{security_control:02X}")
    if len(system_title) != 8:
        raise MalformedSecurityHeader("system title must be 8 bytes")
    dedicated = tag == GENERAL_DED_CIPHERING or tag in DED_SERVICE_TAGS
    iv = system_title + invocation_counter.to_bytes(4, "big")
    scb = bytes((security_control,))
    if sc.encrypted or sc.authenticated:
        ek_key = keys.dedicated if dedicated else (keys.broadcast if sc.broadcast else keys.ek)
        which = "dedicated" if dedicated else ("broadcast" if sc.broadcast else "encryption")
        ek = _check_key("encryption key", ek_key, sc.suite, which)
    if sc.authenticated:
        ak = _check_key("authentication key", keys.ak, sc.suite, "authentication")
        if sc.encrypted:
            body, mac = gcm.encrypt(ek, iv, scb + ak, apdu)
        else:
            body, mac = apdu, gcm.gmac(ek, iv, scb + ak + apdu)
        data = body + mac
    elif sc.encrypted:
        data = gcm.ctr(ek, iv, apdu)
    else:
        data = apdu
    content = scb + invocation_counter.to_bytes(4, "big") + data
    if tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
        st = system_title if include_system_title else b""
        return bytes((tag, len(st))) + st + encode_length(len(content)) + content
    if tag not in GLO_SERVICE_TAGS and tag not in DED_SERVICE_TAGS:
        raise MalformedSecurityHeader(f"tag 0x{tag:02X} is not a ciphered APDU tag")
    return bytes((tag,)) + encode_length(len(content)) + content


def gmac(
    *, ek: bytes, ak: bytes, system_title: bytes, invocation_counter: int, data: bytes, security_control: int = 0x10
) -> bytes:
    """The 12-byte GMAC tag over ``SC || AK || data`` (HLS-GMAC and authentication-only APDUs)."""
    iv = system_title + invocation_counter.to_bytes(4, "big")
    return gcm.gmac(ek, iv, bytes((security_control,)) + ak + data)


def manufacturer(system_title: bytes | None) -> str | None:
    """The three-letter FLAG id at the start of a system title (KAM, KFM, LGZ, ...), if printable."""
    if not system_title or len(system_title) < 3:
        return None
    flag = system_title[:3]
    if all(0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in flag):
        return flag.decode("ascii")
    return None
