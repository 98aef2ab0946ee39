"""A push as a plain JSON-ready dict: the shape shared by ``han decode --format json/jsonl`` and the jsonl sink.

It lives in ``sinks`` because sinks may import only ``obis``; ``han.formats.record`` re-exports it.
"""

from __future__ import annotations

from typing import Any

from obis.push import Push, Register


def register_dict(r: Register) -> dict[str, Any]:
    d = {
        "obis": r.obis.dotted if r.obis else None,
        "name": r.name,
        "value": r.value,
        "unit": r.unit,
        "raw": r.raw,
        "type": r.type,
        "scaler": r.scaler,
        "position": r.position,
    }
    if r.time_utc is not None:  # a value with its own time stamp (a P1 gas reading)
        d["time_utc"] = r.time_utc.isoformat()
    return d


def push_dict(p: Push) -> dict[str, Any]:
    s = p.security
    return {
        "list_id": p.list_id,
        "profile": p.profile,
        "timestamp": p.timestamp,
        "timestamp_utc": p.timestamp_utc.isoformat() if p.timestamp_utc else None,
        "timezone": p.timezone,
        "meter_id": p.meter_id,
        "invoke_id_and_priority": p.invoke_id_and_priority,
        "security": None
        if s is None
        else {
            "system_title": s.system_title.hex().upper() if s.system_title else None,
            "manufacturer": s.manufacturer,
            "invocation_counter": s.invocation_counter,
            "security_control": s.security_control,
            "mode": s.mode,
            "verified": s.verified,
        },
        "registers": [register_dict(r) for r in p.registers],
        "notes": list(p.notes),
    }
