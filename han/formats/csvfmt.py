"""``--format csv``: one row per register reading."""

from __future__ import annotations

import csv
from typing import IO

from obis.push import Push

COLUMNS = ("push", "timestamp", "meter_id", "system_title", "list_id", "obis", "name", "value", "unit", "raw", "type")


class CsvWriter:
    def __init__(self, out: IO[str]) -> None:
        self.writer = csv.writer(out, lineterminator="\n")
        self.writer.writerow(COLUMNS)
        self.count = 0

    def write(self, push: Push) -> None:
        self.count += 1
        st = push.security.system_title.hex().upper() if push.security and push.security.system_title else ""
        for r in push.registers:
            self.writer.writerow(
                (
                    self.count,
                    push.timestamp or "",
                    push.meter_id or "",
                    st,
                    push.list_id or "",
                    r.obis.dotted if r.obis else f"#{r.position}",
                    r.name or "",
                    r.value,
                    r.unit or "",
                    r.raw,
                    r.type,
                )
            )

    def close(self) -> None:
        pass
