"""AARQ/AARE/RLRQ/RLRE: build from values, parse, round trip, and clear errors on bad input.

The PDUs built here are made up for the tests; the published ones are in
tests/decoders/test_security_vector_records.py (read from ../shared/vectors).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.association.acse import (
    Aare,
    Aarq,
    ApplicationContext,
    AssociationError,
    AuthenticationValue,
    Diagnostic,
    InitiateRequest,
    InitiateResponse,
    MechanismName,
    Release,
    UserInformation,
    dedicated_key_length,
    open_initiate,
    parse_aare,
    parse_aarq,
    parse_acse,
    parse_initiate,
)
from decoders.association.ber import oid_from_bytes, oid_to_bytes
from decoders.errors import DecodeError
from decoders.ciphering.security import Keys, protect

EK, AK = bytes(range(16)), bytes(range(16, 32))
CLIENT_ST = b"TESTCLNT"
INITIATE = InitiateRequest(dlms_version=6, conformance=0x00101D, max_receive_pdu_size=0x400)


def make_aarq(**changes) -> Aarq:
    base = dict(
        application_context=ApplicationContext.of(1),
        sender_acse_requirements=b"\x07\x80",
        mechanism=MechanismName.of(5),
        calling_ap_title=CLIENT_ST,
        calling_authentication_value=AuthenticationValue(b"CHALLNGE"),
        user_information=UserInformation.of(INITIATE),
    )
    base.update(changes)
    return Aarq(**base)


def test_oids():
    assert oid_to_bytes("2.16.756.5.8.1.3").hex() == "60857405080103"
    assert oid_from_bytes(bytes.fromhex("60857405080205")) == "2.16.756.5.8.2.5"
    assert oid_from_bytes(oid_to_bytes("1.2.840.113549")) == "1.2.840.113549"
    with pytest.raises(ValueError):
        oid_from_bytes(b"\x85")


def test_context_and_mechanism_names():
    assert ApplicationContext.of(3).ciphered and ApplicationContext.of(3).logical_names
    assert not ApplicationContext.of(2).logical_names
    assert "with ciphering" in ApplicationContext.of(4).describe()
    assert ApplicationContext("1.2.3").id is None
    assert "HighGMAC" in MechanismName.of(5).describe()
    assert MechanismName.of(2).id == 2


def test_aarq_built_in_canonical_order_and_round_trips():
    aarq = make_aarq()
    raw = aarq.to_bytes()
    assert raw[0] == 0x60
    assert raw[2] == 0xA1  # application context first
    parsed = parse_aarq(raw)
    assert parsed == aarq
    assert parsed.to_bytes() == raw
    assert parsed.field_order == (0xA1, 0xA6, 0x8A, 0x8B, 0xAC, 0xBE)


def test_non_canonical_order_is_kept():
    aare = Aare(
        application_context=ApplicationContext.of(3),
        result=0,
        diagnostic=Diagnostic(1, 14),
        responder_acse_requirements=b"\x07\x80",
        mechanism=MechanismName.of(2),
        responding_authentication_value=AuthenticationValue(b"S" * 16),
        responding_ap_title=b"SERVERST",
        user_information=UserInformation.of(InitiateResponse(6, 0x00101D, 0x200, 7)),
        field_order=(0xA1, 0xA2, 0xA3, 0x88, 0x89, 0xAA, 0xA4, 0xBE),  # title after the challenge
    )
    raw = aare.to_bytes()
    assert raw.index(b"\xa4\x0a\x04\x08SERVERST") > raw.index(b"\xaa\x12")
    parsed = parse_aare(raw)
    assert parsed.responding_ap_title == b"SERVERST" and parsed.field_order == aare.field_order
    assert parsed.to_bytes() == raw
    assert parsed.diagnostic.name == "authentication-required" and parsed.result_name == "accepted"


def test_unknown_elements_survive_a_round_trip():
    raw = make_aarq().to_bytes()
    body = raw[2:] + b"\x9f\x01\x00"  # an element this decoder does not know
    odd = bytes((0x60, len(body))) + body
    parsed = parse_aarq(odd)
    assert parsed.extra == ((0x9F, b"\x00"),) and parsed.to_bytes() == odd


def test_initiate_request_optional_fields():
    full = InitiateRequest(6, 0x7E1F, 1200, dedicated_key=bytes(16), response_allowed=False, quality_of_service=-1)
    raw = full.to_bytes()
    assert raw[:3] == b"\x01\x01\x10" and len(raw) == 33
    assert parse_initiate(raw) == full
    assert dedicated_key_length(len(raw)) == 16
    assert INITIATE.to_bytes() == bytes.fromhex("01000000065F1F040000101D0400")
    assert dedicated_key_length(len(INITIATE.to_bytes())) == 0
    assert dedicated_key_length(20) is None
    assert "get" in INITIATE.conformance_names and "action" in INITIATE.conformance_names


def test_ciphered_initiate_request_opens_with_the_global_key():
    plain = InitiateRequest(6, 0x7E1F, 1200, dedicated_key=bytes(range(100, 116))).to_bytes()
    glo = protect(plain, keys=Keys(ek=EK, ak=AK), system_title=CLIENT_ST, invocation_counter=1, tag=0x21)
    aarq = make_aarq(application_context=ApplicationContext.of(3), user_information=UserInformation.parse(glo))
    parsed = parse_aarq(aarq.to_bytes())
    ui = parsed.user_information
    assert ui.ciphered and dedicated_key_length(len(ui.content.body)) == 16
    opened = open_initiate(ui.content, Keys(ek=EK, ak=AK), CLIENT_ST)
    assert opened.dedicated_key == bytes(range(100, 116))


def test_release_pdus():
    rlrq = Release(0x62, reason=0, user_information=UserInformation.of(INITIATE))
    raw = rlrq.to_bytes()
    assert raw[:5] == bytes.fromhex("6215800100") and parse_acse(raw) == rlrq
    assert parse_acse(raw).reason_name == "normal"
    assert Release(0x63, reason=1).reason_name == "not-finished"
    assert parse_acse(b"\x63\x00") == Release(0x63)


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "empty"),
        ("61", "length field is missing"),
        ("6005A109060760", "element 0xA1 at offset 2 claims 9 bytes but only 3 follow"),
        ("6010A1090607608574050801018A02", "says 16 bytes but 13 follow (PDU truncated?)"),
        ("600BA10906076085740508010100", "extra bytes after the PDU"),
        ("6002A100", "element 0xA1 (application-context) is malformed; expected 06 len"),
        ("6004BE020400", "user-information carries an empty xDLMS APDU"),
        ("6005BE03040199", "carries tag 0x99"),
        ("6006BE04040201FF", "InitiateRequest is malformed or truncated"),
        ("6003800100", "no application-context-name"),
        ("6106A10406028585", "element 0xA1 (application-context) is malformed"),
        ("610BA109060760857405080101", "no result"),
        ("6203BE0100", "RLRQ: element 0xBE (user-information) is malformed"),
        ("6400", "RLRQ (0x62) or RLRE (0x63) expected"),
        ("600B8B07608574050802058B00", "appears twice"),
    ],
)
def test_malformed_pdus_raise_clear_errors(raw, message):
    with pytest.raises(AssociationError) as info:
        parse_acse(bytes.fromhex(raw))
    assert message in info.value.message
    assert isinstance(info.value, DecodeError) and "\n" not in info.value.one_line()
    assert info.value.one_line().startswith("acse: ")


def test_a_broken_ciphered_user_information_names_the_element():
    raw = bytes.fromhex("6008BE06040421053000")
    with pytest.raises(AssociationError, match="user-information: ciphered APDU length field says 5"):
        parse_aarq(raw)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x60, 0x61, 0x62, 0x63]), st.binary(max_size=80))
def test_random_acse_bytes_raise_only_decode_errors(tag, body):
    for data in (bytes((tag,)) + body, bytes((tag, len(body) & 0x7F)) + body):
        try:
            pdu = parse_acse(data)
        except DecodeError:
            continue
        assert parse_acse(pdu.to_bytes()) == pdu  # whatever parses builds again (lengths made minimal)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_random_initiate_bytes_raise_only_decode_errors(body):
    for data in (b"\x01" + body, b"\x08" + body, b"\x21" + body):
        try:
            parse_initiate(data)
        except DecodeError:
            pass


def test_canonical_order_check():
    from decoders.association.acse import in_canonical_order

    assert in_canonical_order(parse_aarq(make_aarq().to_bytes()))
    odd = Aare(
        application_context=ApplicationContext.of(1),
        result=0,
        diagnostic=Diagnostic(1, 0),
        responding_ap_title=b"SERVERST",
        mechanism=MechanismName.of(5),
        field_order=(0xA1, 0xA2, 0xA3, 0x89, 0xA4),
    )
    assert not in_canonical_order(parse_aare(odd.to_bytes()))
