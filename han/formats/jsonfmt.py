"""``--format json`` (one list) and ``--format jsonl`` (one object per line)."""

from __future__ import annotations

import json
from typing import IO

from obis.push import Push

from .record import push_dict


class JsonWriter:
    def __init__(self, out: IO[str], *, lines: bool) -> None:
        self.out = out
        self.lines = lines
        self.count = 0

    def write(self, push: Push) -> None:
        text = json.dumps(push_dict(push), ensure_ascii=False, separators=(",", ":") if self.lines else None)
        if self.lines:
            self.out.write(text + "\n")
        else:
            self.out.write(("[\n" if self.count == 0 else ",\n") + text)
        self.count += 1

    def close(self) -> None:
        if not self.lines:
            self.out.write("[]\n" if self.count == 0 else "\n]\n")
