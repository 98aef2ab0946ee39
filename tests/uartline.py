"""What a UART receiver makes of a line driven at another serial setting: a bit-level model for tests.

A pseudo terminal passes bytes, not bits: whatever baud rate and parity the
reader sets, it reads exactly the bytes written (and Linux keeps only the
baud rate and stop bits of a pty's termios, never parity or 7 data bits).
To test that ``han probe`` tells a right setting from a wrong one, the test
meter therefore writes what a real receiver at the reader's setting would
deliver: :func:`received` sends the bytes as a bit stream at the meter's
setting and samples it at the receiver's.

The receiver is the 16550's, as its data sheet describes it: it waits for
a falling edge (idle is 1), checks that the start bit is still low half a
bit later (else it was a glitch), samples each data bit, the parity bit
and the stop bit in the middle of its bit time, and delivers the byte
whatever the parity and stop bits were (pyserial turns parity checking
off: INPCK clear).  After a framing error (a stop bit read as 0) it takes
that low level as the next start bit.  Bytes go back to back, as meters
send them.  So, for example: 8E1 read at 8N1 loses framing wherever the
parity bit is 0; 8N1 read at 8E1 happens to deliver the right bytes
(the stop bit passes for a parity bit, the next start bit for a stop bit,
and the receiver resynchronises on it); any other baud rate gives garbage;
7E1 text read at 8N1 has the parity bit in bit 7.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    baud: int
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1


def bits(data: bytes, line: Line) -> list[int]:
    """The levels of the line, one per bit time, for ``data`` sent back to back."""
    out: list[int] = []
    for byte in data:
        out.append(0)
        value = byte & ((1 << line.bytesize) - 1)
        data_bits = [(value >> i) & 1 for i in range(line.bytesize)]
        out += data_bits
        ones = sum(data_bits)
        if line.parity == "E":
            out.append(ones & 1)
        elif line.parity == "O":
            out.append(1 - (ones & 1))
        elif line.parity == "M":
            out.append(1)
        elif line.parity == "S":
            out.append(0)
        out += [1] * line.stopbits
    return out


def received(data: bytes, sent: Line, receiver: Line) -> bytes:
    """The bytes a receiver at ``receiver`` reads from ``data`` sent at ``sent``."""
    if sent == receiver:
        return bytes(b & ((1 << receiver.bytesize) - 1) for b in data)
    levels = bits(data, sent)
    tx = 1.0 / sent.baud
    rx = 1.0 / receiver.baud
    end = len(levels) * tx

    def level(t: float) -> int:
        k = int(t / tx)
        return levels[k] if 0 <= k < len(levels) else 1

    def next_fall(t: float) -> float | None:
        """The first 1 -> 0 transition after time ``t`` (at a transmitter bit boundary)."""
        k = int(t / tx) + 1
        while k < len(levels):
            if levels[k] == 0 and levels[k - 1] == 1:
                return k * tx
            k += 1
        return None

    extra = (receiver.parity != "N") + receiver.stopbits
    out = bytearray()
    t = 0.0
    start: float | None = 0.0 if levels and levels[0] == 0 else next_fall(0.0)
    while start is not None and start < end:
        if level(start + rx / 2) != 0:  # a glitch, not a start bit
            start = next_fall(start + rx / 2)
            continue
        value = 0
        for i in range(receiver.bytesize):
            value |= level(start + (1.5 + i) * rx) << i
        out.append(value)
        stop_at = start + (1.5 + receiver.bytesize + extra - 1) * rx
        if level(stop_at) == 0:  # framing error: this low level is taken as the next start bit
            start = stop_at - rx / 2
            if start >= end:
                break
            continue
        t = stop_at
        start = next_fall(t)
    return bytes(out)
