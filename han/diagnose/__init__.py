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

One job per module:

=================== ==================================================================
``reading``         classify and decode each logged PDU; sender, link, system titles
``machine``         the association: authentication states, events, transitions, facts
``records``         typed records: secrets, findings (kind and severity), the result
``walk``            the walk through the log, plain content and the meter's error replies
``acse``            AARQ, AARE, release PDUs and the initiate PDUs inside them
``protection``      ciphered APDUs: header, key, invocation counter, decryption
``authentication``  HLS passes 3 and 4: f(StoC) and f(CtoS), their lengths and checks
``conclusions``     the likely cause and the fix: a table of rules
=================== ==================================================================
"""

from __future__ import annotations

from .authentication import PASS3_OVERHEAD
from .machine import Association, Event, State
from .reading import PLACEHOLDER_TITLES, describe_title
from .records import Diagnosis, Finding, Kind, NothingToDiagnose, PduReport, Secrets, Severity
from .walk import diagnose

__all__ = [
    "PASS3_OVERHEAD",
    "PLACEHOLDER_TITLES",
    "Association",
    "Diagnosis",
    "Event",
    "Finding",
    "Kind",
    "NothingToDiagnose",
    "PduReport",
    "Secrets",
    "Severity",
    "State",
    "describe_title",
    "diagnose",
]
