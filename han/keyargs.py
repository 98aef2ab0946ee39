"""Command-line values in hex: system titles, counters, bytes, HLS secrets, with one-line errors.

Keys come from :mod:`han.keysource` (the one key loader).  A value marked
secret never appears in an error message: it is reported by its option name
and length only.
"""

from __future__ import annotations

from .cli import UsageError
from .inputs import InputError, parse_hex


def hex_bytes(value: str, option: str, *, secret: bool = False, lengths: tuple[int, ...] = ()) -> bytes:
    """Parse hex as :func:`han.inputs.parse_hex` reads it (``00112233``, ``00 11 22``, ``00:11``, ``0x0011``...)."""
    try:
        data = parse_hex(value)
    except InputError:
        shown = "" if secret else f" ({value!r})"
        raise UsageError(f"{option}: not a hex string{shown}; write bytes as hex digits, e.g. 000102...") from None
    if lengths and len(data) not in lengths:
        want = " or ".join(str(n) for n in lengths)
        raise UsageError(f"{option}: {len(data)} bytes given, {want} expected")
    return data


def system_title(value: str | None, option: str = "--system-title") -> bytes | None:
    return None if value is None else hex_bytes(value, option, lengths=(8,))


def counter(value: str, option: str = "--invocation-counter") -> int:
    """Decimal, or hex with a 0x prefix; 0 .. 2**32 - 1."""
    try:
        n = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not a number (decimal, or hex with 0x)") from None
    if not 0 <= n <= 0xFFFFFFFF:
        raise UsageError(f"{option}: {n} is outside 0..4294967295 (a 32-bit counter)")
    return n


def byte(value: str, option: str) -> int:
    """One byte written in hex (``30``, ``0x30``)."""
    data = hex_bytes(value, option)
    if len(data) != 1:
        raise UsageError(f"{option}: one byte in hex expected (e.g. 30), got {len(data)} bytes")
    return data[0]


def secret_text(text: str | None, hex_value: str | None, option: str = "--hls-secret") -> bytes | None:
    """The HLS secret as typed (ASCII/UTF-8) or, with ``--hls-secret-hex``, as hex."""
    if text is not None and hex_value is not None:
        raise UsageError(f"give {option} or {option}-hex, not both")
    if hex_value is not None:
        return hex_bytes(hex_value, f"{option}-hex", secret=True)
    return None if text is None else text.encode("utf-8")
