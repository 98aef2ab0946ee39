"""The typed records of a diagnosis: what the user gave, what was found, what comes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum

from decoders.association.acse import Diagnostic
from decoders.xdlms.error_pdus import ConfirmedServiceError
from decoders.errors import DecodeError
from decoders.ciphering.security import Keys

from ..logscan import LinkEvent


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


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Kind(Enum):
    """What a finding is about: a stable code for tools (its value) and how serious it is."""

    # reading
    MALFORMED_PDU = ("malformed_pdu", Severity.ERROR)
    FRAMING = ("framing", Severity.WARNING)
    GENERAL_CIPHERING = ("general_ciphering", Severity.INFO)
    # the AARQ and AARE
    MECHANISM_HIGH = ("mechanism_high", Severity.WARNING)
    MECHANISM_GMAC = ("mechanism_gmac", Severity.INFO)
    UNKNOWN_MECHANISM = ("unknown_mechanism", Severity.ERROR)
    MISSING_TITLE = ("missing_title", Severity.ERROR)
    CHALLENGE_LENGTH = ("challenge_length", Severity.WARNING)
    BAD_TITLE = ("bad_title", Severity.ERROR)
    PLACEHOLDER_SYSTEM_TITLE = ("placeholder_system_title", Severity.WARNING)
    MECHANISM_CHANGED = ("mechanism_changed", Severity.WARNING)
    ASSOCIATION_REJECTED = ("association_rejected", Severity.ERROR)
    INITIATE_ERROR = ("initiate_error", Severity.ERROR)
    # the dedicated key
    DEDICATED_KEY_DIFFERS = ("dedicated_key_differs", Severity.WARNING)
    DEDICATED_KEY_IN_CLEAR = ("dedicated_key_in_clear", Severity.ERROR)
    DEDICATED_KEY_PROPOSED = ("dedicated_key_proposed", Severity.INFO)
    # protection
    IC_NOT_INCREASING = ("ic_not_increasing", Severity.ERROR)
    DECRYPT_FAILED = ("decrypt_failed", Severity.ERROR)
    DED_TAG_GLOBAL_KEY = ("ded_tag_global_key", Severity.WARNING)
    DED_WITHOUT_KEY = ("ded_without_key", Severity.ERROR)
    DED_BEFORE_HLS = ("ded_before_hls", Severity.ERROR)
    GLO_WITH_DEDICATED = ("glo_with_dedicated", Severity.INFO)
    PLAIN_IN_CIPHERED_CONTEXT = ("plain_in_ciphered_context", Severity.WARNING)
    # HLS
    PASS3_NOT_SIGNED = ("pass3_not_signed", Severity.INFO)
    F_LENGTH_MISMATCH = ("f_length_mismatch", Severity.ERROR)
    F_MISMATCH = ("f_mismatch", Severity.ERROR)
    GMAC_IV_REUSE = ("gmac_iv_reuse", Severity.ERROR)
    HLS_REJECTED = ("hls_rejected", Severity.ERROR)
    METER_F_MISMATCH = ("meter_f_mismatch", Severity.ERROR)
    # the meter's error replies
    DECIPHERING_ERROR = ("deciphering_error", Severity.ERROR)
    INVOCATION_COUNTER_ERROR = ("invocation_counter_error", Severity.ERROR)
    SERVICE_ERROR = ("service_error", Severity.ERROR)
    EXCEPTION = ("exception", Severity.ERROR)

    def __init__(self, code: str, severity: Severity) -> None:
        self.code = code
        self.severity = severity


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    text: str
    pdu: int | None = None  #: number of the PDU it is about

    @property
    def severity(self) -> Severity:
        return self.kind.severity

    @property
    def code(self) -> str:
        """Stable id for tools, e.g. ``ded_before_hls``."""
        return self.kind.code

    def to_dict(self) -> dict:
        return {"severity": self.severity.value, "code": self.code, "text": self.text, "pdu": self.pdu}


class FailureKind(Enum):
    """Why the association failed, as the meter (or the log) says; the first failure is the one explained."""

    DECIPHERING = "deciphering"
    INVOCATION_COUNTER = "invocation_counter"
    SERVICE_ERROR = "service_error"
    EXCEPTION = "exception"
    REJECTED = "rejected"
    INITIATE_ERROR = "initiate_error"
    F_LENGTH = "f_length"
    PASS4_RESULT = "pass4_result"


#: the finding an error reply of each kind gives
REPLY_KIND = {
    FailureKind.DECIPHERING: Kind.DECIPHERING_ERROR,
    FailureKind.INVOCATION_COUNTER: Kind.INVOCATION_COUNTER_ERROR,
    FailureKind.SERVICE_ERROR: Kind.SERVICE_ERROR,
    FailureKind.EXCEPTION: Kind.EXCEPTION,
}


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """The client's last PDU: what a meter's error reply answers."""

    pdu: int
    tag: int
    family: str | None  #: "global", "dedicated", or None when unprotected
    pass3: bool  #: it was HLS pass 3


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    pdu: int
    before: ClientRequest | None = None  #: the request an error reply answers
    text: str | None = None  #: the error reply, described
    expected_ic: int | None = None  #: the counter an exception-response asks for
    diagnostic: Diagnostic | None = None  #: of a rejecting AARE
    error: ConfirmedServiceError | None = None  #: of a refused InitiateRequest
    result: str | None = None  #: of a negative HLS pass 4


@dataclass(frozen=True, slots=True)
class Pass3:
    """HLS pass 3 as seen: reply_to_HLS_authentication(f(StoC)) from the client."""

    pdu: int
    tag: str
    apdu: str
    key: str | None  #: "global", "dedicated", or None when unprotected
    invocation_counter: int | None
    f_length: int | None

    def to_dict(self) -> dict:
        return {
            "pdu": self.pdu,
            "tag": self.tag,
            "apdu": self.apdu,
            "key": self.key,
            "invocation_counter": self.invocation_counter,
            "f_length": self.f_length,
        }


@dataclass(frozen=True, slots=True)
class DedicatedKey:
    """What is known of the dedicated key the client proposed (never its value)."""

    proposed: bool | None = None  #: None: not known
    length: int | None = None
    how: str = ""

    def to_dict(self) -> dict:
        return {"proposed": self.proposed, "length": self.length, "how": self.how or None}


@dataclass
class PduDraft:
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

    def done(self) -> PduReport:
        return PduReport(
            self.number, self.line, self.sender, self.tag, self.name, self.summary, tuple(self.details), self.link
        )


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
