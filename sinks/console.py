"""``console:``: one line of live values per push on standard output (``han demo`` uses it).

A live view: it starts at the newest push and keeps no position across restarts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .base import Checkpoint, Entry, time_utc
from .threaded import ThreadedSink

#: (register key, label, format) shown when the push has them, in this order
SHOWN = (
    ("active_power_import", "import", "{:.0f} W"),
    ("active_power_export", "export", "{:.0f} W"),
    ("active_energy_import", "energy", "{:.3f} kWh"),
    ("voltage_l1", "L1", "{:.0f} V"),
    ("current_l1", "", "{:.2f} A"),
    ("voltage_l2", "L2", "{:.0f} V"),
    ("current_l2", "", "{:.2f} A"),
    ("voltage_l3", "L3", "{:.0f} V"),
    ("current_l3", "", "{:.2f} A"),
)


class ConsoleSink(ThreadedSink):
    scheme = "console"
    live = True

    def write_sync(self, entries: Sequence[Entry]) -> None:
        out = sys.stdout
        for e in entries:
            out.write(line(e) + "\n")
        self._advance(entries)

    def flush_sync(self) -> Checkpoint:
        sys.stdout.flush()
        return super().flush_sync()


def line(e: Entry) -> str:
    p = e.push
    values = {r.key: r for r in p.registers if r.key}
    parts = [time_utc(p, e.received).strftime("%Y-%m-%d %H:%M:%SZ"), e.meter]
    for key, label, fmt in SHOWN:
        r = values.get(key)
        if r is None or not isinstance(r.value, (int, float)):
            continue
        v = r.value / 1000 if r.unit == "Wh" and fmt.endswith("kWh") else r.value
        parts.append(f"{label} {fmt.format(v)}".strip())
    if len(parts) == 2:
        parts.append(f"{len(p.registers)} registers")
    return "  ".join(parts)
