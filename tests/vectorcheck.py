"""Compare a decoded Push with a record of ../shared/vectors/real_vectors.jsonl (see its README §3.2)."""

from __future__ import annotations

import math

from decoders.cosem_time import CosemDateTime
from decoders.security import Keys
from obis.push import Push


def keys_of(vector: dict) -> Keys:
    k = vector.get("keys") or {}
    return Keys(
        ek=bytes.fromhex(k["ek"]) if k.get("ek") else None,
        ak=bytes.fromhex(k["ak"]) if k.get("ak") else None,
    )


def _same(reg, expected) -> bool:
    if isinstance(expected, str) and isinstance(reg.raw, str):
        if reg.type == "octet_string" and len(reg.raw) == 24 and "T" in expected:
            dt = CosemDateTime.from_bytes(bytes.fromhex(reg.raw))
            return dt.naive().isoformat() == expected
        if reg.raw.lower() == expected.lower():
            return True
        return str(reg.value) == expected
    return reg.raw == expected


def mismatches(push: Push, vector: dict) -> list[str]:
    """Human-readable differences between ``push`` and the vector's expectations."""
    exp = vector["expected"]
    out: list[str] = []
    if "list_id" in exp and exp["list_id"] is not None and push.list_id != exp["list_id"]:
        out.append(f"list_id {push.list_id!r} != {exp['list_id']!r}")
    dt = exp.get("apdu_datetime")
    if dt:
        mt = push.meter_time
        if mt is None or mt.naive().isoformat() != dt["local"]:
            out.append(f"meter time {mt} != {dt['local']}")
        elif mt.deviation != dt["deviation"] or mt.clock_status != dt["clock_status"]:
            out.append(f"deviation/status {mt.deviation}/{mt.clock_status} != {dt['deviation']}/{dt['clock_status']}")
    for obis, e in exp.get("obis", {}).items():
        if obis.startswith("_") or ":" in obis:
            continue
        reg = push.register(obis)
        if reg is None:
            out.append(f"{obis} missing")
        elif not _same(reg, e["value"]):
            out.append(f"{obis} raw {reg.raw!r} != {e['value']!r}")
        elif e.get("type") and reg.type != e["type"]:
            out.append(f"{obis} type {reg.type} != {e['type']}")
    return out


def scaled_mismatches(push: Push, vector: dict) -> list[str]:
    out = []
    for obis, e in vector["expected"].get("scaled", {}).items():
        reg = push.register(obis)
        if reg is None:
            out.append(f"{obis} missing")
        elif not isinstance(reg.value, (int, float)) or not math.isclose(reg.value, e["value"], rel_tol=1e-9, abs_tol=1e-9):
            out.append(f"{obis} scaled {reg.value!r} != {e['value']!r}")
    return out
