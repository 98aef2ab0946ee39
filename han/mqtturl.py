"""One parser for every ``mqtt://`` and ``mqtts://`` URL han reads: ``han run --source`` and ``han bridge --to``.

::

    mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC?OPTION=VALUE&...

    HOST         a name, an IPv4 address or [an IPv6 address]; PORT 1883 (mqtts: 8883)
    TOPIC        a topic filter to subscribe to (+ and # as whole levels, # only last; %23 for #),
                 or a topic to publish to (no wildcards, not starting with $)
    ca=, cert=, key=          TLS files (mqtts:// only; cert and key together)
    client_id=                at most 64 characters
    qos=                      0 or 1 (a publisher: 1 only)
    format=                   one of the caller's payload formats
    password_file=, password_env=

The password comes from, first found: the URL, ``password_file`` (readable by
its owner only), ``password_env`` (a variable's name), ``HAN_MQTT_PASSWORD``,
the systemd credential ``han-mqtt-password`` (the last two only with a user).
It is never shown: :meth:`MqttUrl.describe` and every error leave it out.
The options may also come from a ``[[source]]`` table (``options``), and
override the URL's query.  Errors are one :class:`ConfigError` line starting
with ``where``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .settings import ConfigError

DEFAULT_PORT = {"mqtt": 1883, "mqtts": 8883}
#: the options every MQTT URL takes; a caller adds its own (share=, session_expiry=, ...)
COMMON_OPTIONS = frozenset({"format", "qos", "client_id", "ca", "cert", "key", "password_file", "password_env"})
PASSWORD_ENV = "HAN_MQTT_PASSWORD"
PASSWORD_CREDENTIAL = "han-mqtt-password"


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int
    topic: str
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    format: str = ""
    qos: int = 1
    client_id: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    #: the caller's own options (URL query and table), checked against its names only
    extra: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """The URL for logs and the status: never the password."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}/{self.topic}"


def fail(where: str, text: str) -> ConfigError:
    return ConfigError(f"{where}: {text}")


def parse_mqtt_url(
    url: str,
    options: Mapping[str, Any] | None = None,
    *,
    where: str,
    formats: tuple[str, ...],
    default_format: str,
    publish: bool = False,
    extra: frozenset[str] = frozenset(),
    environ: Mapping[str, str] | None = None,
) -> MqttUrl:
    """An ``mqtt://`` or ``mqtts://`` URL checked into an :class:`MqttUrl` (see the module docstring).

    ``publish``: the topic is one to publish to (no wildcards) and QoS is 1.  ``extra``: the
    caller's own option names, handed back unchecked in :attr:`MqttUrl.extra`."""
    environ = os.environ if environ is None else environ
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in DEFAULT_PORT:
        raise fail(where, "give an MQTT URL, e.g. mqtt://broker:1883/han/raw/house")
    parts = urllib.parse.urlsplit(url.replace("#", "%23"))
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
    merged = {**query, **dict(options or {})}
    allowed = COMMON_OPTIONS | extra
    unknown = sorted(set(merged) - allowed)
    if unknown:
        raise fail(where, f"unknown option {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host, port = host_port(hostport, DEFAULT_PORT[scheme], where, f"{scheme}://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC")
    username = password = None
    if userinfo:
        user, sep, pw = userinfo.partition(":")
        username = urllib.parse.unquote(user) or None
        password = urllib.parse.unquote(pw) if sep else None
    topic = urllib.parse.unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if not topic:
        raise fail(where, f"give the topic after the broker, e.g. {scheme}://{hostport or 'broker'}/han/raw/house")
    _check_topic(topic, publish, where)
    fmt = str(merged.get("format") or default_format).lower()
    if fmt not in formats:
        raise fail(where, f"format {fmt!r}: one of {', '.join(formats)}")
    qos = whole(merged.get("qos", 1), "qos", where)
    if publish and qos != 1:
        raise fail(where, "a bridge publishes with QoS 1 (at least once): qos=1")
    if qos not in (0, 1):
        raise fail(where, "qos must be 1 (at least once; the default) or 0 (no redelivery: pushes may be lost)")
    client_id = merged.get("client_id") or None
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 64):
        raise fail(where, "client_id: a text of at most 64 characters")
    if password is not None and (merged.get("password_file") or merged.get("password_env")):
        raise fail(where, "the password is in the URL and in password_file/password_env: give it once")
    if password is None:
        password = _password(merged, where, environ, username)
    tls = scheme == "mqtts"
    files: dict[str, str] = {}
    for name in ("ca", "cert", "key"):
        value = merged.get(name)
        if value is None or value == "":
            continue
        if not tls:
            raise fail(where, f"{name}= is a TLS option: use mqtts://")
        if not isinstance(value, str) or not os.path.isfile(os.path.expanduser(value)):
            raise fail(where, f"{name} {value!r}: no such file")
        files[name] = os.path.expanduser(value)
    if ("cert" in files) != ("key" in files):
        raise fail(where, "a client certificate needs both cert= and key=")
    return MqttUrl(
        host=host, port=port, topic=topic, tls=tls, username=username, password=password, format=fmt, qos=qos,
        client_id=client_id, extra={k: v for k, v in merged.items() if k in extra}, **files,
    )  # fmt: skip


def _check_topic(topic: str, publish: bool, where: str) -> None:
    if publish:
        if any(c in topic for c in "+#\0") or topic.startswith("$"):
            raise fail(where, "a topic to publish to has no wildcards (+ #) and does not start with $")
        return
    levels = topic.split("/")
    if (
        "$share/" in topic
        or any(("#" in lv and lv != "#") or ("+" in lv and lv != "+") for lv in levels)
        or ("#" in topic and not topic.endswith("#"))
    ):
        raise fail(where, f"topic filter {topic!r}: + and # stand for whole levels, # only last; share= sets the group")


def host_port(text: str, default: int | None, where: str, shape: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]`` in brackets); ``default`` None: the port is required."""
    m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:/\[\]@]+)(?::(\d+))?", text)
    if not m or (m[2] is None and default is None):
        raise fail(where, f"expected {shape}")
    port = int(m[2]) if m[2] is not None else default
    assert port is not None
    if not 0 < port < 65536:
        raise fail(where, f"port {port} is out of range")
    return m[1].strip("[]"), port


def whole(value: Any, name: str, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise fail(where, f"{name} must be a whole number, got {value!r}") from None
    if number < 0 or isinstance(value, bool):
        raise fail(where, f"{name} must be a whole number not below 0, got {value!r}")
    return number


def _password(options: Mapping[str, Any], where: str, environ: Mapping[str, str], user: str | None) -> str | None:
    from .keysource import check_private

    path = options.get("password_file")
    if path:
        path = os.path.expanduser(str(path))
        check_private(path, "holds a password")
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise fail(where, f"password_file {path}: {exc.strerror}") from None
    var = options.get("password_env")
    if var:
        if str(var) not in environ:
            raise fail(where, f"password_env {var}: no such variable in the environment")
        return environ[str(var)]
    if user is None:
        return None
    if environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV]
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = os.path.join(cred_dir, PASSWORD_CREDENTIAL)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read().strip()
    return None
