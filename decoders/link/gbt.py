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

from ..errors import BrokenMessage, FramingError, TruncatedFrame
from ..lengths import encode_length, read_length
from ..xdlms.tags import GENERAL_BLOCK_TRANSFER
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


#: senders whose partial transfers are kept at once
MAX_SOURCES = 16


@dataclass(slots=True)
class _Transfer:
    """One sender's transfer being joined, or being skipped after it broke."""

    blocks: list[GbtBlock]
    carriers: list  #: what carried each block (the link messages), in order
    offset: int
    size: int = 0
    why: str | None = None  #: set once the transfer broke: its remaining blocks are skipped
    cause: str = ""
    discarded: int = 0


class GbtReassembler:
    """Joins GBT blocks into the APDU they carry.

    ``push(block, source, carrier, offset)`` returns a list of what the block
    completed: the :class:`GbtMessage` after the last block, and
    :class:`~decoders.errors.BrokenMessage` errors (layer ``gbt``), one per
    broken transfer (which is dropped, never half-decoded).  Recovery rules:

    * state is kept per ``source`` (the link address): another sender's
      blocks leave a pending transfer alone;
    * block 1 always starts a transfer: a pending one ends there, reported broken;
    * a block whose number does not follow the previous one breaks the
      transfer; it, and blocks that arrive without block 1, are skipped up to
      the block with the last-block bit, where the transfer is reported.
    """

    def __init__(self, max_message: int = MAX_MESSAGE, max_sources: int = MAX_SOURCES) -> None:
        self._open: dict = {}
        self._max = max_message
        self._max_sources = max_sources

    def reset(self) -> None:
        self._open.clear()

    @property
    def pending(self) -> int:
        """Blocks of unfinished transfers held (all senders)."""
        return sum(len(t.blocks) for t in self._open.values())

    def push(
        self, block: GbtBlock, source: object = None, carrier: object = None, offset: int = 0
    ) -> "list[GbtMessage | BrokenMessage]":
        """What ``block`` completed: the joined :class:`GbtMessage`, and one error per broken transfer."""
        out: list[GbtMessage | BrokenMessage] = []
        t = self._open.get(source)
        if t is not None:
            if block.number == 1:
                if t.why is None:
                    self._break(t, "missing_last", "its last block never came (block 1 of a new transfer began)")
                out.append(self._report(source, t))
                t = None
            elif t.why is None and block.number != t.blocks[-1].number + 1:
                prev = t.blocks[-1].number
                why = (
                    f"block {block.number} repeated"
                    if block.number == prev
                    else f"block {prev + 1} is missing (block {block.number} followed block {prev})"
                    if block.number > prev
                    else f"block {block.number} followed block {prev}"
                )
                self._break(t, "missing_segment", why)
        if t is None:
            if len(self._open) >= self._max_sources:
                old_source, old = next(iter(self._open.items()))
                if old.why is None:
                    self._break(old, "too_many_senders", f"more than {self._max_sources} senders had transfers open")
                out.append(self._report(old_source, old))
            t = self._open[source] = _Transfer([], [], offset)
            if block.number != 1:
                self._break(
                    t,
                    "missing_first",
                    f"block {block.number} arrived without block 1 (the capture started mid-transfer, or it was lost)",
                )
        if t.why is not None:
            t.discarded += 1
            if block.last:
                out.append(self._report(source, t))
            return out
        t.blocks.append(block)
        t.carriers.append(carrier)
        t.size += len(block.data)
        if t.size > self._max:
            self._break(t, "too_long", f"the transfer exceeds {self._max} bytes")
            if block.last:
                out.append(self._report(source, t))
            return out
        if block.last:
            del self._open[source]
            done = tuple(t.blocks)
            carriers = tuple(c for c in t.carriers if c is not None)
            out.append(GbtMessage(b"".join(b.data for b in done), done, carriers, t.offset))
        return out

    def flush(self) -> "list[BrokenMessage]":
        """End of input: every transfer still open is broken."""
        out = []
        for source, t in list(self._open.items()):
            if t.why is None:
                self._break(t, "incomplete", "the input ended before its last block")
            out.append(self._report(source, t))
        return out

    @staticmethod
    def _break(t: _Transfer, cause: str, why: str) -> None:
        t.why, t.cause = why, cause
        t.discarded += len(t.blocks)
        t.blocks, t.carriers, t.size = [], [], 0

    def _report(self, source: object, t: _Transfer) -> BrokenMessage:
        del self._open[source]
        err = BrokenMessage(
            "gbt",
            f"general-block-transfer broken: {t.why}; {t.discarded} block(s) discarded, the push is lost",
            reason="broken_blocks",
            cause=t.cause,
            offset=t.offset,
        )
        return err


@dataclass(frozen=True, slots=True)
class GbtMessage:
    payload: bytes
    blocks: tuple[GbtBlock, ...]
    carriers: tuple = ()  #: the link messages that carried the blocks (as passed to ``push``)
    offset: int = 0  #: stream offset of block 1 (as passed to ``push``)


def build_blocks(apdu: bytes, *, block_size: int = 112, window: int = 0) -> list[bytes]:
    """Split ``apdu`` into GBT APDUs (streaming; the last has bit 7 set), for tests and the simulator."""
    chunks = [apdu[i : i + block_size] for i in range(0, len(apdu), block_size)] or [b""]
    out = []
    for i, chunk in enumerate(chunks, start=1):
        control = 0x40 | (window & 0x3F) | (0x80 if i == len(chunks) else 0)
        out.append(bytes((GENERAL_BLOCK_TRANSFER, control)) + i.to_bytes(2, "big") + b"\x00\x00" + encode_length(len(chunk)) + chunk)
    return out


__all__ = ["GbtBlock", "GbtMessage", "GbtReassembler", "build_blocks", "parse_block", "GENERAL_BLOCK_TRANSFER"]
