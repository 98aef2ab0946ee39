"""The walk through a log: each PDU in order is read, explained and fed to the association's state machine.

:class:`Walk` holds what the walk shares (the secrets, the association, the
findings and the reports); the explanations of each kind of PDU live in
:mod:`.acse`, :mod:`.protection` and :mod:`.authentication`, and the end in
:mod:`.conclusions`.
"""

from __future__ import annotations

from typing import Any

from decoders.association import hls
from decoders.xdlms.tags import apdu_name, key_family
from decoders.association.acse import Aare, Aarq, InitiateRequest, InitiateResponse, Release
from decoders.xdlms.error_pdus import ConfirmedServiceError, ExceptionResponse
from decoders.errors import DecodeError
from decoders.ciphering.general_ciphering import GeneralCiphering, GeneralSigning
from decoders.ciphering.control import SecurityControl
from decoders.ciphering.security import CipheredApdu, Keys

from ..logscan import LoggedPdu, scan_log
from . import acse, authentication, protection
from .conclusions import conclude
from .machine import Association, Event
from .reading import Directions, OtherPlain, describe_title, link_text, read_apdu, read_plain
from .records import (
    REPLY_KIND,
    ClientRequest,
    Diagnosis,
    Failure,
    FailureKind,
    Finding,
    Kind,
    NothingToDiagnose,
    PduDraft,
    Secrets,
)


class Walk:
    def __init__(self, secrets: Secrets) -> None:
        self.s = secrets
        self.a = Association(client_st=secrets.client_system_title, server_st=secrets.server_system_title)
        self.dedicated_key = secrets.keys.dedicated  #: given, or read from the decrypted AARQ
        self.findings: list[Finding] = []
        self.reports: list[PduDraft] = []
        self.directions = Directions()
        self.decoded = 0

    def find(self, pdu: PduDraft | None, kind: Kind, text: str) -> None:
        self.findings.append(Finding(kind, text, pdu.number if pdu else None))

    @property
    def keys(self) -> Keys:
        k = self.s.keys
        return Keys(ek=k.ek, ak=k.ak, broadcast=k.broadcast, dedicated=self.dedicated_key)

    # -- one PDU ---------------------------------------------------------------------------
    def run(self, logged: LoggedPdu, number: int) -> None:
        apdu = logged.apdu
        tag = apdu[0]
        side = self.directions.sender(logged)
        pdu = PduDraft(number, logged.line, side, tag, apdu_name(tag), link=link_text(logged, side))
        self.reports.append(pdu)
        try:
            self._explain(pdu, read_apdu(apdu))
            self.decoded += 1
        except DecodeError as exc:
            self._malformed(pdu, exc.one_line())
        except (IndexError, ValueError) as exc:  # a lower layer tripped over odd data without naming it
            self._malformed(pdu, f"{pdu.name} could not be read ({type(exc).__name__}: {exc})")
        if pdu.sender == "client":
            p3 = self.a.pass3
            self.a.last_client = ClientRequest(number, tag, key_family(tag), p3 is not None and p3.pdu == number)

    def _malformed(self, pdu: PduDraft, text: str) -> None:
        pdu.summary = pdu.summary or f"{pdu.name}: could not be decoded"
        self.find(pdu, Kind.MALFORMED_PDU, f"PDU #{pdu.number} ({pdu.name}) is malformed: {text}")

    def _explain(self, pdu: PduDraft, read: object) -> None:
        if isinstance(read, Aarq):
            acse.aarq(self, pdu, read)
        elif isinstance(read, Aare):
            acse.aare(self, pdu, read)
        elif isinstance(read, CipheredApdu):
            protection.ciphered(self, pdu, read)
        elif isinstance(read, GeneralCiphering):
            pdu.summary = "general-ciphering: protected with the key its key-info names"
            pdu.add("originator", describe_title(read.originator_system_title))
            pdu.add("key-info", type(read.key_info).__name__ if read.key_info else "absent (key known from context)")
            pdu.add("protection", SecurityControl(read.security_control).describe())
            self.find(pdu, Kind.GENERAL_CIPHERING, "general-ciphering is not decrypted by han diagnose")
        elif isinstance(read, GeneralSigning):
            content = read.content
            pdu.summary = f"general-signing of a {apdu_name(content[0]) if content else 'empty'} APDU"
            pdu.add("originator", describe_title(read.originator_system_title))
            pdu.add("signature", f"{len(read.signature)} bytes")
        elif isinstance(read, Release):
            acse.release(self, pdu, read)
        else:
            self.plain(pdu, read, ciphered=None)

    # -- plain content (sent so, or decrypted) ----------------------------------------------
    def plain_bytes(self, pdu: PduDraft, apdu: bytes, ciphered: CipheredApdu) -> None:
        self.plain(pdu, read_plain(apdu), ciphered)

    def plain(self, pdu: PduDraft, read: object, ciphered: CipheredApdu | None) -> None:
        if isinstance(read, ConfirmedServiceError):
            self._service_error(pdu, read, ciphered)
        elif isinstance(read, ExceptionResponse):
            self._exception(pdu, read, ciphered)
        elif isinstance(read, hls.ActionRequest):
            authentication.action_request(self, pdu, read, ciphered)
        elif isinstance(read, hls.ActionResponse):
            authentication.action_response(self, pdu, read, ciphered)
        elif isinstance(read, InitiateRequest | InitiateResponse):
            acse.user_information(self, pdu, read)
        elif isinstance(read, OtherPlain):
            self._other(pdu, read, ciphered)

    def _other(self, pdu: PduDraft, read: OtherPlain, ciphered: CipheredApdu | None) -> None:
        tag, name = read.tag, apdu_name(read.tag)
        pdu.summary = pdu.summary or f"{name} ({read.length} bytes)"
        if ciphered is not None:
            pdu.add("content", f"{name}, {read.length} bytes")
        elif self.a.ciphered_context and tag in (0xC0, 0xC1, 0xC3):
            self.find(
                pdu,
                Kind.PLAIN_IN_CIPHERED_CONTEXT,
                f"an unprotected {name} in a ciphered context; a meter that requires protection answers"
                " with a deciphering error or not at all",
            )

    # -- the meter's error replies ----------------------------------------------------------
    def _service_error(self, pdu: PduDraft, err: ConfirmedServiceError, ciphered: CipheredApdu | None) -> None:
        pdu.summary = err.describe()
        pdu.add("error", f"{err.service_name} / {err.error_type_name} / {err.value_name}")
        if ciphered is None and self.a.ciphered_context:
            pdu.add("", "sent unprotected: the meter could not decipher the request, so it cannot protect the answer")
        kind = FailureKind.DECIPHERING if err.deciphering_error else FailureKind.SERVICE_ERROR
        self.failure_reply(pdu, kind, err.describe())

    def _exception(self, pdu: PduDraft, exc: ExceptionResponse, ciphered: CipheredApdu | None) -> None:
        pdu.summary = exc.describe()
        pdu.add("error", f"{exc.state_error_name} / {exc.service_error_name}")
        if exc.invocation_counter is not None:
            pdu.add("expected counter", f"{exc.invocation_counter} or higher")
            self.failure_reply(pdu, FailureKind.INVOCATION_COUNTER, exc.describe(), expected_ic=exc.invocation_counter)
        else:
            kind = FailureKind.DECIPHERING if exc.deciphering_error else FailureKind.EXCEPTION
            self.failure_reply(pdu, kind, exc.describe())

    def failure_reply(self, pdu: PduDraft, kind: FailureKind, text: str, **extra: Any) -> None:
        before = self.a.last_client
        if before is not None:
            pdu.add("in reply to", f"PDU #{before.pdu} ({apdu_name(before.tag)})")
        self.a.fire(Event.ERROR_REPLY)
        self.a.fail(Failure(kind, pdu.number, before=before, text=text, **extra))
        self.find(pdu, REPLY_KIND[kind], f"the meter answers {text}")


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
    walk = Walk(secrets)
    for number, logged in enumerate(scan.pdus, 1):
        walk.run(logged, number)
    if walk.decoded == 0:
        first = walk.findings[0].text if walk.findings else "unknown data"
        raise NothingToDiagnose(f"none of the {len(scan.pdus)} PDU(s) in the log could be decoded; {first}")
    for event in scan.events:
        if event.problem:
            walk.findings.append(Finding(Kind.FRAMING, f"line {event.line}: {event.text}"))
    cause, fixes = conclude(walk.a, walk.findings)
    return Diagnosis(
        tuple(p.done() for p in walk.reports),
        scan.events,
        walk.a.to_dict(),
        tuple(walk.findings),
        cause,
        tuple(fixes),
        secrets.any_key,
    )
