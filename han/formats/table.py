"""``--format table``: a readable block per push for a terminal (fits 80 columns for typical lists)."""

from __future__ import annotations

from typing import IO

from decoders.ciphering.control import SecurityControl
from obis.push import Push


def _decimals(raw: object) -> int | None:
    """The decimals a text number was sent with (a P1 telegram's ``005414.997*kWh``: 3), else None."""
    if not isinstance(raw, str):
        return None
    number = raw.rsplit(")(", 1)[-1].strip("()").split("*")[0]
    whole, dot, frac = number.partition(".")
    if not dot or not frac.isdigit() or not whole.lstrip("-").isdigit():
        return None
    return len(frac)


def _fmt_value(v: object, scaler: int | None, raw: object = None) -> str:
    if isinstance(v, float):
        if scaler is not None and scaler < 0:
            return f"{v:.{-scaler}f}"
        decimals = _decimals(raw) if scaler is None else None
        if decimals is not None:  # as precise as the meter sent it (5414.997 kWh, not 5415)
            return f"{v:.{decimals}f}"
        return f"{v:g}" if abs(v) < 1e15 else repr(v)
    if v is None:
        return "-"
    if _entries(v):
        return f"{len(v)} entries" if len(v) != 1 else "1 entry"  # type: ignore[arg-type]
    return str(v)


def _entries(v: object) -> list[str]:
    """The lines under a register whose value is a list of entries (a P1 power-failure log, a peak history)."""
    if not (isinstance(v, (list, tuple)) and v and all(isinstance(x, dict) for x in v)):
        return []
    return [" ".join("-" if x is None else str(x) for x in entry.values()) for entry in v]


class TableWriter:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.count = 0

    def write(self, push: Push) -> None:
        self.count += 1
        w = self.out.write
        if self.count > 1:
            w("\n")
        head = [f"push {self.count}"]
        if push.list_id:
            head.append(push.list_id)
        if push.timestamp:
            head.append(push.timestamp)
        if push.profile:
            head.append(f"profile {push.profile}")
        w(" · ".join(head) + "\n")
        s = push.security
        if s is not None:
            st = s.system_title.hex().upper() if s.system_title else "-"
            maker = f" ({s.manufacturer})" if s.manufacturer else ""
            trust = "tag verified" if s.verified else ("UNVERIFIED" if SecurityControl.of(s.security_control).authenticated else "no tag")
            w(f"  system title {st}{maker} · invocation counter {s.invocation_counter}\n")
            w(f"  security 0x{s.security_control:02X} {s.mode}, {trust}\n")
        for note in push.notes:
            w(f"  note: {note}\n")
        rows = [
            (
                r.obis.dotted if r.obis else f"#{r.position}",
                r.name or "",
                _fmt_value(r.value, r.scaler, r.raw),
                (r.unit or "") + (f" (read {r.time_utc:%Y-%m-%d %H:%M:%S}Z)" if r.time_utc is not None else ""),
                _entries(r.value),
            )
            for r in push.registers
        ]
        if not rows:
            w("  (no registers)\n")
            return
        w1 = max(len(r[0]) for r in rows)
        w2 = min(max(len(r[1]) for r in rows), 34)
        w3 = max(len(r[2]) for r in rows)
        for obis, name, value, unit, entries in rows:
            if len(name) > w2:
                name = name[: w2 - 1] + "…"
            w(f"  {obis:<{w1}}  {name:<{w2}}  {value:>{w3}} {unit}".rstrip() + "\n")
            for line in entries:
                w(f"  {'':<{w1}}    {line}\n")

    def close(self) -> None:
        pass
