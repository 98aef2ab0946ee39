"""A simulated meter, sans-IO: realistic pushes as HDLC frames, built with the code the decoder checks.

:class:`KamstrupSimulator` produces the Danish Kamstrup OMNIPOWER list (the
32 registers of ``obis.profiles.KAMSTRUP_DK``, in the order and with the A-XDR
types of the Radius Elnet sample) with plausible, slowly changing values:
a household load that drifts and now and then jumps (a kettle, an oven),
voltages around 230 V, currents and power factors that fit the power, and
energy registers that grow by exactly the energy the power implies.  Each
push is encrypted and authenticated (security control 0x30) with the given
keys and a counter that increases by one.

:class:`Faults` spoils a stream of frames the way a real line does (noise
between frames, frames cut short, corrupted bytes) and says which frames
stayed intact, for tests and ``han simulate --noise/--torn/--corrupt``.

No I/O, no clock: the caller passes the meter time and writes the bytes.

The meter's clock runs in UTC: pass an aware datetime (any zone) and the push
carries it as the meter renders it, local time in the meter's zone with the
summer-time bit of that instant.  So walking UTC in steps across the spring
change goes 01:59:50 -> 03:00:00 (no 02:00 that does not exist), and across
the autumn change repeats 02:00-02:59, first with the summer-time bit, then
without.  (A naive datetime is taken as the meter's local wall-clock time.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime
from decoders.link.hdlc import build_frames
from decoders.ciphering.security import Keys, protect

U32, U16 = axdr.DOUBLE_LONG_UNSIGNED, axdr.LONG_UNSIGNED
LIST_ID = "Kamstrup_V0001"
PHASES = 3


def _obis(text: str) -> Data:
    return axdr.octet_string(bytes(int(x) for x in text.split(".")))


def cosem_local_time(when: datetime, *, dst: bool, deviation: int | None = None) -> CosemDateTime:
    """The meter's local time as Kamstrup sends it: no hundredths, no deviation, DST in the status.

    ``deviation`` (minutes, UTC - local: -60 for CET, -120 for CEST) makes a meter that sends it.
    """
    dev = b"\x80\x00" if deviation is None else (deviation & 0xFFFF).to_bytes(2, "big")
    raw = (
        when.year.to_bytes(2, "big")
        + bytes((when.month, when.day, when.isoweekday(), when.hour, when.minute, when.second, 0xFF))
        + dev
        + bytes((0x80 if dst else 0x00,))
    )
    return CosemDateTime.from_bytes(raw)


@dataclass
class _Load:
    """A household's load: a drifting base plus occasional appliances."""

    base: float
    extra: float = 0.0
    extra_left: float = 0.0  # seconds the current appliance keeps running
    split: tuple[float, float, float] = (0.4, 0.35, 0.25)


class KamstrupSimulator:
    """Pushes of a Kamstrup OMNIPOWER on its CCC port (Denmark)."""

    def __init__(
        self,
        keys: Keys | None,
        *,
        meter_number: int | None = None,
        system_title: bytes | None = None,
        counter_start: int = 1,
        seed: int | None = None,
        security_control: int = 0x30,
        timezone: str = "Europe/Copenhagen",
    ) -> None:
        self.rng = random.Random(seed)
        self.keys = keys
        self.meter_number = meter_number if meter_number is not None else self.rng.randrange(10_000_000, 99_999_999)
        self.system_title = system_title or (b"KAME" + self.meter_number.to_bytes(4, "big"))
        self.counter = counter_start
        self.security_control = security_control
        self.timezone = timezone
        r = self.rng
        self.load = _Load(base=r.uniform(250, 600))
        self.voltage = [r.uniform(228, 234) for _ in range(PHASES)]
        self.pf = [r.uniform(0.93, 0.99) for _ in range(PHASES)]
        # energy counters in Wh (fractions kept so the registers grow exactly with the power)
        self.import_wh = [r.uniform(2e6, 6e6) for _ in range(PHASES)]
        self.export_wh = [0.0] * PHASES
        self.reactive_import_varh = r.uniform(1e5, 5e5)
        self.reactive_export_varh = r.uniform(1e4, 5e4)
        self.last: datetime | None = None
        self.pushes = 0

    # -- values ---------------------------------------------------------------------------
    def _step(self, seconds: float) -> tuple[list[float], float]:
        """Advance the load by ``seconds``; returns the power per phase (W) and reactive power (var)."""
        r, load = self.rng, self.load
        load.base = min(1500.0, max(120.0, load.base + r.gauss(0, 8) * (seconds / 10) ** 0.5))
        if load.extra_left > 0:
            load.extra_left -= seconds
            if load.extra_left <= 0:
                load.extra = 0.0
        elif r.random() < 0.02 * seconds / 10:
            load.extra = r.choice((1800.0, 2200.0, 900.0, 3000.0))
            load.extra_left = r.uniform(60, 900)
            phase = r.randrange(PHASES)
            load.split = tuple(0.6 if i == phase else 0.2 for i in range(PHASES))  # type: ignore[assignment]
        total = load.base + load.extra + r.gauss(0, 5)
        powers = [max(0.0, total * w) for w in load.split]
        for i in range(PHASES):
            self.voltage[i] = min(240.0, max(222.0, self.voltage[i] + r.gauss(0, 0.3) + (231 - self.voltage[i]) * 0.05))
            self.pf[i] = min(1.0, max(0.85, self.pf[i] + r.gauss(0, 0.005)))
            self.import_wh[i] += powers[i] * seconds / 3600
        reactive = total * 0.15
        self.reactive_import_varh += reactive * seconds / 3600
        return powers, reactive

    def body(self, when: datetime, dst: bool = False, deviation: int | None = None, *,
             utc: datetime | None = None) -> Data:
        """The push's list for local meter time ``when``; ``utc`` (the same instant) times the energy."""
        now = utc or when
        seconds = 10.0 if self.last is None else max(0.0, (now - self.last).total_seconds())
        self.last = now
        powers, reactive = self._step(seconds)
        clock = cosem_local_time(when, dst=dst, deviation=deviation).raw
        v = [round(x) for x in self.voltage]
        amps = [round(p / max(self.voltage[i], 1) / self.pf[i] * 100) for i, p in enumerate(powers)]
        pf = [round(x * 100) for x in self.pf]
        total_p = sum(powers)
        pf_total = round(sum(p * f for p, f in zip(powers, self.pf)) / total_p * 100) if total_p else 100
        e_imp = [int(x) for x in self.import_wh]
        e_exp = [int(x) for x in self.export_wh]
        rows: list[tuple[str, Data]] = [
            ("1.1.1.8.0.255", Data(U32, sum(e_imp))),
            ("1.1.2.8.0.255", Data(U32, sum(e_exp))),
            ("1.1.3.8.0.255", Data(U32, int(self.reactive_import_varh))),
            ("1.1.4.8.0.255", Data(U32, int(self.reactive_export_varh))),
            ("1.1.0.0.1.255", Data(U32, self.meter_number)),
            ("1.1.1.7.0.255", Data(U32, round(total_p))),
            ("1.1.2.7.0.255", Data(U32, 0)),
            ("1.1.3.7.0.255", Data(U32, round(reactive))),
            ("1.1.4.7.0.255", Data(U32, 0)),
            ("0.1.1.0.0.255", axdr.octet_string(clock)),
            ("1.1.32.7.0.255", Data(U16, v[0])),
            ("1.1.52.7.0.255", Data(U16, v[1])),
            ("1.1.72.7.0.255", Data(U16, v[2])),
            ("1.1.31.7.0.255", Data(U32, amps[0])),
            ("1.1.51.7.0.255", Data(U32, amps[1])),
            ("1.1.71.7.0.255", Data(U32, amps[2])),
            ("1.1.21.7.0.255", Data(U32, round(powers[0]))),
            ("1.1.41.7.0.255", Data(U32, round(powers[1]))),
            ("1.1.61.7.0.255", Data(U32, round(powers[2]))),
            ("1.1.33.7.0.255", Data(U16, pf[0])),
            ("1.1.53.7.0.255", Data(U16, pf[1])),
            ("1.1.73.7.0.255", Data(U16, pf[2])),
            ("1.1.13.7.0.255", Data(U16, pf_total)),
            ("1.1.22.7.0.255", Data(U32, 0)),
            ("1.1.42.7.0.255", Data(U32, 0)),
            ("1.1.62.7.0.255", Data(U32, 0)),
            ("1.1.22.8.0.255", Data(U32, e_exp[0])),
            ("1.1.42.8.0.255", Data(U32, e_exp[1])),
            ("1.1.62.8.0.255", Data(U32, e_exp[2])),
            ("1.1.21.8.0.255", Data(U32, e_imp[0])),
            ("1.1.41.8.0.255", Data(U32, e_imp[1])),
            ("1.1.61.8.0.255", Data(U32, e_imp[2])),
        ]
        items = [axdr.visible_string(LIST_ID)]
        for obis, value in rows:
            items += [_obis(obis), value]
        return axdr.structure(*items)

    def apdu(self, when: datetime, *, dst: bool | None = None, deviation: int | None = None) -> bytes:
        """The plain DataNotification for meter time ``when``.

        An aware ``when`` is an instant: it is rendered in the meter's zone with that instant's
        summer-time bit.  A naive one is local wall-clock time; ``dst`` then defaults to what the
        zone says (in the repeated autumn hour: the first, summer-time pass).  ``deviation`` is
        left unspecified unless given, as a Kamstrup sends it.
        """
        utc = None
        if when.tzinfo is not None:
            utc = when.astimezone(timezone.utc)
            when, zone_dst = render_local(utc, self.timezone)
            if dst is None:
                dst = zone_dst
        elif dst is None:
            dst = _is_dst(when, self.timezone)
        if utc is None:
            utc = _to_utc(when, self.timezone, dst)
        stamp = cosem_local_time(when, dst=dst, deviation=deviation)
        return build_data_notification(self.body(when, dst, deviation, utc=utc), datetime=stamp)

    def frame(self, when: datetime, *, dst: bool | None = None, deviation: int | None = None) -> bytes:
        """The next push as one HDLC frame; the invocation counter advances."""
        plain = self.apdu(when, dst=dst, deviation=deviation)
        if self.keys is None:
            payload = plain
        else:
            payload = protect(
                plain,
                keys=self.keys,
                system_title=self.system_title,
                invocation_counter=self.counter,
                security_control=self.security_control,
            )
            self.counter += 1
        self.pushes += 1
        (frame,) = build_frames(payload)
        return frame

    def frames(self, start: datetime, step: float, count: int | None = None):
        """Frames for meter times ``start``, ``start + step`` ... (``count`` of them, or forever).

        The clock advances in UTC (a naive ``start`` is the meter's local time).
        """
        t0 = self.utc(start)
        i = 0
        while count is None or i < count:
            yield self.frame(t0 + timedelta(seconds=step * i))
            i += 1

    def utc(self, when: datetime) -> datetime:
        """``when`` as an aware UTC instant (naive = the meter's local time, the first pass when repeated)."""
        if when.tzinfo is not None:
            return when.astimezone(timezone.utc)
        return _to_utc(when, self.timezone, None)


def local_now(zone: str = "Europe/Copenhagen") -> datetime:
    """The current wall-clock time in the meter's time zone (naive, whole seconds)."""
    try:
        from zoneinfo import ZoneInfo

        now = datetime.now(ZoneInfo(zone)).replace(tzinfo=None)
    except Exception:  # noqa: BLE001 - no time zone data: the machine's local time
        now = datetime.now()
    return now.replace(microsecond=0)


def render_local(utc: datetime, zone: str) -> tuple[datetime, bool]:
    """(naive local wall-clock time, summer-time bit) of the instant ``utc`` in ``zone``."""
    try:
        from zoneinfo import ZoneInfo

        local = utc.astimezone(ZoneInfo(zone))
    except Exception:  # noqa: BLE001 - no time zone data: UTC
        return utc.astimezone(timezone.utc).replace(tzinfo=None), False
    return local.replace(tzinfo=None), bool(local.dst())


def _to_utc(when: datetime, zone: str, dst: bool | None) -> datetime:
    """The instant of naive local ``when`` in ``zone`` (in a repeated hour: the pass ``dst`` names)."""
    try:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(zone)
    except Exception:  # noqa: BLE001 - no time zone data: UTC
        return when.replace(tzinfo=timezone.utc)
    first = when.replace(tzinfo=tz, fold=0)
    if dst is not None and bool(first.dst()) != dst:
        first = when.replace(tzinfo=tz, fold=1)
    return first.astimezone(timezone.utc)


def _is_dst(when: datetime, zone: str) -> bool:
    try:
        from zoneinfo import ZoneInfo

        return bool(when.replace(tzinfo=ZoneInfo(zone)).dst())
    except Exception:  # noqa: BLE001 - no time zone data: standard time
        return False


class Faults:
    """Spoils frames like a bad line: ``noise``, ``torn`` and ``corrupt`` are probabilities per frame."""

    def __init__(self, *, noise: float = 0.0, torn: float = 0.0, corrupt: float = 0.0, seed: int | None = None) -> None:
        self.noise, self.torn, self.corrupt = noise, torn, corrupt
        self.rng = random.Random(seed)

    def apply(self, frame: bytes) -> tuple[bytes, bool]:
        """The bytes to send for ``frame`` and whether the frame itself arrives intact."""
        r = self.rng
        head = b""
        if self.noise and r.random() < self.noise:
            head = bytes(r.randrange(256) for _ in range(r.randrange(1, 40)))
        if self.torn and r.random() < self.torn:
            return head + frame[: r.randrange(1, len(frame) - 1)], False
        if self.corrupt and r.random() < self.corrupt:
            pos = r.randrange(1, len(frame) - 1)
            spoiled = bytearray(frame)
            spoiled[pos] ^= 1 << r.randrange(8)
            return head + bytes(spoiled), False
        return head + frame, True
