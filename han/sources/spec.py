"""Where ``han run`` reads: a source URL (``--source``, ``[[source]]``) checked into a :class:`SourceSpec`.

::

    /dev/ttyUSB0                                   a serial port ([serial] settings)
    socket://HOST:PORT                             ser2net's raw TCP port (reconnected with backoff)
    mqtt://[USER[:PASSWORD]@]HOST[:PORT]/FILTER?share=GROUP&format=auto&qos=1&client_id=ID
    mqtts://...?ca=FILE&cert=FILE&key=FILE         the same over TLS

The MQTT topic filter is the URL's path (``han/raw/#``; ``+`` and ``#`` as
typed, ``%23`` also works for ``#``).  A password is taken from the URL, from
``password_file`` (a private file) or from ``password_env`` (an environment
variable); it never appears in a log line, an error or the status
(:meth:`SourceSpec.describe`).  Errors are one line naming the source.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..settings import ConfigError
from .payload import FORMATS

MQTT_PORT = {"mqtt": 1883, "mqtts": 8883}
#: the options of an MQTT source (URL query, or keys of its [[source]] table)
MQTT_OPTIONS = frozenset({
    "share", "format", "qos", "client_id", "ca", "cert", "key", "password_file", "password_env", "transport",
    "session_expiry", "keepalive",
})  # fmt: skip
SOCKET_OPTIONS = frozenset({"transport"})
TRANSPORTS = ("auto", "hdlc", "mbus", "raw")


@dataclass(frozen=True)
class SourceSpec:
    kind: str  #: serial, socket, mqtt
    target: str  #: the device, host:port, or host:port for MQTT
    host: str = ""
    port: int = 0
    topic: str = ""  #: the MQTT topic filter (without $share/GROUP/)
    share: str | None = None
    format: str = "auto"
    qos: int = 1
    client_id: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    transport: str | None = None  #: the link layer (None: [decode] transport for a port, auto for MQTT)
    session_expiry: int = 7 * 86400  #: seconds the broker keeps the session (and its queue) of a stopped worker
    keepalive: int = 30

    @property
    def subscription(self) -> str:
        return f"$share/{self.share}/{self.topic}" if self.share else self.topic

    def describe(self) -> str:
        """The source for logs and the status: never the password."""
        if self.kind != "mqtt":
            return self.target
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        query = f"?share={self.share}" if self.share else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.topic}{query}"


def _fail(where: str, text: str) -> ConfigError:
    return ConfigError(f"{where}: {text}")


def parse_source(url: Any, options: Mapping[str, Any] | None = None, *, where: str = "--source",
                 environ: Mapping[str, str] | None = None) -> SourceSpec:  # fmt: skip
    """A source URL (and the options of its [[source]] table), checked; ConfigError in one line."""
    if not isinstance(url, str) or not url.strip():
        raise _fail(where, 'give a source URL, e.g. "/dev/ttyUSB0", "socket://HOST:PORT" or "mqtt://HOST/han/raw/#"')
    url = url.strip()
    options = dict(options or {})
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in MQTT_PORT:
        return _mqtt(url, scheme, options, where, os.environ if environ is None else environ)
    if scheme == "socket":
        _only(options, SOCKET_OPTIONS, where)
        hostport = url[len("socket://") :]
        host, port = _hostport(hostport, None, where, "socket://HOST:PORT")
        return SourceSpec("socket", url, host=host, port=port, transport=_transport(options, where))
    if scheme:
        raise _fail(where, f"unknown kind of source {scheme}://; a serial device, socket://, mqtt:// or mqtts://")
    _only(options, SOCKET_OPTIONS, where)
    return SourceSpec("serial", url, transport=_transport(options, where))


def _only(options: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = set(options) - allowed
    if unknown:
        raise _fail(where, f"unknown option {sorted(unknown)[0]!r} (known: {', '.join(sorted(allowed))})")


def _transport(options: Mapping[str, Any], where: str) -> str | None:
    value = options.get("transport")
    if value is None:
        return None
    if value not in TRANSPORTS:
        raise _fail(where, f"transport {value!r}: one of {', '.join(TRANSPORTS)}")
    return value


def _hostport(text: str, default: int | None, where: str, shape: str) -> tuple[str, int]:
    m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:/\[\]@]+)(?::(\d+))?", text)
    if not m or (m[2] is None and default is None):
        raise _fail(where, f"expected {shape}")
    port = int(m[2]) if m[2] is not None else default
    assert port is not None
    if not 0 < port < 65536:
        raise _fail(where, f"port {port} is out of range")
    return m[1].strip("[]"), port


def _mqtt(url: str, scheme: str, options: dict[str, Any], where: str, environ: Mapping[str, str]) -> SourceSpec:
    parts = urllib.parse.urlsplit(url.replace("#", "%23"))
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
    merged = {**query, **options}
    _only(merged, MQTT_OPTIONS, where)
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    host, port = _hostport(hostport, MQTT_PORT[scheme], where, f"{scheme}://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC")
    username = password = None
    if userinfo:
        user, sep, pw = userinfo.partition(":")
        username = urllib.parse.unquote(user) or None
        password = urllib.parse.unquote(pw) if sep else None
    topic = urllib.parse.unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if not topic:
        raise _fail(where, f"give the topic filter after the host, e.g. {scheme}://{hostport}/han/raw/#")
    if "$share/" in topic or any(
        ("#" in level and level != "#") or ("+" in level and level != "+") for level in topic.split("/")
    ) or ("#" in topic and not topic.endswith("#")):
        raise _fail(where, f"topic filter {topic!r}: + and # stand for whole levels, # only last; share= sets the group")
    share = merged.get("share") or None
    if share is not None and (not isinstance(share, str) or any(c in share for c in "/+#")):
        raise _fail(where, f"share {share!r}: a group name without / + #")
    fmt = merged.get("format", "auto")
    if fmt not in FORMATS:
        raise _fail(where, f"format {fmt!r}: one of {', '.join(FORMATS)}")
    qos = _int(merged.get("qos", 1), "qos", where)
    if qos not in (0, 1):
        raise _fail(where, "qos must be 1 (at least once; the default) or 0 (no redelivery: pushes may be lost)")
    expiry = _int(merged.get("session_expiry", 7 * 86400), "session_expiry", where)
    keepalive = _int(merged.get("keepalive", 30), "keepalive", where)
    client_id = merged.get("client_id") or None
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 64):
        raise _fail(where, "client_id: a text of at most 64 characters")
    if password is None:
        password = _password(merged, where, environ)
    elif merged.get("password_file") or merged.get("password_env"):
        raise _fail(where, "the password is in the URL and in password_file/password_env: give it once")
    tls = scheme == "mqtts"
    files = {}
    for name in ("ca", "cert", "key"):
        value = merged.get(name)
        if value is None:
            continue
        if not tls:
            raise _fail(where, f"{name}= needs mqtts:// (TLS)")
        if not isinstance(value, str) or not os.path.isfile(os.path.expanduser(value)):
            raise _fail(where, f"{name} {value!r}: no such file")
        files[name] = os.path.expanduser(value)
    if ("cert" in files) != ("key" in files):
        raise _fail(where, "a client certificate needs both cert= and key=")
    return SourceSpec(
        "mqtt", f"{host}:{port}", host=host, port=port, topic=topic, share=share, format=fmt, qos=qos,
        client_id=client_id, username=username, password=password, tls=tls, transport=_transport(merged, where),
        session_expiry=expiry, keepalive=keepalive, **files,
    )  # fmt: skip


def _int(value: Any, name: str, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _fail(where, f"{name} must be a whole number, got {value!r}") from None
    if number < 0 or isinstance(value, bool):
        raise _fail(where, f"{name} must be a whole number not below 0, got {value!r}")
    return number


def _password(options: Mapping[str, Any], where: str, environ: Mapping[str, str]) -> str | None:
    from ..keysource import check_private

    path = options.get("password_file")
    if path:
        path = os.path.expanduser(str(path))
        check_private(path, "holds a password")
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise _fail(where, f"password_file {path}: {exc.strerror}") from None
    var = options.get("password_env")
    if var:
        if str(var) not in environ:
            raise _fail(where, f"password_env {var}: no such variable in the environment")
        return environ[str(var)]
    return None
