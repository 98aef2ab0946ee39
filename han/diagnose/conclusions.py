"""The end of a diagnosis: the likely cause and the fix, from a table of rules.

Each :class:`Rule` has a predicate over the :class:`Evidence` (the first
failure, the client request it answers, the association's state, the error
findings); the first rule that applies gives the conclusion.  Failures come
first (the meter said what went wrong), then problems the log shows without
an error from the meter, then how far the association got.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from decoders.xdlms.tags import apdu_name, ciphered_tag, plain_tag

from .machine import Association, State
from .records import ClientRequest, Failure, FailureKind, Finding, Kind, Severity


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the rules look at."""

    failure: Failure | None
    before: ClientRequest | None  #: the client request the failure answers
    state: State
    mechanism: int | None
    ciphered_context: bool
    accepted: bool | None
    errors: tuple[Finding, ...]

    @property
    def kind(self) -> FailureKind | None:
        return None if self.failure is None else self.failure.kind

    @property
    def family(self) -> str | None:
        return None if self.before is None else self.before.family

    @property
    def after_pass3(self) -> bool:
        return self.before is not None and self.before.pass3


Text = str | Callable[[Evidence], str]
Fixes = tuple[str, ...] | Callable[[Evidence], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    applies: Callable[[Evidence], bool]
    cause: Text
    fixes: Fixes = ()
    #: add :data:`MECHANISM_2_NOTE` to the fixes when the AARQ asked for mechanism 2
    mechanism_2_note: bool = False

    def conclusion(self, e: Evidence) -> tuple[str, list[str]]:
        cause = self.cause(e) if callable(self.cause) else self.cause
        fixes = list(self.fixes(e) if callable(self.fixes) else self.fixes)
        if self.mechanism_2_note and e.mechanism == 2:
            fixes.append(MECHANISM_2_NOTE)
        return cause, fixes


MECHANISM_2_NOTE = (
    'Mechanism 2 ("High") authenticates with the HLS secret only. If you meant the encryption and'
    " authentication keys to authenticate the client, use HighGMAC (mechanism 5), if the meter supports it."
)
CHECK_HLS_SECRET = "Check the HLS secret (mechanisms 2, 3, 4, 6) or the keys and client system title (mechanism 5)."


def _ded_before_hls_cause(e: Evidence) -> str:
    assert e.before is not None
    what = "HLS pass 3" if e.before.pass3 else f"PDU #{e.before.pdu}"
    return (
        f"The meter could not decipher {what}: the client protected it with the dedicated key"
        f" ({apdu_name(e.before.tag)}, {e.before.tag:02X}) before HLS had completed. The association was"
        " accepted and the glo-initiate-request deciphered, so the global keys and system titles are"
        " right; this meter expects the HLS passes under the global key and the dedicated key only"
        " after authentication."
    )


def _ded_before_hls_fixes(e: Evidence) -> tuple[str, ...]:
    assert e.before is not None
    glo = ciphered_tag(plain_tag(e.before.tag), dedicated=False)
    return (
        f"Send HLS pass 3 as {apdu_name(glo)} ({glo:02X})"
        " under the global unicast key (GUEK), as the DLMS CTT and current Gurux versions do; switch to"
        " ded- APDUs only after the meter's f(CtoS) has been verified.",
        "Or do not propose a dedicated key in the AARQ (clear it in the client): every APDU then stays glo-.",
    )


def _rejected(value: int) -> Callable[[Evidence], bool]:
    """A rejecting AARE whose diagnostic (from the acse-service-user) is ``value``."""

    def applies(e: Evidence) -> bool:
        diag = e.failure.diagnostic if e.kind is FailureKind.REJECTED and e.failure else None
        return diag is not None and diag.source == 1 and diag.value == value

    return applies


def _rejected_cause(e: Evidence) -> str:
    diag = e.failure.diagnostic if e.failure else None
    return "The meter rejected the association" + (f" ({diag.source_name}: {diag.name})." if diag is not None else ".")


def _answered(e: Evidence) -> str:
    assert e.failure is not None
    what = f"PDU #{e.before.pdu} ({apdu_name(e.before.tag)})" if e.before else "a request"
    return f"The meter answered {what} with {e.failure.text}."


#: the fix for each kind of error finding, when the meter reported no error
ERROR_FIXES = {
    Kind.DECRYPT_FAILED: "Check the keys given (--key, --auth-key, --dedicated-key) and that the log's"
    " system titles are the ones the peers use.",
    Kind.F_MISMATCH: "Check the HLS secret (mechanisms 2, 3, 4, 6) or the keys (mechanism 5) the client uses.",
    Kind.METER_F_MISMATCH: "The meter's f(CtoS) does not verify: check the secret or keys given, else do not"
    " trust the meter.",
    Kind.MALFORMED_PDU: "Check that the log holds whole frames; a malformed PDU cannot be explained.",
    Kind.IC_NOT_INCREASING: "Increase the invocation counter with every protected APDU.",
    Kind.UNKNOWN_MECHANISM: "Use a DLMS mechanism name (2.16.756.5.8.2.x) in the AARQ's mechanism-name.",
}


def _problem_fixes(e: Evidence) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ERROR_FIXES[f.kind] for f in e.errors if f.kind in ERROR_FIXES))


RULES: tuple[Rule, ...] = (
    # -- the meter (or the log) says what failed ----------------------------------------------
    Rule(
        "ded_before_hls",
        lambda e: e.kind is FailureKind.DECIPHERING
        and e.family == "dedicated"
        and (e.after_pass3 or e.state in (State.HLS_FAILED, State.HLS_PENDING)),
        _ded_before_hls_cause,
        _ded_before_hls_fixes,
        mechanism_2_note=True,
    ),
    Rule(
        "plain_in_ciphered_context",
        lambda e: e.kind is FailureKind.DECIPHERING and e.family is None and e.ciphered_context,
        lambda e: f"The meter could not decipher PDU #{e.before.pdu if e.before else None}: it was sent unprotected"
        " in a ciphered context.",
        ("Protect every request after the AARE (glo- tags, or ded- once HLS has completed).",),
    ),
    Rule(
        "global_keys",
        lambda e: e.kind is FailureKind.DECIPHERING,
        "The meter could not decipher the request under the global key: the encryption or authentication"
        " key, the client system title, or the invocation counter differs from what the meter expects.",
        (
            "Check the global encryption key (GUEK) and authentication key (AK) configured in the client.",
            "Use the client system title the meter expects as calling-AP-title.",
            "Read the meter's invocation counter (0.0.43.1.x.255) with the public client and start above it.",
        ),
    ),
    Rule(
        "invocation_counter",
        lambda e: e.kind is FailureKind.INVOCATION_COUNTER,
        lambda e: f"The meter refuses the client's invocation counter; it expects {e.failure.expected_ic} or higher"
        " (replay protection).",
        lambda e: (
            f"Start the client's invocation counter at {e.failure.expected_ic} or above (read 0.0.43.1.x.255 first).",
        ),
    ),
    Rule(
        "authentication_failure",
        _rejected(13),
        "The meter rejected the authentication (authentication-failure).",
        ("With LLS, check the password; with HLS, the secret or keys; also check the client address (SAP).",),
    ),
    Rule(
        "mechanism_not_recognised",
        _rejected(11),
        "The meter does not know the requested authentication mechanism.",
        ("Use a mechanism this client address supports (see the meter's association objects).",),
    ),
    Rule(
        "authentication_required",
        _rejected(12),
        "The meter requires authentication for this client address.",
        ("Choose an authentication mechanism (LLS or HLS) for this client.",),
    ),
    Rule(
        "application_context_not_supported",
        _rejected(2),
        "The meter does not support the requested application context.",
        ("Switch between ciphered (3) and unciphered (1) logical-name context to what the meter expects.",),
    ),
    Rule(
        "rejected",
        lambda e: e.kind is FailureKind.REJECTED,
        _rejected_cause,
        (
            "Check the client address (SAP), the application context, the mechanism and, in a ciphered"
            " context, the keys and client system title used for the glo-initiate-request.",
        ),
    ),
    Rule(
        "initiate_error",
        lambda e: e.kind is FailureKind.INITIATE_ERROR,
        lambda e: f"The meter refused the InitiateRequest ({e.failure.error.value_name}).",
        (
            "Match the DLMS version (6), the conformance block and the maximum PDU size to what the meter"
            " supports.",
        ),
    ),
    Rule(
        "f_length",
        lambda e: e.kind is FailureKind.F_LENGTH,
        "The client computed f(StoC) for another mechanism than the one negotiated in the AARQ.",
        ("Use the same mechanism for the AARQ and for the HLS computation (2 = High, 5 = HighGMAC).",),
        mechanism_2_note=True,
    ),
    Rule(
        "pass4_result",
        lambda e: e.kind is FailureKind.PASS4_RESULT,
        lambda e: f"The meter rejected the client's f(StoC) ({e.failure.result}).",
        (CHECK_HLS_SECRET,),
        mechanism_2_note=True,
    ),
    Rule(
        "pass3_refused",
        lambda e: e.failure is not None and e.after_pass3,
        lambda e: f"The meter refused HLS pass 3 (PDU #{e.before.pdu}) with {e.failure.text}.",
        (CHECK_HLS_SECRET,),
        mechanism_2_note=True,
    ),
    Rule(
        "error_reply",
        lambda e: e.failure is not None,
        _answered,
        ("See the explanation of that PDU above.",),
    ),
    # -- no error from the meter ----------------------------------------------------------------
    Rule(
        "problems_in_log",
        lambda e: bool(e.errors),
        lambda e: f"The meter reported no error, but the log shows problems: {e.errors[0].text}.",
        _problem_fixes,
    ),
    Rule(
        "authenticated",
        lambda e: e.state.authenticated,
        "No error in the log: the association was established and HLS completed.",
    ),
    Rule(
        "pass3_missing",
        lambda e: e.state is State.HLS_PENDING,
        "No error in the log, but HLS pass 3 never came: the association is not usable yet.",
        ("Send reply_to_HLS_authentication (pass 3) after the AARE.",),
    ),
    Rule(
        "pass4_missing",
        lambda e: e.state is State.PASS3_SENT,
        "No error in the log, but the meter's answer to HLS pass 3 is missing.",
    ),
    Rule("accepted", lambda e: bool(e.accepted), "No error in the log: the association was accepted."),
    Rule("nothing", lambda e: True, "No error PDU in the log."),
)


def conclude(association: Association, findings: list[Finding]) -> tuple[str, list[str]]:
    failure = association.failure
    evidence = Evidence(
        failure=failure,
        before=None if failure is None else failure.before,
        state=association.state,
        mechanism=association.mechanism,
        ciphered_context=association.ciphered_context,
        accepted=association.accepted,
        errors=tuple(f for f in findings if f.severity is Severity.ERROR),
    )
    rule = next(r for r in RULES if r.applies(evidence))
    return rule.conclusion(evidence)
