"""Hour accounting, sans-IO: readings of a meter's cumulative registers in, hour and minute deltas out.

One :class:`Meter` per meter keeps the last reading (its time and registers) and
turns each new reading into energy per local hour::

      reading A (t1, v1)                 reading B (t2, v2)
      |------- hour h -------|------- hour h+1 -------|
      |<-- (b - t1)/(t2 - t1) of dv -->|<-- the rest -->|

The energy between two consecutive readings, ``v2 - v1``, is spread over the
hours the interval overlaps, in proportion to the overlap (linear).  So the
hours of any span add up exactly to the register's difference, and an outage's
energy is spread over the outage's hours instead of landing in one.

A boundary ``b`` inside an interval is *known* when a reading lies within
:data:`BOUNDARY_TOLERANCE` seconds of it (a 10-second meter's push at hh:00:05;
a Norwegian hourly list at hh:00:02); otherwise its value is interpolated and
the hours on both sides are estimated.

Faults (``hours.events`` bits), each never giving a negative or absurd hour:

- **rollover**: a register that goes down by nearly its modulus (2^32 units of its
  A-XDR type, times its scaler) wrapped: the energy is ``v2 + modulus - v1``, exact.
- **reset**: any other decrease.  The energy since the reset is ``v2`` (a reset
  starts at 0), counted in the interval when plausible, else 0; estimated.
- **absurd jump**: an increase above :data:`ABSURD_W` mean power over the interval
  (a corrupted value): not counted, the reading becomes the new base; estimated.
- **clock set back**: a reading older than the last one.  Its increase (if
  plausible) is counted in the last reading's hour, the reading becomes the new
  base, and the meter's repeated hours are counted again as the meter labels
  them (so the clock's hours hold what was used while the clock showed them); estimated.
- **meter swap**: the meter number changes under the same meter identity: the
  interval is not counted (the old meter's last energy and the new meter's
  first are unknown); the hours around it are estimated.

A meter that starts a new identity (a new system title) is a new meter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from .localtime import hour_start, next_hour
from .schema import ABSURD, CLOCK_BACK, RESET, ROLLOVER, SWAP

#: seconds: a reading this close to an hour boundary counts as read at the boundary
BOUNDARY_TOLERANCE = 60
#: watts: an interval's mean power above this is a corrupted or reset register, not energy
ABSURD_W = 1_000_000.0
#: the energy kinds an hour holds: the totals, then import and export of tariffs 1 and 2 on their own
KINDS = (
    "import_wh", "export_wh", "reactive_import_varh", "reactive_export_varh",
    "import_t1_wh", "import_t2_wh", "export_t1_wh", "export_t2_wh",
)
#: register keys of the totals, and the kind each is
KEYS = {
    "active_energy_import": "import_wh",
    "active_energy_export": "export_wh",
    "reactive_energy_import": "reactive_import_varh",
    "reactive_energy_export": "reactive_export_varh",
}
#: the same by OBIS C (A = 1, D = 8; E = 0 the total, E > 0 a tariff), for registers whose key is not one of these
OBIS_ENERGY = {1: "import_wh", 2: "export_wh", 3: "reactive_import_varh", 4: "reactive_export_varh"}
#: (total kind, tariff) -> the kind an hour keeps that tariff in; other tariffs count in the total only
TARIFF_KINDS = {
    ("import_wh", 1): "import_t1_wh",
    ("import_wh", 2): "import_t2_wh",
    ("export_wh", 1): "export_t1_wh",
    ("export_wh", 2): "export_t2_wh",
}
#: register key -> power direction; by OBIS: A = 1, C = 1 (import) or 2 (export), D = 7, E = 0
POWER_KEYS = {"active_power_import": "import", "active_power_export": "export"}
UNIT_FACTOR = {"wh": 1.0, "kwh": 1e3, "mwh": 1e6, "varh": 1.0, "kvarh": 1e3, "mvarh": 1e6}
POWER_FACTOR = {"w": 1.0, "kw": 1e3, "mw": 1e6}
#: modulus of a register by its A-XDR type (in raw units)
MODULUS = {"double_long_unsigned": 2**32, "long_unsigned": 2**16, "double_long": 2**31, "long64_unsigned": 2**64}

# an hour delta: [import, export, rimport, rexport, covered, bounds, events, pimax, pisum, pemax, pesum, pn, offset,
#                 import t1, import t2, export t1, export t2]
IMP, EXP, RIMP, REXP, COVERED, BOUNDS, EVENTS, PIMAX, PISUM, PEMAX, PESUM, PN, OFFSET, IT1, IT2, ET1, ET2 = range(17)
#: kind -> its place in an hour delta
SLOT = dict(zip(KINDS, (IMP, EXP, RIMP, REXP, IT1, IT2, ET1, ET2)))
# a minute delta: [pisum, pimax, pesum, pemax, n]


@dataclass(frozen=True, slots=True)
class Reading:
    """What the accounting needs from one push."""

    t: float  #: Unix seconds (the meter's time in UTC)
    energy: dict[str, tuple[float, float | None]]  #: kind -> (value in Wh/varh, modulus in Wh or None)
    import_w: float | None = None
    export_w: float | None = None
    meter_id: str | None = None


def role(key: str | None, obis: Any) -> tuple[str, str, int] | None:
    """What a register is to the accounting: ("energy", total kind, tariff 0..) or ("power", direction, 0).

    By its key first (``active_energy_import``, ``active_energy_import_t1``, ``active_power_import``);
    a register whose key is none of those (a P1 object table's own names, or none) by its OBIS code
    (an ``obis.code.Obis`` or its dotted text): A = 1, C.8.E energy, C.7.0 power.
    """
    if key:
        kind = KEYS.get(key)
        if kind is not None:
            return "energy", kind, 0
        direction = POWER_KEYS.get(key)
        if direction is not None:
            return "power", direction, 0
        base, _, tail = key.rpartition("_t")
        if tail.isdigit() and base in KEYS:
            return "energy", KEYS[base], int(tail)
    if obis is None:
        return None
    if type(obis) is str:
        try:
            a, _, c, d, e, _ = (int(x) for x in obis.split("."))
        except ValueError:
            return None
    else:
        a, c, d, e = obis.a, obis.c, obis.d, obis.e
    if a != 1:
        return None
    if d == 8 and c in OBIS_ENERGY:
        return "energy", OBIS_ENERGY[c], e
    if d == 7 and e == 0 and c in (1, 2):
        return "power", "import" if c == 1 else "export", 0
    return None


#: a key's role, once worked out (a key names one quantity, so its OBIS code does not change it); per push
#: this saves the rules for every register (a 33-register Kamstrup push: 12 us -> 5 us)
_ROLE_OF_KEY: dict[str, tuple[str, str, int] | None] = {}
_UNSEEN = ("", "", -1)


def reading_of(t: float, registers: Any, meter_id: str | None) -> Reading | None:
    """The energy and power of a push's registers (``obis.push.Register``s), None when it has neither.

    Values are converted by the register's unit (Wh, kWh, MWh; W, kW, MW), whatever the meter.
    Totals come from the total registers (1.8.0 ...); a meter that sends only tariff registers
    (1.8.1, 1.8.2 ...) gets their sum.  Tariffs 1 and 2 of active import and export are kept on
    their own as well.
    """
    energy: dict[str, tuple[float, float | None]] = {}
    tariffs: dict[str, list[float]] = {}
    imp_w = exp_w = None
    cache = _ROLE_OF_KEY
    for r in registers:
        v = r.value
        if type(v) is not int and type(v) is not float:
            continue
        key = r.key
        if key is None:
            found = role(None, getattr(r, "obis", None))
        else:
            found = cache.get(key, _UNSEEN)
            if found is _UNSEEN:
                found = role(key, getattr(r, "obis", None))
                if len(cache) >= 4096:  # keys from a broken or hostile source must not grow memory
                    cache.clear()
                cache[key] = found
        if found is None:
            continue
        what, kind, tariff = found
        unit = (r.unit or "").lower()
        if what == "power":
            f = POWER_FACTOR.get(unit or "w")
            if f is None:
                continue
            if kind == "import":
                imp_w = v * f
            else:
                exp_w = v * f
            continue
        f = UNIT_FACTOR.get(unit or "wh")
        if f is None:
            continue
        mod = MODULUS.get(r.type)
        modulus = mod * (10.0 ** (r.scaler or 0)) * f if mod else None
        if tariff == 0:
            energy[kind] = (v * f, modulus)
            continue
        tariffs.setdefault(kind, []).append(v * f)
        own = TARIFF_KINDS.get((kind, tariff))
        if own is not None:
            energy[own] = (v * f, modulus)
    for kind, parts in tariffs.items():
        if kind not in energy:
            energy[kind] = (sum(parts), None)
    if not energy and imp_w is None and exp_w is None:
        return None
    return Reading(t, energy, imp_w, exp_w, meter_id)


@dataclass
class Meter:
    """One meter's accounting: its last reading, and the deltas since the last :meth:`take`."""

    tz: tzinfo
    last_t: float | None = None
    values: dict[str, float] = field(default_factory=dict)
    meter_id: str | None = None
    hours: dict[int, list] = field(default_factory=dict)  #: hour start -> delta
    minutes: dict[int, list] = field(default_factory=dict)  #: minute -> delta
    _hour: tuple[int, int, int] = (0, 0, 0)  #: cache: (start, end, offset) of the last hour looked up

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"t": self.last_t, "v": self.values, "id": self.meter_id}

    @classmethod
    def from_state(cls, tz: tzinfo, state: dict[str, Any] | None) -> "Meter":
        m = cls(tz)
        if state:
            m.last_t = state.get("t")
            m.values = {k: float(v) for k, v in (state.get("v") or {}).items()}
            m.meter_id = state.get("id")
        return m

    def take(self) -> tuple[dict[int, list], dict[int, list]]:
        """The hour and minute deltas gathered so far; starts new ones."""
        h, m = self.hours, self.minutes
        self.hours, self.minutes = {}, {}
        return h, m

    # -- hours ------------------------------------------------------------------------------
    def _hour_of(self, t: float) -> tuple[int, int, int]:
        c = self._hour
        if c[0] <= t < c[1]:
            return c
        start, off = hour_start(t, self.tz)
        c = self._hour = (start, next_hour(start, self.tz), off)
        return c

    def _delta(self, start: int, off: int) -> list:
        d = self.hours.get(start)
        if d is None:
            d = self.hours[start] = [None, None, None, None, 0.0, 0, 0, None, None, None, None, 0, off,
                                     None, None, None, None]
        return d

    def _mark(self, t: float, events: int = 0, bounds: int = 0) -> None:
        s, _, off = self._hour_of(t)
        d = self._delta(s, off)
        d[EVENTS] |= events
        d[BOUNDS] |= bounds

    def _mark_span(self, t1: float, t2: float, events: int) -> None:
        """Mark every hour from t1's to t2's (at most 31 days of them; else just the two ends)."""
        if t2 - t1 > 31 * 86400:
            self._mark(t1, events)
            self._mark(t2, events)
            return
        s, e, off = self._hour_of(t1)
        while True:
            self._delta(s, off)[EVENTS] |= events
            if e > t2:
                break
            s, e, off = self._hour_of(e)

    # -- the work ---------------------------------------------------------------------------
    def add(self, r: Reading) -> None:
        """Account one reading (in the order the pushes arrived)."""
        if r.import_w is not None or r.export_w is not None:
            self._power(r)
        if not r.energy:
            return
        t, last = r.t, self.last_t
        if last is None:
            self._rebase(r)
            return
        if r.meter_id and self.meter_id and r.meter_id != self.meter_id:
            self._mark(last, SWAP)
            self._mark(t, SWAP)
            self._rebase(r)
            return
        dt = t - last
        if dt <= 0:
            gain = {k: v - self.values[k] for k, (v, _) in r.energy.items() if k in self.values}
            s, _, off = self._hour_of(last)
            d = self._delta(s, off)
            for k, g in gain.items():
                if 0 < g <= ABSURD_W * 60 / 3600:  # at most a minute at the absurd power: a push's worth
                    i = SLOT[k]
                    d[i] = (d[i] or 0.0) + g
            if dt < 0:
                d[EVENTS] |= CLOCK_BACK
                self._mark_span(t, last, CLOCK_BACK)
                self._rebase(r)
            else:
                self.values.update((k, v) for k, (v, _) in r.energy.items())
            return
        limit = ABSURD_W * dt / 3600
        gains: dict[str, float] = {}
        events = 0
        for k, (v, modulus) in r.energy.items():
            old = self.values.get(k)
            if old is None:
                continue
            g = v - old
            if g < 0:
                if modulus and 0 <= v + modulus - old <= limit:
                    g = v + modulus - old
                    events |= ROLLOVER
                else:
                    g = v if 0 <= v <= limit else 0.0
                    events |= RESET
            elif g > limit:
                g = 0.0
                events |= ABSURD
            gains[k] = g
        self._spread(last, t, gains, events)
        self.last_t = t
        self.values.update((k, v) for k, (v, _) in r.energy.items())
        if r.meter_id:
            self.meter_id = r.meter_id

    def _rebase(self, r: Reading) -> None:
        self.last_t = r.t
        self.values = {k: v for k, (v, _) in r.energy.items()}
        if r.meter_id:
            self.meter_id = r.meter_id
        s, _, off = self._hour_of(r.t)
        if s == r.t:  # read exactly at the boundary: the hour's start is known
            self._mark(r.t, bounds=1)

    def _spread(self, t1: float, t2: float, gains: dict[str, float], events: int) -> None:
        dt = t2 - t1
        idx = [(SLOT[k], g) for k, g in gains.items()]
        s, e, off = self._hour_of(t1)
        a = t1
        while True:
            b = min(e, t2)
            d = self._delta(s, off)
            share = (b - a) / dt
            for i, g in idx:
                d[i] = (d[i] or 0.0) + g * share
            d[COVERED] += b - a
            d[EVENTS] |= events
            if b >= t2:
                if b == e:  # read exactly at the boundary
                    d[BOUNDS] |= 2
                    ns, ne, noff = self._hour_of(e)
                    self._delta(ns, noff)[BOUNDS] |= 1
                break
            # boundary e lies inside (t1, t2)
            known = (e - t1) <= BOUNDARY_TOLERANCE or (t2 - e) <= BOUNDARY_TOLERANCE
            if known:
                d[BOUNDS] |= 2
            s, e, off = self._hour_of(e)
            if known:
                self._delta(s, off)[BOUNDS] |= 1
            a = b

    def _power(self, r: Reading) -> None:
        s, _, off = self._hour_of(r.t)
        d = self._delta(s, off)
        minute = int(r.t // 60)
        m = self.minutes.get(minute)
        if m is None:
            m = self.minutes[minute] = [None, None, None, None, 0]
        if r.import_w is not None:
            p = r.import_w
            d[PISUM] = (d[PISUM] or 0.0) + p
            d[PIMAX] = p if d[PIMAX] is None or p > d[PIMAX] else d[PIMAX]
            m[0] = (m[0] or 0.0) + p
            m[1] = p if m[1] is None or p > m[1] else m[1]
        if r.export_w is not None:
            p = r.export_w
            d[PESUM] = (d[PESUM] or 0.0) + p
            d[PEMAX] = p if d[PEMAX] is None or p > d[PEMAX] else d[PEMAX]
            m[2] = (m[2] or 0.0) + p
            m[3] = p if m[3] is None or p > m[3] else m[3]
        d[PN] += 1
        m[4] += 1
