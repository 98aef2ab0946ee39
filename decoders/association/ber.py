"""BER building blocks for the ACSE PDUs (AARQ, AARE, RLRQ, RLRE), as construct layouts.

DLMS encodes the association PDUs in BER and everything inside user-information
in A-XDR; both share the length form (:mod:`decoders.lengths`)::

    tag | length | value          length: nn (< 0x80)  or  0x8K + K bytes

:data:`BerLength` is that length as a construct field (parse and build),
:data:`Tlv` one tag-length-value element, :data:`TlvList` the elements of a
constructed value, read without assuming any order.  Object identifiers
(application context and mechanism names) convert with :func:`oid_from_bytes`
and :func:`oid_to_bytes`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from construct import (
    Adapter,
    Const,
    Construct,
    ConstructError,
    Flag,
    FocusedSeq,
    GreedyBytes,
    GreedyRange,
    If,
    Int8ub,
    Prefixed,
    Rebuild,
    SizeofError,
    Struct,
    Terminated,
    stream_read,
    stream_write,
    this,
)

from ..lengths import encode_length


class _BerLength(Construct):
    """A BER/A-XDR definite length: one byte below 0x80, else 0x81..0x84 and 1-4 bytes."""

    def _parse(self, stream, context, path):
        first = stream_read(stream, 1, path)[0]
        if first < 0x80:
            return first
        n = first & 0x7F
        if n == 0 or n > 4:
            raise ConstructError(f"length prefix 0x{first:02X} is not valid (0x81..0x84 expected)", path=path)
        return int.from_bytes(stream_read(stream, n, path), "big")

    def _build(self, obj, stream, context, path):
        if not isinstance(obj, int) or obj < 0 or obj >= 1 << 32:
            raise ConstructError(f"cannot encode length {obj!r}", path=path)
        stream_write(stream, encode_length(obj), len(encode_length(obj)), path)
        return obj

    def _sizeof(self, context, path):
        raise SizeofError("a BER length has a variable size", path=path)


BerLength = _BerLength()

#: an A-XDR octet string without its type tag: length + bytes
Octets = Prefixed(BerLength, GreedyBytes)

#: one BER element
Tlv = Struct("tag" / Int8ub, "value" / Octets)

#: the elements of a constructed value, in wire order, all bytes accounted for
TlvList = FocusedSeq("elements", "elements" / GreedyRange(Tlv), Terminated)


def oid_from_bytes(data: bytes) -> str:
    """The dotted form of a BER-encoded object identifier (content octets only)."""
    if not data or data[-1] & 0x80:
        raise ValueError("object identifier is empty or its last sub-identifier is cut off")
    arcs: list[int] = []
    value = 0
    for b in data:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def oid_to_bytes(oid: str) -> bytes:
    """BER content octets of a dotted object identifier."""
    arcs = [int(a) for a in oid.split(".")]
    if len(arcs) < 2:
        raise ValueError(f"object identifier {oid!r} needs at least two arcs")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


class _OidAdapter(Adapter):
    def _decode(self, obj, context, path):
        try:
            return oid_from_bytes(obj)
        except ValueError as exc:
            raise ConstructError(str(exc), path=path) from None

    def _encode(self, obj, context, path):
        return oid_to_bytes(obj)


#: OID content octets <-> "2.16.756.5.8.1.3"
OidContent = _OidAdapter(GreedyBytes)

#: a universal OBJECT IDENTIFIER element: 06 len content
ObjectIdentifier = FocusedSeq("oid", Const(b"\x06"), "oid" / Prefixed(BerLength, OidContent))


def walk_problem(data: bytes, start: int = 0) -> str:
    """Say where a run of BER elements stops making sense (for error messages)."""
    pos = start
    while pos < len(data):
        tag = data[pos]
        if pos + 1 >= len(data):
            return f"element 0x{tag:02X} at offset {pos} has no length byte (PDU truncated?)"
        first = data[pos + 1]
        n = 0 if first < 0x80 else first & 0x7F
        if first >= 0x80 and not 1 <= n <= 4:
            return f"element 0x{tag:02X} at offset {pos} has an invalid length prefix 0x{first:02X}"
        if pos + 2 + n > len(data):
            return f"element 0x{tag:02X} at offset {pos}: its length field is cut off (PDU truncated?)"
        length = first if first < 0x80 else int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
        end = pos + 2 + n + length
        if end > len(data):
            return (
                f"element 0x{tag:02X} at offset {pos} claims {length} bytes but only {len(data) - pos - 2 - n}"
                " follow (PDU truncated?)"
            )
        pos = end
    return "the elements do not fill the PDU exactly"


def AxdrOptional(subcon):
    """An A-XDR OPTIONAL (or DEFAULT) component: ``00`` absent, ``01`` + value present; None when absent."""
    return FocusedSeq(
        "value",
        "present" / Rebuild(Flag, lambda ctx: ctx.value is not None),
        "value" / If(this.present, subcon),
    )


def build_dict(obj: Any, **overrides: Any) -> dict:
    """A frozen dataclass as the dict construct builds from (its field names are the layout's)."""
    return {**{f.name: getattr(obj, f.name) for f in fields(obj)}, **overrides}


def from_container(cls: type, container: Any, **overrides: Any) -> Any:
    """A frozen dataclass from what construct parsed, field by field (bytes-like values as bytes)."""
    values = {}
    for f in fields(cls):
        if f.name in overrides:
            continue
        v = container[f.name]
        values[f.name] = bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else v
    return cls(**values, **overrides)
