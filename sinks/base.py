"""The sink interface, and the registry from URL scheme to sink class.

A sink receives finished pushes; it does not know where the bytes came from.
The sink interface is asynchronous: the daemon (``han run``) is an asyncio
program, and it drives every sink the same way, from one task per sink, one
call at a time::

    resume = await sink.open(checkpoint)     # where delivery resumes
    await sink.write(entries)                # a batch of Entry(seq, received, push), in journal order
    checkpoint = await sink.flush()          # durable now; the daemon stores the checkpoint
    await sink.status(online)                # when the port is lost or quiet, or pushes return (optional)
    await sink.close()

A call must never block the event loop (the port reader and the other sinks
share it) and must end in bounded time: a network sink awaits with timeouts
(``sinks.mqtt``); a sink whose work blocks (sqlite3, files, a synchronous HTTP
client) subclasses :class:`sinks.threaded.ThreadedSink` and writes plain
``open_sync``/``write_sync``/``flush_sync``/``close_sync`` methods, which run
in the sink's own thread and are given up on when they hang.

Exactly once.  Every accepted push is first appended to the daemon's journal
and gets a position ``seq`` (1, 2, 3 ... never reused).  A sink's checkpoint
says up to which position it holds the pushes durably.  After a crash the
daemon re-delivers everything after the stored checkpoint, so a sink must
either store its position atomically with its data (the SQLite sink keeps it
in the same transaction and returns it from :meth:`Sink.open`), or undo what
it wrote after the last checkpoint (the file sinks truncate the file to the
byte offset recorded in the checkpoint's ``mark``), or be idempotent (the
InfluxDB sink: the same point written twice is one point), or ask the
destination what it holds (the MQTT sink reads its retained state on open).
A call that raises (or times out) is a failure: the daemon closes the sink,
reopens it with back-off from its stored checkpoint and re-sends the batch.

Writing a sink: subclass :class:`Sink` (async) or ``ThreadedSink`` (blocking),
set ``scheme``, take options as keyword-only ``__init__`` arguments, keep
``_journal``/``_seq`` with :meth:`Sink._advance`, and add a row to
:data:`SINKS`.

Sinks are looked up lazily by scheme (``sqlite:PATH``, ``jsonl:PATH``,
``csv:PATH``, ``console:``): only the chosen sink's module is imported, so
``han decode`` never loads sqlite3 or a network client.

This module imports only ``obis``, never ``decoders`` or ``han``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from obis.push import Push

#: scheme -> "module:Class".  Add a sink by adding a row.
SINKS: dict[str, str] = {
    "sqlite": "sinks.sqlite:SqliteSink",
    "influx": "sinks.influx:InfluxSink",
    "influxs": "sinks.influx:InfluxsSink",
    "victoriametrics": "sinks.victoriametrics:VictoriaMetricsSink",
    "victoriametrics+https": "sinks.victoriametrics:VictoriaMetricsHttpsSink",
    "mqtt": "sinks.mqtt:MqttSink",
    "mqtts": "sinks.mqtt:MqttsSink",
    "jsonl": "sinks.jsonl:JsonlSink",
    "csv": "sinks.csvfile:CsvSink",
    "console": "sinks.console:ConsoleSink",
}


#: scheme -> (the module a sink needs beyond the standard library, the extra that installs it)
NEEDS: dict[str, tuple[str, str]] = {
    "mqtt": ("aiomqtt", "mqtt"),
    "mqtts": ("aiomqtt", "mqtt"),
}


class SinkError(Exception):
    """A sink cannot be created, opened or written (one line, no secrets)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted push with its journal position, the time the daemon accepted it and its meter.

    ``meter`` and ``meter_id`` are the identity the daemon stamped on the push for its
    source (see :mod:`han.identity`): a short list that sends no meter number belongs
    to the meter whose long lists do.  Every sink files the push under ``meter``.
    Left out (a push outside the daemon, an old journal row), they are the push's own
    identity (:func:`meter_of`) and its own meter number register.
    """

    seq: int  #: journal position, 1, 2, ... (0 outside the daemon)
    received: datetime  #: UTC, timezone-aware
    push: Push
    meter: str = ""  #: the meter: system title (hex), else meter number, else the configured name
    meter_id: str | None = None  #: the meter's number (from this push, or the last one seen on its source)

    def __post_init__(self) -> None:
        if not self.meter:
            object.__setattr__(self, "meter", meter_of(self.push))
        if self.meter_id is None and self.push.meter_id:
            object.__setattr__(self, "meter_id", self.push.meter_id)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far a sink holds the journal durably."""

    journal: str  #: id of the journal the positions belong to
    seq: int = 0  #: last position held (0 = none)
    mark: Mapping[str, Any] = field(default_factory=dict)  #: sink-specific, JSON-ready (e.g. a byte offset)

    def to_json(self) -> dict[str, Any]:
        return {"journal": self.journal, "seq": self.seq, "mark": dict(self.mark)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Checkpoint":
        return cls(str(d.get("journal", "")), int(d.get("seq", 0)), dict(d.get("mark") or {}))


class Sink(ABC):
    """Where pushes go.  The daemon awaits one call at a time, never two at once, on its event loop."""

    scheme: ClassVar[str] = ""
    #: a live sink (stdout, console) starts at the newest push and keeps no position across restarts
    live: ClassVar[bool] = False
    #: the sink stores its journal position atomically with its data (then the daemon's copy need not be fsynced)
    keeps_position: ClassVar[bool] = False
    #: seconds: a cap on the retry back-off for this sink (network sinks: retry within seconds), None = the daemon's
    retry_max: float | None = None

    def __init__(self, target: str, **options: Any) -> None:
        if options:
            raise SinkError(f"{self.scheme} sink: unknown option(s): {', '.join(sorted(options))}")
        self.target = target
        self._journal = ""
        self._seq = 0

    @property
    def name(self) -> str:
        return redact(f"{self.scheme}:{self.target}")

    async def open(self, resume: Checkpoint) -> Checkpoint:
        """Open the destination; return the checkpoint delivery resumes from.

        ``resume`` is the checkpoint the daemon stored after the last flush
        (``seq`` 0 for a new sink).  The default trusts it.
        """
        self._journal, self._seq = resume.journal, resume.seq
        return resume

    @abstractmethod
    async def write(self, entries: Sequence[Entry]) -> None:
        """Write a batch (may buffer until :meth:`flush`).  Raise on failure; the batch is re-sent."""

    async def flush(self) -> Checkpoint:
        """Make everything written durable and return the new checkpoint."""
        return Checkpoint(self._journal, self._seq)

    async def close(self) -> None:
        """Release the destination (after a flush, or after a failure: then best effort)."""

    async def status(self, online: bool) -> None:
        """The meter's port, as the daemon sees it: True while pushes arrive, False when it is lost or quiet.

        Called between the other calls (after :meth:`open`) when the state changes; a sink that
        shows availability (MQTT's ``<topic>/status``) publishes it.  The default ignores it.
        """

    def _advance(self, entries: Sequence[Entry]) -> None:
        if entries:
            self._seq = entries[-1].seq


def sink_class(url: str) -> type[Sink]:
    scheme, _ = split_url(url)
    spec = SINKS.get(scheme)
    if spec is None:
        raise SinkError(f"unknown sink {scheme!r} in {redact(url)!r}; known: " + ", ".join(f"{s}:" for s in SINKS))
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)


def create_sink(url: str, **options: Any) -> Sink:
    """A sink object for ``url`` (not opened yet)."""
    import inspect

    scheme, target = split_url(url)
    cls = sink_class(url)
    known = {n for n, p in inspect.signature(cls).parameters.items() if p.kind == p.KEYWORD_ONLY}
    unknown = sorted(set(options) - known)
    if unknown:
        hint = f"; it takes {', '.join(sorted(known))}" if known else "; it takes none"
        raise SinkError(f"{scheme} sink: unknown option {unknown[0]!r}{hint}")
    if options:
        hints = typing.get_type_hints(cls.__init__)
        for name, value in options.items():
            _check_option(scheme, name, value, hints.get(name))
    needs = NEEDS.get(scheme)
    if needs is not None:
        try:
            importlib.import_module(needs[0])
        except ImportError:
            raise SinkError(f"{scheme} sink needs {needs[0]}, which is not installed: {install_hint(needs[1])}") from None
    return cls(target, **options)


#: what an option's annotation allows, as a user writes it in TOML
_OPTION_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "true or false"),
    (int, "a whole number"),
    (float, "a number"),
    (str, "a text in quotes"),
)


def _check_option(scheme: str, name: str, value: Any, hint: Any) -> None:
    """A sink option against its ``__init__`` annotation (bool, int, float, str, or None of them)."""
    allowed = set(typing.get_args(hint)) if typing.get_origin(hint) in (typing.Union, types.UnionType) else {hint}
    if value is None and type(None) in allowed:
        return  # a program's "not set" (TOML has no null)
    allowed.discard(type(None))
    if not allowed <= {bool, int, float, str}:
        return  # an option of another kind checks itself
    ok = isinstance(value, tuple(allowed)) and not (isinstance(value, bool) and bool not in allowed)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        what = " or ".join(text for kind, text in _OPTION_KINDS if kind in allowed)
        raise SinkError(f"{scheme} sink: option {name} must be {what}, got {value!r}")


def install_hint(extra: str) -> str:
    """How to install one of our extras: ``pip install 'han-logger[mqtt]'``, under the installed distribution's name."""
    from importlib.metadata import PackageNotFoundError, metadata, packages_distributions

    name = "han-logger"
    for dist in packages_distributions().get("sinks", ()):
        try:
            if extra in (metadata(dist).get_all("Provides-Extra") or ()):
                name = dist
                break
        except PackageNotFoundError:
            continue
    return f"pip install '{name}[{extra}]'"


def split_url(url: str) -> tuple[str, str]:
    """``"sqlite:/var/lib/han/han.db"`` → ``("sqlite", "/var/lib/han/han.db")``.

    ``scheme:///abs/path`` is accepted as ``/abs/path`` too.
    """
    scheme, sep, rest = url.partition(":")
    if not sep or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        raise SinkError(f"a sink is written SCHEME:TARGET (e.g. sqlite:/var/lib/han/han.db), got {redact(url)!r}")
    if rest.startswith("///"):
        rest = rest[2:]
    return scheme, rest


_USERINFO = re.compile(r"(//[^/:@]*):[^@/]*@")
_SECRET_QUERY = re.compile(r"([?&](?:token|password|pass)=)[^&#]*", re.IGNORECASE)


def redact(url: str) -> str:
    """A URL with any password or token replaced: ``mqtt://u:secret@h`` → ``mqtt://u:***@h``."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1:***@", url))


# -- what every sink needs to know about a push -----------------------------------
#: the meter of a push that names none, when nothing else is known on its source
UNKNOWN_METER = "unknown"


def own_identity(push: Push) -> str | None:
    """The identity a push carries itself: its system title (hex), else its meter number, else None."""
    s = push.security
    if s is not None and s.system_title:
        return s.system_title.hex().upper()
    return push.meter_id or None


def meter_of(push: Push) -> str:
    """A push's meter when nothing was stamped on it: its own identity, else ``unknown``."""
    return own_identity(push) or UNKNOWN_METER


def push_key(push: Push) -> str | None:
    """What makes a push unique for its meter: its counter (else its meter time) and its content.

    ``ic:<counter>:<digest>`` or ``time:<meter time>:<digest>``, the digest over the
    plain APDU.  Neither half is enough alone: a re-keyed or reset meter counts from
    1 again, and a clock that stands still or repeats the fall-back hour sends
    different pushes with one time.  Two pushes with the same counter (or time) and
    the same content are one push received twice.  None when there is neither.
    """
    if push.security is not None:
        identity = f"ic:{push.security.invocation_counter}"
    elif push.meter_time is not None:
        identity = f"time:{push.meter_time.raw.hex()}"
    else:
        return None
    return f"{identity}:{hashlib.blake2b(push.apdu, digest_size=8).hexdigest()}"


def time_utc(push: Push, received: datetime) -> datetime:
    """The push's time in UTC: the meter's time when it can be placed in UTC, else the receive time.

    (``obis`` places a meter's local time with the profile's or the configured time zone.)
    """
    if push.timestamp_utc is not None:
        return push.timestamp_utc.astimezone(timezone.utc)
    return received.astimezone(timezone.utc)


def iso_utc(dt: datetime) -> str:
    """``2020-01-07T13:47:20Z`` (milliseconds only when present): sortable text SQLite understands."""
    dt = dt.astimezone(timezone.utc)
    text = dt.isoformat(timespec="milliseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def secret(env_name: str, credential: str) -> str | None:
    """A token or password from the environment, else from a systemd credential (``LoadCredential=``)."""
    value = os.environ.get(env_name)
    if value:
        return value
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = os.path.join(cred_dir, credential)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read().strip()
    return None
