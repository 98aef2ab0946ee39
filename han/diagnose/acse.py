"""Explaining the ACSE PDUs (AARQ, AARE, RLRQ, RLRE) and the initiate PDUs they carry.

What they establish goes into the association: application context,
mechanism, system titles, challenges, the dedicated key (read from the
decrypted InitiateRequest, or inferred from its ciphered length), and the
AARE's result, which may require authentication (the HLS_PENDING state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from decoders.association import hls
from decoders.xdlms.tags import apdu_name
from decoders.association.acse import (
    AARE,
    AARQ,
    Aare,
    Aarq,
    InitiateRequest,
    InitiateResponse,
    Release,
    dedicated_key_length,
    in_canonical_order,
    parse_initiate,
)
from decoders.xdlms.error_pdus import ConfirmedServiceError
from decoders.ciphering.security import CipheredApdu

from . import protection
from .machine import Event
from .reading import PLACEHOLDER_TITLES, describe_title, hex_upper
from .records import DedicatedKey, Failure, FailureKind, Kind, PduDraft

if TYPE_CHECKING:
    from .walk import Walk

READ_FROM_AARQ = "read from the decrypted InitiateRequest"


def aarq(w: Walk, pdu: PduDraft, aarq: Aarq) -> None:
    a = w.a
    pdu.summary = "AARQ: the client asks for an association"
    a.context = aarq.application_context
    pdu.add("application context", a.context.describe())
    if a.context.ciphered:
        pdu.add("", "ciphered context: APDUs are protected as glo- (global key) or ded- (dedicated key)")
    if aarq.calling_ap_title is not None:
        a.client_st = aarq.calling_ap_title
        pdu.add("client system title", describe_title(a.client_st) + " (calling-AP-title)")
        _check_title(w, pdu, a.client_st, "client")
    mech = aarq.mechanism.id if aarq.mechanism else 0
    a.mechanism = mech
    if mech is None:  # a mechanism name outside the DLMS arc
        oid = aarq.mechanism.oid if aarq.mechanism else ""
        pdu.add("mechanism", f"{oid}: not a DLMS mechanism name")
        w.find(
            pdu,
            Kind.UNKNOWN_MECHANISM,
            f"the mechanism name {oid} is not a DLMS one ({hls.MECHANISM_OID_PREFIX}.0 to .7): a meter answers"
            " authentication-mechanism-name-not-recognised",
        )
    else:
        info = hls.mechanism_info(mech)
        pdu.add("mechanism", f"{mech} = {info.name}")
        if mech >= 2:
            pdu.add("", f"f() is computed from {info.uses}")
    if mech == 2:
        w.find(
            pdu,
            Kind.MECHANISM_HIGH,
            'mechanism 2 (HLS "High") authenticates with the HLS secret only; the encryption and authentication'
            " keys protect the APDUs but are not used for f(). Only HighGMAC (mechanism 5) authenticates with"
            " the keys.",
        )
    elif mech == 5:
        w.find(
            pdu,
            Kind.MECHANISM_GMAC,
            "mechanism 5 (HighGMAC): f(StoC) = SC || IC || GMAC(SC || AK || StoC) with the global keys and the"
            " client system title; the meter answers with the same over CtoS and its own title",
        )
    if mech in (5, 6, 7) and aarq.calling_ap_title is None:
        w.find(pdu, Kind.MISSING_TITLE, f"mechanism {mech} needs the client system title (calling-AP-title)")
    if a.context.ciphered and aarq.calling_ap_title is None:
        w.find(pdu, Kind.MISSING_TITLE, "a ciphered context needs the client system title (calling-AP-title)")
    auth = aarq.calling_authentication_value
    if auth is not None:
        if mech == 1:
            pdu.add("password", f"{len(auth.value)} bytes (LLS; travels in clear)")
        else:
            a.ctos = auth.value
            pdu.add("CtoS", f"{len(auth.value)}-byte client challenge")
            if mech is not None and mech >= 2 and not 8 <= len(auth.value) <= 64:
                w.find(pdu, Kind.CHALLENGE_LENGTH, f"CtoS is {len(auth.value)} bytes; 8 to 64 expected")
    if aarq.user_information is not None:
        user_information(w, pdu, aarq.user_information.content)


def _check_title(w: Walk, pdu: PduDraft, st: bytes, who: str) -> None:
    if len(st) != 8:
        w.find(pdu, Kind.BAD_TITLE, f"the {who} system title is {len(st)} bytes; 8 expected")
    what = PLACEHOLDER_TITLES.get(st)
    if what:
        w.find(
            pdu,
            Kind.PLACEHOLDER_SYSTEM_TITLE,
            f"the {who} system title {hex_upper(st)} is a placeholder ({what}); give each {who} its own unique"
            " system title, the one the meter is configured to expect",
        )


def aare(w: Walk, pdu: PduDraft, aare: Aare) -> None:
    a = w.a
    a.accepted = aare.accepted
    pdu.summary = f"AARE: association {aare.result_name}"
    pdu.add("application context", aare.application_context.describe())
    pdu.add("result", f"{aare.result} = {aare.result_name}")
    diag = aare.diagnostic
    if diag is not None:
        pdu.add("diagnostic", f"{diag.source_name} {diag.value} = {diag.name}")
    if aare.responding_ap_title is not None:
        a.server_st = aare.responding_ap_title
        pdu.add("server system title", describe_title(a.server_st) + " (responding-AP-title)")
        _check_title(w, pdu, a.server_st, "server")
    if not in_canonical_order(aare):
        pdu.add("", "elements are not in the canonical order (read by tag, not by position)")
    if aare.mechanism is not None:
        if a.mechanism is not None and aare.mechanism.id != a.mechanism:
            w.find(
                pdu,
                Kind.MECHANISM_CHANGED,
                f"the meter answers with mechanism {aare.mechanism.id}, the client asked for {a.mechanism}",
            )
        pdu.add("mechanism", f"{aare.mechanism.id} = {hls.mechanism_info(aare.mechanism.id).name}")
    if aare.responding_authentication_value is not None:
        a.stoc = aare.responding_authentication_value.value
        pdu.add("StoC", f"{len(a.stoc)}-byte server challenge")
    if aare.accepted and diag is not None and diag.source == 1 and diag.value == 14:
        a.fire(Event.AUTHENTICATION_REQUIRED)
        pdu.add(
            "",
            "accepted, but authentication is required: only reply_to_HLS_authentication (HLS pass 3) is allowed"
            " until HLS completes",
        )
    elif not aare.accepted:
        a.fail(Failure(FailureKind.REJECTED, pdu.number, diagnostic=diag))
        w.find(
            pdu,
            Kind.ASSOCIATION_REJECTED,
            f"the meter rejected the association ({aare.result_name}"
            + (f", {diag.source_name}: {diag.name})" if diag else ")"),
        )
    if aare.user_information is not None:
        user_information(w, pdu, aare.user_information.content)


def release(w: Walk, pdu: PduDraft, rel: Release) -> None:
    pdu.summary = f"{rel.name}: release {'request' if pdu.tag == 0x62 else 'response'}"
    if rel.reason_name:
        pdu.add("reason", rel.reason_name)
    if rel.user_information is not None:
        user_information(w, pdu, rel.user_information.content)


def user_information(w: Walk, pdu: PduDraft, content: Any) -> None:
    """The initiate PDU of an AARQ/AARE/RLRQ/RLRE (or sent on its own), sent by ``pdu.sender``."""
    a = w.a
    if isinstance(content, CipheredApdu):
        pdu.add("user-information", f"{apdu_name(content.tag)}")
        plain = protection.ciphered_body(w, pdu, content, pdu.sender)
        if plain is None:
            if content.tag in (0x21, 0x41):
                _infer_dedicated(w, pdu, len(content.body))
            elif content.tag in (0x28, 0x48) and pdu.tag == AARE:
                pdu.add(
                    "",
                    f"{len(content.body)}-byte InitiateResponse inside: the meter deciphered the"
                    " glo-initiate-request, so the global keys and the client system title are right",
                )
            return
        content = parse_initiate(plain)
    if isinstance(content, InitiateRequest):
        pdu.add(
            "InitiateRequest",
            f"DLMS version {content.dlms_version}, max PDU {content.max_receive_pdu_size},"
            f" {len(content.conformance_names)} conformance bits",
        )
        if content.dedicated_key is not None:
            a.dedicated = DedicatedKey(True, len(content.dedicated_key), READ_FROM_AARQ)
            given = w.s.keys.dedicated
            if given is not None and given != content.dedicated_key:
                w.find(
                    pdu,
                    Kind.DEDICATED_KEY_DIFFERS,
                    "the --dedicated-key given differs from the key the AARQ proposes; the AARQ's key is used",
                )
            w.dedicated_key = content.dedicated_key
            pdu.add("dedicated key", f"{len(content.dedicated_key)} bytes, proposed by the client (value hidden)")
            if a.context is not None and not a.context.ciphered and pdu.tag == AARQ:
                w.find(pdu, Kind.DEDICATED_KEY_IN_CLEAR, "the dedicated key is sent in clear")
            w.find(pdu, Kind.DEDICATED_KEY_PROPOSED, _dedicated_text(a.dedicated))
        else:
            a.dedicated = DedicatedKey(False, 0, READ_FROM_AARQ)
            pdu.add("dedicated key", "none proposed: every protected APDU will be glo-")
    elif isinstance(content, InitiateResponse):
        pdu.add(
            "InitiateResponse",
            f"DLMS version {content.dlms_version}, max PDU {content.max_receive_pdu_size},"
            f" {len(content.conformance_names)} conformance bits",
        )
    elif isinstance(content, ConfirmedServiceError):
        pdu.add("user-information", content.describe())
        a.fail(Failure(FailureKind.INITIATE_ERROR, pdu.number, error=content))
        w.find(pdu, Kind.INITIATE_ERROR, f"the meter refused the InitiateRequest: {content.describe()}")


def _dedicated_text(dk: DedicatedKey) -> str:
    return (
        f"the client proposed a {dk.length}-byte dedicated key ({dk.how}); after HLS"
        " the APDUs of this association are protected with it (ded- tags D0/D1/D3, replies D4/D5/D7)"
    )


def _infer_dedicated(w: Walk, pdu: PduDraft, plain_len: int) -> None:
    key_len = dedicated_key_length(plain_len)
    if key_len is None:
        pdu.add("", f"{plain_len}-byte InitiateRequest inside: its length fits no known layout")
        return
    how = f"inferred from the ciphered InitiateRequest's length, {plain_len} bytes"
    w.a.dedicated = DedicatedKey(key_len > 0, key_len, how)
    if key_len:
        pdu.add(
            "dedicated key",
            f"{plain_len}-byte InitiateRequest inside => a {key_len}-byte dedicated key is proposed",
        )
        w.find(pdu, Kind.DEDICATED_KEY_PROPOSED, _dedicated_text(w.a.dedicated))
    else:
        pdu.add("dedicated key", f"{plain_len}-byte InitiateRequest inside => no dedicated key: APDUs stay glo-")
