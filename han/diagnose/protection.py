"""Explaining protected APDUs: security header, key, invocation counter, decryption, and whether the key fits.

Which key a glo-/ded- APDU should use depends on where the association
stands: the HLS passes under the global key, ded- only after HLS completed,
and only when the AARQ proposed a dedicated key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decoders.xdlms.tags import apdu_name, key_family, plain_tag
from decoders.errors import SecurityError
from decoders.ciphering.security import CipheredApdu, Keys, unprotect

from ..advice import advise
from . import authentication
from .machine import Event, State
from .reading import GENERAL_GLO_DED, describe_title
from .records import FailureKind, Kind, PduDraft

if TYPE_CHECKING:
    from .walk import Walk


def ciphered(w: Walk, pdu: PduDraft, c: CipheredApdu) -> None:
    a = w.a
    family = key_family(c.tag)
    inner_tag = plain_tag(c.tag)
    general = c.tag in GENERAL_GLO_DED
    pdu.summary = f"{pdu.name}: " + (
        "an APDU protected with general ciphering"
        if general
        else f"a {apdu_name(inner_tag)} protected with the {family} key"
    )
    if general and c.system_title and pdu.sender is None:
        pdu.sender = "client" if c.system_title == a.client_st else "server" if c.system_title == a.server_st else None
    plain = ciphered_body(w, pdu, c, pdu.sender)
    if plain:
        inner_tag = plain[0]
    if pdu.sender == "client":
        if a.state is State.HLS_PENDING and (inner_tag == 0xC3 or (general and plain is None)):
            authentication.pass3(w, pdu, c, plain)
        else:
            key_scope(w, pdu, family, "this request")
    if plain is not None:
        w.plain_bytes(pdu, plain, c)
    elif inner_tag == 0x0E:
        w.failure_reply(pdu, FailureKind.SERVICE_ERROR, f"a {pdu.name} (its content needs the keys to be read)")
    elif pdu.sender == "server" and a.state is State.PASS3_SENT and inner_tag in {0xC7, 0xDB, 0xDC}:
        pdu.add("", "the reply to HLS pass 3 (f(CtoS) not checked without keys)")
        if inner_tag == 0xC7:
            a.fire(Event.PASS4_UNREAD)


def key_scope(w: Walk, pdu: PduDraft, family: str | None, what: str) -> None:
    """Is this key the right one at this point of the association?"""
    a = w.a
    if family == "dedicated" and a.dedicated.proposed is False:
        w.find(pdu, Kind.DED_WITHOUT_KEY, f"{what} is a ded- APDU although the AARQ proposed no dedicated key")
    if family == "dedicated" and a.state.before_authentication:
        w.find(
            pdu,
            Kind.DED_BEFORE_HLS,
            f"{what} is protected with the dedicated key (a ded- APDU) before HLS has completed; meters and the"
            " DLMS conformance test expect the HLS passes under the global key (glo-, e.g. CB"
            " glo-action-request) and switch to ded- only once the association is authenticated",
        )
    elif family == "global" and a.dedicated.proposed and a.state.authenticated:
        w.find(
            pdu,
            Kind.GLO_WITH_DEDICATED,
            f"{what} uses the global key although a dedicated key was agreed; meters that expect ded- APDUs"
            " after HLS may refuse it",
        )


def _note_ic(w: Walk, pdu: PduDraft, side: str | None, family: str, ic: int) -> None:
    key = (side or "unknown sender", family)
    seen = w.a.counters.setdefault(key, [])
    if seen and ic <= seen[-1][1]:
        w.find(
            pdu,
            Kind.IC_NOT_INCREASING,
            f"invocation counter {ic} from the {key[0]} under the {family} key is not above the previous one"
            f" ({seen[-1][1]} in PDU #{seen[-1][0]}): a server rejects repeated or lower counters"
            " (replay protection)",
        )
    seen.append((pdu.number, ic))


def ciphered_body(w: Walk, pdu: PduDraft, c: CipheredApdu, side: str | None) -> bytes | None:
    """Describe a ciphered APDU's header, track its IC, and decrypt it when keys allow."""
    a, given = w.a, w.s.keys
    family = key_family(c.tag) or "global"
    sc = c.control
    where = "" if c.system_title is None else f", system title {describe_title(c.system_title)}"
    pdu.add("protection", f"SC 0x{sc.value:02X} = {sc.describe()}{where}")
    key_name = {
        "global": "the global broadcast key (GBEK)" if sc.broadcast else "the global unicast key (GUEK)",
        "dedicated": "the dedicated key of this association",
    }[family]
    pdu.add("key", key_name)
    pdu.add("invocation counter", f"{c.invocation_counter}")
    _note_ic(w, pdu, side, family, c.invocation_counter)
    if c.invocation_counter == 0 and (side, family) == ("client", "global"):
        pdu.add("", "counter 0 at association start; some meters reject it (read 0.0.43.1.x.255 first)")
    st = c.system_title or (a.client_st if side == "client" else a.server_st if side == "server" else None)
    key = w.dedicated_key if family == "dedicated" else (given.broadcast if sc.broadcast else given.ek)
    if key is None:
        if w.s.any_key:
            missing = "dedicated key" if family == "dedicated" else "global encryption key"
            pdu.add("", f"not decrypted: the {missing} is not known")
        return None
    if not st:
        pdu.add("", "not decrypted: the sender's system title is unknown (no AARQ/AARE in the log)")
        return None
    try:
        result = unprotect(c, w.keys, system_title=st, allow_unauthenticated=True, allow_unverified=True)
    except SecurityError as exc:
        w.find(pdu, Kind.DECRYPT_FAILED, f"PDU #{pdu.number} does not open with the given keys: {advise(exc).message}")
        if family == "dedicated" and given.ek:
            _try_other_key(w, pdu, c, st)
        return None
    pdu.add("decrypted", f"{len(result.apdu)} bytes, tag {'verified' if result.verified else 'NOT checked'}")
    return result.apdu


def _try_other_key(w: Walk, pdu: PduDraft, c: CipheredApdu, st: bytes) -> None:
    """A ded- APDU that does not open with the dedicated key: does it open with the global one?"""
    # re-tagged as general-glo-ciphering so that unprotect() picks the global key
    probe = CipheredApdu(0xDB, st, c.security_control, c.invocation_counter, c.body, c.auth_tag, 0)
    try:
        unprotect(probe, Keys(ek=w.s.keys.ek, ak=w.s.keys.ak), allow_unauthenticated=True)
    except SecurityError:
        return
    w.find(pdu, Kind.DED_TAG_GLOBAL_KEY, "it opens with the global key although its tag says ded-")
