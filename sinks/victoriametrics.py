"""``victoriametrics://HOST:8428``: VictoriaMetrics, the time-series store for a head-end.

Writes InfluxDB line protocol to VictoriaMetrics' own ``/write`` endpoint with
the standard library (no client package)::

    victoriametrics://HOST:8428[/PATH]?measurement=han&time=meter|arrival
    victoriametrics+https://USER@HOST/PATH                        (basic auth, e.g. behind vmauth)

The password may come from the URL, ``HAN_VM_PASSWORD`` or the systemd
credential ``han-vm-password``; it is never logged.

Series: VictoriaMetrics names one series per field, ``<measurement>_<field>``
(``han_active_power_import_w``), labelled per meter: ``meter`` (the meter the
push is filed under, as in every sink), ``meter_id`` (the meter's number),
``list_id`` and ``system_title`` (when known).  Fields are the numeric
registers, named as in the InfluxDB sink (:func:`sinks.influx.field_name`),
plus ``invocation_counter`` for ciphered pushes.  Text registers are left
out: VictoriaMetrics stores numbers only (it would turn a text into 0).

Time: the meter's clock in UTC (``time=arrival``: when han accepted the push),
whole seconds plus a millisecond discriminator taken from the push's own
identity, not from the worker that wrote it: the invocation counter modulo
1000 for a ciphered push, a CRC of its registers modulo 1000 for a plain one.
So the same push written by any worker, any number of times, is the same
sample (series, timestamp, value), and two pushes of one meter never share a
millisecond unless they are the same push (or, for plain pushes, 1 in 1000
when two differ but carry the same meter second).

Exactly once.  A batch is acknowledged (the sink's checkpoint advances) only
after VictoriaMetrics answered 204; until then it waits in the journal and is
sent again after a failure or a restart.  A push can therefore be written
twice: a worker killed between the write and its checkpoint, or a push
redelivered by the broker to another worker.  VictoriaMetrics keeps both
copies unless it runs with ``-dedup.minScrapeInterval=1ms``: then samples of a
series with the same millisecond are one sample (in queries, exports and after
merges), and because a push's timestamp is a function of the push, every push
is exactly one sample.  Run the head-end's VictoriaMetrics with that flag
(``docs/sinks.md``).  Errors: 400/413/422 (bad data) are logged and the push
is skipped; 401/403/404, 429, 5xx and connection errors are retried.
"""

from __future__ import annotations

import logging
import math
import re
import urllib.parse
import zlib
from collections.abc import Sequence
from datetime import datetime

from obis.push import Push

from .base import Entry, SinkError, secret, time_utc
from .influx import _BAD_DATA, field_name, post_lines, split_server
from .threaded import ThreadedSink

log = logging.getLogger("han.sink")

_KNOWN = ("measurement", "time", "user", "password")
_TAG_ESCAPE = re.compile(r"([,= \\])")
_MEASUREMENT_ESCAPE = re.compile(r"([, \\])")


def discriminator(push: Push) -> int:
    """Milliseconds (0 … 999) added to a push's whole-second time: a function of the push alone."""
    s = push.security
    if s is not None and s.invocation_counter is not None:
        return int(s.invocation_counter) % 1000
    text = "|".join(f"{r.obis.dotted if r.obis else r.position}={r.value!r}" for r in push.registers)
    return zlib.crc32(text.encode("utf-8", "replace")) % 1000


def _number(v) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


class VictoriaMetricsSink(ThreadedSink):
    scheme = "victoriametrics"
    #: seconds: the back-off cap while the server is unreachable (drains within seconds when it is back)
    retry_max = 5.0

    def __init__(
        self,
        target: str,
        *,
        measurement: str | None = None,
        time: str | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        verify_tls: bool = True,
        retry_max: float | None = None,
    ) -> None:
        super().__init__(target)
        parsed, port, query = split_server(target, "victoriametrics sink", "victoriametrics://127.0.0.1:8428", _KNOWN)
        https = self.scheme.endswith("https")
        host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
        self.base_url = f"{'https' if https else 'http'}://{host}:{port or (443 if https else 8428)}"
        self.base_url += parsed.path.rstrip("/")
        self.measurement = measurement or query.get("measurement") or "han"
        self.time = time or query.get("time") or "meter"
        if self.time not in ("meter", "arrival"):
            raise SinkError("victoriametrics sink: time must be meter (the meter's clock) or arrival")
        self.user = user or query.get("user") or (urllib.parse.unquote(parsed.username) if parsed.username else None)
        self._password = (
            password
            or query.get("password")
            or (urllib.parse.unquote(parsed.password) if parsed.password else None)
            or secret("HAN_VM_PASSWORD", "han-vm-password")
        )
        self.timeout = float(timeout)
        self.verify_tls = bool(verify_tls)
        if retry_max is not None:
            self.retry_max = float(retry_max)
        self.call_timeout = max(ThreadedSink.call_timeout, 3 * self.timeout)
        self.skipped = 0  #: pushes the server rejected as bad data

    @property
    def name(self) -> str:
        return f"{self.scheme}://{self.base_url.split('://', 1)[1]}"  # no user, no password

    # -- points ----------------------------------------------------------------------
    def line(self, e: Entry) -> str | None:
        """One push as one line of line protocol (None when it has no numeric register)."""
        p: Push = e.push
        tags = [("meter", e.meter)]
        if e.meter_id:
            tags.append(("meter_id", e.meter_id))
        if p.list_id:
            tags.append(("list_id", p.list_id))
        if p.security is not None and p.security.system_title:
            tags.append(("system_title", p.security.system_title.hex().upper()))
        fields = []
        for r in p.registers:
            name = field_name(r)
            value = _number(r.value) if name else None
            if value is not None:
                fields.append(f"{_tag(name)}={value!r}")
        if not fields:
            return None
        if p.security is not None:
            fields.append(f"invocation_counter={int(p.security.invocation_counter)}")
        when: datetime = e.received if self.time == "arrival" else time_utc(p, e.received)
        ms = int(when.timestamp()) * 1000 + discriminator(p)
        head = _MEASUREMENT_ESCAPE.sub(r"\\\1", self.measurement) + "".join(
            f",{_tag(k)}={_tag(str(v))}" for k, v in tags if str(v)
        )
        return f"{head} {','.join(fields)} {ms}"

    def lines(self, entries: Sequence[Entry]) -> list[str]:
        return [line for e in entries if (line := self.line(e)) is not None]

    # -- I/O ---------------------------------------------------------------------------
    def write_sync(self, entries: Sequence[Entry]) -> None:
        lines = self.lines(entries)
        if lines:
            status, detail = self._post("\n".join(lines))
            if status in _BAD_DATA:
                for e in entries:  # one bad push must not hold back the others
                    one = self.line(e)
                    if one is None:
                        continue
                    status, detail = self._post(one) if len(entries) > 1 else (status, detail)
                    if status in _BAD_DATA:
                        self.skipped += 1
                        log.error("%s: the server rejected journal position %d as bad data (HTTP %d: %s); skipped",
                                  self.name, e.seq, status, detail)
                    elif status >= 300:
                        self._raise(status, detail)
            elif status >= 300:
                self._raise(status, detail)
        self._advance(entries)

    def _raise(self, status: int, detail: str) -> None:
        hint = {
            401: "authentication failed: check the user and password",
            403: "permission denied",
            404: "not found: is this VictoriaMetrics (single node: HOST:8428; cluster: vminsert's /insert/0/influx)?",
        }.get(status, "")
        raise SinkError(f"victoriametrics sink: HTTP {status}{': ' + hint if hint else ''} ({detail})")

    def _post(self, body: str) -> tuple[int, str]:
        return post_lines(self, f"{self.base_url}/write?precision=ms", body, "victoriametrics sink")


class VictoriaMetricsHttpsSink(VictoriaMetricsSink):
    """``victoriametrics+https://``: the same over HTTPS."""

    scheme = "victoriametrics+https"


def _tag(text: str) -> str:
    return _TAG_ESCAPE.sub(r"\\\1", text)


__all__ = ["VictoriaMetricsHttpsSink", "VictoriaMetricsSink", "discriminator"]
