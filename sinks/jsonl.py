"""``jsonl:PATH``: one JSON object per push and line (``jsonl:-`` for standard output).

Each line is the ``han decode --format jsonl`` object (see :mod:`sinks.record`)
with ``meter`` (the meter the push is filed under, as in every sink: a short
list without a meter number takes the meter of its port), ``received_utc``
(when han accepted the push) and ``time_utc`` (the meter time in UTC, or the
receive time when the meter time cannot be placed) added.
"""

from __future__ import annotations

import json

from .appendfile import AppendFileSink
from .base import Entry, iso_utc, time_utc
from .record import push_dict


class JsonlSink(AppendFileSink):
    scheme = "jsonl"

    def format(self, entry: Entry) -> str:
        d = {"meter": entry.meter, **push_dict(entry.push)}
        d["time_utc"] = iso_utc(time_utc(entry.push, entry.received))
        d["received_utc"] = iso_utc(entry.received)
        return json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n"
