"""``han report``: energy per local hour, day or month from the store's hour accounting."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import sys
from datetime import date, timedelta
from typing import Any

from ..cli import UsageError

EPILOG = """examples:
  han report                                   the last day's hours of every meter in the default store
  han report --by day --from 2025-03-01 --to 2025-04-01
  han report --by month --format json --db /var/lib/han/han.db
  han report --by hour --from 2025-10-26 --to 2025-10-27 --format csv
  han report --by month --capacity no-elvia    the kapasitetsledd figure, its hours and the headroom
  han report --by day --tariffs tariffs.toml   cost per day from the prices and fees in tariffs.toml
Dates are local to the meter: --from inclusive, --to exclusive.  Quality: measured (both hour
boundaries read), estimated (interpolated across a gap, partly covered, reset, clock set back,
meter swap) or missing (no reading).  See docs/sinks.md for the rules."""

WIDTH = 80
#: the report's columns of tariffs 1 and 2 (kWh), when the meter sends per-tariff registers
TARIFF_COLUMNS = ("import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh")


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    where = p.add_mutually_exclusive_group()
    where.add_argument("--state-dir", metavar="DIR", help="the daemon's state directory (its han.db)")
    where.add_argument("--db", metavar="FILE", help="the SQLite store")
    p.add_argument("--by", choices=("hour", "day", "month"), default="hour", help="rows per (default hour)")
    p.add_argument("--from", dest="start", metavar="DATE", help="first local date (default: see below)")
    p.add_argument("--to", dest="end", metavar="DATE", help="local date after the last (default: after the newest data)")
    p.add_argument("--meter", metavar="ID", help="one meter (default: every meter)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (default table)")
    p.add_argument("--capacity", metavar="RULE", help="add the capacity tariff figure to monthly rows"
                   " (built-in: no, no-elvia, no-hallingdal, no-lysna, be, se; or a rule of --tariffs)")
    p.add_argument("--tariffs", metavar="FILE", help="tariff file: capacity rules, prices, fees"
                   " (default: tariffs.toml beside the store, when present; see docs/tariffs.md)")


def _date(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a date (2025-03-01)") from None


def _db_path(args: argparse.Namespace) -> str:
    if args.db:
        return args.db
    from ..config import default_state_dir

    return os.path.join(os.path.expanduser(args.state_dir or default_state_dir()), "han.db")


def _default_span(by: str, newest: date, start: date | None, end: date | None) -> tuple[date, date]:
    end = end or newest + timedelta(days=1)
    if start is None:
        if by == "hour":
            start = end - timedelta(days=1)
        elif by == "day":
            start = end - timedelta(days=31)
        else:
            y, m = end.year, end.month - 11
            while m < 1:
                y, m = y - 1, m + 12
            start = date(y, m, 1) if end.day == 1 else date(y, m, 1)
    return start, end


def rows_for(db: sqlite3.Connection, meter: str, by: str, start: date, end: date) -> tuple[list[dict], list[Any]]:
    """The report rows of one meter and the Hour / Period objects behind them."""
    from ..store import hours as H

    periods: list[Any] = {"hour": H.hours, "day": H.days, "month": H.months}[by](db, meter, start, end)
    # a meter with per-tariff registers (P1: 1.8.1, 1.8.2 ...) has the tariff columns in every row
    has_tariffs = any(x is not None for p in periods
                      for x in (p.import_t1_wh, p.import_t2_wh, p.export_t1_wh, p.export_t2_wh))
    rows = []
    for p in periods:
        row: dict[str, Any] = {
            "meter": meter,
            "start": p.start_local.isoformat(),
            "end": p.end_local.isoformat(),
            "import_kwh": _kwh(p.import_wh),
            "export_kwh": _kwh(p.export_wh),
            "quality": p.quality,
        }
        if has_tariffs:
            for name, wh in zip(TARIFF_COLUMNS, (p.import_t1_wh, p.import_t2_wh, p.export_t1_wh, p.export_t2_wh)):
                row[name] = _kwh(wh)
        if p.reactive_import_varh is not None or p.reactive_export_varh is not None:
            row["reactive_import_kvarh"] = _kwh(p.reactive_import_varh)
            row["reactive_export_kvarh"] = _kwh(p.reactive_export_varh)
        row["import_w_max"] = _w(p.import_w_max)
        row["import_w_mean"] = _w(p.import_w_mean)
        row["export_w_max"] = _w(p.export_w_max)
        row["export_w_mean"] = _w(p.export_w_mean)
        if p.events:
            row["events"] = list(p.events)
        rows.append(row)
    return rows, periods


def _kwh(wh: float | None) -> float | None:
    return None if wh is None else round(wh / 1000, 4)


def _w(w: float | None) -> float | None:
    return None if w is None else round(w, 1)


def run(args: argparse.Namespace) -> int:
    path = _db_path(args)
    if not os.path.isfile(path):
        raise UsageError(f"no store at {path} (give --db FILE or --state-dir DIR; han run creates it)")
    start, end = _date(args.start, "--from"), _date(args.end, "--to")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read the hour accounting in {path}: {exc} (run han run once to upgrade it)") from None
    try:
        out = report_rows(db, path, by=args.by, start=start, end=end, meter=args.meter, capacity=args.capacity,
                          tariffs=args.tariffs)
    finally:
        db.close()
    if args.format == "json":
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.format == "csv":
        write_csv(out, sys.stdout)
    else:
        sys.stdout.write(table(out, args.by))
    return 0


def report_rows(
    db: sqlite3.Connection,
    path: str,
    *,
    by: str = "hour",
    start: date | None = None,
    end: date | None = None,
    meter: str | None = None,
    capacity: str | None = None,
    tariffs: str | None = None,
    labels: dict[str, str] | None = None,
) -> list[dict]:
    """The rows of ``han report --format json`` (also ``/api/energy`` of the live page: one code path).

    ``db`` reads the store at ``path``; ``tariffs`` is the ``--tariffs`` file (default ``tariffs.toml``
    beside the store).  A user's mistake is a UsageError in one line naming the option, as ``labels``
    call them (default the flags: --from, --to, --meter, --capacity, --tariffs).
    """
    from ..store import extend
    from ..store.hours import meter_zone, meters
    from sinks.store.localtime import local

    name = {"from": "--from", "to": "--to", "meter": "--meter", "capacity": "--capacity", "tariffs": "--tariffs",
            "by": "--by", **(labels or {})}
    if start and end and end <= start:
        raise UsageError(f"{name['to']} must be after {name['from']} ({name['to']} is exclusive)")
    if capacity and by != "month":
        raise UsageError(f"{name['capacity']} adds to monthly rows: use it with {name['by']} month")
    try:
        known = meters(db)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read the hour accounting in {path}: {exc} (run han run once to upgrade it)") from None
    if meter:
        known = [m for m in known if m.meter == meter or m.meter_id == meter]
        if not known:
            raise UsageError(f"no meter {meter!r} in {path}")
    options = tariff_options(tariffs, path, name["tariffs"])
    hooks = []
    for hook_name in ("cost", "capacity"):
        fn = extend.load(hook_name)
        if fn is None and hook_name == "capacity" and capacity:
            raise UsageError("capacity tariffs are not available in this installation")
        if fn is not None:
            hooks.append(fn)
    out: list[dict] = []
    for m in known:
        tz = meter_zone(db, m.meter)
        newest = local(m.last_utc, 0).astimezone(tz).date() if m.last_utc is not None else date.today()
        s, e = _default_span(by, newest, start, end)
        rows, periods = rows_for(db, m.meter, by, s, e)
        ctx = extend.ReportContext(m.meter, by, s, e, tz, tuple(periods), capacity, options)
        for hook in hooks:
            try:
                hook(db, rows, ctx)
            except extend.ExtensionError as exc:
                raise UsageError(str(exc)) from None
        out.extend(rows)
    return out


def tariff_options(tariffs: str | None, db_path: str, label: str = "--tariffs") -> dict[str, Any]:
    """The tariff file (``tariffs``, else ``tariffs.toml`` beside the store) for the extensions."""
    from ..settings import ConfigError, read_toml

    path = tariffs
    if path is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(db_path)), "tariffs.toml")
        path = beside if os.path.isfile(beside) else None
    if path is None:
        return {"db_path": db_path}
    try:
        doc = read_toml(path)
    except ConfigError as exc:
        raise UsageError(f"{label} {exc}") from None
    return {"tariffs": doc, "tariffs_file": path, "db_path": db_path}


def write_csv(rows: list[dict], fh) -> None:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in cols])


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, dict):
        return v.get("value_kw", v.get("total", json.dumps(v)))
    if isinstance(v, list):
        return ";".join(map(str, v))
    return v


def _label(row: dict, by: str) -> str:
    s = row["start"]
    if by == "hour":
        return f"{s[:10]} {s[11:16]}{s[19:]}"  # 2025-10-26 02:00+02:00
    if by == "day":
        return s[:10]
    return s[:7]


QMARK = {"measured": " ", "estimated": "~", "missing": "?"}


def table(rows: list[dict], by: str) -> str:
    """80 columns: period, import and export kWh, quality, (the import per tariff, cost, capacity,) a bar of the import."""
    if not rows:
        return "no data\n"
    extra: list[tuple[str, str]] = []  # (heading, row key)
    if any(r.get("import_t1_kwh") is not None or r.get("import_t2_kwh") is not None for r in rows):
        extra += [("imp t1", "import_t1_kwh"), ("imp t2", "import_t2_kwh")]  # the import of each tariff
    if any("cost" in r for r in rows):
        extra.append(("cost", "cost"))
    if any("capacity" in r for r in rows):
        extra.append(("capacity", "capacity"))
    lines = []
    meters = list(dict.fromkeys(r["meter"] for r in rows))
    label_w = {"hour": 22, "day": 10, "month": 7}[by]
    head = f"{'start':<{label_w}} {'import':>9} {'export':>8} q"
    for x, _ in extra:
        head += f" {x[:8]:>8}"
    bar_w = max(5, WIDTH - len(head) - 2)
    top = max((r["import_kwh"] or 0) for r in rows) or 1.0
    for meter in meters:
        lines.append(f"meter {meter}  (kWh; q: ~ estimated, ? missing)")
        lines.append(head)
        for r in (r for r in rows if r["meter"] == meter):
            imp, exp = r["import_kwh"], r["export_kwh"]
            line = (f"{_label(r, by):<{label_w}} {_num(imp, 9)} {_num(exp, 8)} {QMARK[r['quality']]}")
            for _, x in extra:
                v = r.get(x)
                if isinstance(v, dict):
                    v = v.get("value_kw", v.get("total"))
                line += f" {_num(v, 8)}"
            n = round((imp or 0) / top * bar_w)
            line += " " + ("#" * n if r["quality"] != "estimated" else "+" * n)
            lines.append(line[:WIDTH])
    return "\n".join(lines) + "\n"


def _num(v: Any, width: int) -> str:
    if v is None:
        return f"{'-':>{width}}"
    if isinstance(v, (int, float)):
        return f"{v:>{width}.3f}" if abs(v) < 10**(width - 5) else f"{v:>{width}.0f}"
    return f"{str(v):>{width}}"
