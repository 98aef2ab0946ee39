"""Compare a decoded Push with a record of ../shared/vectors/real_vectors.jsonl (see its README §3.2)."""

from __future__ import annotations

import math
import re

from decoders.xdlms.cosem_time import CosemDateTime
from decoders.ciphering.security import Keys
from obis.code import Obis
from obis.push import Push

#: country names as the records' ``meter``/``source`` text spells them -> ISO 3166 alpha-2
COUNTRY_WORDS = {
    "Norway": "NO",
    "Denmark": "DK",
    "Sweden": "SE",
    "Austria": "AT",
    "Switzerland": "CH",
    "Swiss": "CH",
    "Slovenia": "SI",
    "Poland": "PL",
    "Luxembourg": "LU",
}
LIST_ID_OBIS = Obis.parse("1.1.0.2.129.255")


def keys_of(vector: dict) -> Keys:
    k = vector.get("keys") or {}
    return Keys(
        ek=bytes.fromhex(k["ek"]) if k.get("ek") else None,
        ak=bytes.fromhex(k["ak"]) if k.get("ak") else None,
    )


def country_of(vector: dict) -> str | None:
    """The meter's country from the record's ``meter`` text, else its ``source`` text (None when neither says)."""
    for text in (vector.get("meter", ""), vector.get("source", "")):
        for word, code in COUNTRY_WORDS.items():
            if re.search(rf"\b{word}\b", text):
                return code
    return None


def is_push_vector(vector: dict) -> bool:
    """Everything but the Green Book service-specific vectors (get-requests, not pushes)."""
    return vector["transport"] != "raw_glo_service"


def _same(reg, expected) -> bool:
    if isinstance(expected, str) and isinstance(reg.raw, str):
        if reg.type == "octet_string" and len(reg.raw) == 24 and "T" in expected:
            dt = CosemDateTime.from_bytes(bytes.fromhex(reg.raw))
            return dt.naive().isoformat() == expected
        if reg.raw.lower() == expected.lower():
            return True
        return str(reg.value) == expected
    return reg.raw == expected


def _unkeyed(push: Push) -> list:
    """The values that had no OBIS code on the wire, in wire order (a list id sent without one is register
    1.1.0.2.129.255, mapped by its position)."""
    return [r for r in push.registers if r.obis is None or r.positional]


def mismatches(push: Push, vector: dict) -> list[str]:
    """Human-readable differences between ``push`` and the vector's expectations."""
    exp = vector["expected"]
    out: list[str] = []
    if "list_id" in exp and exp["list_id"] is not None and push.list_id != exp["list_id"]:
        out.append(f"list_id {push.list_id!r} != {exp['list_id']!r}")
    dt = exp.get("apdu_datetime")
    if dt:
        mt = push.meter_time
        if mt is None or mt.naive().replace(microsecond=0).isoformat() != dt["local"]:  # the record drops hundredths
            out.append(f"meter time {mt} != {dt['local']}")
        elif mt.deviation != dt["deviation"] or mt.clock_status != dt["clock_status"]:
            out.append(f"deviation/status {mt.deviation}/{mt.clock_status} != {dt['deviation']}/{dt['clock_status']}")
    if "invoke_id_priority" in exp and push.invoke_id_and_priority != int(exp["invoke_id_priority"], 16):
        out.append(f"invoke id {push.invoke_id_and_priority:08X} != {exp['invoke_id_priority']}")
    for key, e in exp.get("obis", {}).items():
        if key == "_unkeyed":
            got = _unkeyed(push)
            if len(got) != len(e):
                out.append(f"{len(got)} unkeyed value(s) != {len(e)}")
                continue
            for i, (g, want) in enumerate(zip(got, e)):
                if not _same(g, want["value"]) or g.type != want["type"]:
                    out.append(f"unkeyed #{i} {g.raw!r} ({g.type}) != {want['value']!r} ({want['type']})")
            continue
        if key == "_push_object_list":
            got = [f"{c}/{o.dotted}/{a}" for c, o, a, _i in push.object_list]
            if got != e:
                out.append(f"push object list {got} != {e}")
            continue
        obis, _, attr = key.partition(":a")
        reg = push.register(obis, int(attr) if attr else None)
        if reg is None:
            out.append(f"{key} missing")
        elif not _same(reg, e["value"]):
            out.append(f"{key} raw {reg.raw!r} != {e['value']!r}")
        elif e.get("type") and reg.type != e["type"]:
            out.append(f"{key} type {reg.type} != {e['type']}")
        elif "scaler" in e and reg.scaler != e["scaler"]:
            out.append(f"{key} scaler {reg.scaler} != {e['scaler']}")
        elif "positional" in e.get("note", "") and not reg.positional:
            out.append(f"{key} should be mapped by position")
    for ident, text in exp.get("p1_objects", {}).items():
        reg = push.register(ident)
        if reg is None or reg.raw != text:
            out.append(f"P1 {ident} {None if reg is None else reg.raw!r} != {text!r}")
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


def security_mismatches(ciphered, vector: dict) -> list[str]:
    """Differences between a parsed security header and ``expected.security``."""
    sec = vector["expected"].get("security")
    if not sec or "system_title" not in sec:
        return []
    out = []
    if ciphered is None:
        return ["no security header parsed"]
    if (ciphered.system_title or b"").hex().upper() != sec["system_title"]:
        out.append(f"system title {ciphered.system_title.hex()} != {sec['system_title']}")
    if ciphered.security_control != int(sec["sc"], 16):
        out.append(f"SC {ciphered.security_control:02X} != {sec['sc']}")
    if ciphered.invocation_counter != int(sec["frame_counter"], 16):
        out.append(f"IC {ciphered.invocation_counter:08X} != {sec['frame_counter']}")
    return out


def link_mismatches(layers, vector: dict) -> list[str]:
    """Differences between the frames/blocks that carried an APDU and ``expected.{hdlc,mbus}_frames``/``gbt_blocks``."""
    exp = vector["expected"]
    out: list[str] = []
    frames = [f for m in layers.links for f in m.frames]
    if "hdlc_frames" in exp and exp["hdlc_frames"] and "dest" in exp["hdlc_frames"][0]:
        want = [(f["format"].upper(), f["dest"], f["src"], f["control"]) for f in exp["hdlc_frames"]]
        got = [(f"{f.format:04X}", f.dest.hex(), f.src.hex(), f"{f.control:02x}") for f in frames]
        if got != want:
            out.append(f"HDLC frames {got} != {want}")
    if "mbus_frames" in exp:
        want = [(f["L"], f["L_field"], int(f["CI"], 16), int(f["C"], 16), int(f["A"], 16)) for f in exp["mbus_frames"]]
        got = [(f.length, f.l_field, f.ci, f.c, f.a) for f in frames]
        if got != want:
            out.append(f"M-Bus frames {got} != {want}")
    if "gbt_blocks" in exp:
        want = [(b["block"], int(b["control"], 16), b["len"]) for b in exp["gbt_blocks"]]
        got = [(b.number, b.control, len(b.data)) for b in layers.gbt.blocks] if layers.gbt else []
        if got != want:
            out.append(f"GBT blocks {got} != {want}")
    return out
