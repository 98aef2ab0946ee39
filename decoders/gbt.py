"""DLMS General-Block-Transfer (GBT, APDU tag 0xE0): one APDU in several blocks.

Landis+Gyr meters in Switzerland and Austria push long lists this way, one
block per (unsegmented) HDLC frame::

    E0 | block-control | block-number (2) | block-number-ack (2) | length | block data
         bit 7  last block
         bit 6  streaming (the sender does not wait for acknowledgements)
         bits 5..0  window size

The blocks' data, joined in block-number order, is the original APDU; it
may itself be ciphered (0xDB).  Only the first block's HDLC frame carries the
LLC header.  :func:`parse_block` reads one block; :class:`GbtReassembler`
joins them and reports gaps, duplicates and transfers that start midway.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FramingError, TruncatedFrame
from .lengths import encode_length, read_length

GENERAL_BLOCK_TRANSFER = 0xE0
MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True, slots=True)
class GbtBlock:
    control: int
    number: int
    ack: int
    data: bytes
    header_length: int  #: bytes before the block data (tag, control, numbers, length)
    length_bytes: bytes  #: the length field as sent (for annotated dumps)

    @property
    def last(self) -> bool:
        return bool(self.control & 0x80)

    @property
    def streaming(self) -> bool:
        return bool(self.control & 0x40)

    @property
    def window(self) -> int:
        return self.control & 0x3F


def parse_block(apdu: bytes | memoryview) -> GbtBlock:
    """Parse one general-block-transfer APDU; its length must match the data exactly."""
    apdu = bytes(apdu)
    if len(apdu) < 7 or apdu[0] != GENERAL_BLOCK_TRANSFER:
        raise FramingError("general-block-transfer APDU is too short for its header (7 bytes at least)")
    control = apdu[1]
    number = int.from_bytes(apdu[2:4], "big")
    ack = int.from_bytes(apdu[4:6], "big")
    try:
        length, pos = read_length(apdu, 6)
    except (IndexError, ValueError) as exc:
        raise FramingError(f"general-block-transfer block length is malformed ({exc})") from None
    if pos + length != len(apdu):
        raise TruncatedFrame(
            f"general-block-transfer block {number} says {length} data bytes but {len(apdu) - pos} follow"
        )
    return GbtBlock(control, number, ack, apdu[pos:], pos, apdu[6:pos])


class GbtReassembler:
    """Joins GBT blocks into the APDU they carry.

    ``push(block)`` returns a list of what the block completed: the
    :class:`GbtMessage` after the last block, and :class:`FramingError`
    values for broken transfers (which are dropped, never half-decoded).
    """

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._blocks: list[GbtBlock] = []
        self._size = 0
        self._max = max_message
        #: a broken transfer being skipped: (error, blocks discarded so far); reported once it ends
        self._broken: tuple[FramingError, int] | None = None

    def reset(self) -> None:
        self._blocks = []
        self._size = 0

    @property
    def pending(self) -> int:
        return len(self._blocks)

    def _report_broken(self, out: list) -> None:
        if self._broken is not None:
            err, n = self._broken
            err.args = (f"{err.message}; {n} block(s) discarded",)
            out.append(err)
            self._broken = None

    def _break(self, why: str, discarded: int) -> None:
        err = FramingError(f"general-block-transfer broken: {why}")
        err.reason = "broken_blocks"
        self._broken = (err, discarded)
        self.reset()

    def push(self, block: GbtBlock) -> "list[GbtMessage | FramingError]":
        """What ``block`` completed: the joined :class:`GbtMessage`, and one error per broken transfer."""
        out: list[GbtMessage | FramingError] = []
        if self._broken is not None:
            if block.number != 1:
                err, n = self._broken
                self._broken = (err, n + 1)
                if block.last:
                    self._report_broken(out)
                return out
            self._report_broken(out)  # a new transfer starts: the broken one is over
        blocks = self._blocks
        if blocks and block.number != blocks[-1].number + 1:
            self._break(f"block {block.number} followed block {blocks[-1].number}", len(blocks) + 1)
            if block.last:
                self._report_broken(out)
            return out
        if not blocks and block.number != 1:
            self._break(
                f"block {block.number} arrived without block 1 (the capture started in the middle of a transfer?)", 1
            )
            if block.last:
                self._report_broken(out)
            return out
        blocks.append(block)
        self._size += len(block.data)
        if self._size > self._max:
            self._break(f"the transfer exceeds {self._max} bytes", len(blocks))
            if block.last:
                self._report_broken(out)
            return out
        if block.last:
            done = tuple(blocks)
            self.reset()
            out.append(GbtMessage(b"".join(b.data for b in done), done))
        return out

    def flush(self) -> FramingError | None:
        out: list = []
        self._report_broken(out)
        if self._blocks:
            n = len(self._blocks)
            self.reset()
            err = TruncatedFrame(
                f"general-block-transfer incomplete: {n} block(s) received, the last block never came"
            )
            err.reason = "broken_blocks"
            out.append(err)
        return out[0] if out else None


@dataclass(frozen=True, slots=True)
class GbtMessage:
    payload: bytes
    blocks: tuple[GbtBlock, ...]


def build_blocks(apdu: bytes, *, block_size: int = 112, window: int = 0) -> list[bytes]:
    """Split ``apdu`` into GBT APDUs (streaming; the last has bit 7 set), for tests and the simulator."""
    chunks = [apdu[i : i + block_size] for i in range(0, len(apdu), block_size)] or [b""]
    out = []
    for i, chunk in enumerate(chunks, start=1):
        control = 0x40 | (window & 0x3F) | (0x80 if i == len(chunks) else 0)
        out.append(bytes((GENERAL_BLOCK_TRANSFER, control)) + i.to_bytes(2, "big") + b"\x00\x00" + encode_length(len(chunk)) + chunk)
    return out


__all__ = ["GbtBlock", "GbtMessage", "GbtReassembler", "build_blocks", "parse_block", "GENERAL_BLOCK_TRANSFER"]
