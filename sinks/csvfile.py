"""``csv:PATH``: one row per register reading (``csv:-`` for standard output).

Columns: ``time_utc, meter, meter_id, obis, name, key, value, unit, received_utc``
(the same meaning as the SQLite sink's columns: ``meter`` is the meter the push
is filed under, ``meter_id`` the meter number register when the push sent it).  A header is written to a new file.
"""

from __future__ import annotations

import csv
import io

from .appendfile import AppendFileSink
from .base import Entry, iso_utc, time_utc

COLUMNS = ("time_utc", "meter", "meter_id", "obis", "name", "key", "value", "unit", "received_utc")


def _line(row: tuple) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


class CsvSink(AppendFileSink):
    scheme = "csv"
    header = _line(COLUMNS)

    def format(self, entry: Entry) -> str:
        p = entry.push
        when = iso_utc(time_utc(p, entry.received))
        meter, received = entry.meter, iso_utc(entry.received)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in p.registers:
            w.writerow(
                (
                    when,
                    meter,
                    p.meter_id or "",
                    r.obis.dotted if r.obis else f"#{r.position}",
                    r.name or "",
                    r.key or "",
                    r.value,
                    r.unit or "",
                    received,
                )
            )
        return buf.getvalue()
