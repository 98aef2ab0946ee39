"""``--format json`` (one list) and ``--format jsonl`` (one object per line).

The text is ``json.dumps(push_dict(push))`` (see :mod:`.record`), byte for
byte.  A push whose registers share a layout with earlier pushes of its list
(:meth:`obis.push.Push.shared_layout`) takes a faster way to the same
text: the JSON around each register's value and raw value depends on the
layout alone, so it is made once per layout from ``register_dict`` itself
and kept.  The text around the push's own fields (list id, times, security,
notes) depends only on whether the push has security and how many notes it
has: it is made once from ``push_dict`` with stand-ins for the fields.  Per
push, one encoder call encodes the push's fields, all values and raw values
together, and the text is joined from the pieces.  The first push of each
kind is checked against ``json.dumps(push_dict(push))``; should they ever
differ, that kind takes the usual way.
"""

from __future__ import annotations

import json
from typing import IO

from obis.push import Push, RegisterLayout

from .record import push_dict, register_dict

#: stand-ins for a register's value and raw value while the text around them is made
_VALUE, _RAW = "\x00value\x00", "\x00raw\x00"
#: joins the encoded values in the one json.dumps call: never part of a JSON scalar's text
_SEP = "\x00"
MAX_LAYOUTS = 256


class _Text(str):
    """A stand-in string whose ``hex()``, ``upper()`` and ``isoformat()`` are itself (for push_dict's expressions)."""

    __slots__ = ()

    def hex(self) -> str:
        return self

    def upper(self) -> str:
        return self

    def isoformat(self) -> str:
        return self


class _StandIn:
    """A push (or its security) whose fields are stand-ins, named after them: push_dict of it shows where each goes."""

    def __init__(self, notes: int, security: bool, prefix: str = "") -> None:
        self._prefix = prefix
        self.registers = ()
        self.notes = tuple(_Text(f"\x00note{i}\x00") for i in range(notes))
        self.security = _StandIn(0, False, "security.") if security else None

    def __getattr__(self, name: str):
        return _Text(f"\x00{self._prefix}{name}\x00")


#: the push's own fields in the order the head template holds them (see _head_values)
_HEAD = ("list_id", "profile", "timestamp", "timestamp_utc", "timezone", "meter_id", "invoke_id_and_priority")
_SECURITY = ("system_title", "manufacturer", "invocation_counter", "security_control", "mode", "verified")


class JsonWriter:
    def __init__(self, out: IO[str], *, lines: bool) -> None:
        self.out = out
        self.lines = lines
        self.count = 0
        self._separators = (",", ":") if lines else (", ", ": ")
        #: layout -> the texts between the values of its registers, or None when the fast way does not apply
        self._pieces: dict[RegisterLayout, list[str] | None] = {}
        #: (layout, has security, notes) -> (texts between all values, where the registers' values go), or None
        self._whole: dict[tuple, tuple[list[str], int] | None] = {}
        self._flat = _flat_encoder(self._separators[1])
        self._plain = json.JSONEncoder(ensure_ascii=False, separators=self._separators).encode

    def write(self, push: Push) -> None:
        text = self.encode(push)
        if self.lines:
            self.out.write(text + "\n")
        else:
            self.out.write(("[\n" if self.count == 0 else ",\n") + text)
        self.count += 1

    def close(self) -> None:
        if not self.lines:
            self.out.write("[]\n" if self.count == 0 else "\n]\n")

    # -- encoding ---------------------------------------------------------------------
    def encode(self, push: Push) -> str:
        """The JSON text of one push: ``json.dumps(push_dict(push))`` with this writer's separators."""
        text = self._fast(push)
        return text if text is not None else self._plain(push_dict(push))

    def _fast(self, push: Push) -> str | None:
        """The text the fast way, or None when it does not apply to this push."""
        layout = push.shared_layout()
        if layout is not None:
            security = push.security
            key = (layout, security is not None, len(push.notes))
            whole = self._whole.get(key, False)
            if whole is False:
                whole = self._learn_whole(key, push)
            if whole is not None:
                pieces, at = whole
                head = _head_values(push, security)
                flat = head[:at]
                append = flat.append
                for r in push.registers:  # value and raw of each register, in turn (a plain loop: the quickest way)
                    append(r[2])  # Register.value
                    append(r[4])  # Register.raw
                flat += head[at:]
                # with _SEP as item separator: "[v0\x00v1...]"; a nested list would add separators of its own
                encoded = self._flat(flat).split(_SEP)
                n = len(pieces)
                if len(encoded) == n - 1:
                    encoded[0] = encoded[0][1:]  # the list's brackets (sliced off the short ends, not the whole text)
                    encoded[-1] = encoded[-1][:-1]
                    parts = [""] * (2 * n - 1)
                    parts[::2] = pieces
                    parts[1::2] = encoded
                    return "".join(parts)
        return None

    def _learn_whole(self, key: tuple, push: Push) -> tuple[list[str], int] | None:
        """The texts between all values of pushes of this kind, checked on this push (None: the usual way)."""
        layout, security, notes = key
        whole = None
        registers = self._pieces.get(layout, False)
        if registers is False:
            registers = self._learn(layout, push)
        if registers is not None:
            text = self._plain(push_dict(_StandIn(notes, security)))  # type: ignore[arg-type]
            names = [f"\x00{n}\x00" for n in _HEAD]
            names += [f"\x00security.{n}\x00" for n in _SECURITY] if security else []
            names += [f"\x00note{i}\x00" for i in range(notes)]
            pieces, rest = [], text
            for name in names:
                quoted = json.dumps(name)
                if rest.count(quoted) != 1:
                    pieces = None
                    break
                before, rest = rest.split(quoted)
                pieces.append(before)
            marker = f'"registers"{self._separators[1]}[]'
            if pieces is not None and "\x00" not in rest and "\\u0000" not in rest:
                pieces.append(rest)
                at = next((i for i, p in enumerate(pieces) if marker in p), None)
                if at is not None and "".join(pieces).count(marker) == 1:
                    before, after = pieces[at].split(marker)
                    middle = [before + f'"registers"{self._separators[1]}' + registers[0], *registers[1:]]
                    middle[-1] += after  # (one piece when there are no registers: "[]")
                    whole = (pieces[:at] + middle + pieces[at + 1 :], at)
        if len(self._whole) >= MAX_LAYOUTS:
            del self._whole[next(iter(self._whole))]
        self._whole[key] = whole
        if whole is not None and self.encode(push) != self._plain(push_dict(push)):
            self._whole[key] = None  # the stand-ins did not show push_dict's shape: the usual way for this kind
        return self._whole[key]

    def _dumps(self, obj) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=self._separators)

    def _learn(self, layout: RegisterLayout, push: Push) -> list[str] | None:
        """The texts between values for this layout, made with register_dict (None: use the usual way)."""
        item_sep = self._separators[0]
        pieces: list[str] | None = ["["]
        enc_value, enc_raw = json.dumps(_VALUE), json.dumps(_RAW)
        for r in push.registers:
            probe = register_dict(r._replace(value=_VALUE, raw=_RAW))
            # the rest of the dict must not depend on the value: then it is the layout's alone
            if probe.get("value") is not _VALUE or probe.get("raw") is not _RAW:
                pieces = None
                break
            if register_dict(r) != {**probe, "value": r.value, "raw": r.raw}:
                pieces = None
                break
            text = json.dumps(probe, ensure_ascii=False, separators=self._separators)
            v, w = text.find(enc_value), text.find(enc_raw)
            if v < 0 or w < v or text.count(enc_value) != 1 or text.count(enc_raw) != 1:
                pieces = None
                break
            pieces[-1] += text[:v]
            pieces.append(text[v + len(enc_value) : w])
            pieces.append(text[w + len(enc_raw) :] + item_sep)
        if pieces is not None:
            pieces[-1] = (pieces[-1][: -len(item_sep)] if push.registers else pieces[-1]) + "]"
        if len(self._pieces) >= MAX_LAYOUTS:
            del self._pieces[next(iter(self._pieces))]
        self._pieces[layout] = pieces
        return pieces


def _flat_encoder(key_separator: str):
    """``json.dumps(items, ensure_ascii=False, separators=(_SEP, key_separator))`` for a list, made once.

    The C encoder json.dumps makes on every call, kept: the same text without
    building an encoder per push (circular checks aside, which flat values do
    not need).
    """
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    plain = json.JSONEncoder(ensure_ascii=False, separators=(_SEP, key_separator))
    if make is None:
        return plain.encode
    c = make(None, plain.default, encoder.encode_basestring, None, key_separator, _SEP, False, False, True)

    def encode(items: list) -> str:
        return "".join(c(items, 0))

    return encode


def _head_values(p: Push, s) -> list:
    """The push's own fields as push_dict gives them, in the order of _HEAD, _SECURITY, then the notes."""
    utc = p.timestamp_utc
    values = [p.list_id, p.profile, p.timestamp, utc.isoformat() if utc else None, p.timezone, p.meter_id,
              p.invoke_id_and_priority]  # fmt: skip
    if s is not None:
        st = s.system_title
        values += (st.hex().upper() if st else None, s.manufacturer, s.invocation_counter, s.security_control,
                   s.mode, s.verified)  # fmt: skip
    values += p.notes
    return values
