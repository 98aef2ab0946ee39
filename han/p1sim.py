"""Simulated P1 meters, sans-IO: Dutch DSMR 5, Belgian Fluvius (e-MUCS) and the Swedish HAN port.

What each meter sends is data (:data:`METERS`): its header, its time zone, how often it sends,
when which tariff runs, its M-Bus devices, and one format template per telegram line, filled in
from the simulated state (``{import_t1:010.3f}`` ...).  :class:`P1Simulator` keeps that state:

- a household load (the DLMS simulator's :class:`~han.simulator._Load`) and, where the meter data
  says so, solar panels, so the net power is imported or exported and both directions move;
- energy registers in kWh that grow by exactly the energy the power implies, in the tariff
  register the meter's tariff clock names (so over a day both tariffs advance);
- M-Bus meters (gas, water) read every 5 minutes: their line carries the reading's own time stamp
  (``0-1:24.2.1(260115120500W)(00012.345*m3)``), not the telegram's;
- Fluvius' capacity objects: the running quarter-hour mean import (``1-0:1.4.0``), the month's
  highest quarter-hour mean with its time (``1-0:1.6.0``) and the monthly history (``0-0:98.1.0``).

The clock advances in UTC and is rendered as the meter's local time with ``S``/``W``; the
telegram is written with :func:`decoders.link.p1build.build_telegram` (CRC-16/ARC).
No I/O, no clock: the caller passes the time and writes the bytes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from decoders.link.p1build import build_telegram, p1_time

from .simulator import _Load, _to_utc, render_local

#: seconds between two readings of an M-Bus meter (DSMR 5 and Fluvius: 5 minutes)
MBUS_EVERY = 300
#: seconds of one Fluvius capacity period (a quarter-hour)
QUARTER = 900


@dataclass(frozen=True)
class TariffClock:
    """Which tariff register runs when: ``day`` from ``day_start`` to ``day_end`` (local hours) on
    weekdays, ``night`` otherwise (and all weekend when ``weekend_night``)."""

    day: int
    night: int
    day_start: int
    day_end: int
    weekend_night: bool = True

    def tariff(self, local: datetime) -> int:
        if self.weekend_night and local.weekday() >= 5:
            return self.night
        return self.day if self.day_start <= local.hour < self.day_end else self.night


@dataclass(frozen=True)
class MbusDevice:
    """A meter on an M-Bus channel: its device type (3 gas, 7 water), its reading's OBIS code and unit,
    its usage (units per hour, a random walk between ``low`` and ``high``)."""

    channel: int
    medium: str  #: gas or water: the state's field names (gas_time, gas_value, gas_id)
    device_type: int
    reading: str  #: the reading's C.D.E: 24.2.1 (DSMR 5, Fluvius water), 24.2.3 (Fluvius gas)
    unit: str
    low: float
    high: float
    start: tuple[float, float]  #: the register's first value, drawn between these


@dataclass(frozen=True)
class P1Meter:
    name: str
    description: str
    header: str
    timezone: str
    interval: float  #: seconds between telegrams
    serial: str  #: its port's serial settings (the simulator's default for a serial device)
    baud: int
    lines: tuple[str, ...]  #: one template per object line, filled from :meth:`P1Simulator.fields`
    tariffs: TariffClock | None = None  #: None: a meter with total registers only (1.8.0)
    mbus: tuple[MbusDevice, ...] = ()
    solar_kw: float = 0.0  #: peak power of the house's solar panels
    equipment_prefix: str = "E0"  #: the equipment identifier's text before its number (sent hex-coded)
    capacity: bool = False  #: Belgian quarter-hour capacity objects
    phases: int = 3


_PHASE_LINES = (
    "1-0:32.7.0({v_l1:05.1f}*V)",
    "1-0:52.7.0({v_l2:05.1f}*V)",
    "1-0:72.7.0({v_l3:05.1f}*V)",
)

DSMR5 = P1Meter(
    name="dsmr5",
    description="Dutch DSMR 5.0.2 meter (P1, a telegram a second; gas on M-Bus channel 1)",
    header="/ISK5\\2M550T-1012",
    timezone="Europe/Amsterdam",
    interval=1.0,
    serial="115200 8N1",
    baud=115200,
    # DSMR: tariff 1 is the low (night and weekend) tariff, 2 the normal one
    tariffs=TariffClock(day=2, night=1, day_start=7, day_end=23),
    mbus=(MbusDevice(1, "gas", 3, "24.2.1", "m3", 0.0, 1.6, (800.0, 6000.0)),),
    solar_kw=3.2,
    equipment_prefix="E0044007",
    lines=(
        "1-3:0.2.8(50)",
        "0-0:1.0.0({time})",
        "0-0:96.1.1({equipment_id})",
        "1-0:1.8.1({import_t1:010.3f}*kWh)",
        "1-0:1.8.2({import_t2:010.3f}*kWh)",
        "1-0:2.8.1({export_t1:010.3f}*kWh)",
        "1-0:2.8.2({export_t2:010.3f}*kWh)",
        "0-0:96.14.0({tariff:04d})",
        "1-0:1.7.0({p_import:06.3f}*kW)",
        "1-0:2.7.0({p_export:06.3f}*kW)",
        "0-0:96.7.21({failures:05d})",
        "0-0:96.7.9({long_failures:05d})",
        "1-0:99.97.0{failure_log}",
        "1-0:32.32.0(00000)",
        "1-0:52.32.0(00000)",
        "1-0:72.32.0(00000)",
        "1-0:32.36.0(00000)",
        "1-0:52.36.0(00000)",
        "1-0:72.36.0(00000)",
        "0-0:96.13.0()",
        *_PHASE_LINES,
        "1-0:31.7.0({i_l1:03.0f}*A)",
        "1-0:51.7.0({i_l2:03.0f}*A)",
        "1-0:71.7.0({i_l3:03.0f}*A)",
        "1-0:21.7.0({p_import_l1:06.3f}*kW)",
        "1-0:41.7.0({p_import_l2:06.3f}*kW)",
        "1-0:61.7.0({p_import_l3:06.3f}*kW)",
        "1-0:22.7.0({p_export_l1:06.3f}*kW)",
        "1-0:42.7.0({p_export_l2:06.3f}*kW)",
        "1-0:62.7.0({p_export_l3:06.3f}*kW)",
        "0-1:24.1.0(003)",
        "0-1:96.1.0({gas_id})",
        "0-1:24.2.1({gas_time})({gas_value:09.3f}*m3)",
    ),
)

FLUVIUS = P1Meter(
    name="fluvius",
    description="Belgian Fluvius e-MUCS meter (P1, a telegram a second; gas and water on M-Bus)",
    header="/FLU5\\253769484_A",
    timezone="Europe/Brussels",
    interval=1.0,
    serial="115200 8N1",
    baud=115200,
    # Fluvius: tariff 1 is day (peak), 2 night
    tariffs=TariffClock(day=1, night=2, day_start=7, day_end=22),
    mbus=(
        MbusDevice(1, "gas", 3, "24.2.3", "m3", 0.0, 1.4, (300.0, 4000.0)),
        MbusDevice(2, "water", 7, "24.2.1", "m3", 0.0, 0.06, (100.0, 900.0)),
    ),
    solar_kw=4.0,
    equipment_prefix="1SAG1100",
    capacity=True,
    lines=(
        "0-0:96.1.4(50217)",
        "0-0:96.1.1({equipment_id})",
        "0-0:1.0.0({time})",
        "1-0:1.8.1({import_t1:010.3f}*kWh)",
        "1-0:1.8.2({import_t2:010.3f}*kWh)",
        "1-0:2.8.1({export_t1:010.3f}*kWh)",
        "1-0:2.8.2({export_t2:010.3f}*kWh)",
        "0-0:96.14.0({tariff:04d})",
        "1-0:1.4.0({demand_kw:06.3f}*kW)",
        "1-0:1.6.0({peak_time})({peak_kw:06.3f}*kW)",
        "0-0:98.1.0{peak_history}",
        "1-0:1.7.0({p_import:06.3f}*kW)",
        "1-0:2.7.0({p_export:06.3f}*kW)",
        "1-0:21.7.0({p_import_l1:06.3f}*kW)",
        "1-0:41.7.0({p_import_l2:06.3f}*kW)",
        "1-0:61.7.0({p_import_l3:06.3f}*kW)",
        "1-0:22.7.0({p_export_l1:06.3f}*kW)",
        "1-0:42.7.0({p_export_l2:06.3f}*kW)",
        "1-0:62.7.0({p_export_l3:06.3f}*kW)",
        *_PHASE_LINES,
        "1-0:31.7.0({i_l1:06.2f}*A)",
        "1-0:51.7.0({i_l2:06.2f}*A)",
        "1-0:71.7.0({i_l3:06.2f}*A)",
        "0-0:96.3.10(1)",
        "0-0:17.0.0(999.9*kW)",
        "1-0:31.4.0(999*A)",
        "0-0:96.13.0()",
        "0-1:24.1.0(003)",
        "0-1:96.1.1({gas_id})",
        "0-1:24.4.0(1)",
        "0-1:24.2.3({gas_time})({gas_value:09.3f}*m3)",
        "0-2:24.1.0(007)",
        "0-2:96.1.1({water_id})",
        "0-2:24.2.1({water_time})({water_value:09.3f}*m3)",
    ),
)

SWEDEN = P1Meter(
    name="sweden",
    description="Swedish HAN port (Energiforetagen's P1 list, a telegram every 10 s, totals only)",
    header="/ADN9 6534",
    timezone="Europe/Stockholm",
    interval=10.0,
    serial="115200 8N1",
    baud=115200,
    tariffs=None,
    solar_kw=0.0,
    equipment_prefix="7359992",
    lines=(
        "0-0:1.0.0({time})",
        "1-0:1.8.0({import_total:012.3f}*kWh)",
        "1-0:2.8.0({export_total:012.3f}*kWh)",
        "1-0:3.8.0({rimport_total:012.3f}*kvarh)",
        "1-0:4.8.0({rexport_total:012.3f}*kvarh)",
        "1-0:1.7.0({p_import:08.3f}*kW)",
        "1-0:2.7.0({p_export:08.3f}*kW)",
        "1-0:3.7.0({q_import:08.3f}*kvar)",
        "1-0:4.7.0({q_export:08.3f}*kvar)",
        "1-0:21.7.0({p_import_l1:08.3f}*kW)",
        "1-0:41.7.0({p_import_l2:08.3f}*kW)",
        "1-0:61.7.0({p_import_l3:08.3f}*kW)",
        "1-0:22.7.0({p_export_l1:08.3f}*kW)",
        "1-0:42.7.0({p_export_l2:08.3f}*kW)",
        "1-0:62.7.0({p_export_l3:08.3f}*kW)",
        "1-0:23.7.0({q_import_l1:08.3f}*kvar)",
        "1-0:43.7.0({q_import_l2:08.3f}*kvar)",
        "1-0:63.7.0({q_import_l3:08.3f}*kvar)",
        "1-0:24.7.0({q_export_l1:08.3f}*kvar)",
        "1-0:44.7.0({q_export_l2:08.3f}*kvar)",
        "1-0:64.7.0({q_export_l3:08.3f}*kvar)",
        *_PHASE_LINES,
        "1-0:31.7.0({i_l1:05.1f}*A)",
        "1-0:51.7.0({i_l2:05.1f}*A)",
        "1-0:71.7.0({i_l3:05.1f}*A)",
    ),
)

#: the P1 meters ``han simulate --meter`` knows
METERS: dict[str, P1Meter] = {m.name: m for m in (DSMR5, FLUVIUS, SWEDEN)}


def _hex(text: str) -> str:
    return text.encode("ascii").hex().upper()


class _Mbus:
    """One M-Bus meter's register and its last 5-minute reading."""

    def __init__(self, device: MbusDevice, rng: random.Random, number: int) -> None:
        self.device = device
        self.value = rng.uniform(*device.start)
        self.rate = rng.uniform(device.low, device.high)
        self.read_at: float | None = None  #: UTC seconds of the last reading
        self.read_value = self.value
        self.ident = _hex(f"{'G' if device.medium == 'gas' else 'W'}00{number:014d}")


class P1Simulator:
    """Telegrams of one simulated P1 meter (see the module docstring)."""

    def __init__(self, meter: P1Meter | str, *, meter_number: int | None = None, seed: int | None = None) -> None:
        self.meter = METERS[meter] if isinstance(meter, str) else meter
        m = self.meter
        self.rng = r = random.Random(seed)
        self.timezone = m.timezone
        self.meter_number = meter_number if meter_number is not None else r.randrange(10**8, 10**9)
        self.equipment_id = _hex(f"{m.equipment_prefix}{self.meter_number:09d}")
        self.load = _Load(base=r.uniform(250, 600))
        self.voltage = [r.uniform(228, 234) for _ in range(m.phases)]
        self.pf = [r.uniform(0.93, 0.99) for _ in range(m.phases)]
        self.cloud = r.uniform(0.5, 1.0)
        # registers in kWh (kvarh); index 0 = tariff 1, 1 = tariff 2
        self.imp = [r.uniform(2000, 9000), r.uniform(2000, 9000)]
        self.exp = [r.uniform(0, 3000), r.uniform(0, 1500)] if m.solar_kw else [0.0, 0.0]
        self.rimp, self.rexp = r.uniform(100, 800), r.uniform(10, 80)
        self.mbus = [_Mbus(d, r, self.meter_number + i + 1) for i, d in enumerate(m.mbus)]
        self.failures = r.randrange(0, 12)
        self.long_failures = min(self.failures, r.randrange(0, 4))
        #: the long failures' (days ago, seconds), newest first; the log lists them all
        self._long = sorted(((r.randrange(20, 700), r.randrange(181, 20000)) for _ in range(self.long_failures)))
        self.failure_log: str | None = None
        self.last: float | None = None
        self.telegrams = 0
        # Fluvius capacity: the running quarter and the month's peak
        self.quarter: int | None = None
        self.quarter_kwh = 0.0
        self.month: tuple[int, int] | None = None
        self.peak_kw = 0.0
        self.peak_at: float | None = None
        self.history: list[tuple[float, float, float]] = []  #: (month start, peak time, peak kW), newest first
        self._now: dict[str, Any] = {}

    # -- the physics ---------------------------------------------------------------------------
    def _solar(self, local: datetime) -> float:
        """Solar power (kW) at local time: a sine over the day around 13 h, its length and height by
        season (about 16 h and the full peak in June, 8 h and 30 % in December), times a drifting
        cloud factor."""
        m = self.meter
        if not m.solar_kw:
            return 0.0
        season = math.cos(2 * math.pi * (local.timetuple().tm_yday - 172) / 365.25)  # 1 in June, -1 in December
        half = 6.0 + 2.2 * season
        h = local.hour + local.minute / 60 + local.second / 3600 - (13.0 - half)
        if not 0.0 < h < 2 * half:
            return 0.0
        return m.solar_kw * (0.65 + 0.35 * season) * math.sin(math.pi * h / (2 * half)) * self.cloud

    def _step(self, t: float, local: datetime) -> None:
        m, r, load = self.meter, self.rng, self.load
        seconds = 10.0 if self.last is None else max(0.0, t - self.last)
        self.last = t
        load.base = min(1500.0, max(120.0, load.base + r.gauss(0, 8) * (seconds / 10) ** 0.5))
        if load.extra_left > 0:
            load.extra_left -= seconds
            if load.extra_left <= 0:
                load.extra = 0.0
        elif r.random() < 0.02 * seconds / 10:
            load.extra = r.choice((1800.0, 2200.0, 900.0, 3000.0))
            load.extra_left = r.uniform(60, 900)
            phase = r.randrange(m.phases)
            load.split = tuple(0.6 if i == phase else 0.2 for i in range(m.phases))  # type: ignore[assignment]
        self.cloud = min(1.0, max(0.2, self.cloud + r.gauss(0, 0.01) * (seconds / 10) ** 0.5))
        total_w = load.base + load.extra + r.gauss(0, 5)
        solar = self._solar(local) * 1000 / m.phases
        net = [max(0.0, total_w * w) - solar for w in load.split]  # W per phase, negative = export
        for i in range(m.phases):
            self.voltage[i] = min(240.0, max(222.0, self.voltage[i] + r.gauss(0, 0.3) + (231 - self.voltage[i]) * 0.05))
            self.pf[i] = min(1.0, max(0.85, self.pf[i] + r.gauss(0, 0.005)))
        total = sum(net) / 1000  # kW
        p_imp, p_exp = max(0.0, total), max(0.0, -total)
        q = max(0.0, total_w) * 0.15 / 1000
        hours = seconds / 3600
        tariff = m.tariffs.tariff(local) if m.tariffs else 1
        ran = self._now.get("tariff", tariff)  # the step's energy went to the tariff that ran during it
        self.imp[ran - 1] += p_imp * hours
        self.exp[ran - 1] += p_exp * hours
        self.rimp += q * hours
        for d in self.mbus:
            self._read_mbus(d, t, seconds)
        if m.capacity:
            self._capacity(t, p_imp * hours)
        self._now = {
            "tariff": tariff,
            "p_import": p_imp,
            "p_export": p_exp,
            "q_import": q,
            "q_export": 0.0,
            "net_w": net,
        }

    def _read_mbus(self, d: _Mbus, t: float, seconds: float) -> None:
        dev = d.device
        d.rate = min(dev.high, max(dev.low, d.rate + self.rng.gauss(0, (dev.high - dev.low) / 50)))
        before = d.value
        d.value += d.rate * seconds / 3600
        boundary = t - t % MBUS_EVERY
        if d.read_at is None or boundary > d.read_at:
            # the reading at the boundary: the register then, between the last two steps
            share = 1.0 if seconds <= 0 else max(0.0, 1.0 - (t - boundary) / seconds)
            d.read_at, d.read_value = boundary, before + (d.value - before) * share

    def _capacity(self, t: float, kwh: float) -> None:
        quarter = int(t // QUARTER)
        if self.quarter is not None and quarter != self.quarter:
            mean = self.quarter_kwh / (QUARTER / 3600)
            end = (self.quarter + 1) * QUARTER
            if mean > self.peak_kw:
                self.peak_kw, self.peak_at = mean, float(end)
            self.quarter_kwh = 0.0
        if self.quarter is None or quarter != self.quarter:
            self.quarter = quarter
        self.quarter_kwh += kwh
        local, _ = render_local(datetime.fromtimestamp(t, timezone.utc), self.timezone)
        month = (local.year, local.month)
        if self.month is None:
            self.month = month
            self._invent_history(local)
        elif month != self.month:
            start = self._utc_of(datetime(*self.month, 1))
            self.history.insert(0, (start, self.peak_at or start, self.peak_kw))
            del self.history[13:]
            self.month, self.peak_kw, self.peak_at = month, 0.0, None

    def _invent_history(self, local: datetime) -> None:
        """A plausible past: the previous three months' peaks (a meter installed a while ago)."""
        y, mo = local.year, local.month
        for _ in range(3):
            y, mo = (y, mo - 1) if mo > 1 else (y - 1, 12)
            start = self._utc_of(datetime(y, mo, 1))
            at = start + self.rng.randrange(1, 27) * 86400 + self.rng.randrange(28, 88) * QUARTER
            self.history.append((start, float(at), round(self.rng.uniform(2.5, 7.5), 3)))

    def _utc_of(self, local: datetime) -> float:
        return _to_utc(local, self.timezone, None).timestamp()

    def _stamp(self, t: float) -> str:
        local, summer = render_local(datetime.fromtimestamp(t, timezone.utc), self.timezone)
        return p1_time(local, summer)

    # -- the telegram --------------------------------------------------------------------------
    def fields(self, t: float, local: datetime, summer: bool) -> dict[str, Any]:
        """The values the meter's line templates name, at UTC seconds ``t``."""
        m, now = self.meter, self._now
        f: dict[str, Any] = {
            "time": p1_time(local, summer),
            "equipment_id": self.equipment_id,
            "import_t1": self.imp[0],
            "import_t2": self.imp[1],
            "export_t1": self.exp[0],
            "export_t2": self.exp[1],
            "import_total": sum(self.imp),
            "export_total": sum(self.exp),
            "rimport_total": self.rimp,
            "rexport_total": self.rexp,
            "tariff": now["tariff"],
            "p_import": now["p_import"],
            "p_export": now["p_export"],
            "q_import": now["q_import"],
            "q_export": now["q_export"],
            "failures": self.failures,
            "long_failures": self.long_failures,
        }
        if self.failure_log is None:  # the long failures' log: fixed at the first telegram
            entries = [(t - days * 86400, secs) for days, secs in self._long]
            self.failure_log = f"({len(entries)})(0-0:96.7.19)" + "".join(
                f"({self._stamp(at)})({secs:010d}*s)" for at, secs in entries)
        f["failure_log"] = self.failure_log
        for i in range(m.phases):
            n = i + 1
            w = now["net_w"][i]
            v = self.voltage[i]
            f[f"v_l{n}"] = v
            f[f"i_l{n}"] = abs(w) / max(v, 1.0) / self.pf[i]
            f[f"p_import_l{n}"] = max(0.0, w) / 1000
            f[f"p_export_l{n}"] = max(0.0, -w) / 1000
            f[f"q_import_l{n}"] = max(0.0, w) * 0.15 / 1000
            f[f"q_export_l{n}"] = 0.0
        for d in self.mbus:
            k = d.device.medium
            f[f"{k}_id"] = d.ident
            f[f"{k}_time"] = self._stamp(d.read_at if d.read_at is not None else t)
            f[f"{k}_value"] = d.read_value
        if m.capacity:
            elapsed = max(1.0, t - (self.quarter or 0) * QUARTER)
            f["demand_kw"] = self.quarter_kwh / (elapsed / 3600)
            f["peak_time"] = self._stamp(self.peak_at if self.peak_at is not None else t - t % QUARTER)
            f["peak_kw"] = self.peak_kw
            parts = [f"({len(self.history)})(1-0:1.6.0)(1-0:1.6.0)"]
            for start, at, kw in self.history:
                parts.append(f"({self._stamp(start)})({self._stamp(at)})({kw:06.3f}*kW)")
            f["peak_history"] = "".join(parts)
        return f

    def telegram(self, when: datetime) -> bytes:
        """The telegram for meter time ``when`` (aware: an instant; naive: the meter's local time)."""
        utc = self.utc(when)
        t = utc.timestamp()
        local, summer = render_local(utc, self.timezone)
        self._step(t, local)
        self.telegrams += 1
        values = self.fields(t, local, summer)
        return build_telegram(self.meter.header, (line.format(**values) for line in self.meter.lines))

    frame = telegram  #: the name ``han simulate`` writes with, as for the DLMS simulator

    def frames(self, start: datetime, step: float, count: int | None = None):
        """Telegrams for meter times ``start``, ``start + step`` ... (``count`` of them, or forever)."""
        t0 = self.utc(start)
        i = 0
        while count is None or i < count:
            yield self.telegram(t0 + timedelta(seconds=step * i))
            i += 1

    def utc(self, when: datetime) -> datetime:
        """``when`` as an aware UTC instant (naive = the meter's local time)."""
        if when.tzinfo is not None:
            return when.astimezone(timezone.utc)
        return _to_utc(when, self.timezone, None)
