"""Pushes built for tests: an Austrian positional list (Wiener Netze layout) and a short Kamstrup-like
ciphered list, shared by the tests of several layers (test modules do not import each other)."""

from __future__ import annotations

from datetime import datetime

from conftest import SEED_AK, SEED_EK
from decoders.ciphering.security import Keys, protect
from decoders.link.hdlc import build_frame
from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime

# -- an Austrian positional list: a clock and eight double-long-unsigned counters, no OBIS codes -------
EK = bytes.fromhex("0F0E0D0C0B0A09080706050403020100")
U32 = axdr.DOUBLE_LONG_UNSIGNED
#: +A, -A, +R, -R, +P, -P, +Q, -Q as the meter sends them (Wh, Wh, varh, varh, W, W, var, var)
COUNTERS = (12_345_678, 1_234, 2_345_678, 3_456_789, 1_520, 0, 310, 45)
NAMED = (
    ("1.0.1.8.0.255", "Active energy import (+A)", "Wh"),
    ("1.0.2.8.0.255", "Active energy export (-A)", "Wh"),
    ("1.0.3.8.0.255", "Reactive energy import (+R)", "varh"),
    ("1.0.4.8.0.255", "Reactive energy export (-R)", "varh"),
    ("1.0.1.7.0.255", "Active power import (+P)", "W"),
    ("1.0.2.7.0.255", "Active power export (-P)", "W"),
    ("1.0.3.7.0.255", "Reactive power import (+Q)", "var"),
    ("1.0.4.7.0.255", "Reactive power export (-Q)", "var"),
)
WHEN = CosemDateTime.from_datetime(datetime(2025, 1, 20, 18, 30, 5))  # deviation 0x8000: Vienna local time


def body(serial: bytes | None = None, counters=COUNTERS) -> Data:
    head = [axdr.octet_string(serial)] if serial is not None else []
    return axdr.structure(*head, axdr.octet_string(WHEN.raw), *[Data(U32, v) for v in counters])


def frame(b: Data, maker: bytes = b"LGZ", *, encrypted: bool = True, addr=(b"\xce\xff", b"\x03")) -> bytes:
    apdu = build_data_notification(b, invoke_id_and_priority=0x12, datetime=WHEN)
    if encrypted:
        apdu = protect(apdu, keys=Keys(ek=EK), system_title=maker + b"\x67\x01\x02\x03\x04",
                       invocation_counter=0x1234, security_control=0x20)  # fmt: skip
    return build_frame(b"\xe6\xe7\x00" + apdu, dest=addr[0], src=addr[1])


# -- a Kamstrup-like ciphered list -------------------------------------------------------------------
def kamstrup_frames(count: int) -> bytes:
    """``count`` ciphered pushes (invocation counters 1000, 1001, ...) of a short Kamstrup-like list."""
    keys = Keys(ek=SEED_EK, ak=SEED_AK)
    out = bytearray()
    for i in range(count):
        body = axdr.structure(
            axdr.visible_string("Kamstrup_V0001"),
            axdr.octet_string(bytes((1, 1, 1, 7, 0, 255))), Data(axdr.DOUBLE_LONG_UNSIGNED, i),
            axdr.octet_string(bytes((1, 1, 96, 1, 0, 255))), axdr.octet_string(b"x" * 400),
        )  # fmt: skip
        apdu = build_data_notification(body)
        wire = protect(apdu, keys=keys, system_title=bytes.fromhex("4B414D4501A4DC52"), invocation_counter=1000 + i)
        out += build_frame(b"\xe6\xe7\x00" + wire)
    return bytes(out)
