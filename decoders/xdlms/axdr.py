"""A-XDR encoding of COSEM data (IEC 62056-6-2 ``Data``), decode and encode.

Every value is a :class:`Data` ``(tag, value)`` pair: a typed, immutable tuple
that is cheap to create on the hot path (a push holds ~65 of them).

============  ====  ===============================  ========================
type          tag   encoding after the tag            Python value
============  ====  ===============================  ========================
null-data       0   nothing                          ``None``
array           1   count, items                     tuple of Data
structure       2   count, items                     tuple of Data
boolean         3   1 byte                           bool
bit-string      4   bit count, ceil(n/8) bytes       str of '0'/'1'
double-long     5   int32                            int
double-long-u   6   uint32                           int
octet-string    9   length, bytes                    bytes
visible-string 10   length, bytes                    str
utf8-string    12   length, bytes                    str
bcd            13   1 byte                           int
integer        15   int8                             int
long           16   int16                            int
unsigned       17   uint8                            int
long-unsigned  18   uint16                           int
compact-array  19   type description, contents       tuple of Data
long64         20   int64                            int
long64-u       21   uint64                           int
enum           22   uint8                            int
float32        23   IEEE 754 single                  float
float64        24   IEEE 754 double                  float
date-time      25   12 bytes                         bytes (see cosem_time)
date           26   5 bytes                          bytes
time           27   4 bytes                          bytes
============  ====  ===============================  ========================

Counts and lengths are A-XDR lengths (``nn`` or ``0x8K`` + K bytes).
"""

from __future__ import annotations

import re
import struct
import weakref
from typing import Any, NamedTuple

from ..errors import AxdrError
from ..lengths import encode_length

NULL, ARRAY, STRUCTURE, BOOLEAN, BIT_STRING = 0, 1, 2, 3, 4
DOUBLE_LONG, DOUBLE_LONG_UNSIGNED = 5, 6
OCTET_STRING, VISIBLE_STRING, UTF8_STRING, BCD = 9, 10, 12, 13
INTEGER, LONG, UNSIGNED, LONG_UNSIGNED, COMPACT_ARRAY = 15, 16, 17, 18, 19
LONG64, LONG64_UNSIGNED, ENUM, FLOAT32, FLOAT64 = 20, 21, 22, 23, 24
DATE_TIME, DATE, TIME = 25, 26, 27


class Data(NamedTuple):
    """One A-XDR value: its type tag and the Python value."""

    tag: int
    value: Any

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.tag, f"tag_{self.tag}")


#: tag -> the standard's type name (snake case)
TYPE_NAMES: dict[int, str] = {
    NULL: "null_data",
    ARRAY: "array",
    STRUCTURE: "structure",
    BOOLEAN: "boolean",
    BIT_STRING: "bit_string",
    DOUBLE_LONG: "double_long",
    DOUBLE_LONG_UNSIGNED: "double_long_unsigned",
    OCTET_STRING: "octet_string",
    VISIBLE_STRING: "visible_string",
    UTF8_STRING: "utf8_string",
    BCD: "bcd",
    INTEGER: "integer",
    LONG: "long",
    UNSIGNED: "unsigned",
    LONG_UNSIGNED: "long_unsigned",
    COMPACT_ARRAY: "compact_array",
    LONG64: "long64",
    LONG64_UNSIGNED: "long64_unsigned",
    ENUM: "enum",
    FLOAT32: "float32",
    FLOAT64: "float64",
    DATE_TIME: "date_time",
    DATE: "date",
    TIME: "time",
}

#: fixed-size types: tag -> (size, struct format or None for raw bytes)
_FIXED: dict[int, tuple[int, str | None]] = {
    BOOLEAN: (1, "?"),
    DOUBLE_LONG: (4, ">i"),
    DOUBLE_LONG_UNSIGNED: (4, ">I"),
    BCD: (1, "B"),
    INTEGER: (1, "b"),
    LONG: (2, ">h"),
    UNSIGNED: (1, "B"),
    LONG_UNSIGNED: (2, ">H"),
    LONG64: (8, ">q"),
    LONG64_UNSIGNED: (8, ">Q"),
    ENUM: (1, "B"),
    FLOAT32: (4, ">f"),
    FLOAT64: (8, ">d"),
    DATE_TIME: (12, None),
    DATE: (5, None),
    TIME: (4, None),
}
_UNPACK = {tag: (size, struct.Struct(fmt).unpack_from if fmt else None) for tag, (size, fmt) in _FIXED.items()}
_FIXED_TABLE: list = [_UNPACK.get(t) for t in range(256)]
_PACK = {tag: struct.Struct(fmt).pack for tag, (_s, fmt) in _FIXED.items() if fmt}

MAX_DEPTH = 16  # nesting limit: a hostile input cannot exhaust the stack


def _truncated(message: str) -> AxdrError:
    """An error for data that ends before the value does: more bytes could complete it.

    The raw-APDU framer delimits a plain data-notification by decoding it,
    and waits for more bytes only on these; any other error is final, so a
    candidate in noise is given up at once instead of being decoded again
    with every chunk that arrives.
    """
    err = AxdrError(message)
    err.truncated = True
    return err


def _length(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise _truncated(f"data ends at offset {pos} where a length was expected (truncated)")
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    n = b & 0x7F
    if n == 0 or n > 4:
        raise AxdrError(f"invalid length prefix 0x{b:02X} at offset {pos}")
    if pos + 1 + n > len(buf):
        raise _truncated(f"length prefix 0x{b:02X} at offset {pos} is cut off: the data ends first")
    return int.from_bytes(buf[pos + 1 : pos + 1 + n], "big"), pos + 1 + n


def decode_at(buf: bytes, pos: int = 0, _depth: int = 0) -> tuple[Data, int]:
    """Decode one value starting at ``buf[pos]``; return it and the next offset.

    Iterative (an explicit stack instead of recursion) with the common types
    inline: this is the hot path of every push.  The innermost open container
    lives in local variables; outer ones wait on ``stack``.  Raises
    :class:`AxdrError` with the offset on truncated, over-nested or unknown data.
    """
    n = len(buf)
    new = tuple.__new__
    fixed_table = _FIXED_TABLE
    stack: list[tuple[int, int, list]] = []  # outer open containers: (tag, left, items)
    cur_tag = 0
    cur_left = 0
    cur_items: list | None = None
    while True:
        if pos >= n:
            raise _truncated(f"data ends at offset {pos} where a value was expected (truncated)")
        tag = buf[pos]
        pos += 1
        fixed = fixed_table[tag]
        if fixed is not None:
            size, unpack = fixed
            end = pos + size
            if end > n:
                raise _truncated(f"{TYPE_NAMES[tag]} at offset {pos - 1} needs {size} bytes; the data ends first")
            value = new(Data, (tag, buf[pos:end] if unpack is None else unpack(buf, pos)[0]))
            pos = end
        elif tag == OCTET_STRING and pos < n and buf[pos] < 0x80:
            end = pos + 1 + buf[pos]
            if end > n:
                raise _truncated(f"octet_string at offset {pos - 1} claims {buf[pos]} bytes; the data ends first")
            value = new(Data, (OCTET_STRING, buf[pos + 1 : end]))
            pos = end
        elif tag == STRUCTURE or tag == ARRAY:
            if pos >= n:
                raise _truncated(f"{TYPE_NAMES[tag]} at offset {pos - 1} has no element count (truncated)")
            count, pos = _length(buf, pos)
            if count > n - pos:
                raise _truncated(
                    f"{TYPE_NAMES[tag]} at offset {pos - 1} claims {count} elements; the data is too short"
                )
            if count:
                if cur_items is not None:
                    if len(stack) + 1 + _depth >= MAX_DEPTH:
                        raise AxdrError(f"data nested deeper than {MAX_DEPTH} levels at offset {pos - 1}")
                    stack.append((cur_tag, cur_left, cur_items))
                cur_tag, cur_left, cur_items = tag, count, []
                continue
            value = new(Data, (tag, ()))
        else:
            value, pos = _decode_simple(tag, buf, pos, _depth + len(stack) + (cur_items is not None))
        # hand the finished value to its container; close containers that are full
        while cur_items is not None:
            cur_items.append(value)
            cur_left -= 1
            if cur_left:
                break
            value = new(Data, (cur_tag, tuple(cur_items)))
            if stack:
                cur_tag, cur_left, cur_items = stack.pop()
            else:
                cur_items = None
        else:
            return value, pos


def _decode_simple(tag: int, buf: bytes, pos: int, depth: int) -> tuple[Data, int]:
    """Decode the value of a known ``tag`` starting at ``pos`` (after the tag)."""
    fixed = _UNPACK.get(tag)
    if fixed is not None:
        size, unpack = fixed
        end = pos + size
        if end > len(buf):
            raise _truncated(f"{TYPE_NAMES[tag]} at offset {pos - 1} needs {size} bytes; the data ends first")
        return Data(tag, buf[pos:end] if unpack is None else unpack(buf, pos)[0]), end
    if tag == OCTET_STRING or tag == VISIBLE_STRING or tag == UTF8_STRING:
        n, pos = _length(buf, pos)
        end = pos + n
        if end > len(buf):
            raise _truncated(f"{TYPE_NAMES[tag]} at offset {pos - 1} claims {n} bytes; the data ends first")
        raw = buf[pos:end]
        if tag == OCTET_STRING:
            return Data(tag, raw), end
        return Data(tag, raw.decode("latin-1" if tag == VISIBLE_STRING else "utf-8", "replace")), end
    if tag == NULL:
        return Data(NULL, None), pos
    if tag == BIT_STRING:
        nbits, pos = _length(buf, pos)
        end = pos + (nbits + 7) // 8
        if end > len(buf):
            raise _truncated(f"bit-string at offset {pos - 1} claims {nbits} bits; the data ends first")
        bits = "".join(f"{b:08b}" for b in buf[pos:end])[:nbits]
        return Data(tag, bits), end
    if tag == COMPACT_ARRAY:
        return _decode_compact_array(buf, pos, depth)
    raise AxdrError(f"unknown A-XDR type tag 0x{tag:02X} at offset {pos - 1}")


def decode(buf: bytes) -> Data:
    """Decode exactly one value that fills ``buf``: trailing bytes are an error."""
    value, end = decode_at(bytes(buf), 0)
    if end != len(buf):
        raise AxdrError(f"{len(buf) - end} byte(s) left over after the value ended at offset {end}")
    return value


# -- compact array ------------------------------------------------------------
def _type_description(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """TypeDescription: a simple tag, ``01 count(2) desc`` or ``02 count desc...``."""
    if depth >= MAX_DEPTH:
        raise AxdrError("compact-array type description nested too deeply")
    try:
        tag = buf[pos]
    except IndexError:
        raise _truncated("compact-array type description is truncated") from None
    pos += 1
    if tag == ARRAY:
        if pos + 2 > len(buf):
            raise _truncated("compact-array type description is truncated")
        count = int.from_bytes(buf[pos : pos + 2], "big")
        inner, pos = _type_description(buf, pos + 2, depth + 1)
        if count and not _min_size(inner):
            # nothing in the contents would bound it: 13 01 FFFF 01 FFFF 00 (9 bytes) asks for 2**32 nulls
            raise AxdrError(
                f"compact-array type description at offset {pos - 1} declares an array of {count} elements"
                " that take no bytes (null-data or empty structures): not decodable (corrupted data?)"
            )
        return (ARRAY, count, inner), pos
    if tag == STRUCTURE:
        count, pos = _length(buf, pos)
        members = []
        for _ in range(count):
            m, pos = _type_description(buf, pos, depth + 1)
            members.append(m)
        return (STRUCTURE, tuple(members)), pos
    if tag in TYPE_NAMES and tag != COMPACT_ARRAY:
        return tag, pos
    raise AxdrError(f"unknown type 0x{tag:02X} in a compact-array type description")


def _min_size(desc: Any) -> int:
    """The fewest content bytes one element of type description ``desc`` takes (0: null-data, empty structure).

    An array of zero-size elements is refused when its description is read:
    its count is not checked against the contents by anything else, and
    nested ones multiply (2**32 values from a 9-byte input).
    """
    if isinstance(desc, tuple):
        if desc[0] == ARRAY:
            return desc[1] * _min_size(desc[2])
        return sum(_min_size(m) for m in desc[1])
    fixed = _FIXED.get(desc)
    if fixed is not None:
        return fixed[0]
    return 0 if desc == NULL else 1  # strings and bit-strings: at least their length byte


def _decode_untagged(desc: Any, buf: bytes, pos: int, depth: int) -> tuple[Data, int]:
    if isinstance(desc, tuple):
        if desc[0] == ARRAY:
            _tag, count, inner = desc
            items = []
            for _ in range(count):
                item, pos = _decode_untagged(inner, buf, pos, depth + 1)
                items.append(item)
            return Data(ARRAY, tuple(items)), pos
        items = []
        for member in desc[1]:
            item, pos = _decode_untagged(member, buf, pos, depth + 1)
            items.append(item)
        return Data(STRUCTURE, tuple(items)), pos
    return _decode_simple(desc, buf, pos, depth)


def _decode_compact_array(buf: bytes, pos: int, depth: int) -> tuple[Data, int]:
    desc, pos = _type_description(buf, pos, depth)
    n, pos = _length(buf, pos)
    end = pos + n
    if end > len(buf):
        raise _truncated("compact-array contents are truncated")
    contents = bytes(buf[pos:end])
    items = []
    p = 0
    while p < len(contents):
        try:
            item, q = _decode_untagged(desc, contents, p, depth + 1)
        except AxdrError as exc:
            exc.truncated = False  # the contents' length is known: more data cannot complete them
            raise
        if q == p:
            raise AxdrError("compact-array elements of zero size cannot be counted")
        items.append(item)
        p = q
    if p != len(contents):
        raise AxdrError("compact-array contents do not end on an element boundary")
    return Data(COMPACT_ARRAY, tuple(items)), end


# -- templates: the fast path for a meter's repeated pushes -------------------------
#: struct code of the value bytes of each fixed-size type (the same formats as decoding uses)
_SLOT_CODES: dict[int, str] = {
    tag: (fmt.lstrip(">") if fmt else f"{size}s") for tag, (size, fmt) in _FIXED.items()
}
#: the types whose value bytes are template slots: the fixed-size types and strings
SLOT_TYPES = frozenset(_SLOT_CODES) | {OCTET_STRING, VISIBLE_STRING, UTF8_STRING}
#: templates cover at most this many values (bigger bodies, e.g. load profiles, are decoded as usual)
MAX_TEMPLATE_SLOTS = 1024


class Template:
    """The byte layout of one encoded value with its values left open.

    A meter pushes the same list again and again: the same tags, element
    counts and string lengths (the *skeleton*), only the values change.  A
    template splits an encoding that :func:`decode_at` accepted into
    skeleton runs and *slots* (the value bytes of the fixed-size types and
    of octet, visible and UTF-8 strings, in pre-order) and compiles one
    :class:`struct.Struct` that cuts a buffer the same way::

        02 19 0A 0E | "Kamstrup_V0001" | 09 06 | 01 01 01 08 00 FF | 06 | 00 0D 39 4C | 09 06 | ...
        '-skeleton-'  '--- slot 0 ---'  '-sk-'  '---- slot 1 ----'  sk  '-- slot 2 -'  sk

    :meth:`match` accepts a buffer of the same size whose skeleton runs are
    byte for byte the same and returns the slot values, as decoding gives
    them (text decoded).  That is exact: decoding reads only tags, counts
    and lengths to find its way, and they all lie in the skeleton, so the
    same skeleton decodes to the same tree with these values in its slots
    (see :func:`slot_leaves`).  Null-data and lengths stay in the skeleton.

    Templates of equal layout are equal (and :func:`make_template` hands out
    one object for them while any is in use), so what the layers above
    cache per template is shared by all streams of the same list.
    """

    __slots__ = ("size", "tags", "_unpack", "_mask", "_skeleton_bits", "_skeleton", "_texts", "_key", "_hash",
                 "__weakref__")  # fmt: skip

    def __init__(
        self, size: int, tags: tuple[int, ...], fmt: str, skeleton: tuple[bytes, ...], texts: tuple = ()
    ) -> None:
        self.size = size  #: bytes the encoded value takes
        self.tags = tags  #: A-XDR type tag of each slot
        # fmt alternates skeleton runs ("3s") and slot codes, beginning with a run: match() compares the runs
        # as one integer under a mask and unpacks only the slots (the runs become pad bytes, "3x")
        codes = re.findall(r"\d*\D", fmt[1:])
        mask, bits, slots, runs = [], [], [">"], iter(skeleton)
        for k, code in enumerate(codes):
            n = struct.calcsize(">" + code)
            if k % 2 == 0:
                mask.append(b"\xff" * n)
                bits.append(next(runs))
                slots.append(f"{n}x")
            else:
                mask.append(bytes(n))
                bits.append(bytes(n))
                slots.append(code)
        self._mask = int.from_bytes(b"".join(mask), "big")
        self._skeleton_bits = int.from_bytes(b"".join(bits), "big")
        self._unpack = struct.Struct("".join(slots)).unpack_from
        self._skeleton = skeleton
        self._texts = texts  #: (slot, encoding) of the text slots, decoded after the cut
        self._key = (size, fmt, skeleton)
        self._hash = hash(self._key)

    def match(self, buf: bytes, pos: int = 0) -> tuple | None:
        """The slot values when ``buf[pos:pos + size]`` has this template's skeleton, else None.

        The caller makes sure ``size`` bytes are there (the cache keys templates by size).
        """
        if int.from_bytes(buf[pos : pos + self.size], "big") & self._mask != self._skeleton_bits:
            return None
        values = self._unpack(buf, pos)
        if not self._texts:
            return values
        values = list(values)
        for k, encoding in self._texts:
            values[k] = values[k].decode(encoding, "replace")
        return tuple(values)

    def __eq__(self, other: object) -> bool:
        return other is self or (type(other) is Template and self._key == other._key)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return self._hash


#: the templates in use, one object per layout (a stream of each of many meters of one kind shares it)
_TEMPLATES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def make_template(buf: bytes, pos: int, end: int) -> Template | None:
    """The template of the value encoded in ``buf[pos:end]``, which :func:`decode_at` accepted.

    None when the value holds a type templates leave out (bit-string,
    compact-array) or more than :data:`MAX_TEMPLATE_SLOTS` values.
    """
    fmt = [">"]
    skeleton: list[bytes] = []
    tags: list[int] = []
    texts: list[tuple[int, str]] = []
    run = pos  # start of the current skeleton run
    p = pos
    todo = 1  # values still to read: one, plus the elements of every container opened
    while todo:
        todo -= 1
        tag = buf[p]
        p += 1
        if tag == STRUCTURE or tag == ARRAY:
            count, p = _length(buf, p)
            todo += count
            continue
        code = _SLOT_CODES.get(tag)
        if code is not None:
            size = _FIXED[tag][0]
        elif tag == OCTET_STRING or tag == VISIBLE_STRING or tag == UTF8_STRING:
            size, p = _length(buf, p)
            code = f"{size}s"
            if tag != OCTET_STRING:
                texts.append((len(tags), "latin-1" if tag == VISIBLE_STRING else "utf-8"))
        elif tag == NULL:
            continue
        else:
            return None
        if len(tags) >= MAX_TEMPLATE_SLOTS:
            return None
        skeleton.append(buf[run:p])
        fmt.append(f"{p - run}s{code}")
        tags.append(tag)
        p += size
        run = p
    if p != end:
        raise AxdrError(f"template of a value that ends at {p}, not {end}")  # a caller's bug, never data
    if p > run:
        skeleton.append(buf[run:p])
        fmt.append(f"{p - run}s")
    text = "".join(fmt)
    key = (end - pos, text, tuple(skeleton))
    template = _TEMPLATES.get(key)
    if template is None:
        template = Template(end - pos, tuple(tags), text, tuple(skeleton), tuple(texts))
        _TEMPLATES[key] = template
    return template


def slot_leaves(value: Data) -> list[Data]:
    """The values of ``value`` that are template slots, in the order :meth:`Template.match` returns them."""
    out: list[Data] = []
    stack = [value]
    while stack:
        d = stack.pop()
        tag = d.tag
        if tag == STRUCTURE or tag == ARRAY:
            stack.extend(reversed(d.value))
        elif tag in SLOT_TYPES:
            out.append(d)
    return out


#: after too many new skeletons of one size, learn only every this many times
RETRY_EVERY = 64


class Templates:
    """A bounded cache of :class:`Template` values by encoded size, for one stream of pushes.

    ``match`` tries the few templates of a body's size; ``learn`` adds one
    after a full decode.  At most ``maxsize`` sizes are kept (the one first
    seen dropped first) with at most ``per_size`` templates each (the oldest
    dropped first).  A size that keeps producing new skeletons
    (text that changes every push, say) stops learning after
    ``4 * per_size`` templates and then tries only every
    :data:`RETRY_EVERY` th time: such a stream costs little more than
    decoding without templates, and a list that settles down later still
    gets its template.
    """

    def __init__(self, maxsize: int = 32, per_size: int = 4) -> None:
        self.maxsize = maxsize
        self.per_size = per_size
        self._by_size: dict[int, list] = {}  # size -> [tries to learn, template, template, ...]

    def __len__(self) -> int:
        return sum(len(entry) - 1 for entry in self._by_size.values())

    def match(self, buf: bytes, pos: int) -> tuple[Template, tuple] | None:
        entry = self._by_size.get(len(buf) - pos)
        if entry is not None:
            for t in entry[1:]:
                values = t.match(buf, pos)
                if values is not None:
                    return t, values
        return None

    def learn(self, buf: bytes, pos: int, end: int) -> Template | None:
        """Add the template of ``buf[pos:end]`` (decoded before); None when none is made."""
        size = end - pos
        entry = self._by_size.get(size)
        if entry is None:
            while len(self._by_size) >= self.maxsize:
                del self._by_size[next(iter(self._by_size))]
            entry = self._by_size[size] = [0]
        tries = entry[0]
        entry[0] = tries + 1
        if tries >= 4 * self.per_size and tries % RETRY_EVERY:
            return None
        template = make_template(buf, pos, end)
        if template is None:
            entry[0] = max(tries + 1, 4 * self.per_size)  # a type templates leave out: try again only rarely
            return None
        entry.append(template)
        if len(entry) - 1 > self.per_size:
            del entry[1]
        return template


# -- encoding -----------------------------------------------------------------
def encode(data: Data) -> bytes:
    """Encode a :class:`Data` value (the inverse of :func:`decode`).

    Compact arrays are encoded as plain arrays of their elements' type.
    """
    out = bytearray()
    _encode(data, out)
    return bytes(out)


def _encode(data: Data, out: bytearray) -> None:
    tag, value = data
    if tag == COMPACT_ARRAY:
        tag = ARRAY
    out.append(tag)
    if tag in (ARRAY, STRUCTURE):
        out += encode_length(len(value))
        for item in value:
            _encode(item, out)
    elif tag in _PACK:
        out += _PACK[tag](value)
    elif tag in (DATE_TIME, DATE, TIME):
        size = _FIXED[tag][0]
        if len(value) != size:
            raise AxdrError(f"{TYPE_NAMES[tag]} needs {size} bytes, got {len(value)}")
        out += value
    elif tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        raw = value if isinstance(value, (bytes, bytearray)) else value.encode(
            "latin-1" if tag == VISIBLE_STRING else "utf-8"
        )
        out += encode_length(len(raw))
        out += raw
    elif tag == BIT_STRING:
        bits = value
        out += encode_length(len(bits))
        padded = bits + "0" * (-len(bits) % 8)
        out += bytes(int(padded[i : i + 8], 2) for i in range(0, len(padded), 8))
    elif tag == NULL:
        pass
    else:
        raise AxdrError(f"cannot encode unknown type tag {tag}")


# -- convenience constructors (tests, simulator) --------------------------------
def octet_string(b: bytes) -> Data:
    return Data(OCTET_STRING, bytes(b))


def visible_string(s: str) -> Data:
    return Data(VISIBLE_STRING, s)


def structure(*items: Data) -> Data:
    return Data(STRUCTURE, tuple(items))


def array(*items: Data) -> Data:
    return Data(ARRAY, tuple(items))


# -- annotated decoding (cold path: ``han decode --explain``) -------------------
class Node(NamedTuple):
    """One A-XDR element with where it lies in the buffer, for annotated dumps."""

    data: Data
    start: int  #: offset of the type tag
    body: int  #: offset of the first byte after the tag and any count/length
    end: int  #: offset just past the element
    children: tuple["Node", ...]


def annotate(buf: bytes, pos: int = 0, _depth: int = 0) -> Node:
    """Decode one value at ``pos`` like :func:`decode_at`, keeping every element's offsets."""
    if _depth > MAX_DEPTH:
        raise AxdrError(f"data nested deeper than {MAX_DEPTH} levels at offset {pos}")
    if pos >= len(buf):
        raise AxdrError(f"data ends at offset {pos} where a value was expected (truncated)")
    tag = buf[pos]
    if tag in (ARRAY, STRUCTURE):
        count, body = _length(buf, pos + 1) if pos + 1 < len(buf) else (None, pos + 1)
        if count is None:
            raise AxdrError(f"{TYPE_NAMES[tag]} at offset {pos} has no element count (truncated)")
        children = []
        p = body
        for _ in range(count):
            child = annotate(buf, p, _depth + 1)
            children.append(child)
            p = child.end
        return Node(Data(tag, tuple(c.data for c in children)), pos, body, p, tuple(children))
    value, end = _decode_simple(tag, buf, pos + 1, _depth)
    body = pos + 1
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING, BIT_STRING):
        _n, body = _length(buf, pos + 1)
    return Node(value, pos, body, end, ())
