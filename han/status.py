"""The daemon's status: written to ``<state-dir>/status.json`` every few seconds, shown by ``han status``.

It holds no key and no key material (key ids are fingerprints), and sink
names have any password masked.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any


def _iso(t: float | None) -> str | None:
    if not t:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def snapshot(d) -> dict[str, Any]:
    """The status of a running :class:`~han.daemon.Daemon`."""
    ingest, journal, source = d.ingest, d.journal, d.source
    now = time.time()
    o = ingest.outcomes
    last_seq = journal.last_seq
    return {
        "version": 1,
        "running": True,
        "pid": os.getpid(),
        "started": _iso(d.started),
        "updated": _iso(time.time()),
        "input": {
            "name": source.name if source else None,
            "kind": getattr(source, "kind", "serial") if source else None,
            "settings": d.cfg.serial.describe() if source is not None and source.kind in ("serial", "socket") else None,
            "state": source.state if source else None,
            "since": _iso(source.since) if source else None,
            "reconnects": source.reconnects if source else 0,
            "last_error": source.last_error if source else None,
            "bytes": o.bytes_in,
        },
        "sources": [_source(d, s, now) for s in getattr(d, "sources", ())],
        "unknown_meters": {
            "kept": d.unknown.kept if getattr(d, "unknown", None) else 0,
            "dropped": d.unknown.dropped() if getattr(d, "unknown", None) else 0,
        },
        "last_push": {
            "received": _iso(o.last_push),
            "meter": o.last_meter,
            "meter_time": o.last_meter_time,
        },
        "push_interval": d.push_interval,
        "outcomes": dict(sorted(o.counts.items())),
        "internal_errors": getattr(d, "internal_errors", 0),
        "meters": {
            meter: {
                "key_id": m.key_id,
                "last_counter": m.last_counter,
                "pushes": m.pushes,
                "last_seen": _iso(m.last_seen),
            }
            for meter, m in sorted(o.meters.items())
        },
        "counters": {f"{st.hex().upper()}/{kid}": ic for (st, kid), ic in sorted(ingest.counters.counters.items())},
        "journal": {"last_seq": last_seq, "pending_in_memory": len(ingest.pending), "held": ingest.held},
        "sinks": [
            {
                "name": w.name,
                "state": w.state,
                "position": w.position,
                "backlog": w.backlog(last_seq),
                "delivered": w.delivered,
                "dropped": w.dropped,
                "unreadable": w.unreadable,
                "last_error": w.last_error,
                "failing_since": _iso(w.failing_since),
            }
            for w in d.workers
        ],
    }


def _source(d, s, now: float) -> dict[str, Any]:
    """One source: its state, and as the watchdog sees it (its last push, its push interval)."""
    watch = d.watch_for(s) if hasattr(d, "watch_for") else None
    entry: dict[str, Any] = {
        "name": s.name,
        "kind": s.kind,
        "state": s.state,
        "since": _iso(s.since),
        "reconnects": s.reconnects,
        "last_error": s.last_error,
    }
    if watch is not None:
        entry["last_push"] = _iso(watch.last_push)
        entry["push_interval"] = d.interval_of(watch)
    if s.kind == "mqtt":
        entry.update(client_id=s.client_id, messages=s.messages, streams=len(s.streams))
        if hasattr(d, "silent_topics"):
            silent, limit = d.silent_topics(s, now)
            entry.update(silent_topics=silent, silent_after=limit)
    return entry


def _ago(iso: str | None, now: float) -> str:
    if not iso:
        return "never"
    t = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    s = max(0, now - t)
    if s < 120:
        return f"{iso} ({s:.0f} s ago)"
    if s < 7200:
        return f"{iso} ({s / 60:.0f} min ago)"
    return f"{iso} ({s / 3600:.1f} h ago)"


def render(data: dict[str, Any], running_pid: int | None, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = []
    if running_pid:
        lines.append(f"han run: running (pid {running_pid}), status updated {_ago(data.get('updated'), now)}")
    else:
        lines.append(f"han run: not running; last status {_ago(data.get('updated'), now)}")
    i = data.get("input") or {}
    where = f"{i.get('name')}" + (f" ({i['settings']})" if i.get("settings") else "")
    state = f"{i.get('state')} since {i.get('since')}"
    if i.get("reconnects"):
        state += f", {i['reconnects']} reconnect(s)"
    if i.get("last_error"):
        state += f", last error: {i['last_error']}"
    sources = data.get("sources") or []
    if len(sources) > 1 and "last_push" in sources[0]:
        state += f", last push {_ago(sources[0]['last_push'], now)}"
    lines.append(f"input: {where}: {state}; {i.get('bytes', 0)} bytes read")
    for s in (data.get("sources") or [])[1:] if len(data.get("sources") or []) > 1 else []:
        more = f", last error: {s['last_error']}" if s.get("last_error") else ""
        if "last_push" in s:
            more += f", last push {_ago(s['last_push'], now)}"
        lines.append(f"       {s['name']}: {s['state']} since {s['since']}{more}")
    for s in data.get("sources") or []:
        if s.get("kind") == "mqtt":
            silent = (
                f", {s['silent_topics']} silent for over {s['silent_after']:g} s" if s.get("silent_topics") else ""
            )
            lines.append(
                f"mqtt: {s['name']} as {s['client_id']}: {s['messages']} message(s), {s['streams']} topic(s){silent}"
            )
    unknown = data.get("unknown_meters") or {}
    if unknown.get("kept") or unknown.get("dropped"):
        lines.append(
            f"unknown meters: {unknown.get('kept', 0)} frame(s) kept this run, {unknown.get('dropped', 0)} dropped;"
            " add their keys, stop han run, then: han state replay-unknown --keys FILE"
        )
    lp = data.get("last_push") or {}
    meter = f", meter {lp['meter']}" if lp.get("meter") else ""
    mt = f", meter time {lp['meter_time']}" if lp.get("meter_time") else ""
    lines.append(f"last push: {_ago(lp.get('received'), now)}{meter}{mt}")
    counts = data.get("outcomes") or {}
    accepted = counts.get("accepted", 0)
    others = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "accepted") or "no failures"
    lines.append(f"outcomes: {accepted} accepted; {others}")
    if data.get("internal_errors"):
        lines.append(
            f"internal errors: {data['internal_errors']} outside any push (a bug: the log has each one;"
            " HAN_DEBUG=1 logs its traceback)"
        )
    held = (data.get("journal") or {}).get("held")
    if held:
        lines.append(f"held: {held} push(es) without a meter number wait for a push that names the meter")
    meters = data.get("meters") or {}
    counters = data.get("counters") or {}
    if meters or counters:
        lines.append("meters:")
        shown = set()
        for meter, m in meters.items():
            shown.add(f"{meter}/{m.get('key_id')}")
            lines.append(
                f"  {meter}  key {m.get('key_id')}  counter {m.get('last_counter')}"
                f"  {m.get('pushes')} push(es) this run, last {m.get('last_seen')}"
            )
        for key, ic in counters.items():
            if key not in shown:
                meter, _, kid = key.partition("/")
                lines.append(f"  {meter}  key {kid}  counter {ic}  (from an earlier run)")
    lines.append("sinks:")
    for s in data.get("sinks") or []:
        extra = ""
        if s.get("last_error"):
            extra = f"; failing since {s.get('failing_since')}: {s['last_error']}"
        if s.get("dropped"):
            extra += f"; {s['dropped']} push(es) dropped (journal limit)"
        lines.append(f"  {s['name']}  {s['state']}, backlog {s['backlog']}, {s['delivered']} delivered this run{extra}")
    return "\n".join(lines) + "\n"
