"""Where ``han run`` reads: a source URL (``--source``, ``[[source]]``) checked into a :class:`SourceSpec`.

::

    /dev/ttyUSB0                                   a serial port ([serial] settings)
    socket://HOST:PORT                             ser2net's raw TCP port (reconnected with backoff)
    mqtt://[USER[:PASSWORD]@]HOST[:PORT]/FILTER?share=GROUP&format=auto&qos=1&client_id=ID
    mqtts://...?ca=FILE&cert=FILE&key=FILE         the same over TLS

An MQTT URL is parsed by :mod:`han.mqtturl` (shared with ``han bridge --to``):
the topic filter is the URL's path (``han/raw/#``; ``+`` and ``#`` as typed,
``%23`` also works for ``#``); the password comes from the URL,
``password_file``, ``password_env``, ``HAN_MQTT_PASSWORD`` or the credential
``han-mqtt-password``, and never appears in a log line, an error or the
status (:meth:`SourceSpec.describe`).  Errors are one line naming the source.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..mqtturl import COMMON_OPTIONS, host_port, parse_mqtt_url, whole
from ..settings import ConfigError
from .payload import FORMATS

MQTT_PORT = {"mqtt": 1883, "mqtts": 8883}
#: the options of an MQTT source (URL query, or keys of its [[source]] table): han.mqtturl's and these
MQTT_OPTIONS = COMMON_OPTIONS | {"share", "transport", "session_expiry", "keepalive"}
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
    return host_port(text, default, where, shape)


def _mqtt(url: str, scheme: str, options: dict[str, Any], where: str, environ: Mapping[str, str]) -> SourceSpec:
    u = parse_mqtt_url(
        url, options, where=where, formats=FORMATS, default_format="auto", extra=MQTT_OPTIONS - COMMON_OPTIONS,
        environ=environ,
    )  # fmt: skip
    extra = u.extra
    share = extra.get("share") or None
    if share is not None and (not isinstance(share, str) or any(c in share for c in "/+#")):
        raise _fail(where, f"share {share!r}: a group name without / + #")
    expiry = whole(extra.get("session_expiry", 7 * 86400), "session_expiry", where)
    keepalive = whole(extra.get("keepalive", 30), "keepalive", where)
    return SourceSpec(
        "mqtt", f"{u.host}:{u.port}", host=u.host, port=u.port, topic=u.topic, share=share, format=u.format,
        qos=u.qos, client_id=u.client_id, username=u.username, password=u.password, tls=u.tls, ca=u.ca,
        cert=u.cert, key=u.key, transport=_transport(extra, where), session_expiry=expiry, keepalive=keepalive,
    )  # fmt: skip
