"""Reading what users paste or capture: hex text in any common notation, or raw binary.

Hex text may use any whitespace, newlines, ``0x`` prefixes and ``:``/``,``/``;``/``-``
separators, and ``#`` comments to the end of a line.  A line may start with a
label, as terminals and loggers print them (``RX: 7E A1 ...``,
``12:00:01.123 > 7E A1 ...``, ``[2024-01-01 12:00:01] <- 7ea1...``): the
label is the line's leading words that are not hex (``RX:``, ``>``,
``12:00:01.123``), and leading dates and times (``2024-01-01``,
``12:00:01``), so a label's digits are never read as hex.  A labelled line is
one unit of its own; unlabelled lines join into one byte stream, as before (a
frame may span lines, even split inside a byte).

An input whose first line that carries hex comes before any byte that text
cannot hold is hex text; otherwise it is a binary capture.  Text is read line
by line as it arrives (standard input is decoded live), binary in chunks.
Hex is parsed on bytes with C-level helpers (``bytes.translate``,
``binascii.unhexlify``, one ``re`` pass for comments and prefixes), not
character by character.

::

    line      := [label] payload [# comment]
    label     := word+          each word not hex notation, or a date / time
    payload   := hex word+      digits with 0x prefixes and : , ; - separators
"""

from __future__ import annotations

import binascii
import os
import re
import stat
import sys
from typing import BinaryIO, Iterator
from decoders.link.p1 import plausible_header

_COMMENT = re.compile(rb"#[^\n]*")
_PREFIX = re.compile(rb"0[xX](?=[0-9a-fA-F])")
#: what joins hex digits: whitespace and the separators (deleted with bytes.translate)
_JOINERS = b" \t\n\r\v\f\x1c\x1d\x1e\x1f:,;-"  # (as str's \s: \x1c-\x1f too)
_HEXDIGITS = b"0123456789abcdefABCDEF"
_WORD = re.compile(rb"\S+")
#: one whitespace-separated word of hex notation
_HEX_WORD = re.compile(rb"(?:0[xX](?=[0-9a-fA-F])|[0-9a-fA-F:,;\-])+")
#: a date or a time of day that starts a line: a label, although its characters are hex notation
_DATE = rb"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_TIME = rb"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
_STAMP_WORD = re.compile(rb"(?:" + _DATE + rb"|" + _TIME + rb")")
#: a line that starts with one (searched after a newline: a literal first, so the search is fast)
_STAMP_LINE = re.compile(rb"\n[ \t\r\v\f]*(?:" + _DATE + rb"|" + _TIME + rb")(?=[ \t\r\v\f])")
#: bytes that text does not hold (controls other than tab, CR, FF, VT; DEL)
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_NOT_HEX = re.compile(rb"[^0-9a-fA-F]")


class InputError(ValueError):
    """An input that is neither hex text nor a readable file."""


def _digits(text: bytes) -> bytes:
    """Hex notation without comments, prefixes and joiners: the digits, and any character that is not one."""
    if b"#" in text:
        text = _COMMENT.sub(b"", text)
    if b"x" in text or b"X" in text:
        text = _PREFIX.sub(b"", text)
    return text.translate(None, _JOINERS)


def _stamped(block: bytes) -> bool:
    """Whether a line of ``block`` starts with a date or a time (then that line has a label)."""
    if b":" not in block and b"-" not in block:
        return False
    return _STAMP_LINE.search(b"\n" + block[:64]) is not None or _STAMP_LINE.search(block) is not None


def _bad_char(digits: bytes) -> str:
    m = _NOT_HEX.search(digits)
    return repr(chr(digits[m.start()])) if m else "?"


_STR_SEPARATORS = re.compile(r"[\s:,;\-]+")


def parse_hex(text: str | bytes) -> bytes:
    """Hex text (no labels) → bytes; raises InputError with the reason."""
    if isinstance(text, str):
        if not text.isascii():  # e.g. a key pasted with no-break spaces: Unicode whitespace separates too
            text = _STR_SEPARATORS.sub("", re.sub(r"#[^\n]*", "", text))
            if not text.isascii():
                bad = next(ch for ch in text if not ch.isascii())
                raise InputError(f"not hex text (found {bad!r})")
        data = text.encode("ascii")
    else:
        data = text
    digits = _digits(data)
    try:
        return binascii.unhexlify(digits)
    except (binascii.Error, ValueError):
        if _NOT_HEX.search(digits):
            raise InputError(f"not hex text (found {_bad_char(digits)})") from None
        raise InputError(f"odd number of hex digits ({len(digits)}): a digit is missing") from None


def looks_like_hex_text(data: bytes) -> bool:
    """Whether ``data`` is plain hex text (no labels) with an even number of digits."""
    if not data.isascii():
        return False
    try:
        parse_hex(data)
    except InputError:
        return False
    return True


def _is_text(data: bytes) -> bool:
    """Bytes that a text file holds: UTF-8 without control characters (an incomplete last character is fine)."""
    if _NOT_TEXT.search(data):
        return False
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(data) - 3 and exc.reason == "unexpected end of data"
    return True


def _show(label: bytes) -> str:
    text = label.decode("utf-8", "replace").strip()
    return repr(text if len(text) <= 40 else text[:37] + "...")


class HexReader:
    """Hex text → bytes, line by line as it arrives (sans-IO): ``feed(data)`` and ``close()`` return bytes.

    Unlabelled lines form one stream of digits (a byte may be split over a line
    break); a labelled line stands alone.  Lines that fail are reported in
    :attr:`problems` as ``(line, message)`` and skipped; the rest go on.
    Lines holding only a label (no hex) are counted in :attr:`skipped`.
    """

    def __init__(self) -> None:
        self.line = 0  #: lines completed so far
        self.problems: list[tuple[int, str]] = []
        self.skipped: list[int] = []  #: lines with a label and no hex
        self._partial = b""
        self._nibble = b""  #: an unpaired digit carried from the unlabelled lines
        self._odd_since = (0, 0)  #: (line, its digits) where the unlabelled digits last became odd

    def feed(self, data: bytes) -> bytes:
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial += data
            return b""
        block = self._partial + data[: cut + 1] if self._partial else data[: cut + 1]
        self._partial = data[cut + 1 :]
        return self._lines(block)

    def close(self) -> bytes:
        out = self._lines(self._partial) if self._partial else b""
        self._partial = b""
        if self._nibble:
            self._odd_run()
        return out

    # -- lines ------------------------------------------------------------------------
    def _lines(self, block: bytes) -> bytes:
        """Complete lines (the last may lack its newline only at the end of input)."""
        first = self.line + 1
        lines = block.count(b"\n") + (not block.endswith(b"\n"))
        digits = _digits(block)
        if not digits.translate(None, _HEXDIGITS) and not _stamped(block):
            # every line is unlabelled hex: the fast way, as one stream of digits
            self.line += lines
            return self._plain(digits, block, first)
        out = []
        for text in block.split(b"\n")[:lines]:
            self.line += 1
            piece = self._one(text)
            if piece:
                out.append(piece)
        return b"".join(out)

    def _one(self, text: bytes) -> bytes:
        if b"#" in text:
            text = text[: text.index(b"#")]
        start = -1
        for word in _WORD.finditer(text):
            w = word.group()
            if _HEX_WORD.fullmatch(w) and not _STAMP_WORD.fullmatch(w):
                start = word.start()
                break
            if start == -1:
                start = -2  # a label word seen
        if start == -1:  # no words
            return b""
        if start == -2:  # a label and no hex
            self.skipped.append(self.line)
            return b""
        if start == word.start() and not text[:start].strip():
            digits = _digits(text)
            if digits.translate(None, _HEXDIGITS):
                return self._fail(f"not hex text (found {_bad_char(digits)})")
            return self._plain(digits, text, self.line)
        label = text[:start]
        digits = _digits(text[start:])
        if digits.translate(None, _HEXDIGITS):
            return self._fail(f"not hex after the label {_show(label)} (found {_bad_char(digits)})")
        self._end_run()
        if len(digits) % 2:
            return self._fail(
                f"odd number of hex digits ({len(digits)}) after the label {_show(label)}: a digit is missing"
            )
        return binascii.unhexlify(digits)

    def _plain(self, digits: bytes, text: bytes, first: int) -> bytes:
        """Digits of unlabelled lines (from line ``first`` on): pairs out, an odd digit carried."""
        if self._nibble:
            digits = self._nibble + digits
        elif not digits:
            return b""
        if len(digits) % 2:
            self._odd_since = self._last_odd_start(text, first, bool(self._nibble))
            self._nibble, digits = digits[-1:], digits[:-1]
        else:
            self._nibble = b""
        return binascii.unhexlify(digits)

    def _last_odd_start(self, text: bytes, first: int, odd_before: bool) -> tuple[int, int]:
        """The line where the running count of unlabelled digits last turned odd (only when it ends odd)."""
        odd, since = odd_before, self._odd_since
        for i, line in enumerate(text.split(b"\n")):
            count = len(_digits(line))
            if count % 2:
                odd = not odd
                if odd:
                    since = (first + i, count)
        return since

    def _end_run(self) -> None:
        """A labelled line ends the unlabelled digits: a digit left over is an error of their run."""
        if self._nibble:
            self._odd_run()

    def _odd_run(self) -> None:
        self._nibble = b""
        line, count = self._odd_since
        self.problems.append((line, f"odd number of hex digits ({count}): a digit is missing"))

    def _fail(self, message: str) -> bytes:
        self.problems.append((self.line, message))
        return b""


def read_input(arg: str) -> tuple[str, bytes]:
    """An argument → (label for messages, bytes), read whole.  ``-`` reads standard input."""
    label, chunks = open_input(arg)
    data = b"".join(chunks)
    problems = getattr(chunks, "problems", ())
    if problems:
        line, message = problems[0]
        raise InputError(f"{label}: line {line}: {message}")
    return label, data


#: bytes read at a time from a file or standard input
CHUNK = 1 << 16
#: an input still undecided after this much (text without any hex yet) is taken as text
JUDGE_LIMIT = 1 << 20


class Chunks:
    """The bytes of one input, chunk by chunk, as they are read.

    ``kind`` becomes ``"text"`` or ``"binary"`` once judged; ``live`` says the
    input is a pipe or terminal, not a file (output should be flushed as it
    comes).  For text, :attr:`problems` and :attr:`skipped` are the reader's
    (see :class:`HexReader`); :meth:`take_problems` hands over new ones.
    """

    def __init__(self, fh: BinaryIO | None, label: str, chunk: int = CHUNK, close: bool = False,
                 data: bytes | None = None) -> None:
        self.label = label
        self.kind: str | None = None
        self.reader: HexReader | None = None
        self._fh, self._chunk, self._close, self._data = fh, chunk, close, data
        self._taken = 0
        self.live = False
        if fh is not None:
            try:
                self.live = not stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
            except (OSError, ValueError, AttributeError):
                self.live = False
        self._it = self._run()

    @property
    def problems(self) -> list[tuple[int, str]]:
        return self.reader.problems if self.reader else []

    @property
    def skipped(self) -> list[int]:
        return self.reader.skipped if self.reader else []

    def take_problems(self) -> list[tuple[int, str]]:
        new = self.problems[self._taken :]
        self._taken += len(new)
        return new

    def __iter__(self) -> Chunks:
        return self

    def __next__(self) -> bytes:
        return next(self._it)

    def _reads(self) -> Iterator[bytes]:
        if self._data is not None:
            yield self._data
            return
        fh = self._fh
        # a pipe: read1 hands over what has arrived (decoded as it comes); a file: full chunks
        read = getattr(fh, "read1", fh.read) if self.live else fh.read
        try:
            while block := read(self._chunk):
                yield block
        except OSError as exc:
            raise InputError(f"cannot read {self.label}: {exc.strerror}") from None
        finally:
            if self._close:
                fh.close()

    def _run(self) -> Iterator[bytes]:
        reads = self._reads()
        held = b""
        for block in reads:
            held += block
            kind = _judge(held, final=False)
            if kind is None:
                continue
            self.kind = kind
            break
        else:
            self.kind = _judge(held, final=True) or "text"
        if self.kind == "binary":
            if held:
                yield held
            yield from reads
            return
        self.reader = reader = HexReader()
        out = reader.feed(held)
        yielded = bool(out)
        if out:
            yield out
        for block in reads:
            out = reader.feed(block)
            if out:
                yielded = True
                yield out
        out = reader.close()
        if out or not yielded:
            yield out


def _judge(held: bytes, final: bool) -> str | None:
    """``"text"``, ``"binary"``, or None while undecided: the first line that carries hex decides for text."""
    lines = held.split(b"\n")
    if not final:
        lines.pop()  # the partial line: judged for bytes text cannot hold, below
    for line in lines:
        if line[:1] == b"/" and plausible_header(line, 0):
            return "binary"  # a P1 text telegram: its bytes as they are, not hex
        if not _is_text(line) or (not line.isascii() and not _complete_utf8(line)):
            return "binary"
        if _carries_hex(line):
            return "text"
    if final:
        return None if not held else ("text" if _is_text(held) else "binary")
    partial = held[held.rfind(b"\n") + 1 :]
    if not _is_text(partial):
        return "binary"
    if len(held) > JUDGE_LIMIT:
        return "text"
    return None


def _complete_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _carries_hex(line: bytes) -> bool:
    probe = HexReader()
    out = probe.feed(line + b"\n") + probe.close()
    return bool(out) and not probe.problems


def open_input(arg: str, chunk: int = CHUNK) -> tuple[str, Chunks]:
    """An argument → (label for messages, its bytes in chunks as read).  ``-`` is standard input.

    Hex text is parsed line by line as it arrives, a binary capture comes in
    chunks: memory stays flat on big files and a pipe is decoded live.  A read
    error is raised as :class:`InputError` by the iterator.
    """
    if arg == "-":
        return "stdin", Chunks(sys.stdin.buffer, "stdin", chunk)
    if os.path.exists(arg):
        if os.path.isdir(arg):
            raise InputError(f"{arg} is a directory")
        try:
            fh = open(arg, "rb")  # noqa: SIM115 - closed by Chunks
        except OSError as exc:
            raise InputError(f"cannot read {arg}: {exc.strerror}") from None
        return arg, Chunks(fh, arg, chunk, close=True)
    data = arg.encode("utf-8", "surrogateescape")
    chunks = Chunks(None, "argument", data=data)
    pieces = b"".join(chunks)
    if chunks.kind != "text" or chunks.problems or not pieces:
        label = arg if len(arg) <= 40 else arg[:37] + "..."
        reason = chunks.problems[0][1] if chunks.problems else "no hex digits"
        raise InputError(f"{label!r} is neither an existing file nor hex text: {reason}")
    return "argument", _Parsed(pieces)


class _Parsed(Chunks):
    """Hex given as an argument, already parsed: its bytes in one chunk."""

    def __init__(self, data: bytes) -> None:
        super().__init__(None, "argument", data=data)
        self.kind = "text"
        self._it = iter((data,))

