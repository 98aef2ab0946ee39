"""Price sources (a CSV file, ENTSO-E day-ahead) and their cache in the store.

The ``[prices]`` table of the tariff file (docs/tariffs.md)::

    [prices]
    source = "entsoe"                 # or "csv"
    area = "10YNO-1--------2"         # entsoe: the bidding zone's EIC code
    token_file = "~/.config/han/entsoe-token"   # or token = "...", or $HAN_ENTSOE_TOKEN
    timeout = 10                      # seconds per request
    # csv:  file = "prices.csv"  with rows  start,price  (start ISO 8601 with its offset)
    unit = "MWh"                      # csv: the price is per kWh (default) or per MWh
    currency = "EUR"

ENTSO-E prices are fetched at report time only (never by ``han run``, so a slow or
failed fetch cannot block logging), with a timeout, for the hours the report needs
and the cache does not hold; fetched prices are kept in the store's ``prices``
table.  A failed fetch is one line on stderr and the rows without prices get no
``cost``.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .a44 import A44Error, Price, parse
from .rules import TariffError

DEFAULT_URL = "https://web-api.tp.entsoe.eu/api"
CHUNK = 100 * 86400  #: the platform answers at most a year per request; ask for 100 days

CACHE = """
CREATE TABLE IF NOT EXISTS prices (
    area      TEXT    NOT NULL,
    start_utc INTEGER NOT NULL,
    seconds   INTEGER NOT NULL,
    price     REAL    NOT NULL,
    currency  TEXT    NOT NULL,
    PRIMARY KEY (area, start_utc)
) WITHOUT ROWID;
"""


class PriceError(Exception):
    """Prices could not be had (one line; never holds the token)."""


@dataclass(frozen=True, slots=True)
class PriceConfig:
    source: str  #: csv | entsoe
    currency: str | None = None
    file: str | None = None
    per_mwh: bool = False  #: csv prices are per MWh
    area: str | None = None
    token: str | None = None
    url: str = DEFAULT_URL
    timeout: float = 10.0


def price_config(doc: dict[str, Any] | None, where: str) -> PriceConfig | None:
    """The ``[prices]`` table of the tariff file, checked; None when absent."""
    t = (doc or {}).get("prices")
    if t is None:
        return None
    w = f"{where}: [prices]"
    known = {"source", "currency", "file", "unit", "area", "token", "token_file", "url", "timeout"}
    if not isinstance(t, dict):
        raise TariffError(f"{w} must be a table")
    if set(t) - known:
        raise TariffError(f"{w}: unknown key {sorted(set(t) - known)[0]!r}; known: {', '.join(sorted(known))}")
    source = t.get("source")
    unit = str(t.get("unit", "kWh"))
    if unit not in ("kWh", "MWh"):
        raise TariffError(f"{w}: unit must be kWh or MWh")
    timeout = t.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise TariffError(f"{w}: timeout must be seconds > 0")
    base = os.path.dirname(os.path.abspath(where)) if os.path.isfile(where) else os.getcwd()
    if source == "csv":
        if not t.get("file"):
            raise TariffError(f"{w}: source csv needs file = \"prices.csv\"")
        path = os.path.join(base, os.path.expanduser(str(t["file"])))
        return PriceConfig("csv", t.get("currency"), path, unit == "MWh", timeout=float(timeout))
    if source == "entsoe":
        if not t.get("area"):
            raise TariffError(f"{w}: source entsoe needs area (the bidding zone's EIC code, 10YNO-1--------2)")
        token = t.get("token")
        if token is None and t.get("token_file"):
            try:
                with open(os.path.join(base, os.path.expanduser(str(t["token_file"]))), encoding="utf-8") as fh:
                    token = fh.read().strip()
            except OSError as exc:
                raise TariffError(f"{w}: token_file: {exc.strerror or exc}") from None
        token = token or os.environ.get("HAN_ENTSOE_TOKEN")
        if not token:
            raise TariffError(f"{w}: source entsoe needs your token (token_file, token or $HAN_ENTSOE_TOKEN)")
        return PriceConfig("entsoe", t.get("currency") or "EUR", area=str(t["area"]), token=str(token),
                           url=str(t.get("url", DEFAULT_URL)), timeout=float(timeout))
    raise TariffError(f"{w}: source must be csv or entsoe (got {source!r})")


def read_csv(path: str, per_mwh: bool = False, currency: str = "") -> list[Price]:
    """A price CSV: ``start,price`` rows (a header line is skipped); each price lasts until the next start
    (at most an hour; the last row as long as the one before it)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            raw = list(csv.reader(fh))
    except OSError as exc:
        raise PriceError(f"prices file {path}: {exc.strerror or exc}") from None
    pts: list[tuple[int, float]] = []
    for n, row in enumerate(raw, 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        try:
            t = datetime.fromisoformat(row[0].strip().replace("Z", "+00:00"))
            p = float(row[1])
        except (ValueError, IndexError):
            if n == 1:
                continue  # the header
            raise PriceError(f"prices file {path} line {n}: expected start,price (2025-01-01T00:00+01:00,0.85)") from None
        if t.tzinfo is None:
            raise PriceError(f"prices file {path} line {n}: give the time with its offset (2025-01-01T00:00+01:00)")
        pts.append((int(t.timestamp()), p / 1000 if per_mwh else p))
    pts.sort()
    out = []
    for i, (t, p) in enumerate(pts):
        if i + 1 < len(pts):
            secs = min(pts[i + 1][0] - t, 3600)
        else:
            secs = min(t - pts[i - 1][0], 3600) if i else 3600
        if secs > 0:
            out.append(Price(t, secs, p * 1000, currency))  # kept per MWh like ENTSO-E's
    return out


def fetch_a44(cfg: PriceConfig, t0: int, t1: int, opener: Callable[..., Any] = urllib.request.urlopen) -> list[Price]:
    """Day-ahead prices for [t0, t1) from the transparency platform (PriceError in one line, no token)."""
    def stamp(t: int) -> str:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%d%H%M")

    out: list[Price] = []
    a = t0
    while a < t1:
        b = min(t1, a + CHUNK)
        query = urllib.parse.urlencode({
            "securityToken": cfg.token, "documentType": "A44", "in_Domain": cfg.area, "out_Domain": cfg.area,
            "periodStart": stamp(a), "periodEnd": stamp(b)})
        try:
            with opener(f"{cfg.url}?{query}", timeout=cfg.timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read() if exc.fp else b""
            try:
                parse(body)
            except A44Error as inner:
                raise PriceError(f"ENTSO-E prices for {cfg.area}: HTTP {exc.code}: {inner}") from None
            raise PriceError(f"ENTSO-E prices for {cfg.area}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PriceError(f"ENTSO-E prices for {cfg.area}: cannot reach {urllib.parse.urlsplit(cfg.url).netloc}"
                             f" ({reason})") from None
        try:
            out.extend(parse(body))
        except A44Error as exc:
            if "No matching data" not in str(exc):
                raise PriceError(f"ENTSO-E prices for {cfg.area}: {exc}") from None
        a = b
    return out


def cached(db: sqlite3.Connection, area: str, t0: int, t1: int) -> list[Price]:
    try:
        rows = db.execute("SELECT start_utc, seconds, price, currency FROM prices WHERE area = ?"
                          " AND start_utc < ? AND start_utc + seconds > ? ORDER BY start_utc", (area, t1, t0))
        return [Price(*r) for r in rows]
    except sqlite3.OperationalError:  # no prices table yet
        return []


def store(db: sqlite3.Connection, area: str, prices: list[Price]) -> None:
    db.executescript(CACHE)
    with db:
        db.executemany("INSERT OR REPLACE INTO prices (area, start_utc, seconds, price, currency) VALUES (?,?,?,?,?)",
                       [(area, p.start_utc, p.seconds, p.price, p.currency) for p in prices])
