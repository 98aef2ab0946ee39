"""Reading the PDUs of a log: which PDU a tag is, decoded into its typed record, who sent it, over what link.

The log scanner (:mod:`han.logscan`) finds the APDUs; here each one is
classified by its tag and decoded.  A PDU that does not decode raises
:class:`~decoders.errors.DecodeError` (or, from a lower layer that tripped
over odd data, ``IndexError``/``ValueError``): the walk reports it as
malformed and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from decoders.association import hls
from decoders.xdlms.tags import PLAIN_NAMES
from decoders.xdlms.tags import sender as tag_sender
from decoders.association.acse import Aare, Aarq, Release, parse_acse, parse_initiate
from decoders.xdlms.error_pdus import parse_confirmed_service_error, parse_exception_response
from decoders.errors import ApduError
from decoders.ciphering.general_ciphering import GeneralCiphering, GeneralSigning, parse_general_ciphering, parse_general_signing
from decoders.ciphering.security import CipheredApdu, manufacturer, parse_ciphered
from decoders.xdlms.tags import DED_SERVICE_TAGS, GLO_SERVICE_TAGS

from ..logscan import LoggedPdu, frame_name, hdlc_address

ACSE_TAGS = (0x60, 0x61, 0x62, 0x63)  #: AARQ, AARE, RLRQ, RLRE
GENERAL_GLO_DED = (0xDB, 0xDC)  #: general-glo-ciphering, general-ded-ciphering
GENERAL_CIPHERING = 0xDD
GENERAL_SIGNING = 0xDF


@dataclass(frozen=True, slots=True)
class OtherPlain:
    """A plain xDLMS APDU the diagnosis names without reading further (get, set, data-notification ...)."""

    tag: int
    length: int


def read_apdu(apdu: bytes) -> object:
    """The APDU as it was sent: ACSE, ciphered, general-ciphering/-signing, or plain (:func:`read_plain`)."""
    tag = apdu[0]
    if tag in ACSE_TAGS:
        return parse_acse(apdu)
    if tag in GLO_SERVICE_TAGS or tag in DED_SERVICE_TAGS or tag in GENERAL_GLO_DED:
        return parse_ciphered(apdu)
    if tag == GENERAL_CIPHERING:
        return parse_general_ciphering(apdu)
    if tag == GENERAL_SIGNING:
        return parse_general_signing(apdu)
    return read_plain(apdu)


def read_plain(apdu: bytes) -> object:
    """An unprotected (or decrypted) APDU: error PDUs, the HLS action PDUs, initiate PDUs, or any other xDLMS."""
    tag = apdu[0]
    if tag == 0x0E:
        return parse_confirmed_service_error(apdu)
    if tag == 0xD8:
        return parse_exception_response(apdu)
    if tag == 0xC3:
        return hls.parse_action_request(apdu)
    if tag == 0xC7:
        return hls.parse_action_response(apdu)
    if tag in (0x01, 0x08):
        return parse_initiate(apdu)
    if tag not in PLAIN_NAMES:
        raise ApduError(
            f"tag 0x{tag:02X} is not an xDLMS or ACSE APDU (not DLMS data, or the link layer was not removed)"
        )
    return OtherPlain(tag, len(apdu))


#: what :func:`read_apdu` gives, for readers of the walk
Read = Aarq | Aare | Release | CipheredApdu | GeneralCiphering | GeneralSigning | OtherPlain


class Directions:
    """Who sent each PDU: the tag says so, else the LLC, else the HDLC address of the client's earlier frames."""

    def __init__(self) -> None:
        self.client_address: bytes | None = None

    def sender(self, logged: LoggedPdu) -> str | None:
        side = tag_sender(logged.apdu[0]) or logged.link_direction
        if side is None and logged.frames and self.client_address is not None:
            side = "client" if logged.frames[0].src == self.client_address else "server"
        if side == "client" and logged.frames:
            self.client_address = logged.frames[0].src
        return side


def link_text(logged: LoggedPdu, side: str | None) -> str | None:
    """``HDLC I, client 61 (48) -> server 03 (1), checksums valid``; None for a raw APDU."""
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


# -- system titles -----------------------------------------------------------------------

#: system titles seen in examples and defaults; a real client or meter should not use them
PLACEHOLDER_TITLES = {
    bytes.fromhex("4142434445464748"): 'Gurux\'s default client title "ABCDEFGH"',
    bytes.fromhex("3132333435363738"): '"12345678"',
    bytes(8): "all zeros",
    b"\xff" * 8: "all FF",
}


def hex_upper(b: bytes) -> str:
    return b.hex().upper()


def printable(b: bytes) -> str | None:
    text = b.rstrip(b"\x00")
    if len(text) >= 3 and all(0x20 <= c < 0x7F for c in text):
        return text.decode("ascii")
    return None


def describe_title(st: bytes) -> str:
    """``474F450000581CF1 (manufacturer id GOE)``, ``4142434445464748 "ABCDEFGH"``."""
    shown, flag = printable(st), manufacturer(st)
    if shown:
        return f'{hex_upper(st)} "{shown}"'
    return f"{hex_upper(st)} (manufacturer id {flag})" if flag else hex_upper(st)


def title_dict(st: bytes | None) -> dict | None:
    if st is None:
        return None
    return {
        "hex": hex_upper(st),
        "text": printable(st),
        "manufacturer": manufacturer(st),
        "placeholder": st in PLACEHOLDER_TITLES,
    }
