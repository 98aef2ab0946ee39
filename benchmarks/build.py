"""Inputs for the benchmarks, built with the project's own encoders (no corpus data is copied)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime
from decoders.link.hdlc import build_frame
from decoders.ciphering.security import Keys, protect

ROOT = Path(__file__).resolve().parent.parent
SEED_FRAME = bytes.fromhex((ROOT / "samples" / "kamstrup_dk_radius.hex").read_text())
SEED_KEYS = Keys(ek=bytes.fromhex("5AD84121D9D20B364B7A11F3C1B5827F"), ak=bytes.fromhex("AFB3F93E3E7204EDB3C27F96DBD51AE0"))
SEED_ST = bytes.fromhex("4B414D4501A4DC52")


def _obis(text: str) -> Data:
    return axdr.octet_string(bytes(int(x) for x in text.split(".")))


def aidon_plain_frame() -> bytes:
    """An Aidon-style list 2: array of structure{obis, value, {scaler, unit}}, plain HDLC."""
    rows = [
        ("1.1.0.2.129.255", axdr.visible_string("AIDON_V0001"), None),
        ("0.0.96.1.0.255", axdr.visible_string("7359992890941742"), None),
        ("0.0.96.1.7.255", axdr.visible_string("6525"), None),
        ("1.0.1.7.0.255", Data(axdr.DOUBLE_LONG_UNSIGNED, 1743), (0, 27)),
        ("1.0.2.7.0.255", Data(axdr.DOUBLE_LONG_UNSIGNED, 0), (0, 27)),
        ("1.0.3.7.0.255", Data(axdr.DOUBLE_LONG_UNSIGNED, 0), (0, 29)),
        ("1.0.4.7.0.255", Data(axdr.DOUBLE_LONG_UNSIGNED, 476), (0, 29)),
        ("1.0.31.7.0.255", Data(axdr.LONG, 20), (-1, 33)),
        ("1.0.51.7.0.255", Data(axdr.LONG, 31), (-1, 33)),
        ("1.0.71.7.0.255", Data(axdr.LONG, -5), (-1, 33)),
        ("1.0.32.7.0.255", Data(axdr.LONG_UNSIGNED, 2343), (-1, 35)),
        ("1.0.52.7.0.255", Data(axdr.LONG_UNSIGNED, 2351), (-1, 35)),
        ("1.0.72.7.0.255", Data(axdr.LONG_UNSIGNED, 2338), (-1, 35)),
    ]
    items = []
    for obis, value, su in rows:
        parts = [_obis(obis), value]
        if su:
            parts.append(axdr.structure(Data(axdr.INTEGER, su[0]), Data(axdr.ENUM, su[1])))
        items.append(axdr.structure(*parts))
    apdu = build_data_notification(axdr.array(*items), invoke_id_and_priority=0x40000000)
    return build_frame(b"\xe6\xe7\x00" + apdu, dest=b"\x41", src=b"\x08\x83")


def kamstrup_apdu(i: int, when: datetime) -> bytes:
    """The Danish 32-register list with plausible, changing values."""
    dt = CosemDateTime.from_datetime(when)
    regs = [
        ("1.1.1.8.0.255", Data(6, 866636 + i * 3)),
        ("1.1.2.8.0.255", Data(6, 0)),
        ("1.1.3.8.0.255", Data(6, 17708 + i)),
        ("1.1.4.8.0.255", Data(6, 0)),
        ("1.1.0.0.1.255", Data(6, 27581522)),
        ("1.1.1.7.0.255", Data(6, 1000 + i % 500)),
        ("1.1.2.7.0.255", Data(6, 0)),
        ("1.1.3.7.0.255", Data(6, 10)),
        ("1.1.4.7.0.255", Data(6, 0)),
        ("0.1.1.0.0.255", axdr.octet_string(dt.raw)),
    ]
    regs += [(f"1.1.{c}.7.0.255", Data(18, 230 + i % 3)) for c in (32, 52, 72)]
    regs += [(f"1.1.{c}.7.0.255", Data(6, 150 + i % 40)) for c in (31, 51, 71)]
    regs += [(f"1.1.{c}.7.0.255", Data(6, 330 + i % 20)) for c in (21, 41, 61)]
    regs += [(f"1.1.{c}.7.0.255", Data(18, 98)) for c in (33, 53, 73, 13)]
    regs += [(f"1.1.{c}.7.0.255", Data(6, 0)) for c in (22, 42, 62)]
    regs += [(f"1.1.{c}.8.0.255", Data(6, 0)) for c in (22, 42, 62)]
    regs += [(f"1.1.{c}.8.0.255", Data(6, 288932 + i)) for c in (21, 41, 61)]
    items = [axdr.visible_string("Kamstrup_V0001")]
    for obis, value in regs:
        items += [_obis(obis), value]
    return build_data_notification(axdr.structure(*items), datetime=dt)


def kamstrup_frame_list(count: int, start_ic: int = 1000) -> list[bytes]:
    """``count`` encrypted Danish Kamstrup pushes, one HDLC frame each, 10 s apart."""
    t0 = datetime(2026, 1, 1)
    out = []
    for i in range(count):
        apdu = kamstrup_apdu(i, t0 + timedelta(seconds=10 * i))
        wire = protect(apdu, keys=SEED_KEYS, system_title=SEED_ST, invocation_counter=start_ic + i)
        out.append(build_frame(b"\xe6\xe7\x00" + wire))
    return out


def kamstrup_frames(count: int, start_ic: int = 1000) -> bytes:
    return b"".join(kamstrup_frame_list(count, start_ic))


def write_capture(count: int, hex_path: str, bin_path: str) -> None:
    """The same pushes as a hex file (one frame per line, as a logger writes them) and as a binary capture."""
    frames = kamstrup_frame_list(count)
    with open(hex_path, "w") as fh:
        fh.writelines(f.hex().upper() + "\n" for f in frames)
    with open(bin_path, "wb") as fh:
        fh.write(b"".join(frames))


def austrian_mbus_push():
    """An EVN-style list (flat obis, value, {scaler, unit}) ciphered SC 0x20 in two M-Bus long frames."""
    from decoders.link.mbus import build_frames as mbus_frames

    when = CosemDateTime.from_datetime(datetime(2026, 7, 1, 12, 0, 5), deviation=-120, clock_status=0x80)
    items = [axdr.octet_string(when.raw)]
    for obis, value, tag, scaler, unit in (
        ("1.0.1.8.0.255", 4_500_000, 6, 0, 30),
        ("1.0.2.8.0.255", 1_200_000, 6, 0, 30),
        ("1.0.1.7.0.255", 1_250, 6, 0, 27),
        ("1.0.2.7.0.255", 0, 6, 0, 27),
        ("1.0.32.7.0.255", 2_310, 18, -1, 35),
        ("1.0.52.7.0.255", 2_305, 18, -1, 35),
        ("1.0.72.7.0.255", 2_298, 18, -1, 35),
        ("1.0.31.7.0.255", 150, 18, -2, 33),
        ("1.0.51.7.0.255", 210, 18, -2, 33),
        ("1.0.71.7.0.255", 95, 18, -2, 33),
        ("1.0.13.7.0.255", 960, 18, -3, 255),
    ):
        items += [_obis(obis), Data(tag, value), axdr.structure(Data(axdr.INTEGER, scaler), Data(axdr.ENUM, unit))]
    items.append(axdr.octet_string(b"TEST00000001"))
    apdu = build_data_notification(axdr.structure(*items), invoke_id_and_priority=0x80000001, datetime=when)
    keys = Keys(ek=bytes(range(0x40, 0x50)))
    wire = protect(apdu, keys=keys, system_title=b"KFMg\x00\x00\x00\x01", invocation_counter=1, security_control=0x20)
    return mbus_frames(wire, max_data=245), keys
