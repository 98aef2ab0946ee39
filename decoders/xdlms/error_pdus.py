"""The two xDLMS error PDUs a server answers with when it cannot serve a request.

confirmedServiceError (0x0E), sent unciphered when the server could not
decipher the request (it cannot protect the answer either)::

    0E | service (CHOICE) | error type (CHOICE) | value (ENUMERATED)
    0E     06 write           00 application-reference   06 deciphering-error

exception-response (0xD8)::

    D8 | state-error | service-error [| Unsigned32]
    D8     01 service-not-allowed   05 deciphering-error
    D8     01                       06 invocation-counter-error  + the IC the server expects
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import ConstructError, If, Int8ub, Int32ub, Struct, Terminated, this

from ..association.ber import build_dict, from_container
from ..errors import ApduError

CONFIRMED_SERVICE_ERROR = 0x0E
EXCEPTION_RESPONSE = 0xD8

#: ConfirmedServiceError CHOICE: the service that failed
SERVICES = {
    1: "initiateError",
    2: "getStatus",
    3: "getNameList",
    4: "getVariableAttribute",
    5: "read",
    6: "write",
    7: "getDataSetAttribute",
    8: "getTIAttribute",
    9: "changeScope",
    10: "start",
    11: "stop",
    12: "resume",
    13: "makeUsable",
    14: "initiateLoad",
    15: "loadSegment",
    16: "terminateLoad",
    17: "initiateUpLoad",
    18: "upLoadSegment",
    19: "terminateUpLoad",
}

#: ServiceError CHOICE -> (name, its ENUMERATED values)
ERROR_TYPES: dict[int, tuple[str, dict[int, str]]] = {
    0: (
        "application-reference",
        {
            0: "other",
            1: "time-elapsed",
            2: "application-unreachable",
            3: "application-reference-invalid",
            4: "application-context-unsupported",
            5: "provider-communication-error",
            6: "deciphering-error",
        },
    ),
    1: (
        "hardware-resource",
        {
            0: "other",
            1: "memory-unavailable",
            2: "processor-resource-unavailable",
            3: "mass-storage-unavailable",
            4: "other-resource-unavailable",
        },
    ),
    2: (
        "vde-state-error",
        {0: "other", 1: "no-dlms-context", 2: "loading-data-set", 3: "status-nochange", 4: "status-inoperable"},
    ),
    3: ("service", {0: "other", 1: "pdu-size", 2: "service-unsupported"}),
    4: (
        "definition",
        {0: "other", 1: "object-undefined", 2: "object-class-inconsistent", 3: "object-attribute-inconsistent"},
    ),
    5: (
        "access",
        {
            0: "other",
            1: "scope-of-access-violated",
            2: "object-access-violated",
            3: "hardware-fault",
            4: "object-unavailable",
        },
    ),
    6: (
        "initiate",
        {
            0: "other",
            1: "dlms-version-too-low",
            2: "incompatible-conformance",
            3: "pdu-size-too-short",
            4: "refused-by-the-VDE-handler",
        },
    ),
    7: (
        "load-data-set",
        {
            0: "other",
            1: "primitive-out-of-sequence",
            2: "not-loadable",
            3: "dataset-size-too-large",
            4: "not-awaited-segment",
            5: "interpretation-failure",
            6: "storage-failure",
            7: "data-set-not-ready",
        },
    ),
    8: ("change-scope", {}),
    9: ("task", {0: "other", 1: "no-remote-control", 2: "ti-stopped", 3: "ti-running", 4: "ti-unusable"}),
    10: ("other", {}),
}

STATE_ERRORS = {1: "service-not-allowed", 2: "service-unknown"}
EXCEPTION_SERVICE_ERRORS = {
    1: "operation-not-possible",
    2: "service-not-supported",
    3: "other-reason",
    4: "pdu-too-long",
    5: "deciphering-error",
    6: "invocation-counter-error",
}
INVOCATION_COUNTER_ERROR = 6

_ConfirmedServiceError = Struct("tag" / Int8ub, "service" / Int8ub, "error_type" / Int8ub, "value" / Int8ub, Terminated)
_ExceptionResponse = Struct(
    "tag" / Int8ub,
    "state_error" / Int8ub,
    "service_error" / Int8ub,
    "invocation_counter" / If(this.service_error == INVOCATION_COUNTER_ERROR, Int32ub),
    Terminated,
)


@dataclass(frozen=True, slots=True)
class ConfirmedServiceError:
    service: int
    error_type: int
    value: int

    @property
    def service_name(self) -> str:
        return SERVICES.get(self.service, f"service {self.service}")

    @property
    def error_type_name(self) -> str:
        return ERROR_TYPES.get(self.error_type, (f"error type {self.error_type}", {}))[0]

    @property
    def value_name(self) -> str:
        return ERROR_TYPES.get(self.error_type, ("", {}))[1].get(self.value, f"value {self.value}")

    @property
    def deciphering_error(self) -> bool:
        return self.error_type == 0 and self.value == 6

    def describe(self) -> str:
        return f"confirmed-service-error: {self.service_name} / {self.error_type_name} / {self.value_name}"

    def to_bytes(self) -> bytes:
        return _ConfirmedServiceError.build(build_dict(self, tag=CONFIRMED_SERVICE_ERROR))


@dataclass(frozen=True, slots=True)
class ExceptionResponse:
    state_error: int
    service_error: int
    #: with invocation-counter-error: the lowest IC the server will accept
    invocation_counter: int | None = None

    @property
    def state_error_name(self) -> str:
        return STATE_ERRORS.get(self.state_error, f"state-error {self.state_error}")

    @property
    def service_error_name(self) -> str:
        return EXCEPTION_SERVICE_ERRORS.get(self.service_error, f"service-error {self.service_error}")

    @property
    def deciphering_error(self) -> bool:
        return self.service_error == 5

    def describe(self) -> str:
        text = f"exception-response: {self.state_error_name} / {self.service_error_name}"
        if self.invocation_counter is not None:
            text += f" (the server expects invocation counter {self.invocation_counter} or higher)"
        return text

    def to_bytes(self) -> bytes:
        return _ExceptionResponse.build(build_dict(self, tag=EXCEPTION_RESPONSE))


def parse_confirmed_service_error(apdu: bytes) -> ConfirmedServiceError:
    if apdu[:1] != bytes((CONFIRMED_SERVICE_ERROR,)):
        raise ApduError("not a confirmed-service-error (0E expected)", reason="bad_error_pdu")
    try:
        c = _ConfirmedServiceError.parse(apdu)
    except ConstructError:
        raise ApduError(
            f"confirmed-service-error must be 4 bytes (0E service error-type value); got {len(apdu)}",
            reason="bad_error_pdu",
        ) from None
    return from_container(ConfirmedServiceError, c)


def parse_exception_response(apdu: bytes) -> ExceptionResponse:
    if apdu[:1] != bytes((EXCEPTION_RESPONSE,)):
        raise ApduError("not an exception-response (D8 expected)", reason="bad_error_pdu")
    try:
        c = _ExceptionResponse.parse(apdu)
    except ConstructError:
        raise ApduError(
            "exception-response must be D8 state-error service-error (3 bytes), plus a 4-byte invocation"
            f" counter after service-error 6; got {len(apdu)} bytes",
            reason="bad_error_pdu",
        ) from None
    return from_container(ExceptionResponse, c)
