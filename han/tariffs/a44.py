"""ENTSO-E day-ahead prices: parse an A44 ``Publication_MarketDocument``, sans-IO.

::

    Publication_MarketDocument
      TimeSeries                       (one or more; curveType A01 or A03)
        currency_Unit.name             EUR
        price_Measure_Unit.name        MWH
        Period
          timeInterval/start, end      UTC, 2025-03-29T23:00Z
          resolution                   PT60M | PT15M | PT30M
          Point*                       position (1-based), price.amount

With curve type A03 a position that repeats the previous price is left out: the
previous price continues until the next position given (or the period's end).
An ``Acknowledgement_MarketDocument`` is the platform's answer when it has no
data or refuses the request; its reason text becomes the error.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone


class A44Error(Exception):
    """The document is not usable (one line)."""


@dataclass(frozen=True, slots=True)
class Price:
    start_utc: int
    seconds: int
    price: float  #: per MWh, in ``currency``
    currency: str


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _text(el: ET.Element, name: str) -> str | None:
    c = _child(el, name)
    return None if c is None or c.text is None else c.text.strip()


def _time(text: str | None) -> int:
    if not text:
        raise A44Error("a Period has no timeInterval start/end")
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp())


_RES = re.compile(r"^PT(\d+)M$")


def parse(doc: bytes) -> list[Price]:
    """Every priced slot of an A44 document, by start; A44Error for an error answer or a broken one."""
    try:
        root = ET.fromstring(doc)
    except ET.ParseError as exc:
        raise A44Error(f"not XML: {exc}") from None
    kind = _local(root.tag)
    if kind == "Acknowledgement_MarketDocument":
        reason = " ".join(t.text.strip() for t in root.iter() if _local(t.tag) == "text" and t.text)
        raise A44Error(f"the platform answered: {reason or 'no reason given'}")
    if kind != "Publication_MarketDocument":
        raise A44Error(f"not a Publication_MarketDocument but {kind}")
    out: dict[int, Price] = {}
    for ts in (e for e in root if _local(e.tag) == "TimeSeries"):
        currency = _text(ts, "currency_Unit.name") or "EUR"
        unit = (_text(ts, "price_Measure_Unit.name") or "MWH").upper()
        if unit != "MWH":
            raise A44Error(f"price unit {unit}, expected MWH")
        for period in (e for e in ts if _local(e.tag) == "Period"):
            iv = _child(period, "timeInterval")
            if iv is None:
                raise A44Error("a Period has no timeInterval")
            start, end = _time(_text(iv, "start")), _time(_text(iv, "end"))
            m = _RES.match(_text(period, "resolution") or "")
            if not m:
                raise A44Error(f"resolution {_text(period, 'resolution')!r} is not PTnM")
            step = int(m.group(1)) * 60
            slots = (end - start) // step
            given: dict[int, float] = {}
            for pt in (e for e in period if _local(e.tag) == "Point"):
                try:
                    given[int(_text(pt, "position") or "")] = float(_text(pt, "price.amount") or "")
                except ValueError:
                    raise A44Error("a Point has no usable position or price.amount") from None
            if not given:
                continue
            if 1 not in given:
                raise A44Error("a Period's first position is missing")
            price = given[1]
            for pos in range(1, slots + 1):
                price = given.get(pos, price)  # A03: a missing position continues the previous price
                t = start + (pos - 1) * step
                out.setdefault(t, Price(t, step, price, currency))
    return [out[t] for t in sorted(out)]
