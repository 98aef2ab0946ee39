"""``han diagnose``: explain a DLMS association log in plain words.

Walks the PDUs of a log in order (see :mod:`han.logscan`) and keeps the state
of the association as it goes: application context, mechanism, system titles,
whether a dedicated key was proposed, HLS progress, invocation counters per
sender and key.  Each PDU gets a short explanation and findings; the end names
the likely cause and the fix.

Without keys everything that can be read from the headers and lengths is
used: a ciphered InitiateRequest of 31..33 plaintext bytes carries a 16-byte
dedicated key, an HLS pass 3 of 31 bytes carries a 16-byte f(StoC) (mechanism
2), 32 bytes a 17-byte one (mechanism 5).  With keys every APDU is decrypted
and checked, the dedicated key is taken from the AARQ, and the HLS responses
are verified.

Keys and the HLS secret never appear in the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from decoders import hls
from decoders.apdu_tags import PLAIN_NAMES, apdu_name, ciphered_tag, key_family, plain_tag
from decoders.apdu_tags import sender as tag_sender
from decoders.association import (
    AARE,
    AARQ,
    Aare,
    Aarq,
    InitiateRequest,
    InitiateResponse,
    dedicated_key_length,
    in_canonical_order,
    parse_acse,
    parse_initiate,
)
from decoders.error_pdus import (
    ConfirmedServiceError,
    ExceptionResponse,
    parse_confirmed_service_error,
    parse_exception_response,
)
from decoders.errors import ApduError, DecodeError, SecurityError
from decoders.general_ciphering import parse_general_ciphering, parse_general_signing
from decoders.security import (
    DED_SERVICE_TAGS,
    GLO_SERVICE_TAGS,
    CipheredApdu,
    Keys,
    SecurityControl,
    manufacturer,
    parse_ciphered,
    unprotect,
)

from .logscan import LinkEvent, LoggedPdu, frame_name, hdlc_address, scan_log

#: system titles seen in examples and defaults; a real client or meter should not use them
PLACEHOLDER_TITLES = {
    bytes.fromhex("4142434445464748"): 'Gurux\'s default client title "ABCDEFGH"',
    bytes.fromhex("3132333435363738"): '"12345678"',
    bytes(8): "all zeros",
    b"\xff" * 8: "all FF",
}
#: bytes of an action-request carrying reply_to_HLS(f) besides f itself (f < 128 bytes)
PASS3_OVERHEAD = len(hls.reply_to_hls(b"").to_bytes())


class NothingToDiagnose(DecodeError):
    layer = "diagnose"
    reason = "nothing"


@dataclass(frozen=True, slots=True)
class Secrets:
    """What the user gave to decrypt and verify; shown nowhere."""

    keys: Keys = field(default_factory=Keys)
    hls_secret: bytes | None = field(default=None, repr=False)
    client_system_title: bytes | None = None
    server_system_title: bytes | None = None

    def __repr__(self) -> str:
        return f"Secrets({self.keys!r}, hls secret {'given' if self.hls_secret else 'not given'})"

    @property
    def any_key(self) -> bool:
        return bool(self.keys.ek or self.keys.dedicated or self.hls_secret)


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str  #: "info", "warning" or "error"
    code: str  #: stable id for tools, e.g. "ded_before_hls"
    text: str
    pdu: int | None = None  #: number of the PDU it is about

    def to_dict(self) -> dict:
        return {"severity": self.severity, "code": self.code, "text": self.text, "pdu": self.pdu}


@dataclass(frozen=True, slots=True)
class PduReport:
    number: int
    line: int
    sender: str | None
    tag: int
    name: str
    summary: str
    details: tuple[tuple[str, str], ...]
    link: str | None

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "line": self.line,
            "sender": self.sender,
            "tag": f"{self.tag:02X}",
            "name": self.name,
            "summary": self.summary,
            "details": [{"label": k, "text": v} for k, v in self.details],
            "link": self.link,
        }


@dataclass(frozen=True, slots=True)
class Diagnosis:
    pdus: tuple[PduReport, ...]
    events: tuple[LinkEvent, ...]
    association: dict
    findings: tuple[Finding, ...]
    cause: str
    fixes: tuple[str, ...]
    keys_used: bool

    def to_dict(self) -> dict:
        return {
            "association": self.association,
            "pdus": [p.to_dict() for p in self.pdus],
            "link_events": [{"line": e.line, "text": e.text, "problem": e.problem} for e in self.events],
            "findings": [f.to_dict() for f in self.findings],
            "cause": self.cause,
            "fixes": list(self.fixes),
            "keys_used": self.keys_used,
        }


def _hex(b: bytes) -> str:
    return b.hex().upper()


def _printable(b: bytes) -> str | None:
    text = b.rstrip(b"\x00")
    if len(text) >= 3 and all(0x20 <= c < 0x7F for c in text):
        return text.decode("ascii")
    return None


def describe_title(st: bytes) -> str:
    """``474F450000581CF1 (manufacturer id GOE)``, ``4142434445464748 "ABCDEFGH"``."""
    shown, flag = _printable(st), manufacturer(st)
    if shown:
        return f'{_hex(st)} "{shown}"'
    return f"{_hex(st)} (manufacturer id {flag})" if flag else _hex(st)


@dataclass
class _Pdu:
    """A PDU report under construction."""

    number: int
    line: int
    sender: str | None
    tag: int
    name: str
    summary: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)
    link: str | None = None

    def add(self, label: str, text: str) -> None:
        self.details.append((label, text))


class _Analyser:
    def __init__(self, secrets: Secrets) -> None:
        self.s = secrets
        self.findings: list[Finding] = []
        self.reports: list[_Pdu] = []
        self.context = None
        self.mechanism: int | None = None
        self.client_st = secrets.client_system_title
        self.server_st = secrets.server_system_title
        self.ctos: bytes | None = None
        self.stoc: bytes | None = None
        self.dedicated_proposed: bool | None = None
        self.dedicated_length: int | None = None
        self.dedicated_how = ""
        self.dedicated_key = secrets.keys.dedicated
        self.hls_state = "not used"  # not used, pending, pass 3 sent, completed, failed
        self.pass3: dict[str, Any] | None = None
        self.aare_result: Aare | None = None
        self.ics: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.last_client: dict[str, Any] | None = None
        self.failure: dict[str, Any] | None = None
        self.client_address: bytes | None = None
        self.decoded = 0

    # -- helpers -----------------------------------------------------------------------
    def find(self, pdu: _Pdu | None, severity: str, code: str, text: str) -> None:
        self.findings.append(Finding(severity, code, text, pdu.number if pdu else None))

    @property
    def keys(self) -> Keys:
        k = self.s.keys
        return Keys(ek=k.ek, ak=k.ak, broadcast=k.broadcast, dedicated=self.dedicated_key)

    def _direction(self, logged: LoggedPdu) -> str | None:
        side = tag_sender(logged.apdu[0]) or logged.link_direction
        if side is None and logged.frames and self.client_address is not None:
            side = "client" if logged.frames[0].src == self.client_address else "server"
        if side == "client" and logged.frames:
            self.client_address = logged.frames[0].src
        return side

    @staticmethod
    def _link(logged: LoggedPdu, side: str | None) -> str | None:
        if not logged.frames:
            return None
        f = logged.frames[0]
        seg = f", {len(logged.frames)} segments" if len(logged.frames) > 1 else ""
        src, dest = hdlc_address(f.src), hdlc_address(f.dest)
        if side == "client":
            route = f"client {src} -> server {dest}"
        elif side == "server":
            route = f"server {src} -> client {dest}"
        else:
            route = f"{src} -> {dest}"
        return f"HDLC {frame_name(f.control)}, {route}{seg}, checksums valid"

    def _note_ic(self, pdu: _Pdu, side: str | None, family: str, ic: int) -> None:
        key = (side or "unknown sender", family)
        seen = self.ics.setdefault(key, [])
        if seen and ic <= seen[-1][1]:
            self.find(
                pdu,
                "error",
                "ic_not_increasing",
                f"invocation counter {ic} from the {key[0]} under the {family} key is not above the previous one"
                f" ({seen[-1][1]} in PDU #{seen[-1][0]}): a server rejects repeated or lower counters"
                " (replay protection)",
            )
        seen.append((pdu.number, ic))

    # -- dispatch ------------------------------------------------------------------------
    def run(self, logged: LoggedPdu, number: int) -> None:
        apdu = logged.apdu
        tag = apdu[0]
        side = self._direction(logged)
        pdu = _Pdu(number, logged.line, side, tag, apdu_name(tag), link=self._link(logged, side))
        self.reports.append(pdu)
        try:
            self._dispatch(pdu, apdu)
            self.decoded += 1
        except DecodeError as exc:
            self._malformed(pdu, exc.one_line())
        except (IndexError, ValueError) as exc:  # a lower layer tripped over odd data without naming it
            self._malformed(pdu, f"{pdu.name} could not be read ({type(exc).__name__}: {exc})")
        if pdu.sender == "client":
            self.last_client = {"pdu": number, "tag": tag, "family": key_family(tag), "pass3": self._is_pass3(number)}

    def _malformed(self, pdu: _Pdu, text: str) -> None:
        pdu.summary = pdu.summary or f"{pdu.name}: could not be decoded"
        self.find(pdu, "error", "malformed_pdu", f"PDU #{pdu.number} ({pdu.name}) is malformed: {text}")

    def _is_pass3(self, number: int) -> bool:
        return self.pass3 is not None and self.pass3["pdu"] == number

    def _dispatch(self, pdu: _Pdu, apdu: bytes) -> None:
        tag = apdu[0]
        if tag in (0x60, 0x61, 0x62, 0x63):
            acse = parse_acse(apdu)
            if isinstance(acse, Aarq):
                self._aarq(pdu, acse)
            elif isinstance(acse, Aare):
                self._aare(pdu, acse)
            else:
                pdu.summary = f"{acse.name}: release {'request' if tag == 0x62 else 'response'}"
                if acse.reason_name:
                    pdu.add("reason", acse.reason_name)
                if acse.user_information is not None:
                    self._user_information(pdu, acse.user_information.content)
        elif tag == 0x0E:
            self._service_error(pdu, parse_confirmed_service_error(apdu), ciphered=None)
        elif tag == 0xD8:
            self._exception(pdu, parse_exception_response(apdu), ciphered=None)
        elif tag in GLO_SERVICE_TAGS or tag in DED_SERVICE_TAGS or tag in (0xDB, 0xDC):
            self._ciphered(pdu, parse_ciphered(apdu))
        elif tag == 0xDD:
            gc = parse_general_ciphering(apdu)
            pdu.summary = "general-ciphering: protected with the key its key-info names"
            pdu.add("originator", describe_title(gc.originator_system_title))
            pdu.add("key-info", type(gc.key_info).__name__ if gc.key_info else "absent (key known from context)")
            pdu.add("protection", SecurityControl(gc.security_control).describe())
            self.find(pdu, "info", "general_ciphering", "general-ciphering is not decrypted by han diagnose")
        elif tag == 0xDF:
            gs = parse_general_signing(apdu)
            pdu.summary = f"general-signing of a {apdu_name(gs.content[0]) if gs.content else 'empty'} APDU"
            pdu.add("originator", describe_title(gs.originator_system_title))
            pdu.add("signature", f"{len(gs.signature)} bytes")
        else:
            self._plain(pdu, apdu, ciphered=None)

    # -- association ---------------------------------------------------------------------
    def _aarq(self, pdu: _Pdu, aarq: Aarq) -> None:
        pdu.summary = "AARQ: the client asks for an association"
        self.context = aarq.application_context
        pdu.add("application context", self.context.describe())
        if self.context.ciphered:
            pdu.add("", "ciphered context: APDUs are protected as glo- (global key) or ded- (dedicated key)")
        if aarq.calling_ap_title is not None:
            self.client_st = aarq.calling_ap_title
            pdu.add("client system title", describe_title(self.client_st) + " (calling-AP-title)")
            self._check_title(pdu, self.client_st, "client")
        mech = aarq.mechanism.id if aarq.mechanism else 0
        self.mechanism = mech
        info = hls.mechanism_info(mech)
        pdu.add("mechanism", f"{mech} = {info.name}")
        if mech >= 2:
            pdu.add("", f"f() is computed from {info.uses}")
        if mech == 2:
            self.find(
                pdu,
                "warning",
                "mechanism_high",
                'mechanism 2 (HLS "High") authenticates with the HLS secret only; the encryption and authentication'
                " keys protect the APDUs but are not used for f(). Only HighGMAC (mechanism 5) authenticates with"
                " the keys.",
            )
        elif mech == 5:
            self.find(
                pdu,
                "info",
                "mechanism_gmac",
                "mechanism 5 (HighGMAC): f(StoC) = SC || IC || GMAC(SC || AK || StoC) with the global keys and the"
                " client system title; the meter answers with the same over CtoS and its own title",
            )
        if mech in (5, 6, 7) and aarq.calling_ap_title is None:
            self.find(
                pdu, "error", "missing_title", f"mechanism {mech} needs the client system title (calling-AP-title)"
            )
        if self.context.ciphered and aarq.calling_ap_title is None:
            self.find(
                pdu, "error", "missing_title", "a ciphered context needs the client system title (calling-AP-title)"
            )
        auth = aarq.calling_authentication_value
        if auth is not None:
            if mech == 1:
                pdu.add("password", f"{len(auth.value)} bytes (LLS; travels in clear)")
            else:
                self.ctos = auth.value
                pdu.add("CtoS", f"{len(auth.value)}-byte client challenge")
                if mech >= 2 and not 8 <= len(auth.value) <= 64:
                    self.find(pdu, "warning", "challenge_length", f"CtoS is {len(auth.value)} bytes; 8 to 64 expected")
        if aarq.user_information is not None:
            self._user_information(pdu, aarq.user_information.content)

    def _check_title(self, pdu: _Pdu, st: bytes, who: str) -> None:
        if len(st) != 8:
            self.find(pdu, "error", "bad_title", f"the {who} system title is {len(st)} bytes; 8 expected")
        what = PLACEHOLDER_TITLES.get(st)
        if what:
            self.find(
                pdu,
                "warning",
                "placeholder_system_title",
                f"the {who} system title {_hex(st)} is a placeholder ({what}); give each {who} its own unique system"
                " title, the one the meter is configured to expect",
            )

    def _aare(self, pdu: _Pdu, aare: Aare) -> None:
        self.aare_result = aare
        pdu.summary = f"AARE: association {aare.result_name}"
        pdu.add("application context", aare.application_context.describe())
        pdu.add("result", f"{aare.result} = {aare.result_name}")
        diag = aare.diagnostic
        if diag is not None:
            pdu.add("diagnostic", f"{diag.source_name} {diag.value} = {diag.name}")
        if aare.responding_ap_title is not None:
            self.server_st = aare.responding_ap_title
            pdu.add("server system title", describe_title(self.server_st) + " (responding-AP-title)")
            self._check_title(pdu, self.server_st, "server")
        if not in_canonical_order(aare):
            pdu.add("", "elements are not in the canonical order (read by tag, not by position)")
        if aare.mechanism is not None:
            if self.mechanism is not None and aare.mechanism.id != self.mechanism:
                self.find(
                    pdu,
                    "warning",
                    "mechanism_changed",
                    f"the meter answers with mechanism {aare.mechanism.id}, the client asked for {self.mechanism}",
                )
            pdu.add("mechanism", f"{aare.mechanism.id} = {hls.mechanism_info(aare.mechanism.id).name}")
        if aare.responding_authentication_value is not None:
            self.stoc = aare.responding_authentication_value.value
            pdu.add("StoC", f"{len(self.stoc)}-byte server challenge")
        if aare.accepted and diag is not None and diag.source == 1 and diag.value == 14:
            self.hls_state = "pending"
            pdu.add(
                "",
                "accepted, but authentication is required: only reply_to_HLS_authentication (HLS pass 3) is allowed"
                " until HLS completes",
            )
        elif not aare.accepted:
            self.failure = self.failure or {"kind": "rejected", "pdu": pdu.number, "diagnostic": diag}
            self.find(
                pdu,
                "error",
                "association_rejected",
                f"the meter rejected the association ({aare.result_name}"
                + (f", {diag.source_name}: {diag.name})" if diag else ")"),
            )
        if aare.user_information is not None:
            self._user_information(pdu, aare.user_information.content)

    def _user_information(self, pdu: _Pdu, content: Any) -> None:
        """The initiate PDU of an AARQ/AARE/RLRQ/RLRE, sent by ``pdu.sender``."""
        if isinstance(content, CipheredApdu):
            pdu.add("user-information", f"{apdu_name(content.tag)}")
            plain = self._ciphered_body(pdu, content, pdu.sender)
            if plain is None:
                if content.tag in (0x21, 0x41):
                    self._infer_dedicated(pdu, len(content.body))
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
                self.dedicated_proposed, self.dedicated_length = True, len(content.dedicated_key)
                self.dedicated_how = "read from the decrypted InitiateRequest"
                given = self.s.keys.dedicated
                if given is not None and given != content.dedicated_key:
                    self.find(
                        pdu,
                        "warning",
                        "dedicated_key_differs",
                        "the --dedicated-key given differs from the key the AARQ proposes; the AARQ's key is used",
                    )
                self.dedicated_key = content.dedicated_key
                pdu.add("dedicated key", f"{len(content.dedicated_key)} bytes, proposed by the client (value hidden)")
                if self.context is not None and not self.context.ciphered and pdu.tag == AARQ:
                    self.find(pdu, "error", "dedicated_key_in_clear", "the dedicated key is sent in clear")
                self.find(pdu, "info", "dedicated_key_proposed", self._dedicated_text())
            else:
                self.dedicated_proposed, self.dedicated_length = False, 0
                self.dedicated_how = "read from the decrypted InitiateRequest"
                pdu.add("dedicated key", "none proposed: every protected APDU will be glo-")
        elif isinstance(content, InitiateResponse):
            pdu.add(
                "InitiateResponse",
                f"DLMS version {content.dlms_version}, max PDU {content.max_receive_pdu_size},"
                f" {len(content.conformance_names)} conformance bits",
            )
        elif isinstance(content, ConfirmedServiceError):
            pdu.add("user-information", content.describe())
            self.failure = self.failure or {"kind": "initiate_error", "pdu": pdu.number, "error": content}
            self.find(pdu, "error", "initiate_error", f"the meter refused the InitiateRequest: {content.describe()}")

    def _dedicated_text(self) -> str:
        return (
            f"the client proposed a {self.dedicated_length}-byte dedicated key ({self.dedicated_how}); after HLS"
            " the APDUs of this association are protected with it (ded- tags D0/D1/D3, replies D4/D5/D7)"
        )

    def _infer_dedicated(self, pdu: _Pdu, plain_len: int) -> None:
        key_len = dedicated_key_length(plain_len)
        if key_len is None:
            pdu.add("", f"{plain_len}-byte InitiateRequest inside: its length fits no known layout")
            return
        self.dedicated_proposed, self.dedicated_length = key_len > 0, key_len
        self.dedicated_how = f"inferred from the ciphered InitiateRequest's length, {plain_len} bytes"
        if key_len:
            pdu.add(
                "dedicated key",
                f"{plain_len}-byte InitiateRequest inside => a {key_len}-byte dedicated key is proposed",
            )
            self.find(pdu, "info", "dedicated_key_proposed", self._dedicated_text())
        else:
            pdu.add("dedicated key", f"{plain_len}-byte InitiateRequest inside => no dedicated key: APDUs stay glo-")

    # -- ciphered APDUs ------------------------------------------------------------------
    def _ciphered_body(self, pdu: _Pdu, c: CipheredApdu, side: str | None) -> bytes | None:
        """Describe a ciphered APDU's header, track its IC, and decrypt it when keys allow."""
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
        self._note_ic(pdu, side, family, c.invocation_counter)
        if c.invocation_counter == 0 and (side, family) == ("client", "global"):
            pdu.add("", "counter 0 at association start; some meters reject it (read 0.0.43.1.x.255 first)")
        st = c.system_title or (self.client_st if side == "client" else self.server_st if side == "server" else None)
        key = (
            self.dedicated_key if family == "dedicated" else (self.s.keys.broadcast if sc.broadcast else self.s.keys.ek)
        )
        if key is None:
            if self.s.any_key:
                missing = "dedicated key" if family == "dedicated" else "global encryption key"
                pdu.add("", f"not decrypted: the {missing} is not known")
            return None
        if not st:
            pdu.add("", "not decrypted: the sender's system title is unknown (no AARQ/AARE in the log)")
            return None
        try:
            result = unprotect(c, self.keys, system_title=st, allow_unauthenticated=True, allow_unverified=True)
        except SecurityError as exc:
            self.find(
                pdu, "error", "decrypt_failed", f"PDU #{pdu.number} does not open with the given keys: {exc.message}"
            )
            if family == "dedicated" and self.s.keys.ek:
                self._try_other_key(pdu, c, st)
            return None
        pdu.add("decrypted", f"{len(result.apdu)} bytes, tag {'verified' if result.verified else 'NOT checked'}")
        return result.apdu

    def _try_other_key(self, pdu: _Pdu, c: CipheredApdu, st: bytes) -> None:
        """A ded- APDU that does not open with the dedicated key: does it open with the global one?"""
        # re-tagged as general-glo-ciphering so that unprotect() picks the global key
        probe = CipheredApdu(0xDB, st, c.security_control, c.invocation_counter, c.body, c.auth_tag, 0)
        try:
            unprotect(probe, Keys(ek=self.s.keys.ek, ak=self.s.keys.ak), allow_unauthenticated=True)
        except SecurityError:
            return
        self.find(pdu, "warning", "ded_tag_global_key", "it opens with the global key although its tag says ded-")

    def _ciphered(self, pdu: _Pdu, c: CipheredApdu) -> None:
        family = key_family(c.tag)
        inner_tag = plain_tag(c.tag)
        general = c.tag in (0xDB, 0xDC)
        pdu.summary = f"{pdu.name}: " + (
            "an APDU protected with general ciphering"
            if general
            else f"a {apdu_name(inner_tag)} protected with the {family} key"
        )
        if general and c.system_title and pdu.sender is None:
            pdu.sender = (
                "client" if c.system_title == self.client_st else "server" if c.system_title == self.server_st else None
            )
        plain = self._ciphered_body(pdu, c, pdu.sender)
        if plain:
            inner_tag = plain[0]
        if pdu.sender == "client":
            if self.hls_state == "pending" and (inner_tag == 0xC3 or (general and plain is None)):
                self._pass3(pdu, c, plain)
            else:
                self._key_scope(pdu, family, "this request")
        if plain is not None:
            self._plain(pdu, plain, ciphered=c)
        elif inner_tag == 0x0E:
            self._failure_reply(pdu, "service_error", f"a {pdu.name} (its content needs the keys to be read)")
        elif pdu.sender == "server" and self.hls_state == "pass 3 sent" and inner_tag in {0xC7, 0xDB, 0xDC}:
            pdu.add("", "the reply to HLS pass 3 (f(CtoS) not checked without keys)")
            if inner_tag == 0xC7:
                self.hls_state = "completed (not verified)"

    def _key_scope(self, pdu: _Pdu, family: str | None, what: str) -> None:
        """Is this key the right one at this point of the association?"""
        if family == "dedicated" and self.dedicated_proposed is False:
            self.find(
                pdu, "error", "ded_without_key", f"{what} is a ded- APDU although the AARQ proposed no dedicated key"
            )
        if family == "dedicated" and self.hls_state in ("pending", "pass 3 sent"):
            self.find(
                pdu,
                "error",
                "ded_before_hls",
                f"{what} is protected with the dedicated key (a ded- APDU) before HLS has completed; meters and the"
                " DLMS conformance test expect the HLS passes under the global key (glo-, e.g. CB"
                " glo-action-request) and switch to ded- only once the association is authenticated",
            )
        elif family == "global" and self.dedicated_proposed and self.hls_state.startswith("completed"):
            self.find(
                pdu,
                "info",
                "glo_with_dedicated",
                f"{what} uses the global key although a dedicated key was agreed; meters that expect ded- APDUs"
                " after HLS may refuse it",
            )

    def _pass3(self, pdu: _Pdu, c: CipheredApdu, plain: bytes | None) -> None:
        self.hls_state = "pass 3 sent"
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
        self.pass3 = {
            "pdu": pdu.number,
            "tag": f"{c.tag:02X}",
            "apdu": apdu_name(c.tag),
            "key": family,
            "invocation_counter": c.invocation_counter,
            "f_length": f_len,
        }
        pdu.summary = f"HLS pass 3: reply_to_HLS_authentication(f(StoC)) as {apdu_name(c.tag)} ({c.tag:02X})"
        pdu.add("HLS", f"pass 3, sent under the {family} key" + (" (tag D3)" if c.tag == 0xD3 else ""))
        self._key_scope(pdu, family, "HLS pass 3")
        if c.control.suite in (1, 2):
            self.find(
                pdu,
                "info",
                "pass3_not_signed",
                f"security suite {c.control.suite}: some meters (e.g. Sagemcom T-210D) answer service-not-allowed"
                " unless HLS pass 3 is wrapped in general-signing (DF) with the client's signing key",
            )
        self._check_f_length(pdu, f_len, plain is None)
        if f_value is not None:
            self._verify_pass3(pdu, f_value, c)

    def _check_f_length(self, pdu: _Pdu, f_len: int | None, inferred: bool) -> None:
        if f_len is None or self.mechanism is None:
            return
        expected = hls.expected_response_length(self.mechanism, len(self.stoc) if self.stoc else 16)
        how = f"{f_len + PASS3_OVERHEAD}-byte action-request => " if inferred else ""
        pdu.add("f(StoC)", f"{how}{f_len} bytes")
        if expected is None:
            return
        if f_len == expected:
            pdu.add("", f"{f_len} bytes is what mechanism {self.mechanism} gives")
            return
        guess = [m for m in (2, 3, 4, 5, 6) if hls.expected_response_length(m, len(self.stoc or b"x" * 16)) == f_len]
        self.find(
            pdu,
            "error",
            "f_length_mismatch",
            f"f(StoC) is {f_len} bytes but mechanism {self.mechanism} gives {expected}"
            + (f"; {f_len} bytes fits mechanism {', '.join(map(str, guess))}" if guess else "")
            + ": the client computes f() for another mechanism than it negotiated",
        )
        self.failure = self.failure or {"kind": "f_length", "pdu": pdu.number}

    def _expected_f(self, challenge: bytes, own_st: bytes | None, peer_st: bytes | None, own_challenge: bytes | None):
        secret = self.s.hls_secret
        m = self.mechanism
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
        self, pdu: _Pdu, f: bytes, challenge: bytes | None, own_st, peer_st, own_challenge, who: str
    ) -> bool | None:
        if challenge is None:
            return None
        m = self.mechanism
        k = self.s.keys
        if m == 5:
            if not (k.ek and k.ak and own_st):
                pdu.add("", f"{who} not verified: mechanism 5 needs --key, --auth-key and the system titles")
                return None
            ok = hls.check_gmac_response(f, ek=k.ek, ak=k.ak, system_title=own_st, challenge=challenge)
        else:
            try:
                expected = self._expected_f(challenge, own_st, peer_st, own_challenge)
            except SecurityError as exc:
                pdu.add("", f"{who} not verified: {exc.message}")
                return None
            if expected is None:
                pdu.add("", f"{who} not verified: give --hls-secret")
                return None
            ok = expected == f
        pdu.add(who, "verified: matches" if ok else "does NOT match the given secret/keys")
        return ok

    def _verify_pass3(self, pdu: _Pdu, f: bytes, c: CipheredApdu) -> None:
        ok = self._verify_f(pdu, f, self.stoc, self.client_st, self.server_st, self.ctos, "f(StoC)")
        if ok is False:
            self.find(
                pdu,
                "error",
                "f_mismatch",
                "the client's f(StoC) does not match the one computed from the given "
                + ("keys and client system title" if self.mechanism == 5 else "HLS secret")
                + ": the client uses another secret or key than the one given",
            )
        if self.mechanism == 5 and len(f) == 17 and int.from_bytes(f[1:5], "big") == c.invocation_counter:
            self.find(
                pdu,
                "error",
                "gmac_iv_reuse",
                "the GMAC inside f(StoC) uses the same invocation counter as the APDU carrying it: same key,"
                " same system title, same IV",
            )

    # -- plain content -------------------------------------------------------------------
    def _plain(self, pdu: _Pdu, apdu: bytes, ciphered: CipheredApdu | None) -> None:
        tag = apdu[0]
        if tag == 0x0E:
            self._service_error(pdu, parse_confirmed_service_error(apdu), ciphered)
            return
        if tag == 0xD8:
            self._exception(pdu, parse_exception_response(apdu), ciphered)
            return
        if tag == 0xC3:
            action = hls.parse_action_request(apdu)
            text = (
                f"action-request: method {action.method} of class {action.class_id},"
                f" {'.'.join(map(str, action.instance))}"
            )
            if action.is_reply_to_hls:
                text += " = reply_to_HLS_authentication"
            pdu.add("content", text)
            if ciphered is None:
                pdu.summary = pdu.summary or text
                if pdu.sender == "client" and self.hls_state == "pending" and action.is_reply_to_hls:
                    self.hls_state = "pass 3 sent"
                    f = action.hls_response
                    self.pass3 = {
                        "pdu": pdu.number,
                        "tag": "C3",
                        "apdu": "action-request",
                        "key": None,
                        "invocation_counter": None,
                        "f_length": len(f) if f else None,
                    }
                    pdu.summary = "HLS pass 3: reply_to_HLS_authentication(f(StoC)), unprotected"
                    if self.context is not None and self.context.ciphered:
                        self.find(
                            pdu,
                            "warning",
                            "plain_in_ciphered_context",
                            "HLS pass 3 is sent unprotected in a ciphered context; the meter may refuse it",
                        )
                    self._check_f_length(pdu, len(f) if f else None, False)
                    if f:
                        self._verify_f(pdu, f, self.stoc, self.client_st, self.server_st, self.ctos, "f(StoC)")
            return
        if tag == 0xC7:
            self._action_response(pdu, hls.parse_action_response(apdu), ciphered)
            return
        if tag in (0x01, 0x08):
            self._user_information(pdu, parse_initiate(apdu))
            return
        if tag not in PLAIN_NAMES:
            raise ApduError(
                f"tag 0x{tag:02X} is not an xDLMS or ACSE APDU (not DLMS data, or the link layer was not removed)"
            )
        pdu.summary = pdu.summary or f"{apdu_name(tag)} ({len(apdu)} bytes)"
        if ciphered is not None:
            pdu.add("content", f"{apdu_name(tag)}, {len(apdu)} bytes")
        elif self.context is not None and self.context.ciphered and tag in (0xC0, 0xC1, 0xC3):
            self.find(
                pdu,
                "warning",
                "plain_in_ciphered_context",
                f"an unprotected {apdu_name(tag)} in a ciphered context; a meter that requires protection answers"
                " with a deciphering error or not at all",
            )

    def _action_response(self, pdu: _Pdu, resp: hls.ActionResponse, ciphered: CipheredApdu | None) -> None:
        pdu.add("content", f"action-response: {resp.result_name}")
        if ciphered is None:
            pdu.summary = f"action-response: {resp.result_name}"
        if self.hls_state != "pass 3 sent" or pdu.sender != "server":
            return
        pdu.summary = f"HLS pass 4: the meter answers reply_to_HLS_authentication: {resp.result_name}"
        if resp.result != 0:
            self.hls_state = "failed"
            self.failure = self.failure or {"kind": "pass4_result", "pdu": pdu.number, "result": resp.result_name}
            self.find(
                pdu,
                "error",
                "hls_rejected",
                f"the meter rejected f(StoC) ({resp.result_name}): wrong HLS secret (mechanisms 2, 3, 4, 6) or wrong"
                " keys, client system title or invocation counter inside f() (mechanism 5)",
            )
            return
        f = resp.hls_response
        self.hls_state = "completed"
        if f is not None:
            pdu.add("f(CtoS)", f"{len(f)} bytes")
            ok = self._verify_f(pdu, f, self.ctos, self.server_st, self.client_st, self.stoc, "f(CtoS)")
            if ok is False:
                self.find(
                    pdu, "error", "meter_f_mismatch", "the meter's f(CtoS) does not verify: do not trust this meter"
                )
                self.hls_state = "failed"

    def _service_error(self, pdu: _Pdu, err: ConfirmedServiceError, ciphered: CipheredApdu | None) -> None:
        pdu.summary = err.describe()
        pdu.add("error", f"{err.service_name} / {err.error_type_name} / {err.value_name}")
        if ciphered is None and self.context is not None and self.context.ciphered:
            pdu.add("", "sent unprotected: the meter could not decipher the request, so it cannot protect the answer")
        self._failure_reply(pdu, "deciphering" if err.deciphering_error else "service_error", err.describe())

    def _exception(self, pdu: _Pdu, exc: ExceptionResponse, ciphered: CipheredApdu | None) -> None:
        pdu.summary = exc.describe()
        pdu.add("error", f"{exc.state_error_name} / {exc.service_error_name}")
        if exc.invocation_counter is not None:
            pdu.add("expected counter", f"{exc.invocation_counter} or higher")
            self._failure_reply(pdu, "invocation_counter", exc.describe(), expected_ic=exc.invocation_counter)
        else:
            self._failure_reply(pdu, "deciphering" if exc.deciphering_error else "exception", exc.describe())

    def _failure_reply(self, pdu: _Pdu, kind: str, text: str, **extra: Any) -> None:
        before = self.last_client
        if before is not None:
            pdu.add("in reply to", f"PDU #{before['pdu']} ({apdu_name(before['tag'])})")
        if self.hls_state == "pass 3 sent":
            self.hls_state = "failed"
        self.failure = self.failure or {"kind": kind, "pdu": pdu.number, "before": before, "text": text, **extra}
        code = {"deciphering": "deciphering_error", "invocation_counter": "invocation_counter_error"}.get(kind, kind)
        self.find(pdu, "error", code, f"the meter answers {text}")

    # -- the end -------------------------------------------------------------------------
    def conclude(self) -> tuple[str, list[str]]:
        f = self.failure
        mech2_note = (
            'Mechanism 2 ("High") authenticates with the HLS secret only. If you meant the encryption and'
            " authentication keys to authenticate the client, use HighGMAC (mechanism 5), if the meter supports it."
        )
        if f is None:
            return self._no_failure()
        kind = f["kind"]
        before = f.get("before") or {}
        if kind == "deciphering":
            if before.get("family") == "dedicated" and (before.get("pass3") or self.hls_state in ("failed", "pending")):
                what = "HLS pass 3" if before.get("pass3") else f"PDU #{before['pdu']}"
                cause = (
                    f"The meter could not decipher {what}: the client protected it with the dedicated key"
                    f" ({apdu_name(before['tag'])}, {before['tag']:02X}) before HLS had completed. The association was"
                    " accepted and the glo-initiate-request deciphered, so the global keys and system titles are"
                    " right; this meter expects the HLS passes under the global key and the dedicated key only"
                    " after authentication."
                )
                glo = ciphered_tag(plain_tag(before["tag"]), dedicated=False)
                fixes = [
                    f"Send HLS pass 3 as {apdu_name(glo)} ({glo:02X})"
                    " under the global unicast key (GUEK), as the DLMS CTT and current Gurux versions do; switch to"
                    " ded- APDUs only after the meter's f(CtoS) has been verified.",
                    "Or do not propose a dedicated key in the AARQ (clear it in the client): every APDU then"
                    " stays glo-.",
                ]
                if self.mechanism == 2:
                    fixes.append(mech2_note)
                return cause, fixes
            if before.get("family") is None and self.context is not None and self.context.ciphered:
                return (
                    f"The meter could not decipher PDU #{before.get('pdu')}: it was sent unprotected in a ciphered"
                    " context.",
                    ["Protect every request after the AARE (glo- tags, or ded- once HLS has completed)."],
                )
            return (
                "The meter could not decipher the request under the global key: the encryption or authentication"
                " key, the client system title, or the invocation counter differs from what the meter expects.",
                [
                    "Check the global encryption key (GUEK) and authentication key (AK) configured in the client.",
                    "Use the client system title the meter expects as calling-AP-title.",
                    "Read the meter's invocation counter (0.0.43.1.x.255) with the public client and start above it.",
                ],
            )
        if kind == "invocation_counter":
            return (
                f"The meter refuses the client's invocation counter; it expects {f['expected_ic']} or higher"
                " (replay protection).",
                [f"Start the client's invocation counter at {f['expected_ic']} or above (read 0.0.43.1.x.255 first)."],
            )
        if kind == "rejected":
            return self._rejection(f.get("diagnostic"))
        if kind == "initiate_error":
            err = f["error"]
            return (
                f"The meter refused the InitiateRequest ({err.value_name}).",
                [
                    "Match the DLMS version (6), the conformance block and the maximum PDU size to what the meter"
                    " supports."
                ],
            )
        if kind == "f_length":
            return (
                "The client computed f(StoC) for another mechanism than the one negotiated in the AARQ.",
                ["Use the same mechanism for the AARQ and for the HLS computation (2 = High, 5 = HighGMAC)."]
                + ([mech2_note] if self.mechanism == 2 else []),
            )
        if kind == "pass4_result":
            fixes = ["Check the HLS secret (mechanisms 2, 3, 4, 6) or the keys and client system title (mechanism 5)."]
            if self.mechanism == 2:
                fixes.append(mech2_note)
            return f"The meter rejected the client's f(StoC) ({f['result']}).", fixes
        text = f.get("text", "an error")
        if before.get("pass3"):
            fixes = ["Check the HLS secret (mechanisms 2, 3, 4, 6) or the keys and client system title (mechanism 5)."]
            return f"The meter refused HLS pass 3 (PDU #{before['pdu']}) with {text}.", fixes + (
                [mech2_note] if self.mechanism == 2 else []
            )
        what = f"PDU #{before['pdu']} ({apdu_name(before['tag'])})" if before else "a request"
        return f"The meter answered {what} with {text}.", ["See the explanation of that PDU above."]

    def _rejection(self, diag) -> tuple[str, list[str]]:
        value = diag.value if diag is not None and diag.source == 1 else None
        table = {
            13: (
                "The meter rejected the authentication (authentication-failure).",
                ["With LLS, check the password; with HLS, the secret or keys; also check the client address (SAP)."],
            ),
            11: (
                "The meter does not know the requested authentication mechanism.",
                ["Use a mechanism this client address supports (see the meter's association objects)."],
            ),
            12: (
                "The meter requires authentication for this client address.",
                ["Choose an authentication mechanism (LLS or HLS) for this client."],
            ),
            2: (
                "The meter does not support the requested application context.",
                ["Switch between ciphered (3) and unciphered (1) logical-name context to what the meter expects."],
            ),
        }
        return table.get(
            value,
            (
                "The meter rejected the association"
                + (f" ({diag.source_name}: {diag.name})." if diag is not None else "."),
                [
                    "Check the client address (SAP), the application context, the mechanism and, in a ciphered"
                    " context, the keys and client system title used for the glo-initiate-request."
                ],
            ),
        )

    def _no_failure(self) -> tuple[str, list[str]]:
        errors = [f for f in self.findings if f.severity == "error"]
        if errors:
            fixes = {
                "decrypt_failed": "Check the keys given (--key, --auth-key, --dedicated-key) and that the log's"
                " system titles are the ones the peers use.",
                "f_mismatch": "Check the HLS secret (mechanisms 2, 3, 4, 6) or the keys (mechanism 5) the client uses.",
                "meter_f_mismatch": "The meter's f(CtoS) does not verify: check the secret or keys given, else do not"
                " trust the meter.",
                "malformed_pdu": "Check that the log holds whole frames; a malformed PDU cannot be explained.",
                "ic_not_increasing": "Increase the invocation counter with every protected APDU.",
            }
            chosen = list(dict.fromkeys(fixes[f.code] for f in errors if f.code in fixes))
            return f"The meter reported no error, but the log shows problems: {errors[0].text}.", chosen
        if self.hls_state in ("completed", "completed (not verified)"):
            return "No error in the log: the association was established and HLS completed.", []
        if self.hls_state == "pending":
            return "No error in the log, but HLS pass 3 never came: the association is not usable yet.", [
                "Send reply_to_HLS_authentication (pass 3) after the AARE."
            ]
        if self.hls_state == "pass 3 sent":
            return "No error in the log, but the meter's answer to HLS pass 3 is missing.", []
        if self.aare_result is not None and self.aare_result.accepted:
            return "No error in the log: the association was accepted.", []
        return "No error PDU in the log.", []

    def association(self) -> dict:
        ctx = self.context
        mech = self.mechanism
        return {
            "application_context": None
            if ctx is None
            else {"oid": ctx.oid, "id": ctx.id, "ciphered": ctx.ciphered, "text": ctx.describe()},
            "mechanism": None
            if mech is None
            else {"id": mech, "name": hls.mechanism_info(mech).name, "uses": hls.mechanism_info(mech).uses},
            "client_system_title": self._title_dict(self.client_st),
            "server_system_title": self._title_dict(self.server_st),
            "dedicated_key": {
                "proposed": self.dedicated_proposed,
                "length": self.dedicated_length,
                "how": self.dedicated_how or None,
            },
            "hls": {"state": self.hls_state, "pass3": self.pass3},
            "invocation_counters": [
                {"sender": side, "key": family, "values": [{"pdu": n, "value": ic} for n, ic in values]}
                for (side, family), values in self.ics.items()
            ],
        }

    @staticmethod
    def _title_dict(st: bytes | None) -> dict | None:
        if st is None:
            return None
        return {
            "hex": _hex(st),
            "text": _printable(st),
            "manufacturer": manufacturer(st),
            "placeholder": st in PLACEHOLDER_TITLES,
        }


def diagnose(text: str, secrets: Secrets | None = None) -> Diagnosis:
    """Analyse a log; raises :class:`NothingToDiagnose` when it holds no decodable PDU."""
    secrets = secrets or Secrets()
    scan = scan_log(text)
    if not scan.pdus:
        problems = [e.text for e in scan.events if e.problem]
        if problems:
            raise NothingToDiagnose(f"no PDU could be read from the log: {problems[0]}")
        raise NothingToDiagnose(
            "no hex frames found in the log (expected HDLC frames starting with 7E, or APDUs such as AARQ 60 ...,"
            " written as hex bytes)"
            if not scan.hex_lines
            else "the hex data in the log holds no PDU"
        )
    analyser = _Analyser(secrets)
    for number, logged in enumerate(scan.pdus, 1):
        analyser.run(logged, number)
    if analyser.decoded == 0:
        first = analyser.findings[0].text if analyser.findings else "unknown data"
        raise NothingToDiagnose(f"none of the {len(scan.pdus)} PDU(s) in the log could be decoded; {first}")
    for event in scan.events:
        if event.problem:
            analyser.findings.append(Finding("warning", "framing", f"line {event.line}: {event.text}"))
    cause, fixes = analyser.conclude()
    reports = tuple(
        PduReport(p.number, p.line, p.sender, p.tag, p.name, p.summary, tuple(p.details), p.link)
        for p in analyser.reports
    )
    return Diagnosis(
        reports, scan.events, analyser.association(), tuple(analyser.findings), cause, tuple(fixes), secrets.any_key
    )
