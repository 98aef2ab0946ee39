"""Explaining HLS passes 3 and 4: reply_to_HLS_authentication and the meter's answer.

Without keys the length of f(StoC) is read from the APDU's length (an
action-request carrying f adds :data:`PASS3_OVERHEAD` bytes); with the
secret or keys f(StoC) and f(CtoS) are computed and compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decoders.association import hls
from decoders.xdlms.tags import apdu_name, key_family
from decoders.errors import DecodeError, SecurityError
from decoders.ciphering.security import CipheredApdu

from ..advice import advise
from . import protection
from .machine import Event, State
from .records import Failure, FailureKind, Kind, Pass3, PduDraft

if TYPE_CHECKING:
    from .walk import Walk

#: bytes of an action-request carrying reply_to_HLS(f) besides f itself (f < 128 bytes)
PASS3_OVERHEAD = len(hls.reply_to_hls(b"").to_bytes())


def pass3(w: Walk, pdu: PduDraft, c: CipheredApdu, plain: bytes | None) -> None:
    """A protected HLS pass 3; ``plain`` is its content when it could be decrypted."""
    w.a.fire(Event.PASS3)
    family = key_family(c.tag)
    f_len = None
    f_value = None
    if plain is not None:
        try:
            action = hls.parse_action_request(plain)
            f_value = action.hls_response
        except DecodeError:
            action = None
        if f_value is not None:
            f_len = len(f_value)
    elif c.control.encrypted or c.control.authenticated:
        f_len = len(c.body) - PASS3_OVERHEAD
    w.a.pass3 = Pass3(pdu.number, f"{c.tag:02X}", apdu_name(c.tag), family, c.invocation_counter, f_len)
    pdu.summary = f"HLS pass 3: reply_to_HLS_authentication(f(StoC)) as {apdu_name(c.tag)} ({c.tag:02X})"
    pdu.add("HLS", f"pass 3, sent under the {family} key" + (" (tag D3)" if c.tag == 0xD3 else ""))
    protection.key_scope(w, pdu, family, "HLS pass 3")
    if c.control.suite in (1, 2):
        w.find(
            pdu,
            Kind.PASS3_NOT_SIGNED,
            f"security suite {c.control.suite}: some meters (e.g. Sagemcom T-210D) answer service-not-allowed"
            " unless HLS pass 3 is wrapped in general-signing (DF) with the client's signing key",
        )
    _check_f_length(w, pdu, f_len, plain is None)
    if f_value is not None:
        _verify_pass3(w, pdu, f_value, c)


def action_request(w: Walk, pdu: PduDraft, action: hls.ActionRequest, ciphered: CipheredApdu | None) -> None:
    """An action-request's content; sent unprotected while HLS is pending, it is pass 3."""
    text = f"action-request: method {action.method} of class {action.class_id}, {'.'.join(map(str, action.instance))}"
    if action.is_reply_to_hls:
        text += " = reply_to_HLS_authentication"
    pdu.add("content", text)
    if ciphered is not None:
        return
    pdu.summary = pdu.summary or text
    if not (pdu.sender == "client" and w.a.state is State.HLS_PENDING and action.is_reply_to_hls):
        return
    w.a.fire(Event.PASS3)
    f = action.hls_response
    w.a.pass3 = Pass3(pdu.number, "C3", "action-request", None, None, len(f) if f else None)
    pdu.summary = "HLS pass 3: reply_to_HLS_authentication(f(StoC)), unprotected"
    if w.a.ciphered_context:
        w.find(
            pdu,
            Kind.PLAIN_IN_CIPHERED_CONTEXT,
            "HLS pass 3 is sent unprotected in a ciphered context; the meter may refuse it",
        )
    _check_f_length(w, pdu, len(f) if f else None, False)
    if f:
        a = w.a
        _verify_f(w, pdu, f, a.stoc, a.client_st, a.server_st, a.ctos, "f(StoC)")


def action_response(w: Walk, pdu: PduDraft, resp: hls.ActionResponse, ciphered: CipheredApdu | None) -> None:
    """An action-response's content; from the meter after pass 3, it is pass 4."""
    a = w.a
    pdu.add("content", f"action-response: {resp.result_name}")
    if ciphered is None:
        pdu.summary = f"action-response: {resp.result_name}"
    if a.state is not State.PASS3_SENT or pdu.sender != "server":
        return
    pdu.summary = f"HLS pass 4: the meter answers reply_to_HLS_authentication: {resp.result_name}"
    if resp.result != 0:
        a.fire(Event.PASS4_REJECTED)
        a.fail(Failure(FailureKind.PASS4_RESULT, pdu.number, result=resp.result_name))
        w.find(
            pdu,
            Kind.HLS_REJECTED,
            f"the meter rejected f(StoC) ({resp.result_name}): wrong HLS secret (mechanisms 2, 3, 4, 6) or wrong"
            " keys, client system title or invocation counter inside f() (mechanism 5)",
        )
        return
    f = resp.hls_response
    a.fire(Event.PASS4_ACCEPTED)
    if f is not None:
        pdu.add("f(CtoS)", f"{len(f)} bytes")
        ok = _verify_f(w, pdu, f, a.ctos, a.server_st, a.client_st, a.stoc, "f(CtoS)")
        if ok is False:
            w.find(pdu, Kind.METER_F_MISMATCH, "the meter's f(CtoS) does not verify: do not trust this meter")
            a.fire(Event.METER_F_MISMATCH)


def _check_f_length(w: Walk, pdu: PduDraft, f_len: int | None, inferred: bool) -> None:
    mechanism, stoc = w.a.mechanism, w.a.stoc
    if f_len is None or mechanism is None:
        return
    expected = hls.expected_response_length(mechanism, len(stoc) if stoc else 16)
    how = f"{f_len + PASS3_OVERHEAD}-byte action-request => " if inferred else ""
    pdu.add("f(StoC)", f"{how}{f_len} bytes")
    if expected is None:
        return
    if f_len == expected:
        pdu.add("", f"{f_len} bytes is what mechanism {mechanism} gives")
        return
    guess = [m for m in (2, 3, 4, 5, 6) if hls.expected_response_length(m, len(stoc or b"x" * 16)) == f_len]
    w.find(
        pdu,
        Kind.F_LENGTH_MISMATCH,
        f"f(StoC) is {f_len} bytes but mechanism {mechanism} gives {expected}"
        + (f"; {f_len} bytes fits mechanism {', '.join(map(str, guess))}" if guess else "")
        + ": the client computes f() for another mechanism than it negotiated",
    )
    w.a.fail(Failure(FailureKind.F_LENGTH, pdu.number))


def _expected_f(
    w: Walk, challenge: bytes, own_st: bytes | None, peer_st: bytes | None, own_challenge: bytes | None
) -> bytes | None:
    secret = w.s.hls_secret
    m = w.a.mechanism
    if m == 2 and secret:
        return hls.aes_ecb_response(secret, challenge)
    if m == 3 and secret:
        return hls.md5_response(secret, challenge)
    if m == 4 and secret:
        return hls.sha1_response(secret, challenge)
    if m == 6 and secret and own_st and peer_st and own_challenge is not None:
        return hls.sha256_response(secret, own_st, peer_st, challenge, own_challenge)
    return None


def _verify_f(
    w: Walk,
    pdu: PduDraft,
    f: bytes,
    challenge: bytes | None,
    own_st: bytes | None,
    peer_st: bytes | None,
    own_challenge: bytes | None,
    who: str,
) -> bool | None:
    """Compare ``f`` with the one computed from the secret or keys given; None when it cannot be computed."""
    if challenge is None:
        return None
    k = w.s.keys
    if w.a.mechanism == 5:
        if not (k.ek and k.ak and own_st):
            pdu.add("", f"{who} not verified: mechanism 5 needs --key, --auth-key and the system titles")
            return None
        ok = hls.check_gmac_response(f, ek=k.ek, ak=k.ak, system_title=own_st, challenge=challenge)
    else:
        try:
            expected = _expected_f(w, challenge, own_st, peer_st, own_challenge)
        except SecurityError as exc:
            pdu.add("", f"{who} not verified: {advise(exc).message}")
            return None
        if expected is None:
            pdu.add("", f"{who} not verified: give --hls-secret")
            return None
        ok = expected == f
    pdu.add(who, "verified: matches" if ok else "does NOT match the given secret/keys")
    return ok


def _verify_pass3(w: Walk, pdu: PduDraft, f: bytes, c: CipheredApdu) -> None:
    a = w.a
    ok = _verify_f(w, pdu, f, a.stoc, a.client_st, a.server_st, a.ctos, "f(StoC)")
    if ok is False:
        w.find(
            pdu,
            Kind.F_MISMATCH,
            "the client's f(StoC) does not match the one computed from the given "
            + ("keys and client system title" if a.mechanism == 5 else "HLS secret")
            + ": the client uses another secret or key than the one given",
        )
    if a.mechanism == 5 and len(f) == 17 and int.from_bytes(f[1:5], "big") == c.invocation_counter:
        w.find(
            pdu,
            Kind.GMAC_IV_REUSE,
            "the GMAC inside f(StoC) uses the same invocation counter as the APDU carrying it: same key,"
            " same system title, same IV",
        )
