"""``--format json`` (one list) and ``--format jsonl`` (one object per line).

The text is ``json.dumps(push_dict(push))`` (see :mod:`.record`), byte for
byte.  A push whose registers share a layout with earlier pushes of its list
(:meth:`obis.push.Push.shared_layout`) takes a faster way to the same
text: the JSON around each register's value and raw value depends on the
layout alone, so it is made once per layout from ``register_dict`` itself
and kept; per push, one ``json.dumps`` call encodes all values and raw
values together, and the push's own fields are encoded as usual.
"""

from __future__ import annotations

import json
from itertools import chain
from operator import itemgetter
from typing import IO

from obis.push import Push, RegisterLayout

from .record import push_dict, register_dict

#: stand-ins for a register's value and raw value while the text around them is made
_VALUE, _RAW = "\x00value\x00", "\x00raw\x00"
#: joins the encoded values in the one json.dumps call: never part of a JSON scalar's text
_SEP = "\x00"
_VALUE_AND_RAW = itemgetter(2, 4)  # Register.value, Register.raw
MAX_LAYOUTS = 256


class _NoRegisters:
    """A push seen without its registers (push_dict of the rest; the registers are encoded apart)."""

    __slots__ = ("_push",)
    registers = ()

    def __init__(self, push: Push) -> None:
        self._push = push

    def __getattr__(self, name: str):
        return getattr(self._push, name)


class JsonWriter:
    def __init__(self, out: IO[str], *, lines: bool) -> None:
        self.out = out
        self.lines = lines
        self.count = 0
        self._separators = (",", ":") if lines else (", ", ": ")
        #: layout -> the texts between the values of its registers, or None when the fast way does not apply
        self._pieces: dict[RegisterLayout, list[str] | None] = {}

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
        layout = push.shared_layout()
        if layout is not None:
            pieces = self._pieces.get(layout, False)
            if pieces is False:
                pieces = self._learn(layout, push)
            if pieces is not None:
                registers = self._registers(push, pieces)
                if registers is not None:
                    head = self._dumps(push_dict(_NoRegisters(push)))  # type: ignore[arg-type]
                    marker = f'"registers"{self._separators[1]}[]'
                    i = head.index(marker) + len(marker) - 2  # a key: a string value cannot hold an unescaped quote
                    return head[:i] + registers + head[i + 2 :]
        return self._dumps(push_dict(push))

    def _dumps(self, obj) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=self._separators)

    def _registers(self, push: Push, pieces: list[str]) -> str | None:
        """The registers' JSON array, or None when a value holds a list of several items (then the usual way)."""
        flat = list(chain.from_iterable(map(_VALUE_AND_RAW, push.registers)))
        values = json.dumps(flat, ensure_ascii=False, separators=(_SEP, self._separators[1]))
        # with _SEP as item separator: "[v0\x00r0\x00v1...]"; a nested list would add separators of its own
        encoded = values[1:-1].split(_SEP) if push.registers else []
        if len(encoded) != len(pieces) - 1:
            return None
        return "".join(chain.from_iterable(zip(pieces, encoded))) + pieces[-1]

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
