"""COSEM date-time (12 bytes), date (5) and time (4), kept exactly as sent.

::

    YY YY | MM | DD | WD | hh | mm | ss | cc | DV DV | ST
    year    month day  wkd  hour min  sec  1/100  deviation  clock status
    FFFF    FF    FF   FF   FF   FF   FF   FF     8000       FF   = not specified

Deviation is UTC minus local time in minutes (-120 in central European
summer time); 0x8000 means "not specified".  Status bit 0x80 means
daylight-saving time is active, 0x01 that the clock is invalid.  Nothing is
guessed: unspecified fields stay ``None``, and a weekday of 0 (sent by some
Aidon meters for Sunday) is kept as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from ..errors import AxdrError
from ..frozen import quick_init

DEVIATION_UNSPECIFIED = -0x8000
STATUS_DST = 0x80
STATUS_INVALID = 0x01


def _u8(v: int) -> int | None:
    return None if v == 0xFF else v


@quick_init
@dataclass(frozen=True, slots=True)
class CosemDateTime:
    year: int | None
    month: int | None  #: 1..12; 0xFD/0xFE (DST end/begin) kept as 253/254
    day: int | None  #: 1..31; 0xFD/0xFE (second last / last day) kept as 253/254
    weekday: int | None  #: 1 = Monday .. 7 = Sunday (0 seen in the wild)
    hour: int | None
    minute: int | None
    second: int | None
    hundredths: int | None
    deviation: int | None  #: minutes, UTC - local; None = not specified
    clock_status: int | None
    raw: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> "CosemDateTime":
        if cls is CosemDateTime and type(raw) is bytes:
            known = _PARSED.get(raw)  # a push often carries its time twice: the notification's and the clock's
            if known is not None:
                return known
        if len(raw) != 12:
            raise AxdrError(f"a COSEM date-time is 12 bytes, got {len(raw)}")
        y0, y1, mo, d, wd, h, mi, s, cs, d0, d1, st = raw  # 0xFF: not specified (_u8, inlined: every push has one)
        year = (y0 << 8) | y1
        dev = (d0 << 8) | d1
        if dev >= 0x8000:
            dev -= 0x10000
        parsed = cls(
            None if year == 0xFFFF else year,
            None if mo == 0xFF else mo,
            None if d == 0xFF else d,
            None if wd == 0xFF else wd,
            None if h == 0xFF else h,
            None if mi == 0xFF else mi,
            None if s == 0xFF else s,
            None if cs == 0xFF else cs,
            None if dev == DEVIATION_UNSPECIFIED else dev,
            None if st == 0xFF else st,
            bytes(raw),
        )
        if cls is CosemDateTime:
            if len(_PARSED) >= _MAX_PARSED:
                _PARSED.clear()
            _PARSED[parsed.raw] = parsed
        return parsed

    @classmethod
    def from_datetime(cls, dt: datetime, *, deviation: int | None = None, clock_status: int = 0) -> "CosemDateTime":
        dev = DEVIATION_UNSPECIFIED if deviation is None else deviation
        raw = (
            dt.year.to_bytes(2, "big")
            + bytes((dt.month, dt.day, dt.isoweekday(), dt.hour, dt.minute, dt.second, dt.microsecond // 10000))
            + (dev & 0xFFFF).to_bytes(2, "big")
            + bytes((clock_status,))
        )
        return cls.from_bytes(raw)

    # -- views -------------------------------------------------------------
    @property
    def dst(self) -> bool:
        return bool(self.clock_status and self.clock_status & STATUS_DST)

    @property
    def invalid(self) -> bool:
        return bool(self.clock_status and self.clock_status & STATUS_INVALID)

    @property
    def complete(self) -> bool:
        """True when year..second are all specified and in range."""
        try:
            self.naive()
        except ValueError:
            return False
        return True

    def naive(self) -> datetime:
        """The local wall-clock time as a naive datetime; ValueError when not fully specified."""
        # a push's clock register and its timestamp are the same parsed time: its datetime is made once
        # (kept only for the value from_bytes made of these bytes, whose fields are the bytes' own)
        parsed = _PARSED.get(self.raw) is self
        if parsed:
            known = _NAIVE.get(self.raw)
            if known is not None:
                return known
        if None in (self.year, self.month, self.day, self.hour, self.minute, self.second):
            raise ValueError("date-time is not fully specified")
        hs = self.hundredths if self.hundredths is not None and self.hundredths < 100 else 0
        local = datetime(self.year, self.month, self.day, self.hour, self.minute, self.second, hs * 10000)  # type: ignore[arg-type]
        if parsed:
            if len(_NAIVE) >= _MAX_PARSED:
                _NAIVE.clear()
            _NAIVE[self.raw] = local  # (datetimes are immutable: safe to hand out again)
        return local

    def to_datetime(self, default_tz: tzinfo | None = None, *, ignore_deviation: bool = False) -> datetime:
        """An aware datetime when the deviation or ``default_tz`` is known, else naive local time.

        With ``default_tz`` (the meter's time zone) an ambiguous hour at the
        end of summer time is resolved with the DST status bit.
        ``ignore_deviation`` treats the deviation as not specified (for
        meters known to send a wrong one).
        """
        local = self.naive()
        if self.deviation is not None and not ignore_deviation:
            return local.replace(tzinfo=_offset(-self.deviation))
        if default_tz is not None:
            # fold=0 picks the first (summer-time) occurrence of an ambiguous time
            return local.replace(tzinfo=default_tz, fold=0 if self.dst or self.clock_status is None else 1)
        return local

    def isoformat(self, default_tz: tzinfo | None = None) -> str | None:
        try:
            dt = self.to_datetime(default_tz)
        except ValueError:
            return None
        return dt.isoformat(timespec="milliseconds" if dt.microsecond else "seconds")

    def local_and_utc(
        self, default_tz: tzinfo | None = None, *, ignore_deviation: bool = False
    ) -> tuple[str | None, datetime | None]:
        """``(isoformat(default_tz), utc(default_tz))`` from one conversion (a push needs both)."""
        try:
            dt = self.to_datetime(default_tz, ignore_deviation=ignore_deviation)
        except ValueError:
            return None, None
        text = dt.isoformat(timespec="milliseconds" if dt.microsecond else "seconds")
        return text, (dt.astimezone(timezone.utc) if dt.tzinfo is not None else None)

    def utc(self, default_tz: tzinfo | None = None) -> datetime | None:
        """The instant in UTC, or None when neither deviation nor time zone is known."""
        try:
            dt = self.to_datetime(default_tz)
        except ValueError:
            return None
        if dt.tzinfo is None:
            return None
        return dt.astimezone(timezone.utc)

    def __str__(self) -> str:
        return self.isoformat() or self.raw.hex().upper()


_OFFSETS: dict[int, timezone] = {}
#: date-times parsed lately, by their bytes (frozen, so each can be handed out again)
_PARSED: dict[bytes, CosemDateTime] = {}
_MAX_PARSED = 256
#: naive() of date-times lately converted, by their bytes
_NAIVE: dict[bytes, datetime] = {}


def _offset(minutes: int) -> timezone:
    """The fixed UTC offset of ``minutes`` (a deviation is one of a few hundred values: kept once made)."""
    tz = _OFFSETS.get(minutes)
    if tz is None:
        tz = timezone(timedelta(minutes=minutes))
        if len(_OFFSETS) < 4096:
            _OFFSETS[minutes] = tz
    return tz


def looks_like_datetime(raw: bytes) -> bool:
    """Whether a 12-byte octet-string is plausibly a COSEM date-time (registers such as 0-0:1.0.0)."""
    if len(raw) != 12:
        return False
    year = (raw[0] << 8) | raw[1]
    month, day, wd, hour, minute, sec, hs = raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8]
    dev = (raw[9] << 8) | raw[10]
    return (
        (1970 <= year <= 2200 or year == 0xFFFF)
        and (1 <= month <= 12 or month >= 0xFD)
        and (1 <= day <= 31 or day >= 0xFD)
        and (wd <= 7 or wd == 0xFF)
        and (hour <= 23 or hour == 0xFF)
        and (minute <= 59 or minute == 0xFF)
        and (sec <= 59 or sec == 0xFF)
        and (hs <= 99 or hs == 0xFF)
        and (dev == 0x8000 or dev <= 720 or dev >= 0x10000 - 720)
    )
