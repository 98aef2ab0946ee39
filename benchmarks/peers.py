"""Peer decoders on the seed frame, for comparison only: never a dependency of han.

dlms-cosem (BSL) and gurux_dlms (GPL) are measured only when they happen to be
installed in the interpreter running the benchmark.  Their API chains follow
``../shared/notes/peers.md`` §2a.
"""

from __future__ import annotations

import time
from pathlib import Path

# read here, not imported from benchmarks.build: the peers' interpreter need not have han's dependencies
SEED_FRAME = bytes.fromhex((Path(__file__).resolve().parent.parent / "samples" / "kamstrup_dk_radius.hex").read_text())

EK = bytes.fromhex("5AD84121D9D20B364B7A11F3C1B5827F")
AK = bytes.fromhex("AFB3F93E3E7204EDB3C27F96DBD51AE0")


def _time(fn, n: int) -> dict:
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t0)
    return {"frames_per_s": n / best, "us_per_frame": best / n * 1e6}


def _dlms_cosem():
    from dlms_cosem.hdlc import frames
    from dlms_cosem.protocol.xdlms import DataNotification, GeneralGlobalCipher
    from dlms_cosem.utils import parse_as_dlms_data  # noqa: F401  (API presence check)

    def one():
        frame = frames.UnnumberedInformationFrame.from_bytes(SEED_FRAME)
        ggc = GeneralGlobalCipher.from_bytes(frame.payload[3:])
        plain = ggc.to_plain_apdu(EK, AK)
        dn = DataNotification.from_bytes(plain)
        from dlms_cosem.dlms_data import DlmsDataParser

        return DlmsDataParser().parse(dn.body)

    return one


def _gurux():
    from gurux_dlms import GXByteBuffer, GXReplyData
    from gurux_dlms.secure import GXDLMSSecureClient
    from gurux_dlms.enums import InterfaceType, Security

    client = GXDLMSSecureClient(True, 16, 1, interfaceType=InterfaceType.HDLC)
    client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    client.ciphering.blockCipherKey = bytearray(EK)
    client.ciphering.authenticationKey = bytearray(AK)

    def one():
        notify = GXReplyData()
        client.getData(GXByteBuffer(SEED_FRAME), GXReplyData(), notify)
        return notify.value

    return one


def measure() -> dict:
    import contextlib
    import io

    out: dict = {}
    for name, factory, n in (("dlms-cosem", _dlms_cosem, 1000), ("gurux_dlms", _gurux, 300)):
        try:
            fn = factory()
            with contextlib.redirect_stdout(io.StringIO()):
                out[name] = _time(fn, n)
        except ImportError:
            out[name] = "not installed"
        except Exception as exc:  # noqa: BLE001 - a peer failing is a result, not a crash
            out[name] = f"failed: {type(exc).__name__}: {exc}"
    return out
