"""The newest push per meter (``/api/latest``) and the clients of the event stream (``/api/events``).

:class:`Latest` keeps, per meter, the newest value of each register from all the
meter's lists, as the store's ``latest`` view does (a meter that sends power every
2 s and energy hourly shows both).  It is filled from the store at start-up and
then from each push the store took (the daemon calls :meth:`Hub.stored` after the
SQLite sink committed it), so it always equals the store without a query per
request.

:class:`Hub` sends every event to every client through a bounded queue per client;
a client whose queue is full (it stopped reading) is dropped, never waited for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any

from .http import SEND_TIMEOUT, Stream

KEEPALIVE = 15.0
QUEUE = 64  #: events a client may lag behind before it is dropped
MAX_CLIENTS = 128

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_SCALE = {"W": 1.0, "kW": 1000.0, "MW": 1e6}


def iec(dotted: str | None) -> str | None:
    """``1.1.1.7.0.255`` -> ``1-1:1.7.0.255``."""
    if not dotted:
        return None
    p = dotted.split(".")
    return f"{p[0]}-{p[1]}:{'.'.join(p[2:])}" if len(p) == 6 else dotted


class _Meter:
    __slots__ = ("meter", "meter_number", "time_utc", "received_utc", "list_id", "regs")

    def __init__(self, meter: str) -> None:
        self.meter = meter
        self.meter_number: str | None = None
        self.time_utc: str | None = None
        self.received_utc: str | None = None
        self.list_id: str | None = None
        self.regs: dict[str, dict[str, Any]] = {}  #: obis (or list#position) -> register


def _watts(reg: dict[str, Any] | None) -> float | None:
    if reg is None or isinstance(reg["value"], bool) or not isinstance(reg["value"], (int, float)):
        return None
    scale = _SCALE.get(reg["unit"] or "W")
    # kW * 1000 in binary floating point: 0.024 kW is 24.000000000000004 W; a milliwatt is finer than any meter
    return None if scale is None else round(float(reg["value"]) * scale, 3)


def _number(reg: dict[str, Any] | None) -> float | None:
    if reg is None or isinstance(reg["value"], bool) or not isinstance(reg["value"], (int, float)):
        return None
    return float(reg["value"])


def _reading(reg: dict[str, Any] | None, push_time: str | None) -> dict[str, Any] | None:
    """A gas or water meter's reading (a P1 meter's M-Bus channel): its value, unit, and its own time."""
    value = _number(reg)
    if value is None:
        return None
    return {"value": value, "unit": reg["unit"], "time_utc": reg.get("time_utc") or push_time}


class Latest:
    def __init__(self) -> None:
        self.meters: dict[str, _Meter] = {}

    def add(self, meter: str, meter_number: str | None, time_utc: str, received_utc: str, list_id: str | None,
            registers: Iterable[tuple[str | None, str | None, str | None, Any, str | None, int, str | None]]) -> _Meter:
        """One stored push: ``registers`` are (dotted obis, key, name, value, unit, position, own time).

        The own time (ISO UTC) is a value's own time stamp (a P1 gas reading's), else None.
        """
        m = self.meters.get(meter)
        if m is None:
            m = self.meters[meter] = _Meter(meter)
        if meter_number:
            m.meter_number = meter_number
        m.time_utc, m.received_utc, m.list_id = time_utc, received_utc, list_id
        for obis, key, name, value, unit, position, own in registers:
            slot = obis or f"{list_id or ''}#{position}"
            m.regs.pop(slot, None)  # newest last, as the store's latest view orders them
            reg = {"obis": iec(obis), "key": key, "name": name, "value": value, "unit": unit}
            if own:
                reg["time_utc"] = own
            m.regs[slot] = reg
        return m

    def entry(self, m: _Meter) -> dict[str, Any]:
        by_key = {r["key"]: r for r in m.regs.values() if r["key"]}
        phases = []
        for n in (1, 2, 3):
            volt, amp = by_key.get(f"voltage_l{n}"), by_key.get(f"current_l{n}")
            imp, exp = by_key.get(f"active_power_import_l{n}"), by_key.get(f"active_power_export_l{n}")
            if volt or amp or imp or exp:
                phases.append({"phase": n, "voltage_v": _number(volt), "current_a": _number(amp),
                               "import_w": _watts(imp), "export_w": _watts(exp)})
        return {
            "meter": m.meter,
            "meter_number": m.meter_number,
            "time_utc": m.time_utc,
            "received_utc": m.received_utc,
            "list_id": m.list_id,
            "power": {"import_w": _watts(by_key.get("active_power_import")),
                      "export_w": _watts(by_key.get("active_power_export"))},
            "phases": phases,
            "gas": _reading(by_key.get("gas_reading"), m.time_utc),
            "water": _reading(by_key.get("water_reading"), m.time_utc),
            "registers": list(m.regs.values()),
        }

    def entries(self, meter: str | None = None) -> list[dict[str, Any]]:
        return [self.entry(m) for name, m in sorted(self.meters.items())
                if meter is None or meter in (name, m.meter_number)]


def event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {_dumps(data)}\n\n".encode()


class _Client:
    __slots__ = ("queue",)

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)


class Hub:
    """The event stream's clients; :meth:`publish` never waits."""

    def __init__(self, *, keepalive: float = KEEPALIVE, queue: int = QUEUE, max_clients: int = MAX_CLIENTS) -> None:
        self.keepalive = keepalive
        self.queue = queue
        self.max_clients = max_clients
        self.clients: set[_Client] = set()
        self.dropped = 0  #: clients dropped because they fell behind

    def publish(self, name: str, data: Any) -> None:
        if not self.clients:
            return
        chunk = event(name, data)
        for c in list(self.clients):
            try:
                c.queue.put_nowait(chunk)
            except asyncio.QueueFull:
                self._drop(c)
                self.dropped += 1

    def _drop(self, c: _Client) -> None:
        self.clients.discard(c)
        while not c.queue.empty():
            c.queue.get_nowait()
        c.queue.put_nowait(None)

    def close(self) -> None:
        for c in list(self.clients):
            self._drop(c)

    def stream(self, greeting: Callable[[], list[bytes]]) -> "EventStream | None":
        """A stream for one more client, or None when there are too many."""
        if len(self.clients) >= self.max_clients:
            return None
        return EventStream(self, greeting)


class EventStream(Stream):
    headers = [("X-Accel-Buffering", "no")]

    def __init__(self, hub: Hub, greeting: Callable[[], list[bytes]]) -> None:
        self.hub = hub
        self.greeting = greeting

    async def run(self, writer: asyncio.StreamWriter) -> None:
        hub = self.hub
        client = _Client(hub.queue)
        hub.clients.add(client)
        try:
            writer.write(b"retry: 3000\n\n" + b"".join(self.greeting()))
            await asyncio.wait_for(writer.drain(), SEND_TIMEOUT)
            while True:
                try:
                    chunk = await asyncio.wait_for(client.queue.get(), hub.keepalive)
                except asyncio.TimeoutError:
                    chunk = b": keep-alive\n\n"
                if chunk is None:
                    return  # dropped (fell behind) or the server stops
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), SEND_TIMEOUT)
        except (ConnectionError, asyncio.TimeoutError):
            return
        finally:
            hub.clients.discard(client)
