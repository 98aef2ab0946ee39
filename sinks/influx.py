"""``influx://HOST:PORT?...``: InfluxDB (and line-protocol stores such as VictoriaMetrics).

Two APIs::

    influx://HOST:8086?org=ORG&bucket=BUCKET&token=TOKEN    v2 /api/v2/write through influxdb-client
                                                            (InfluxDB 2.x, 3.x, Cloud, 1.8+, VictoriaMetrics)
    influx://HOST:8086?api=v1&db=han[&rp=RP]                v1 /write (InfluxDB 1.6/1.7), user:password@ optional
    influxs://...                                           the same over HTTPS

The token may instead come from ``HAN_INFLUX_TOKEN`` or the systemd credential
``han-influx-token``; the v1 password from ``HAN_INFLUX_PASSWORD`` or the
credential ``han-influx-password``.  Neither is ever logged or shown.

Schema: one measurement (``han``) per push; tags ``meter`` (the meter the push
is filed under, as in every sink), ``meter_id`` (the meter's number, also on a
short list that does not send it), ``list_id`` and ``system_title`` (when
known); one field per register named after its stable
key and unit (``active_power_import_w``, ``active_energy_import_wh``,
``voltage_l1_v``, ``power_factor``); numbers as floats, text registers as
strings; an integer field ``invocation_counter`` for ciphered pushes (the
push's identity with the ``system_title`` tag); time = the meter's clock in
UTC (``time = "arrival"`` uses the time han accepted the push) in whole
seconds plus a sub-second discriminator derived from the push's journal
position (:func:`discriminator`), written with nanosecond precision.

Why the discriminator: InfluxDB keeps one point per series and timestamp, so
two pushes with the same meter second (a clock set back, a stuck clock, the
repeated autumn hour of a meter without DST information) would overwrite each
other.  The discriminator is a pure function of the journal position, so a
batch re-sent after a crash lands on the very same points (idempotent), while
two different pushes never share a timestamp.

No data loss: a point is acknowledged (the sink's checkpoint advances) only
after the server answered 204.  Until then it waits in the daemon's journal,
on disk in the state directory (bounded by ``spool_max_pushes`` and
``spool_max_age``), and is re-sent in order after a restart.  Writes are
synchronous batches, never influxdb-client's in-memory batching writer;
the HTTP calls block, so they run in the sink's own thread (:class:`ThreadedSink`).
Errors: a "field type conflict" (the shard holds a field with another type, e.g.
one an older han wrote as a number) costs only that field: the push is written
again without it, and the field is named once in the log.  Other 400/413/422
(the server rejects the data) are logged and the rejected push is skipped; 401/403/404 (token, permissions, no such database) and
429/5xx/connection errors raise, so the daemon retries with capped back-off.
A point written twice is one point (same series and time), so a re-sent batch
after a crash between write and checkpoint never doubles a value.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from obis.push import Push, Register

from .base import Checkpoint, Entry, SinkError, secret, time_utc
from .threaded import ThreadedSink

log = logging.getLogger("han.sink")

#: registers that are the push's identity or its time: tags or the timestamp, not fields
_NOT_FIELDS = {"clock", "meter_id", "meter_number", "list_id", "meter_id_2", "meter_id_3", "meter_id_4", "meter_id_5"}
#: InfluxDB's refusal of a field whose type differs from the stored one (1.x and 2.x word it alike)
_CONFLICT = re.compile(r'field type conflict: input field \\?"([^"\\]+)\\?"(.{0,80}?already exists as type \w+)?')
#: HTTP statuses that mean "this data is bad": log and skip
_BAD_DATA = {400, 413, 422}
_SECRET_PARAMS = {"token", "password", "pass"}


def field_name(r: Register) -> str | None:
    """The stable field name of a register: key + unit (``active_power_import_w``), or None to leave it out."""
    if r.key in _NOT_FIELDS:
        return None
    if r.key:
        stem = r.key
    elif r.obis is not None:
        stem = "obis_" + r.obis.dotted.replace(".", "_")
    else:
        stem = f"value_{r.position}"
    if r.unit:
        unit = re.sub(r"[^a-z0-9]+", "_", r.unit.lower().replace("°", "deg").replace("³", "3")).strip("_")
        if unit:
            stem = f"{stem}_{unit}"
    return stem


def discriminator(seq: int) -> int:
    """Nanoseconds (0 … 999,999,999) added to a point's whole-second time, from its journal position.

    A bijection of ``seq`` modulo 10⁹ whose millisecond part is ``seq`` modulo 1000, so a
    store that keeps milliseconds (VictoriaMetrics) still tells apart pushes up to 1000
    positions apart, and a nanosecond store (InfluxDB) up to 10⁹.  Deterministic: the same
    journal row always becomes the same timestamp.
    """
    n = seq % 1_000_000_000
    return (n % 1000) * 1_000_000 + (n // 1000 % 1000) * 1000 + n // 1_000_000


def field_value(v: Any) -> float | str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, bytes):
        return v.hex().upper()
    return str(v)


class InfluxSink(ThreadedSink):
    scheme = "influx"
    #: seconds: the back-off cap while the server is unreachable (drains within seconds when it is back)
    retry_max = 5.0

    def __init__(
        self,
        target: str,
        *,
        api: str | None = None,
        org: str | None = None,
        bucket: str | None = None,
        token: str | None = None,
        db: str | None = None,
        rp: str | None = None,
        user: str | None = None,
        password: str | None = None,
        measurement: str | None = None,
        time: str | None = None,
        timeout: float = 10.0,
        tls: bool | None = None,
        verify_tls: bool = True,
        retry_max: float | None = None,
    ) -> None:
        super().__init__(target)
        known = {"api", "org", "bucket", "token", "db", "rp", "user", "password", "measurement", "time", "precision"}
        parsed, port, query = split_server(
            target, "influx sink", "influx://127.0.0.1:8086?org=home&bucket=han", sorted(known)
        )
        if query.get("precision", "ns") not in ("s", "ns"):
            raise SinkError("influx sink: points are written with nanosecond precision (whole seconds + a discriminator)")

        def pick(name: str, given: Any) -> Any:
            return given if given is not None else query.get(name)

        self.api = (pick("api", api) or ("v1" if pick("db", db) else "v2")).lower()
        if self.api not in ("v1", "v2"):
            raise SinkError("influx sink: api must be v1 (/write, InfluxDB 1.x) or v2 (/api/v2/write)")
        scheme = "https" if (tls if tls is not None else self.scheme == "influxs") else "http"
        host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
        self.base_url = f"{scheme}://{host}:{port or 8086}{parsed.path.rstrip('/')}"
        self.org = pick("org", org) or ""
        self.bucket = pick("bucket", bucket)
        self.db = pick("db", db)
        self.rp = pick("rp", rp)
        self.user = pick("user", user) or (urllib.parse.unquote(parsed.username) if parsed.username else None)
        self.measurement = pick("measurement", measurement) or "han"
        self.time = pick("time", time) or "meter"
        if self.time not in ("meter", "arrival"):
            raise SinkError("influx sink: time must be meter (the meter's clock) or arrival")
        self.timeout = float(timeout)
        self.verify_tls = bool(verify_tls)
        if retry_max is not None:
            self.retry_max = float(retry_max)
        # a batch is one request (one per push when the server rejects one): each waits up to timeout
        self.call_timeout = max(ThreadedSink.call_timeout, 3 * self.timeout)
        if self.api == "v2":
            self._token = pick("token", token) or secret("HAN_INFLUX_TOKEN", "han-influx-token") or ""
            if not self.bucket:
                raise SinkError("influx sink: the v2 API needs a bucket (…?org=ORG&bucket=BUCKET&token=…)")
        else:
            self._password = (
                pick("password", password)
                or (urllib.parse.unquote(parsed.password) if parsed.password else None)
                or secret("HAN_INFLUX_PASSWORD", "han-influx-password")
            )
            if not self.db:
                raise SinkError("influx sink: the v1 API needs a database (…?api=v1&db=han)")
        self._client: Any = None
        self._write_api: Any = None
        self.skipped = 0  #: pushes the server rejected as bad data
        #: while one push is sent again: the fields its shard holds with another type (a "field type conflict")
        self.conflicting: set[str] = set()
        self._conflicts_said: set[str] = set()  #: each such field is logged once

    @property
    def name(self) -> str:
        # no secrets: the token, a password or user info never appear in logs or status
        parsed = urllib.parse.urlsplit("//" + self.target.removeprefix("//"))
        host = parsed.hostname or ""
        netloc = f"{host}:{parsed.port}" if parsed.port else host
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parsed.query) if k not in _SECRET_PARAMS]
        q = urllib.parse.urlencode(query)
        return f"{self.scheme}://{netloc}{parsed.path}" + (f"?{q}" if q else "")

    # -- points ----------------------------------------------------------------------
    def point(self, e: Entry) -> Any:
        from influxdb_client import Point, WritePrecision

        p: Push = e.push
        pt = Point(self.measurement)
        pt.tag("meter", e.meter)
        if e.meter_id:
            pt.tag("meter_id", e.meter_id)
        if p.list_id:
            pt.tag("list_id", p.list_id)
        if p.security is not None and p.security.system_title:
            pt.tag("system_title", p.security.system_title.hex().upper())
        n = 0
        for r in p.registers:
            if r.time_utc is not None and self.time != "arrival":
                continue  # a point of its own, at its own time (see own_points)
            name = field_name(r)
            value = field_value(r.value) if name and name not in self.conflicting else None
            if value is None:
                continue
            pt.field(name, value)
            n += 1
        if not n:
            return None
        if p.security is not None:
            pt.field("invocation_counter", int(p.security.invocation_counter))
        when: datetime = e.received if self.time == "arrival" else time_utc(p, e.received)
        pt.time(int(when.timestamp()) * 1_000_000_000 + discriminator(e.seq), WritePrecision.NS)
        return pt

    def own_points(self, e: Entry) -> list:
        """The values that carry their own time stamp (a P1 gas reading), each a point at that time.

        The same reading comes in every telegram until the next one: written again at the same
        time with the same tags, InfluxDB keeps one point.
        """
        if self.time == "arrival":
            return []
        from influxdb_client import Point, WritePrecision

        p: Push = e.push
        out = []
        for r in p.registers:
            if r.time_utc is None:
                continue
            name = field_name(r)
            value = field_value(r.value) if name and name not in self.conflicting else None
            if value is None:
                continue
            pt = Point(self.measurement).tag("meter", e.meter)
            if e.meter_id:
                pt.tag("meter_id", e.meter_id)
            if p.list_id:
                pt.tag("list_id", p.list_id)
            pt.field(name, value)
            pt.time(int(r.time_utc.timestamp()) * 1_000_000_000, WritePrecision.NS)
            out.append(pt)
        return out

    def lines(self, entries: Sequence[Entry]) -> list[str]:
        out = []
        for e in entries:
            pt = self.point(e)
            if pt is not None:
                out.append(pt.to_line_protocol())
            for own in self.own_points(e):
                out.append(own.to_line_protocol())
        return out

    # -- I/O ---------------------------------------------------------------------------
    def open_sync(self, resume: Checkpoint) -> Checkpoint:
        ckpt = super().open_sync(resume)
        if self.api == "v2":
            from influxdb_client import InfluxDBClient
            from influxdb_client.client.write_api import SYNCHRONOUS

            self._client = InfluxDBClient(
                url=self.base_url,
                token=self._token,
                org=self.org,
                timeout=int(self.timeout * 1000),
                verify_ssl=self.verify_tls,
            )
            self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        return ckpt

    def write_sync(self, entries: Sequence[Entry]) -> None:
        lines = self.lines(entries)
        if lines:
            status, detail = self._post("\n".join(lines))
            if status in _BAD_DATA:
                # one bad push must not hold back the others: send them one by one, skip what is rejected
                for e in entries:
                    one = self.lines([e])
                    if not one:
                        continue
                    status, detail = self._post("\n".join(one)) if len(entries) > 1 else (status, detail)
                    try:
                        for _ in range(8):  # each conflicting field once: the push is written without it
                            if status not in _BAD_DATA or not self._learn_conflict(detail):
                                break
                            one = self.lines([e])
                            if not one:
                                status = 204
                                break
                            status, detail = self._post("\n".join(one))
                    finally:
                        self.conflicting.clear()  # the next shard (a week later) may take the field again
                    if status in _BAD_DATA:
                        self.skipped += 1
                        log.error(
                            "%s: the server rejected journal position %d as bad data (HTTP %d: %s); skipped",
                            self.name,
                            e.seq,
                            status,
                            detail,
                        )
                    elif status >= 300:
                        self._raise(status, detail)
            elif status >= 300:
                self._raise(status, detail)
        self._advance(entries)

    def _learn_conflict(self, detail: str) -> bool:
        """A "field type conflict" names a field the database already holds with another type (the
        same field written as a number by an older han, say): the push goes again without it."""
        m = _CONFLICT.search(detail)
        if m is None or m.group(1) in self.conflicting:
            return False
        self.conflicting.add(m.group(1))
        if m.group(1) in self._conflicts_said:
            return True
        self._conflicts_said.add(m.group(1))
        log.warning(
            "%s: field %s is stored with another type in this part of the database (%s); pushes there are"
            " written without it (InfluxDB keeps a field's type per shard, a week by default; a new"
            " measurement= or database keeps it)",
            self.name,
            m.group(1),
            (m.group(2) or "").replace('\\"', '"').strip() or "field type conflict",
        )
        return True

    def _raise(self, status: int, detail: str) -> None:
        hint = {
            401: "authentication failed: check the token (or user and password)",
            403: "permission denied: the token may not write to this bucket",
            404: f"not found: does the {'database ' + repr(self.db) if self.api == 'v1' else 'bucket or org'} exist?"
            + (" (InfluxDB before 1.8 has no /api/v2/write: use ?api=v1&db=...)" if self.api == "v2" else ""),
        }.get(status, "")
        raise SinkError(f"influx sink: HTTP {status}{': ' + hint if hint else ''} ({detail})")

    def _post(self, body: str) -> tuple[int, str]:
        """POST line protocol; (status, short detail).  Connection errors raise SinkError."""
        if self.api == "v2":
            return self._post_v2(body)
        return self._post_v1(body)

    def _post_v2(self, body: str) -> tuple[int, str]:
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._write_api.write(bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.NS)
        except ApiException as exc:
            return int(exc.status or 0), _short(exc.body or exc.reason)
        except Exception as exc:  # noqa: BLE001 - urllib3 connection errors and the like: retried
            raise SinkError(f"influx sink: cannot reach {self.base_url}: {_reason(exc)}") from None
        return 204, ""

    def _post_v1(self, body: str) -> tuple[int, str]:
        params = {"db": self.db, "precision": "ns"}
        if self.rp:
            params["rp"] = self.rp
        return post_lines(self, f"{self.base_url}/write?{urllib.parse.urlencode(params)}", body, "influx sink")

    def close_sync(self) -> None:
        client, self._client, self._write_api = self._client, None, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - best effort
                pass


def split_server(
    target: str, who: str, example: str, known: Sequence[str]
) -> tuple[urllib.parse.SplitResult, int | None, dict[str, str]]:
    """A time-series server's URL (``HOST[:PORT][/PATH][?k=v…]``), checked: its parts, port and options.

    Errors are SinkError lines naming ``who``: no host (with ``example``), a port that is not a
    number, an option not in ``known`` (listed in that order).
    """
    parsed = urllib.parse.urlsplit(target if target.startswith("//") else "//" + target)
    if not parsed.hostname:
        raise SinkError(f"{who}: give a server, e.g. {example}")
    try:
        port = parsed.port
    except ValueError:
        raise SinkError(f"{who}: the port must be a number") from None
    query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise SinkError(f"{who}: unknown parameter {unknown[0]!r}; it takes {', '.join(known)}")
    return parsed, port, query


def post_lines(sink: Any, url: str, body: str, who: str) -> tuple[int, str]:
    """POST line protocol with urllib (InfluxDB 1.x, VictoriaMetrics): (status, short detail).

    ``sink`` gives ``base_url``, ``user``, ``_password``, ``verify_tls`` and ``timeout``; a connection
    error raises SinkError naming ``who`` and the server, never the credentials.
    """
    req = urllib.request.Request(
        url, data=body.encode("utf-8"), method="POST", headers={"Content-Type": "text/plain; charset=utf-8"}
    )
    if sink.user:
        cred = base64.b64encode(f"{sink.user}:{sink._password or ''}".encode()).decode()
        req.add_header("Authorization", f"Basic {cred}")
    ctx = None
    if sink.base_url.startswith("https:") and not sink.verify_tls:
        import ssl

        ctx = ssl._create_unverified_context()  # noqa: S323 - asked for with verify_tls = false
    try:
        with urllib.request.urlopen(req, timeout=sink.timeout, context=ctx) as resp:
            return resp.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, _short(exc.read())
    except (OSError, ValueError) as exc:
        raise SinkError(f"{who}: cannot reach {sink.base_url}: {_reason(exc)}") from None


def _short(detail: Any) -> str:
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    text = " ".join(str(detail or "").split())
    return text[:200]


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None else exc) or type(exc).__name__
    text = re.sub(r"<[^>]*object at 0x[0-9a-f]+>:?\s*", "", text)
    return _short(text)


class InfluxsSink(InfluxSink):
    """``influxs://``: the same over HTTPS."""

    scheme = "influxs"
