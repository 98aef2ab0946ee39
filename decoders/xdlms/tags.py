"""The xDLMS APDU tag table: names, glo-/ded- families, and which side sends what.

Every confirmed service has three tags: plain, ``glo-`` (protected with the
global key, GUEK or GBEK) and ``ded-`` (protected with the association's
dedicated key)::

    service               plain  glo-  ded-
    get-request            C0     C8    D0
    set-request            C1     C9    D1
    action-request         C3     CB    D3     <- HLS pass 3 travels here
    get-response           C4     CC    D4
    action-response        C7     CF    D7     <- HLS pass 4
    initiateRequest        01     21    41     <- inside the AARQ's user-information
    initiateResponse       08     28    48
    confirmedServiceError  0E     2E    4E

DataNotification and ACCESS have no glo-/ded- tags: they are protected with
general-glo-ciphering (DB), general-ded-ciphering (DC) or general-ciphering (DD).
The full list is :data:`SERVICE_TAGS`.

This is the one table of tags: the framers, the ciphering layer, the APDU
parsers and the diagnosis all read it.
"""

from __future__ import annotations

DATA_NOTIFICATION = 0x0F
EVENT_NOTIFICATION = 0xC2
GENERAL_GLO_CIPHERING = 0xDB
GENERAL_DED_CIPHERING = 0xDC
GENERAL_CIPHERING = 0xDD
GENERAL_SIGNING = 0xDF
GENERAL_BLOCK_TRANSFER = 0xE0

#: names of APDU tags that are not pushes, for error messages
APDU_NAMES: dict[int, str] = {
    0x01: "initiate-request",
    0x08: "initiate-response",
    0x0E: "confirmed-service-error",
    0x0F: "data-notification",
    0x60: "AARQ",
    0x61: "AARE",
    0x62: "RLRQ",
    0x63: "RLRE",
    0xC0: "get-request",
    0xC1: "set-request",
    0xC2: "event-notification-request",
    0xC3: "action-request",
    0xC4: "get-response",
    0xC5: "set-response",
    0xC7: "action-response",
    0xD8: "exception-response",
    0xD9: "access-request",
    0xDA: "access-response",
    0xDB: "general-glo-ciphering",
    0xDC: "general-ded-ciphering",
    0xDD: "general-ciphering",
    0xDF: "general-signing",
    0xE0: "general-block-transfer",
}

#: plain tag -> (glo tag, ded tag) for the service-specific ciphered APDUs
SERVICE_TAGS: dict[int, tuple[int, int]] = {
    0x01: (0x21, 0x41),  # initiateRequest
    0x05: (0x25, 0x45),  # readRequest
    0x06: (0x26, 0x46),  # writeRequest
    0x08: (0x28, 0x48),  # initiateResponse
    0x0C: (0x2C, 0x4C),  # readResponse
    0x0D: (0x2D, 0x4D),  # writeResponse
    0x0E: (0x2E, 0x4E),  # confirmedServiceError
    0x16: (0x36, 0x56),  # unconfirmedWriteRequest
    0x18: (0x38, 0x58),  # informationReportRequest
    0xC0: (0xC8, 0xD0),  # get-request
    0xC1: (0xC9, 0xD1),  # set-request
    0xC2: (0xCA, 0xD2),  # event-notification-request
    0xC3: (0xCB, 0xD3),  # action-request
    0xC4: (0xCC, 0xD4),  # get-response
    0xC5: (0xCD, 0xD5),  # set-response
    0xC7: (0xCF, 0xD7),  # action-response
}
GLO_SERVICE_TAGS = {glo: plain for plain, (glo, _ded) in SERVICE_TAGS.items()}
DED_SERVICE_TAGS = {ded: plain for plain, (_glo, ded) in SERVICE_TAGS.items()}
CIPHERED_TAGS = frozenset(GLO_SERVICE_TAGS) | frozenset(DED_SERVICE_TAGS) | {GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING}


#: plain APDU names; APDU_NAMES plus the short-name services that have ciphered forms
PLAIN_NAMES: dict[int, str] = {
    **APDU_NAMES,
    0x05: "read-request",
    0x06: "write-request",
    0x0C: "read-response",
    0x0D: "write-response",
    0x16: "unconfirmed-write-request",
    0x18: "information-report-request",
}

#: tags sent by the client (requests) and by the server (responses, notifications)
CLIENT_TAGS = frozenset({0x01, 0x05, 0x06, 0x16, 0x60, 0x62, 0xC0, 0xC1, 0xC3, 0xD9})
SERVER_TAGS = frozenset({0x08, 0x0C, 0x0D, 0x0E, 0x0F, 0x18, 0x61, 0x63, 0xC2, 0xC4, 0xC5, 0xC7, 0xD8, 0xDA})


def apdu_name(tag: int) -> str:
    """``ded-action-request`` for 0xD3, ``AARQ`` for 0x60, ``tag 0x99`` when unknown."""
    if tag in GLO_SERVICE_TAGS:
        return "glo-" + PLAIN_NAMES[GLO_SERVICE_TAGS[tag]]
    if tag in DED_SERVICE_TAGS:
        return "ded-" + PLAIN_NAMES[DED_SERVICE_TAGS[tag]]
    return PLAIN_NAMES.get(tag, f"tag 0x{tag:02X}")


def key_family(tag: int) -> str | None:
    """Which key protects an APDU with this tag, judged by the tag alone.

    ``"global"`` (glo- and DB), ``"dedicated"`` (ded- and DC), ``"per-apdu"``
    (DD: the key-info inside says), or None for unprotected tags.
    """
    if tag in GLO_SERVICE_TAGS or tag == GENERAL_GLO_CIPHERING:
        return "global"
    if tag in DED_SERVICE_TAGS or tag == GENERAL_DED_CIPHERING:
        return "dedicated"
    if tag == GENERAL_CIPHERING:
        return "per-apdu"
    return None


def plain_tag(tag: int) -> int:
    """The unprotected service tag of a glo-/ded- tag (the tag itself otherwise)."""
    return GLO_SERVICE_TAGS.get(tag, DED_SERVICE_TAGS.get(tag, tag))


def ciphered_tag(plain: int, *, dedicated: bool) -> int:
    """The glo- (or ded-) tag of a plain service tag; ValueError when it has none."""
    try:
        glo, ded = SERVICE_TAGS[plain]
    except KeyError:
        raise ValueError(
            f"{apdu_name(plain)} (0x{plain:02X}) has no service-specific ciphered form;"
            " protect it with general-glo-ciphering (DB) or general-ded-ciphering (DC)"
        ) from None
    return ded if dedicated else glo


def sender(tag: int) -> str | None:
    """``"client"`` or ``"server"`` for tags only one side sends; None when either may (DB, DC, DD, DF, E0)."""
    base = plain_tag(tag)
    if base in CLIENT_TAGS:
        return "client"
    if base in SERVER_TAGS:
        return "server"
    return None


#: tags a meter's push can begin with: data-notification, event-notification, the general
#: ciphering and signing wrappers, and general-block-transfer (the reassemblers' start evidence)
PUSH_TAGS = frozenset(
    {
        DATA_NOTIFICATION,
        EVENT_NOTIFICATION,
        GENERAL_GLO_CIPHERING,
        GENERAL_DED_CIPHERING,
        GENERAL_CIPHERING,
        GENERAL_SIGNING,
        GENERAL_BLOCK_TRANSFER,
    }
)

#: every APDU tag we can name: the first byte after an LLC header that makes a segment a message start
MESSAGE_TAGS = frozenset(PLAIN_NAMES) | frozenset(GLO_SERVICE_TAGS) | frozenset(DED_SERVICE_TAGS)
