"""Made-up association exchanges for the ``han diagnose`` tests and the output comparison.

Built with the project's own encoders and keys derived from fixed strings
(no published key or vector is copied).
"""

from __future__ import annotations

import hashlib

from decoders.xdlms import axdr
from decoders.association import hls
from decoders.association.acse import (
    Aare,
    Aarq,
    ApplicationContext,
    AuthenticationValue,
    Diagnostic,
    InitiateRequest,
    InitiateResponse,
    MechanismName,
    UserInformation,
)
from decoders.link.hdlc import LLC_COMMAND, LLC_RESPONSE, build_frame
from decoders.ciphering.security import Keys, protect


def _k(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()[:16]


EK, AK, DK = _k("han test EK"), _k("han test AK"), _k("han test dedicated key")
CLIENT_ST, SERVER_ST = b"HANclnt1", bytes.fromhex("58595A0000A1B2C3")
CTOS, STOC = b"client-challenge", b"server-challenge"
SECRET = b"han-hls-secret"
KEYS = Keys(ek=EK, ak=AK, dedicated=DK)



def hdlc(apdu: bytes, *, client: bool) -> str:
    frame = build_frame(
        (LLC_COMMAND if client else LLC_RESPONSE) + apdu,
        dest=b"\x03" if client else b"\x61",
        src=b"\x61" if client else b"\x03",
        control=0x10,
    )
    return frame.hex(" ").upper()


def exchange(
    mechanism: int,
    *,
    pass3_tag: int = 0xCB,
    secret: bytes = SECRET,
    dedicated: bytes | None = DK,
    pass4: bool = True,
    error: bytes | None = None,
    after: bool = True,
) -> list[tuple[bool, bytes]]:
    """(from client?, APDU) pairs of one association with HLS."""
    initiate = InitiateRequest(6, 0x001E1D, 1024, dedicated_key=dedicated)
    aarq = Aarq(
        application_context=ApplicationContext.of(3),
        calling_ap_title=CLIENT_ST,
        sender_acse_requirements=b"\x07\x80",
        mechanism=MechanismName.of(mechanism),
        calling_authentication_value=AuthenticationValue(CTOS),
        user_information=UserInformation.parse(
            protect(initiate.to_bytes(), keys=KEYS, system_title=CLIENT_ST, invocation_counter=1, tag=0x21)
        ),
    )
    response = InitiateResponse(6, 0x001E1D, 512, 7)
    aare = Aare(
        application_context=ApplicationContext.of(3),
        result=0,
        diagnostic=Diagnostic(1, 14),
        responding_ap_title=SERVER_ST,
        responder_acse_requirements=b"\x07\x80",
        mechanism=MechanismName.of(mechanism),
        responding_authentication_value=AuthenticationValue(STOC),
        user_information=UserInformation.parse(
            protect(response.to_bytes(), keys=KEYS, system_title=SERVER_ST, invocation_counter=100, tag=0x28)
        ),
    )
    if mechanism == 5:
        f_stoc = hls.gmac_response(ek=EK, ak=AK, system_title=CLIENT_ST, invocation_counter=2, challenge=STOC)
        f_ctos = hls.gmac_response(ek=EK, ak=AK, system_title=SERVER_ST, invocation_counter=101, challenge=CTOS)
    else:
        f_stoc, f_ctos = hls.aes_ecb_response(secret, STOC), hls.aes_ecb_response(SECRET, CTOS)
    pass3 = protect(
        hls.reply_to_hls(f_stoc).to_bytes(), keys=KEYS, system_title=CLIENT_ST, invocation_counter=3, tag=pass3_tag
    )
    out = [(True, aarq.to_bytes()), (False, aare.to_bytes()), (True, pass3)]
    if error is not None:
        return out + [(False, error)]
    if pass4:
        answer = hls.ActionResponse(0xC1, 0, axdr.octet_string(f_ctos), None).to_bytes()
        out.append((False, protect(answer, keys=KEYS, system_title=SERVER_ST, invocation_counter=102, tag=0xCF)))
    if after:
        get = bytes.fromhex("C001C1000300000100FF0200")
        out.append((True, protect(get, keys=KEYS, system_title=CLIENT_ST, invocation_counter=4, tag=0xD0)))
        reply = bytes.fromhex("C401C1000600000102")
        out.append((False, protect(reply, keys=KEYS, system_title=SERVER_ST, invocation_counter=103, tag=0xD4)))
    return out


def as_hdlc_log(pdus) -> str:
    lines = ["connecting..."]
    for client, apdu in pdus:
        lines += ["TX:" if client else "RX:", hdlc(apdu, client=client)]
    return "\n".join(lines)
