"""Reading what users paste or capture: hex text in any common notation, or raw binary.

Hex text may use any whitespace, newlines, ``0x`` prefixes and ``:``/``,``/``-``
separators, and ``#`` comments to the end of a line.  A file whose bytes are
not such text is a binary capture.
"""

from __future__ import annotations

import os
import re
import sys
from typing import BinaryIO, Iterator

_COMMENT = re.compile(r"#[^\n]*")
_PREFIX = re.compile(r"0[xX](?=[0-9a-fA-F])")
_SEPARATORS = re.compile(r"[\s:,;\-]+")
_HEX = re.compile(r"^[0-9a-fA-F]*$")


class InputError(ValueError):
    """An input that is neither hex text nor a readable file."""


def parse_hex(text: str) -> bytes:
    """Hex text → bytes; raises InputError with the reason."""
    cleaned = _SEPARATORS.sub("", _PREFIX.sub("", _COMMENT.sub("", text)))
    if not _HEX.match(cleaned):
        bad = next(ch for ch in cleaned if ch not in "0123456789abcdefABCDEF")
        raise InputError(f"not hex text (found {bad!r})")
    if len(cleaned) % 2:
        raise InputError(f"odd number of hex digits ({len(cleaned)}): a digit is missing")
    return bytes.fromhex(cleaned)


def looks_like_hex_text(data: bytes) -> bool:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return False
    try:
        parse_hex(text)
    except InputError:
        return False
    return True


def read_input(arg: str) -> tuple[str, bytes]:
    """An argument → (label for messages, bytes).  ``-`` reads standard input."""
    if arg == "-":
        data = sys.stdin.buffer.read()
        return "stdin", parse_hex(data.decode("ascii")) if looks_like_hex_text(data) else data
    if os.path.exists(arg):
        if os.path.isdir(arg):
            raise InputError(f"{arg} is a directory")
        try:
            with open(arg, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise InputError(f"cannot read {arg}: {exc.strerror}") from None
        if looks_like_hex_text(data):
            return arg, parse_hex(data.decode("ascii"))
        return arg, data
    try:
        return "argument", parse_hex(arg)
    except InputError as exc:
        label = arg if len(arg) <= 40 else arg[:37] + "..."
        raise InputError(f"{label!r} is neither an existing file nor hex text: {exc}") from None


#: bytes read at a time from a binary capture
CHUNK = 1 << 16


def open_input(arg: str, chunk: int = CHUNK) -> tuple[str, Iterator[bytes]]:
    """Like :func:`read_input`, but a binary capture comes in chunks, so memory stays flat on big files.

    The first chunk decides: a byte outside ASCII means binary (hex text is
    ASCII), and the rest is streamed; otherwise the whole input is read and
    judged as :func:`read_input` does (hex text is parsed whole).  A read
    error while streaming is raised as :class:`InputError` by the iterator.
    """
    if arg == "-":
        return "stdin", _chunks(sys.stdin.buffer, "stdin", chunk, close=False)
    if os.path.exists(arg):
        if os.path.isdir(arg):
            raise InputError(f"{arg} is a directory")
        try:
            fh = open(arg, "rb")
        except OSError as exc:
            raise InputError(f"cannot read {arg}: {exc.strerror}") from None
        return arg, _chunks(fh, arg, chunk, close=True)
    label, data = read_input(arg)
    return label, iter((data,))


def _chunks(fh: BinaryIO, label: str, chunk: int, close: bool) -> Iterator[bytes]:
    # stdin: read1 hands over what has arrived (a live pipe is decoded as it comes); a file: full chunks
    read = getattr(fh, "read1", fh.read) if label == "stdin" else fh.read
    try:
        first = read(chunk)
        if first.isascii():
            data = first + fh.read()  # maybe hex text: judged whole, as read_input does
            yield parse_hex(data.decode("ascii")) if looks_like_hex_text(data) else data
            return
        yield first
        while block := read(chunk):
            yield block
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror}") from None
    finally:
        if close:
            fh.close()
