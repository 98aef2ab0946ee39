"""ACSE association PDUs (AARQ, AARE, RLRQ, RLRE) and the xDLMS initiate PDUs they carry.

AARQ (0x60), BER; the elements a DLMS client sends::

    60 len
       A1 09 06 07 60857405080103        application-context-name 2.16.756.5.8.1.3 (LN, ciphering)
       A6 0A 04 08 <client system title> calling-AP-title
       8A 02 07 80                       sender-acse-requirements: authentication
       8B 07 60857405080202              mechanism-name 2.16.756.5.8.2.2 (HLS "High")
       AC 12 80 10 <CtoS>                calling-authentication-value
       BE 34 04 32 <xDLMS>               user-information: InitiateRequest (01 ...) or
                                         glo-initiate-request (21 len SC IC ciphertext tag)

AARE (0x61)::

    61 len
       A1 ...                            application-context-name
       A2 03 02 01 rr                    result: 0 accepted, 1 rejected-permanent, 2 rejected-transient
       A3 05 A1 03 02 01 dd              result-source-diagnostic (A1 user, A2 provider), 14 = authentication-required
       A4 0A 04 08 <server system title> responding-AP-title
       88 02 07 80 / 89 07 ... / AA ..   responder-acse-requirements / mechanism-name / StoC
       BE len 04 len <xDLMS>             InitiateResponse (08 ...) or glo-initiate-response (28 ...)

Elements are read in any order (meters do not all follow the canonical one)
and written back in the order they were read, so parse -> build gives the
same bytes.  Unknown elements are kept as raw bytes.

Layouts are construct definitions; the parsed values are frozen dataclasses.
Malformed PDUs raise :class:`AssociationError` naming the element and what
was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from construct import (
    Adapter,
    BytesInteger,
    Const,
    ConstructError,
    Flag,
    FocusedSeq,
    GreedyBytes,
    Int8sb,
    Int8ub,
    Int16ub,
    Prefixed,
    Struct,
    Terminated,
)

from .ber import (
    AxdrOptional,
    BerLength,
    ObjectIdentifier,
    Octets,
    OidContent,
    Tlv,
    TlvList,
    build_dict,
    from_container,
    walk_problem,
)
from ..xdlms.error_pdus import ConfirmedServiceError, parse_confirmed_service_error
from ..errors import ApduError, DecodeError
from .hls import MECHANISM_OID_PREFIX, mechanism_info
from ..lengths import encode_length, read_length
from ..ciphering.security import CipheredApdu, Keys, parse_ciphered, unprotect

AARQ, AARE, RLRQ, RLRE = 0x60, 0x61, 0x62, 0x63
CONTEXT_OID_PREFIX = "2.16.756.5.8.1"

CONTEXTS = {
    1: "logical name referencing, no ciphering",
    2: "short name referencing, no ciphering",
    3: "logical name referencing with ciphering",
    4: "short name referencing with ciphering",
}
RESULTS = {0: "accepted", 1: "rejected-permanent", 2: "rejected-transient"}
USER_DIAGNOSTICS = {
    0: "null",
    1: "no-reason-given",
    2: "application-context-name-not-supported",
    3: "calling-AP-title-not-recognized",
    4: "calling-AP-invocation-identifier-not-recognized",
    5: "calling-AE-qualifier-not-recognized",
    6: "calling-AE-invocation-identifier-not-recognized",
    7: "called-AP-title-not-recognized",
    8: "called-AP-invocation-identifier-not-recognized",
    9: "called-AE-qualifier-not-recognized",
    10: "called-AE-invocation-identifier-not-recognized",
    11: "authentication-mechanism-name-not-recognised",
    12: "authentication-mechanism-name-required",
    13: "authentication-failure",
    14: "authentication-required",
}
PROVIDER_DIAGNOSTICS = {0: "null", 1: "no-reason-given", 2: "no-common-acse-version"}
RELEASE_REQUEST_REASONS = {0: "normal", 1: "urgent", 30: "user-defined"}
RELEASE_RESPONSE_REASONS = {0: "normal", 1: "not-finished", 30: "user-defined"}

#: xDLMS Conformance bits, bit 0 = most significant bit of the 24
CONFORMANCE_BITS = (
    "reserved-zero",
    "general-protection",
    "general-block-transfer",
    "read",
    "write",
    "unconfirmed-write",
    "delta-value-encoding",
    "reserved-seven",
    "attribute0-supported-with-set",
    "priority-mgmt-supported",
    "attribute0-supported-with-get",
    "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write",
    "block-transfer-with-action",
    "multiple-references",
    "information-report",
    "data-notification",
    "access",
    "parameterized-access",
    "get",
    "set",
    "selective-access",
    "event-notification",
    "action",
)


class AssociationError(ApduError):
    """An ACSE PDU (AARQ, AARE, RLRQ, RLRE) or the initiate PDU inside it is malformed."""

    layer = "acse"
    reason = "bad_acse"


# -- values -------------------------------------------------------------------------


def _oid_id(oid: str, prefix: str) -> int | None:
    head, _, last = oid.rpartition(".")
    return int(last) if head == prefix and last.isdigit() else None


@dataclass(frozen=True, slots=True)
class ApplicationContext:
    oid: str

    @classmethod
    def of(cls, context_id: int) -> ApplicationContext:
        return cls(f"{CONTEXT_OID_PREFIX}.{context_id}")

    @property
    def id(self) -> int | None:
        return _oid_id(self.oid, CONTEXT_OID_PREFIX)

    @property
    def ciphered(self) -> bool:
        return self.id in (3, 4)

    @property
    def logical_names(self) -> bool:
        return self.id in (1, 3)

    def describe(self) -> str:
        return f"{self.oid} ({CONTEXTS.get(self.id, 'not a DLMS application context')})"


@dataclass(frozen=True, slots=True)
class MechanismName:
    oid: str

    @classmethod
    def of(cls, mechanism_id: int) -> MechanismName:
        return cls(f"{MECHANISM_OID_PREFIX}.{mechanism_id}")

    @property
    def id(self) -> int | None:
        return _oid_id(self.oid, MECHANISM_OID_PREFIX)

    def describe(self) -> str:
        return f"{self.oid} (mechanism {self.id}: {mechanism_info(self.id).name})"


@dataclass(frozen=True, slots=True)
class AuthenticationValue:
    """calling-/responding-authentication-value: an LLS password or an HLS challenge."""

    value: bytes
    #: the CHOICE tag: 0x80 charstring (what DLMS uses), 0x81 bitstring, ...
    choice: int = 0x80


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """result-source-diagnostic: who answered (1 acse-service-user, 2 acse-service-provider) and why."""

    source: int
    value: int

    @property
    def source_name(self) -> str:
        return {1: "acse-service-user", 2: "acse-service-provider"}.get(self.source, f"source {self.source}")

    @property
    def name(self) -> str:
        table = USER_DIAGNOSTICS if self.source == 1 else PROVIDER_DIAGNOSTICS
        return table.get(self.value, f"diagnostic {self.value}")


def conformance_names(bits: int) -> tuple[str, ...]:
    return tuple(name for i, name in enumerate(CONFORMANCE_BITS) if bits & (1 << (23 - i)))


@dataclass(frozen=True, slots=True)
class InitiateRequest:
    """xDLMS InitiateRequest (0x01), plain."""

    dlms_version: int
    conformance: int  #: 24 bits
    max_receive_pdu_size: int
    dedicated_key: bytes | None = field(default=None, repr=False)
    #: response-allowed; None = the DEFAULT (true) was used
    response_allowed: bool | None = None
    quality_of_service: int | None = None

    @property
    def conformance_names(self) -> tuple[str, ...]:
        return conformance_names(self.conformance)

    def to_bytes(self) -> bytes:
        return _InitiateRequest.build(build_dict(self))

    def __repr__(self) -> str:
        key = "none" if self.dedicated_key is None else f"{len(self.dedicated_key)} bytes (hidden)"
        return (
            f"InitiateRequest(dlms_version={self.dlms_version}, conformance=0x{self.conformance:06X},"
            f" max_receive_pdu_size={self.max_receive_pdu_size}, dedicated_key={key})"
        )


@dataclass(frozen=True, slots=True)
class InitiateResponse:
    """xDLMS InitiateResponse (0x08), plain."""

    dlms_version: int
    conformance: int
    max_receive_pdu_size: int
    vaa_name: int  #: 0x0007 for LN referencing, 0xFA00 for SN
    quality_of_service: int | None = None

    @property
    def conformance_names(self) -> tuple[str, ...]:
        return conformance_names(self.conformance)

    def to_bytes(self) -> bytes:
        return _InitiateResponse.build(build_dict(self))


InitiateContent = InitiateRequest | InitiateResponse | CipheredApdu | ConfirmedServiceError

#: xDLMS tags allowed in user-information
_USER_INFO_TAGS = {0x01: "InitiateRequest", 0x08: "InitiateResponse", 0x0E: "confirmedServiceError (initiateError)"}
_CIPHERED_INITIATE_TAGS = {
    0x21: "glo-initiate-request",
    0x28: "glo-initiate-response",
    0x41: "ded-initiate-request",
    0x48: "ded-initiate-response",
}


def parse_initiate(xdlms: bytes) -> InitiateContent:
    """The xDLMS APDU of a user-information element: plain, ciphered, or an initiateError."""
    if not xdlms:
        raise AssociationError("user-information carries an empty xDLMS APDU")
    tag = xdlms[0]
    try:
        if tag == 0x01:
            return from_container(InitiateRequest, _InitiateRequest.parse(xdlms))
        if tag == 0x08:
            return from_container(InitiateResponse, _InitiateResponse.parse(xdlms))
    except ConstructError:
        raise AssociationError(
            f"{_USER_INFO_TAGS[tag]} is malformed or truncated ({len(xdlms)} bytes): expected"
            " optional fields, DLMS version, conformance 5F1F 04 00 + 3 bytes and the PDU size"
        ) from None
    if tag == 0x0E:
        return parse_confirmed_service_error(xdlms)
    if tag in _CIPHERED_INITIATE_TAGS:
        return parse_ciphered(xdlms)
    raise AssociationError(
        f"user-information carries tag 0x{tag:02X}; an InitiateRequest (01), InitiateResponse (08),"
        " their glo-/ded- forms (21, 28, 41, 48) or a confirmedServiceError (0E) was expected"
    )


def open_initiate(ciphered: CipheredApdu, keys: Keys, system_title: bytes) -> InitiateRequest | InitiateResponse:
    """Decrypt and parse a glo-/ded-initiate-request/response with the sender's system title."""
    plain = unprotect(ciphered, keys, system_title=system_title).apdu
    content = parse_initiate(plain)
    if not isinstance(content, (InitiateRequest, InitiateResponse)):
        raise AssociationError("the deciphered user-information is not an InitiateRequest or InitiateResponse")
    return content


def dedicated_key_length(plaintext_length: int) -> int | None:
    """Infer from a ciphered InitiateRequest's plaintext length whether it carries a dedicated key.

    A plain InitiateRequest is 14 bytes (16 with response-allowed and QoS
    given); a dedicated key adds 1 + 16 (or 1 + 32) bytes.  Returns 0 (no
    key), 16 or 32, or None when the length fits no rule.
    """
    for key_len, base in ((0, 14), (16, 31), (32, 47)):
        if base <= plaintext_length <= base + 2:
            return key_len
    return None


@dataclass(frozen=True, slots=True)
class UserInformation:
    """user-information (BE): ``04 len`` + one xDLMS APDU."""

    xdlms: bytes
    content: InitiateContent = field(compare=False)

    @classmethod
    def parse(cls, xdlms: bytes) -> UserInformation:
        return cls(bytes(xdlms), parse_initiate(xdlms))

    @classmethod
    def of(cls, content: InitiateRequest | InitiateResponse | ConfirmedServiceError) -> UserInformation:
        return cls(content.to_bytes(), content)

    @property
    def ciphered(self) -> bool:
        return isinstance(self.content, CipheredApdu)


# -- construct layouts ----------------------------------------------------------------

_Conformance = FocusedSeq("bits", Const(b"\x5f\x1f\x04\x00"), "bits" / BytesInteger(3))

_InitiateRequest = Struct(
    Const(b"\x01"),
    "dedicated_key" / AxdrOptional(Octets),
    "response_allowed" / AxdrOptional(Flag),
    "quality_of_service" / AxdrOptional(Int8sb),
    "dlms_version" / Int8ub,
    "conformance" / _Conformance,
    "max_receive_pdu_size" / Int16ub,
    Terminated,
)

_InitiateResponse = Struct(
    Const(b"\x08"),
    "quality_of_service" / AxdrOptional(Int8sb),
    "dlms_version" / Int8ub,
    "conformance" / _Conformance,
    "max_receive_pdu_size" / Int16ub,
    "vaa_name" / Int16ub,
    Terminated,
)


class _Map(Adapter):
    """Adapt a construct value to a Python value with two functions."""

    def __init__(self, subcon, decode, encode):
        super().__init__(subcon)
        self._dec, self._enc = decode, encode

    def _decode(self, obj, context, path):
        return self._dec(obj)

    def _encode(self, obj, context, path):
        return self._enc(obj)


def _whole(subcon):
    """The element's value must be exactly ``subcon``: no bytes left over."""
    return FocusedSeq("v", "v" / subcon, Terminated)


_Integer = _Map(
    Prefixed(BerLength, GreedyBytes),
    lambda b: int.from_bytes(b, "big", signed=True),
    lambda v: v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True),
)
#: an INTEGER element: 02 len value
_IntegerElement = FocusedSeq("v", Const(b"\x02"), "v" / _Integer)
#: an OCTET STRING element: 04 len value
_OctetStringElement = FocusedSeq("v", Const(b"\x04"), "v" / Octets)

_ContextName = _whole(_Map(ObjectIdentifier, ApplicationContext, lambda c: c.oid))
_Mechanism = _whole(_Map(OidContent, MechanismName, lambda m: m.oid))
_AuthValue = _whole(
    _Map(Tlv, lambda t: AuthenticationValue(t.value, t.tag), lambda a: dict(tag=a.choice, value=a.value))
)
_Diagnostic = _whole(
    _Map(
        Struct("tag" / Int8ub, "value" / Prefixed(BerLength, _whole(_IntegerElement))),
        lambda c: Diagnostic(c.tag & 0x1F, c.value),
        lambda d: dict(tag=0xA0 | d.source, value=d.value),
    )
)
_UserInfo = _whole(_Map(_OctetStringElement, UserInformation.parse, lambda u: u.xdlms))
_Raw = GreedyBytes
_Int = _whole(_IntegerElement)
_Title = _whole(_OctetStringElement)
_ImplicitInt = _whole(
    _Map(
        GreedyBytes, lambda b: int.from_bytes(b, "big"), lambda v: v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
    )
)


@dataclass(frozen=True, slots=True)
class _Field:
    tag: int
    name: str
    codec: Any
    expect: str  #: what the element should hold, for error messages


_AARQ_FIELDS = (
    _Field(0x80, "protocol_version", _Raw, "a bit string"),
    _Field(0xA1, "application_context", _ContextName, "06 len <object identifier>"),
    _Field(0xA2, "called_ap_title", _Title, "04 len <title>"),
    _Field(0xA3, "called_ae_qualifier", _Title, "04 len <qualifier>"),
    _Field(0xA4, "called_ap_invocation_id", _Int, "02 len <integer>"),
    _Field(0xA5, "called_ae_invocation_id", _Int, "02 len <integer>"),
    _Field(0xA6, "calling_ap_title", _Title, "04 len <client system title>"),
    _Field(0xA7, "calling_ae_qualifier", _Title, "04 len <qualifier or certificate>"),
    _Field(0xA8, "calling_ap_invocation_id", _Int, "02 len <integer>"),
    _Field(0xA9, "calling_ae_invocation_id", _Int, "02 len <integer>"),
    _Field(0x8A, "sender_acse_requirements", _Raw, "a bit string (07 80)"),
    _Field(0x8B, "mechanism", _Mechanism, "an object identifier"),
    _Field(0xAC, "calling_authentication_value", _AuthValue, "80 len <password or challenge>"),
    _Field(0xBD, "implementation_information", _Raw, "a graphic string"),
    _Field(0xBE, "user_information", _UserInfo, "04 len <xDLMS initiate PDU>"),
)
_AARE_FIELDS = (
    _Field(0x80, "protocol_version", _Raw, "a bit string"),
    _Field(0xA1, "application_context", _ContextName, "06 len <object identifier>"),
    _Field(0xA2, "result", _Int, "02 01 <result>"),
    _Field(0xA3, "diagnostic", _Diagnostic, "A1|A2 03 02 01 <diagnostic>"),
    _Field(0xA4, "responding_ap_title", _Title, "04 len <server system title>"),
    _Field(0xA5, "responding_ae_qualifier", _Title, "04 len <qualifier or certificate>"),
    _Field(0xA6, "responding_ap_invocation_id", _Int, "02 len <integer>"),
    _Field(0xA7, "responding_ae_invocation_id", _Int, "02 len <integer>"),
    _Field(0x88, "responder_acse_requirements", _Raw, "a bit string (07 80)"),
    _Field(0x89, "mechanism", _Mechanism, "an object identifier"),
    _Field(0xAA, "responding_authentication_value", _AuthValue, "80 len <challenge>"),
    _Field(0xBD, "implementation_information", _Raw, "a graphic string"),
    _Field(0xBE, "user_information", _UserInfo, "04 len <xDLMS initiate PDU>"),
)
_RELEASE_FIELDS = (
    _Field(0x80, "reason", _ImplicitInt, "the reason as an integer"),
    _Field(0xBE, "user_information", _UserInfo, "04 len <xDLMS initiate PDU>"),
)

_PduBody = Struct("elements" / TlvList)
_PDU_NAMES = {AARQ: "AARQ", AARE: "AARE", RLRQ: "RLRQ", RLRE: "RLRE"}


def _parse_fields(data: bytes, pdu_tag: int, specs: tuple[_Field, ...]) -> dict[str, Any]:
    name = _PDU_NAMES[pdu_tag]
    data = bytes(data)
    if not data:
        raise AssociationError(f"{name}: the PDU is empty")
    if data[0] != pdu_tag:
        raise AssociationError(f"{name} expected (tag 0x{pdu_tag:02X}) but the PDU starts with 0x{data[0]:02X}")
    try:
        length, start = read_length(data, 1)
    except (IndexError, ValueError):
        raise AssociationError(f"{name}: the length field is missing or invalid (PDU truncated?)") from None
    if length != len(data) - start:
        raise AssociationError(
            f"{name}: the length field says {length} bytes but {len(data) - start} follow"
            + (" (PDU truncated?)" if length > len(data) - start else " (extra bytes after the PDU)")
        )
    try:
        items = _PduBody.parse(data[start:]).elements
    except ConstructError:
        raise AssociationError(f"{name} is malformed: {walk_problem(data, start)}") from None
    by_tag = {f.tag: f for f in specs}
    values: dict[str, Any] = {}
    order: list[int] = []
    extra: list[tuple[int, bytes]] = []
    for item in items:
        order.append(item.tag)
        spec = by_tag.get(item.tag)
        if spec is None:
            extra.append((item.tag, bytes(item.value)))
            continue
        if spec.name in values:
            raise AssociationError(f"{name}: element 0x{item.tag:02X} ({spec.name.replace('_', '-')}) appears twice")
        try:
            values[spec.name] = spec.codec.parse(bytes(item.value))
        except ConstructError:
            raise AssociationError(
                f"{name}: element 0x{item.tag:02X} ({spec.name.replace('_', '-')}) is malformed;"
                f" expected {spec.expect}, found {bytes(item.value).hex(' ').upper() or 'nothing'}"
            ) from None
        except DecodeError as exc:
            raise AssociationError(f"{name} {spec.name.replace('_', '-')}: {exc.message}") from None
    values["field_order"] = tuple(order)
    values["extra"] = tuple(extra)
    return values


def _build_fields(pdu_tag: int, specs: tuple[_Field, ...], obj: Any) -> bytes:
    present = {f.tag: (f, getattr(obj, f.name)) for f in specs if getattr(obj, f.name) is not None}
    extra = dict(obj.extra)
    canonical = [f.tag for f in specs]
    tags = [t for t in obj.field_order if t in present or t in extra]
    tags += [t for t in canonical if t in present and t not in tags]
    tags += [t for t in extra if t not in tags]
    body = bytearray()
    for t in tags:
        if t in present:
            spec, value = present[t]
            raw = spec.codec.build(value)
        else:
            raw = extra[t]
        body += Tlv.build(dict(tag=t, value=raw))
    return bytes((pdu_tag,)) + encode_length(len(body)) + bytes(body)


@dataclass(frozen=True, slots=True)
class Aarq:
    """A-ASSOCIATE request."""

    application_context: ApplicationContext | None = None
    calling_ap_title: bytes | None = None  #: the client system title
    sender_acse_requirements: bytes | None = None
    mechanism: MechanismName | None = None
    calling_authentication_value: AuthenticationValue | None = None  #: LLS password or CtoS
    user_information: UserInformation | None = None
    protocol_version: bytes | None = None
    called_ap_title: bytes | None = None
    called_ae_qualifier: bytes | None = None
    called_ap_invocation_id: int | None = None
    called_ae_invocation_id: int | None = None
    calling_ae_qualifier: bytes | None = None
    calling_ap_invocation_id: int | None = None
    calling_ae_invocation_id: int | None = None
    implementation_information: bytes | None = None
    #: unknown elements, (tag, value), kept for round trips
    extra: tuple[tuple[int, bytes], ...] = field(default=(), compare=False)
    #: element tags in wire order (empty: canonical order)
    field_order: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def to_bytes(self) -> bytes:
        return _build_fields(AARQ, _AARQ_FIELDS, self)


@dataclass(frozen=True, slots=True)
class Aare:
    """A-ASSOCIATE response."""

    application_context: ApplicationContext | None = None
    result: int | None = None
    diagnostic: Diagnostic | None = None
    responding_ap_title: bytes | None = None  #: the server system title
    responder_acse_requirements: bytes | None = None
    mechanism: MechanismName | None = None
    responding_authentication_value: AuthenticationValue | None = None  #: StoC
    user_information: UserInformation | None = None
    protocol_version: bytes | None = None
    responding_ae_qualifier: bytes | None = None
    responding_ap_invocation_id: int | None = None
    responding_ae_invocation_id: int | None = None
    implementation_information: bytes | None = None
    extra: tuple[tuple[int, bytes], ...] = field(default=(), compare=False)
    field_order: tuple[int, ...] = field(default=(), compare=False, repr=False)

    @property
    def result_name(self) -> str:
        return RESULTS.get(self.result, f"result {self.result}")

    @property
    def accepted(self) -> bool:
        return self.result == 0

    def to_bytes(self) -> bytes:
        return _build_fields(AARE, _AARE_FIELDS, self)


@dataclass(frozen=True, slots=True)
class Release:
    """RLRQ (A-RELEASE request, 0x62) or RLRE (response, 0x63)."""

    tag: int
    reason: int | None = None
    user_information: UserInformation | None = None
    extra: tuple[tuple[int, bytes], ...] = field(default=(), compare=False)
    field_order: tuple[int, ...] = field(default=(), compare=False, repr=False)

    @property
    def name(self) -> str:
        return _PDU_NAMES[self.tag]

    @property
    def reason_name(self) -> str | None:
        if self.reason is None:
            return None
        table = RELEASE_REQUEST_REASONS if self.tag == RLRQ else RELEASE_RESPONSE_REASONS
        return table.get(self.reason, f"reason {self.reason}")

    def to_bytes(self) -> bytes:
        return _build_fields(self.tag, _RELEASE_FIELDS, self)


def in_canonical_order(pdu: Aarq | Aare | Release) -> bool:
    """Whether the known elements came in the order the standard lists them (many meters differ)."""
    specs = _AARQ_FIELDS if isinstance(pdu, Aarq) else _AARE_FIELDS if isinstance(pdu, Aare) else _RELEASE_FIELDS
    rank = {f.tag: i for i, f in enumerate(specs)}
    known = [rank[t] for t in pdu.field_order if t in rank]
    return known == sorted(known)


def parse_aarq(data: bytes) -> Aarq:
    values = _parse_fields(data, AARQ, _AARQ_FIELDS)
    if "application_context" not in values:
        raise AssociationError("AARQ has no application-context-name (A1), which is mandatory")
    return Aarq(**values)


def parse_aare(data: bytes) -> Aare:
    values = _parse_fields(data, AARE, _AARE_FIELDS)
    for tag, name in ((0xA1, "application-context-name"), (0xA2, "result"), (0xA3, "result-source-diagnostic")):
        if tag not in values["field_order"]:
            raise AssociationError(f"AARE has no {name} (0x{tag:02X}), which is mandatory")
    return Aare(**values)


def parse_release(data: bytes) -> Release:
    tag = data[0] if data else RLRQ
    if tag not in (RLRQ, RLRE):
        raise AssociationError(f"RLRQ (0x62) or RLRE (0x63) expected; the PDU starts with 0x{tag:02X}")
    return Release(tag, **_parse_fields(data, tag, _RELEASE_FIELDS))


def parse_acse(data: bytes) -> Aarq | Aare | Release:
    """Parse any of AARQ, AARE, RLRQ, RLRE by its first byte."""
    if not data:
        raise AssociationError("the PDU is empty")
    if data[0] == AARQ:
        return parse_aarq(data)
    if data[0] == AARE:
        return parse_aare(data)
    return parse_release(data)
