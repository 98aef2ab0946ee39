"""A-XDR / BER length fields: ``nn`` below 0x80, else ``0x8K`` and K big-endian bytes."""

from __future__ import annotations


def read_length(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Return ``(length, next_pos)``; raises ``IndexError``/``ValueError`` on bad input."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    n = b & 0x7F
    if n == 0 or n > 4:
        raise ValueError(f"length prefix 0x{b:02X} is not valid (0x81..0x84 expected)")
    end = pos + 1 + n
    if end > len(buf):
        raise IndexError("length field runs past the end of the data")
    return int.from_bytes(buf[pos + 1 : end], "big"), end


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body
