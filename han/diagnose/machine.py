"""The association as the log shows it: a state machine for authentication, and the facts learnt on the way.

States and the events that move them (any pair not in the table leaves the
state as it is: an error reply outside HLS, a second pass 3 ...)::

    any state ──AUTHENTICATION_REQUIRED──> HLS_PENDING         (AARE: accepted, diagnostic 14)
    HLS_PENDING ──PASS3──> PASS3_SENT                          (reply_to_HLS_authentication)
    PASS3_SENT ──PASS4_ACCEPTED──> AUTHENTICATED ──METER_F_MISMATCH──> HLS_FAILED
    PASS3_SENT ──PASS4_UNREAD──> AUTHENTICATED_UNVERIFIED      (ciphered reply, no keys)
    PASS3_SENT ──PASS4_REJECTED / ERROR_REPLY──> HLS_FAILED

An association without HLS (no AARE asks for it) stays in NO_HLS; whether
it was accepted is a fact (``accepted``), as is the first failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto

from decoders.association import hls
from decoders.association.acse import ApplicationContext

from .reading import title_dict
from .records import ClientRequest, DedicatedKey, Failure, Pass3


class State(Enum):
    """Where authentication stands; the value is how the diagnosis names it ("hls" "state")."""

    NO_HLS = "not used"
    HLS_PENDING = "pending"  #: only HLS pass 3 is allowed until HLS completes
    PASS3_SENT = "pass 3 sent"
    AUTHENTICATED = "completed"
    AUTHENTICATED_UNVERIFIED = "completed (not verified)"  #: the meter's f(CtoS) could not be read
    HLS_FAILED = "failed"

    @property
    def authenticated(self) -> bool:
        return self in (State.AUTHENTICATED, State.AUTHENTICATED_UNVERIFIED)

    @property
    def before_authentication(self) -> bool:
        """HLS is under way: only the HLS passes belong here, under the global key."""
        return self in (State.HLS_PENDING, State.PASS3_SENT)


class Event(Enum):
    AUTHENTICATION_REQUIRED = auto()  #: an AARE accepts the association, with authentication required
    PASS3 = auto()  #: the client sends reply_to_HLS_authentication(f(StoC))
    PASS4_ACCEPTED = auto()  #: the meter answers pass 3 with success (and its f(CtoS))
    PASS4_UNREAD = auto()  #: the meter answers pass 3 with an action-response that cannot be read without keys
    PASS4_REJECTED = auto()  #: the meter answers pass 3 with a failure result
    METER_F_MISMATCH = auto()  #: the meter's f(CtoS) does not verify
    ERROR_REPLY = auto()  #: the meter answers with an error PDU


TRANSITIONS: dict[tuple[State, Event], State] = {
    **{(state, Event.AUTHENTICATION_REQUIRED): State.HLS_PENDING for state in State},
    (State.HLS_PENDING, Event.PASS3): State.PASS3_SENT,
    (State.PASS3_SENT, Event.PASS4_ACCEPTED): State.AUTHENTICATED,
    (State.PASS3_SENT, Event.PASS4_UNREAD): State.AUTHENTICATED_UNVERIFIED,
    (State.PASS3_SENT, Event.PASS4_REJECTED): State.HLS_FAILED,
    (State.PASS3_SENT, Event.ERROR_REPLY): State.HLS_FAILED,
    (State.AUTHENTICATED, Event.METER_F_MISMATCH): State.HLS_FAILED,
}


@dataclass
class Association:
    """The state, and what the log told so far (never a key: those stay with the walk)."""

    state: State = State.NO_HLS
    context: ApplicationContext | None = None
    mechanism: int | None = None
    client_st: bytes | None = None
    server_st: bytes | None = None
    ctos: bytes | None = None  #: the client's challenge (AARQ)
    stoc: bytes | None = None  #: the server's challenge (AARE)
    dedicated: DedicatedKey = field(default_factory=DedicatedKey)
    pass3: Pass3 | None = None
    accepted: bool | None = None  #: the result of the last AARE
    #: invocation counters per (sender, key family): (PDU number, counter) in log order
    counters: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)
    last_client: ClientRequest | None = None
    failure: Failure | None = None  #: the first failure, the one the conclusion explains

    def fire(self, event: Event) -> None:
        self.state = TRANSITIONS.get((self.state, event), self.state)

    def fail(self, failure: Failure) -> None:
        if self.failure is None:
            self.failure = failure

    @property
    def ciphered_context(self) -> bool:
        return self.context is not None and self.context.ciphered

    def to_dict(self) -> dict:
        ctx, mech = self.context, self.mechanism
        return {
            "application_context": None
            if ctx is None
            else {"oid": ctx.oid, "id": ctx.id, "ciphered": ctx.ciphered, "text": ctx.describe()},
            "mechanism": None
            if mech is None
            else {"id": mech, "name": hls.mechanism_info(mech).name, "uses": hls.mechanism_info(mech).uses},
            "client_system_title": title_dict(self.client_st),
            "server_system_title": title_dict(self.server_st),
            "dedicated_key": self.dedicated.to_dict(),
            "hls": {"state": self.state.value, "pass3": None if self.pass3 is None else self.pass3.to_dict()},
            "invocation_counters": [
                {"sender": side, "key": family, "values": [{"pdu": n, "value": ic} for n, ic in values]}
                for (side, family), values in self.counters.items()
            ],
        }
