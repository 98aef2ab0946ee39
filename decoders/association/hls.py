"""High-level security (HLS): the authentication mechanisms and the pass-3/pass-4 APDUs.

The 4-pass exchange::

    pass 1  client -> server  AARQ  mechanism-name, CtoS (client challenge)
    pass 2  server -> client  AARE  StoC (server challenge), "authentication-required"
    pass 3  client -> server  ACTION reply_to_HLS_authentication (class 15, 0.0.40.0.0.255,
                              method 1) with f(StoC)
    pass 4  server -> client  ACTION response with f(CtoS); the client checks it

What f() is, per mechanism (2.16.756.5.8.2.x)::

    2  HLS "High"  manufacturer specific; Gurux and IS 15959 meters:
                   AES-128-ECB(HLS secret, challenge)               16 bytes per 16 of challenge
    3  HLS MD5     MD5(challenge || secret)                         16 bytes
    4  HLS SHA-1   SHA-1(challenge || secret)                       20 bytes
    5  HLS GMAC    SC || IC || GMAC_EK(SC || AK || challenge)       17 bytes (SC 0x10, 4-byte IC, 12-byte tag)
    6  HLS SHA-256 SHA-256(secret || ST_own || ST_peer || challenge || own challenge)   32 bytes
    7  HLS ECDSA   ECDSA(ST_own || ST_peer || challenge || own challenge)             64/96 bytes (not here)

Only mechanism 5 uses the encryption and authentication keys.  Mechanisms
2, 3, 4 and 6 use the HLS secret (a password); in a ciphered context the keys
still protect the APDUs that carry f(), but not f() itself.

For mechanism 5 the GMAC uses the *global* keys (never the dedicated key),
the sender's system title and an invocation counter that must differ from
the one of the APDU carrying f(): same key and title would repeat the IV.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

from construct import Bytes, ConstructError, Flag, GreedyBytes, If, Int8ub, Int16ub, Struct, this
from Crypto.Cipher import AES

from ..xdlms import axdr
from ..errors import ApduError, MalformedSecurityHeader, SecurityError
from ..ciphering.security import gmac

MECHANISM_OID_PREFIX = "2.16.756.5.8.2"
ASSOCIATION_LN_CLASS = 15
REPLY_TO_HLS_METHOD = 1
CURRENT_ASSOCIATION = bytes((0, 0, 40, 0, 0, 255))


class Mechanism(IntEnum):
    LOWEST = 0
    LOW = 1
    HIGH = 2
    HIGH_MD5 = 3
    HIGH_SHA1 = 4
    HIGH_GMAC = 5
    HIGH_SHA256 = 6
    HIGH_ECDSA = 7


@dataclass(frozen=True, slots=True)
class MechanismInfo:
    id: int
    name: str  #: "HLS GMAC (HighGMAC)"
    uses: str  #: what f() is computed from, in plain words
    response_length: int | None  #: length of f() for a 16-byte challenge, None when not HLS


MECHANISMS: dict[int, MechanismInfo] = {
    0: MechanismInfo(0, "lowest level (no authentication)", "nothing", None),
    1: MechanismInfo(1, "LLS (low level security, password)", "a password sent in clear in the AARQ", None),
    2: MechanismInfo(
        2,
        'HLS "High" (manufacturer specific)',
        "the HLS secret (a password): Gurux and IS 15959 meters use AES-128-ECB(secret, challenge);"
        " the encryption and authentication keys are NOT used for f()",
        16,
    ),
    3: MechanismInfo(3, "HLS MD5", "MD5(challenge || HLS secret)", 16),
    4: MechanismInfo(4, "HLS SHA-1", "SHA-1(challenge || HLS secret)", 20),
    5: MechanismInfo(
        5,
        "HLS GMAC (HighGMAC)",
        "the global encryption key (EK) and authentication key (AK) with the sender's system title:"
        " f = SC || IC || GMAC(SC || AK || challenge)",
        17,
    ),
    6: MechanismInfo(
        6,
        "HLS SHA-256",
        "SHA-256(HLS secret || own system title || peer system title || challenge || own challenge)",
        32,
    ),
    7: MechanismInfo(7, "HLS ECDSA", "an ECDSA signature with the signing key (suites 1 and 2)", 64),
}


def mechanism_info(mechanism: int) -> MechanismInfo:
    return MECHANISMS.get(mechanism, MechanismInfo(mechanism, f"unknown mechanism {mechanism}", "unknown", None))


# -- the f() functions ---------------------------------------------------------


def aes_ecb_response(secret: bytes, challenge: bytes) -> bytes:
    """Mechanism 2 as Gurux and IS 15959 meters do it: AES-128-ECB of the challenge under the secret.

    Secret and challenge are padded with zero bytes to 16 (the challenge to a
    multiple of 16); the result is as long as the padded challenge.
    """
    if not 1 <= len(secret) <= 16:
        raise SecurityError(
            f"mechanism 2: the HLS secret is {len(secret)} bytes; 1 to 16 expected for AES-128", reason="bad_key"
        )
    if not challenge:
        raise SecurityError("mechanism 2: the challenge is empty", reason="bad_challenge")
    key = secret.ljust(16, b"\x00")
    padded = challenge.ljust(-(-len(challenge) // 16) * 16, b"\x00")
    return AES.new(key, AES.MODE_ECB).encrypt(padded)


def md5_response(secret: bytes, challenge: bytes) -> bytes:
    """Mechanism 3 (deprecated): MD5(challenge || secret)."""
    return hashlib.md5(challenge + secret).digest()


def sha1_response(secret: bytes, challenge: bytes) -> bytes:
    """Mechanism 4 (deprecated): SHA-1(challenge || secret)."""
    return hashlib.sha1(challenge + secret).digest()


def sha256_response(
    secret: bytes, own_system_title: bytes, peer_system_title: bytes, challenge: bytes, own_challenge: bytes
) -> bytes:
    """Mechanism 6.  The client answers StoC with its own title first and CtoS last; the server mirrors it."""
    return hashlib.sha256(secret + own_system_title + peer_system_title + challenge + own_challenge).digest()


def gmac_response(
    *,
    ek: bytes,
    ak: bytes,
    system_title: bytes,
    invocation_counter: int,
    challenge: bytes,
    security_control: int = 0x10,
) -> bytes:
    """Mechanism 5: ``SC || IC || GMAC(SC || AK || challenge)`` with the sender's system title.

    ::

        f = 10 | IC (4) | tag (12)          IV = sender system title || IC
    """
    if len(system_title) != 8:
        raise MalformedSecurityHeader(f"mechanism 5: the system title must be 8 bytes, got {len(system_title)}")
    tag = gmac(
        ek=ek,
        ak=ak,
        system_title=system_title,
        invocation_counter=invocation_counter,
        data=challenge,
        security_control=security_control,
    )
    return bytes((security_control,)) + invocation_counter.to_bytes(4, "big") + tag


def check_gmac_response(f: bytes, *, ek: bytes, ak: bytes, system_title: bytes, challenge: bytes) -> bool:
    """Verify a mechanism-5 f() with the SC and IC it carries."""
    if len(f) != 17:
        return False
    ic = int.from_bytes(f[1:5], "big")
    expected = gmac_response(
        ek=ek, ak=ak, system_title=system_title, invocation_counter=ic, challenge=challenge, security_control=f[0]
    )
    return expected == f


def expected_response_length(mechanism: int, challenge_length: int = 16) -> int | None:
    """Length of f() a mechanism implies (None when it has no fixed length or is not HLS)."""
    if mechanism == 2:
        return -(-challenge_length // 16) * 16
    return mechanism_info(mechanism).response_length


# -- pass 3 / pass 4 APDUs --------------------------------------------------------

#: action-request-normal: C3 01 | invoke | class | instance | method | params? [Data]
_ActionRequestNormal = Struct(
    "tag" / Int8ub,
    "choice" / Int8ub,
    "invoke_id_and_priority" / Int8ub,
    "class_id" / Int16ub,
    "instance" / Bytes(6),
    "method" / Int8ub,
    "has_parameters" / Flag,
    "parameters" / If(this.has_parameters, GreedyBytes),
)

#: action-response-normal: C7 01 | invoke | result | return? [00 Data | 01 data-access-result]
_ActionResponseNormal = Struct(
    "tag" / Int8ub,
    "choice" / Int8ub,
    "invoke_id_and_priority" / Int8ub,
    "result" / Int8ub,
    "has_return" / Flag,
    "return_choice" / If(this.has_return, Int8ub),
    "return_value" / If(this.has_return, GreedyBytes),
)

#: Action-Result values
ACTION_RESULTS = {
    0: "success",
    1: "hardware-fault",
    2: "temporary-failure",
    3: "read-write-denied",
    4: "object-undefined",
    9: "object-class-inconsistent",
    11: "object-unavailable",
    12: "type-unmatched",
    13: "scope-of-access-violated",
    14: "data-block-unavailable",
    15: "long-action-aborted",
    16: "no-long-action-in-progress",
    250: "other-reason",
}


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """An action-request-normal (the form HLS pass 3 takes)."""

    invoke_id_and_priority: int
    class_id: int
    instance: bytes  #: logical name (OBIS), 6 bytes
    method: int
    parameters: axdr.Data | None

    @property
    def is_reply_to_hls(self) -> bool:
        """Method 1 of an Association LN object (0.0.40.0.x.255)."""
        return (
            self.class_id == ASSOCIATION_LN_CLASS
            and self.method == REPLY_TO_HLS_METHOD
            and self.instance[:4] == CURRENT_ASSOCIATION[:4]
        )

    @property
    def hls_response(self) -> bytes | None:
        """f(StoC) when this is reply_to_HLS_authentication with an octet string."""
        p = self.parameters
        if self.is_reply_to_hls and p is not None and p.tag == axdr.OCTET_STRING:
            return p.value
        return None

    def to_bytes(self) -> bytes:
        return _ActionRequestNormal.build(
            dict(
                tag=0xC3,
                choice=1,
                invoke_id_and_priority=self.invoke_id_and_priority,
                class_id=self.class_id,
                instance=self.instance,
                method=self.method,
                has_parameters=self.parameters is not None,
                parameters=None if self.parameters is None else axdr.encode(self.parameters),
            )
        )


@dataclass(frozen=True, slots=True)
class ActionResponse:
    """An action-response-normal (the form HLS pass 4 takes)."""

    invoke_id_and_priority: int
    result: int
    return_data: axdr.Data | None  #: return-parameters "data" choice
    data_access_result: int | None  #: return-parameters "data-access-result" choice

    @property
    def result_name(self) -> str:
        return ACTION_RESULTS.get(self.result, f"result {self.result}")

    @property
    def hls_response(self) -> bytes | None:
        """f(CtoS) when the return data is an octet string."""
        d = self.return_data
        return d.value if d is not None and d.tag == axdr.OCTET_STRING else None

    def to_bytes(self) -> bytes:
        has_return = self.return_data is not None or self.data_access_result is not None
        if self.return_data is not None:
            choice, value = 0, axdr.encode(self.return_data)
        elif self.data_access_result is not None:
            choice, value = 1, bytes((self.data_access_result,))
        else:
            choice, value = None, None
        return _ActionResponseNormal.build(
            dict(
                tag=0xC7,
                choice=1,
                invoke_id_and_priority=self.invoke_id_and_priority,
                result=self.result,
                has_return=has_return,
                return_choice=choice,
                return_value=value,
            )
        )


def reply_to_hls(f: bytes, *, invoke_id_and_priority: int = 0xC1) -> ActionRequest:
    """The pass-3 action: reply_to_HLS_authentication(f) on the current association."""
    return ActionRequest(
        invoke_id_and_priority, ASSOCIATION_LN_CLASS, CURRENT_ASSOCIATION, REPLY_TO_HLS_METHOD, axdr.octet_string(f)
    )


def _expect(apdu: bytes, head: bytes, name: str) -> None:
    if apdu[:2] != head:
        raise ApduError(
            f"not an {name} (starts {apdu[:2].hex().upper() or 'empty'}; {head.hex(' ').upper()} expected)",
            reason="bad_action",
        )


def parse_action_request(apdu: bytes) -> ActionRequest:
    _expect(apdu, b"\xc3\x01", "action-request-normal")
    try:
        c = _ActionRequestNormal.parse(apdu)
        params = axdr.decode(c.parameters) if c.has_parameters else None
    except (ConstructError, axdr.AxdrError, IndexError) as exc:  # IndexError: axdr on some truncations
        raise ApduError(f"action-request is malformed or truncated ({_short(exc)})", reason="bad_action") from None
    return ActionRequest(c.invoke_id_and_priority, c.class_id, bytes(c.instance), c.method, params)


def parse_action_response(apdu: bytes) -> ActionResponse:
    _expect(apdu, b"\xc7\x01", "action-response-normal")
    try:
        c = _ActionResponseNormal.parse(apdu)
        data = dar = None
        if c.has_return:
            if c.return_choice == 0:
                data = axdr.decode(c.return_value)
            elif c.return_choice == 1 and len(c.return_value) == 1:
                dar = c.return_value[0]
            else:
                raise ApduError(f"action-response return-parameters choice {c.return_choice} is not 0 or 1")
    except (ConstructError, axdr.AxdrError, IndexError) as exc:  # IndexError: axdr on some truncations
        raise ApduError(f"action-response is malformed or truncated ({_short(exc)})", reason="bad_action") from None
    return ActionResponse(c.invoke_id_and_priority, c.result, data, dar)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
