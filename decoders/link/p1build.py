"""Writing P1 telegrams (the text telegrams of DSMR, e-MUCS and the Swedish HAN port), sans-IO.

The inverse of the P1 framer, for the simulator and for tests::

    /ISK5\\2M550T-1012          header: "/", 3-letter FLAG id, baud digit, identification
                                an empty line
    0-0:1.0.0(260115120000W)    one COSEM object per line
    1-0:1.8.1(001234.567*kWh)
    !5C1A                       "!", then CRC-16/ARC over "/" .. "!" as 4 hex digits (DSMR 4+),
                                nothing for DSMR 2.2 / 3; then CR LF

Every line ends in CR LF.  Time stamps are ``YYMMDDhhmmssX``: the meter's local time, ``X`` = ``S``
in summer time, ``W`` in winter time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .crc import crc16_arc


def build_telegram(header: str, lines: Iterable[str], *, crc: bool = True) -> bytes:
    """One telegram: ``header`` (starting with ``/``), the object lines, ``!`` and the CRC (unless ``crc=False``)."""
    if not header.startswith("/") or any(c in header for c in "\r\n!"):
        raise ValueError(f"a P1 header starts with '/' and is one line without '!': {header!r}")
    body = [header, ""]
    for line in lines:
        if any(c in line for c in "\r\n!/"):
            raise ValueError(f"a P1 object line holds no CR, LF, '!' or '/': {line!r}")
        body.append(line)
    raw = ("\r\n".join(body) + "\r\n!").encode("ascii")
    if crc:
        raw += b"%04X" % crc16_arc(raw)
    return raw + b"\r\n"


def p1_time(local: datetime, summer: bool) -> str:
    """``YYMMDDhhmmssX`` for the meter's local wall-clock time ``local`` (``X``: S summer, W winter)."""
    return local.strftime("%y%m%d%H%M%S") + ("S" if summer else "W")
