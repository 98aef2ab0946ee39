"""general-ciphering (0xDD) and general-signing (0xDF) APDUs.

Both start with the same five A-XDR octet strings (length + bytes)::

    DD | transaction-id | originator ST | recipient ST | date-time | other-information
       | key-info OPTIONAL | ciphered-content (SC | IC | ciphertext | tag)

    DF | transaction-id | originator ST | recipient ST | date-time | other-information
       | content | signature (raw R || S)

key-info (``00`` absent, ``01`` + CHOICE)::

    00 identified-key  key-id: 0 global unicast key, 1 global broadcast key
    01 wrapped-key     kek-id (0 master key) | key-ciphered-data
    02 agreed-key      key-parameters (01 one-pass C(1e,1s), 02 static C(0e,2s)) | key-ciphered-data
                       for C(1e,1s): ephemeral public key X||Y || ECDSA signature R||S over it

The ciphertext is AES-GCM with IV = originator ST || IC.  The additional
authenticated data of general-ciphering is NOT reproduced here: the Green
Book example's tag could not be matched by any rule tried, so only
decryption without tag check is offered (:func:`decrypt_unverified`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from construct import Const, ConstructError, Error, Int8ub, Struct, Switch, Terminated, this

from ..association import ecc
from ..association.ber import AxdrOptional, Octets, build_dict, from_container
from ..errors import ApduError, MalformedSecurityHeader
from .control import SecurityControl
from .security import TAG_LENGTH, CipheredApdu, Keys, unprotect

GENERAL_CIPHERING = 0xDD
GENERAL_SIGNING = 0xDF
KEY_PARAMETERS = {1: "C(1e,1s ECC CDH) one-pass Diffie-Hellman", 2: "C(0e,2s ECC CDH) static unified model"}

_KeyInfo = Struct(
    "choice" / Int8ub,
    "body"
    / Switch(
        this.choice,
        {
            0: Struct("key_id" / Int8ub),
            1: Struct("kek_id" / Int8ub, "key_ciphered_data" / Octets),
            2: Struct("key_parameters" / Octets, "key_ciphered_data" / Octets),
        },
        default=Error,
    ),
)

_Header = (
    "transaction_id" / Octets,
    "originator_system_title" / Octets,
    "recipient_system_title" / Octets,
    "date_time" / Octets,
    "other_information" / Octets,
)

_GeneralCiphering = Struct(
    Const(bytes((GENERAL_CIPHERING,))),
    *_Header,
    "key_info" / AxdrOptional(_KeyInfo),
    "ciphered_content" / Octets,
    Terminated,
)

_GeneralSigning = Struct(
    Const(bytes((GENERAL_SIGNING,))),
    *_Header,
    "content" / Octets,
    "signature" / Octets,
    Terminated,
)


@dataclass(frozen=True, slots=True)
class IdentifiedKey:
    key_id: int  #: 0 global unicast encryption key, 1 global broadcast encryption key


@dataclass(frozen=True, slots=True)
class WrappedKey:
    kek_id: int
    key_ciphered_data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AgreedKey:
    key_parameters: bytes
    key_ciphered_data: bytes

    @property
    def scheme(self) -> str:
        p = self.key_parameters[0] if len(self.key_parameters) == 1 else None
        return KEY_PARAMETERS.get(p, f"key parameters {self.key_parameters.hex()}")


KeyInfo = IdentifiedKey | WrappedKey | AgreedKey


def _key_info_from(c) -> KeyInfo | None:
    if c is None:
        return None
    if c.choice == 0:
        return IdentifiedKey(c.body.key_id)
    if c.choice == 1:
        return WrappedKey(c.body.kek_id, bytes(c.body.key_ciphered_data))
    return AgreedKey(bytes(c.body.key_parameters), bytes(c.body.key_ciphered_data))


def _key_info_to(k: KeyInfo | None) -> dict | None:
    if k is None:
        return None
    if isinstance(k, IdentifiedKey):
        return dict(choice=0, body=dict(key_id=k.key_id))
    if isinstance(k, WrappedKey):
        return dict(choice=1, body=dict(kek_id=k.kek_id, key_ciphered_data=k.key_ciphered_data))
    return dict(choice=2, body=dict(key_parameters=k.key_parameters, key_ciphered_data=k.key_ciphered_data))


@dataclass(frozen=True, slots=True)
class GeneralCiphering:
    transaction_id: bytes
    originator_system_title: bytes
    recipient_system_title: bytes
    date_time: bytes
    other_information: bytes
    key_info: KeyInfo | None
    ciphered_content: bytes  #: SC | IC | ciphertext | [tag]

    @property
    def security_control(self) -> int:
        return self.ciphered_content[0]

    @property
    def invocation_counter(self) -> int:
        return int.from_bytes(self.ciphered_content[1:5], "big")

    def header(self) -> CipheredApdu:
        """The ciphered content as a :class:`CipheredApdu` (IV from the originator system title)."""
        sc = self.security_control
        data = self.ciphered_content[5:]
        if SecurityControl.of(sc).authenticated:
            body, tag = data[:-TAG_LENGTH], data[-TAG_LENGTH:]
        else:
            body, tag = data, None
        return CipheredApdu(GENERAL_CIPHERING, self.originator_system_title, sc, self.invocation_counter, body, tag, 0)

    def to_bytes(self) -> bytes:
        return _GeneralCiphering.build(build_dict(self, key_info=_key_info_to(self.key_info)))


@dataclass(frozen=True, slots=True)
class GeneralSigning:
    transaction_id: bytes
    originator_system_title: bytes
    recipient_system_title: bytes
    date_time: bytes
    other_information: bytes
    content: bytes
    signature: bytes

    def to_bytes(self) -> bytes:
        return _GeneralSigning.build(build_dict(self))


def _parse(layout, apdu: bytes, name: str, fields_text: str):
    try:
        return layout.parse(apdu)
    except ConstructError:
        raise ApduError(
            f"{name} is malformed or truncated: expected transaction-id, originator and recipient system titles,"
            f" date-time, other-information, {fields_text}",
            reason="bad_" + name.split(" ")[0].replace("-", "_"),
        ) from None


def parse_general_ciphering(apdu: bytes) -> GeneralCiphering:
    c = _parse(_GeneralCiphering, apdu, "general-ciphering (DD)", "key-info (00 or 01 + choice 0..2) and the content")
    if len(c.ciphered_content) < 5:
        raise MalformedSecurityHeader(
            "general-ciphering content is too short for its security control and invocation counter"
        )
    return from_container(GeneralCiphering, c, key_info=_key_info_from(c.key_info))


def parse_general_signing(apdu: bytes) -> GeneralSigning:
    return from_container(
        GeneralSigning, _parse(_GeneralSigning, apdu, "general-signing (DF)", "content and signature")
    )


def agreed_key(gc: GeneralCiphering, suite: int, recipient_private: bytes) -> bytes:
    """The content key of a C(1e,1s) agreed-key general-ciphering: ECDH with the ephemeral key, then the KDF."""
    ki = gc.key_info
    if not isinstance(ki, AgreedKey) or ki.key_parameters != b"\x01":
        raise ApduError("this general-ciphering does not carry a one-pass C(1e,1s) agreed key", reason="bad_key_info")
    size = 64 if suite == 1 else 96
    ephemeral = ki.key_ciphered_data[:size]
    z = ecc.shared_secret(suite, recipient_private, ephemeral)
    return ecc.derive_key(suite, z, gc.originator_system_title, gc.recipient_system_title)


def verify_agreed_key_signature(gc: GeneralCiphering, suite: int, signer_public: bytes) -> None:
    """Check the originator's ECDSA signature over the ephemeral public key (TagMismatch if wrong)."""
    ki = gc.key_info
    if not isinstance(ki, AgreedKey):
        raise ApduError("this general-ciphering carries no agreed key", reason="bad_key_info")
    size = 64 if suite == 1 else 96
    ecc.verify(suite, signer_public, ki.key_ciphered_data[:size], ki.key_ciphered_data[size:])


def decrypt_unverified(gc: GeneralCiphering, key: bytes) -> bytes:
    """Decrypt the content with ``key`` WITHOUT checking the tag (its AAD rule is unverified)."""
    return unprotect(gc.header(), Keys(ek=key), allow_unverified=True).apdu
