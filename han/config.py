"""``han run`` configuration: a TOML file (``--config``), command-line flags over it, keys from safe places.

Precedence, highest first: command-line flags, environment (``HAN_KEY``,
``HAN_AUTH_KEY``), systemd credentials (``$CREDENTIALS_DIRECTORY/han-key``,
``han-auth-key``, ``han-keys``), a key file (``[keys] file = ...``), the
config file's ``[keys]`` table.  A file that holds keys must not be readable
by others (``chmod 600``); han refuses it otherwise.  Keys never appear in
messages: errors name the file or variable, never the value.

See ``samples/han.toml`` for every setting, with comments.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from decoders.ciphering.security import Keys

from .inputs import InputError, parse_hex, parse_key
from .keyring import KeyRing

#: serial presets: name -> (baud, parity, bytesize, stopbits)
PRESETS: dict[str, tuple[int, str, int, float]] = {
    "kamstrup-ccc": (2400, "N", 8, 1),  # Kamstrup OMNIPOWER CCC port, RS232 (the default)
    "mbus": (2400, "E", 8, 1),  # M-Bus HAN adapters (Norway, Sweden; Kamstrup HAN-NVE)
    "p1": (115200, "N", 8, 1),  # P1 ports (Netherlands, Belgium, Luxembourg)
}
PARITIES = {"N": "none", "E": "even", "O": "odd", "M": "mark", "S": "space"}
CREDENTIAL_NAMES = ("han-key", "han-auth-key", "han-keys")


class ConfigError(Exception):
    """A configuration problem, in one line (exit status 2)."""


@dataclass(frozen=True)
class SerialSettings:
    port: str | None = None  #: a device (/dev/ttyUSB0) or a pyserial URL (socket://host:port)
    baudrate: int = 2400
    parity: str = "N"
    bytesize: int = 8
    stopbits: float = 1

    def describe(self) -> str:
        stop = int(self.stopbits) if float(self.stopbits).is_integer() else self.stopbits
        return f"{self.baudrate} {self.bytesize}{self.parity}{stop}"


@dataclass(frozen=True)
class SinkSpec:
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    state_dir: str
    serial: SerialSettings = SerialSettings()
    replay: str | None = None  #: feed a capture instead of reading a port
    pace: bool = False  #: replay at the meter's own pace
    keyring: KeyRing = field(default_factory=KeyRing)
    sinks: tuple[SinkSpec, ...] = ()
    transport: str = "hdlc"
    system_title: bytes | None = None
    #: country, timezone, profile (a Profile), multipliers, ct_ratio: as ``han decode`` takes them
    decode_options: Mapping[str, Any] = field(default_factory=dict)
    allow_unauthenticated: bool = False
    unverified: bool = False
    push_interval: float | None = None  #: seconds; None = learn it from the pushes (10 s until known)
    idle_flush: float = 1.0  #: seconds of silence after which a partial frame is reported
    retry_min: float = 1.0  #: first reconnect delay, doubling up to retry_max
    retry_max: float = 30.0
    sink_retry_max: float = 60.0
    status_interval: float = 5.0
    counters_every: float = 60.0
    spool_max_pushes: int = 100_000
    spool_max_age: float = 90 * 86400.0  #: seconds a push may wait in the journal for a sink (0 = no limit)
    stop_timeout: float = 20.0
    count: int | None = None  #: stop after this many accepted pushes
    #: the meter's name for pushes of this source that never name it (see han.identity)
    meter: str | None = None

    def sink_specs(self) -> tuple[SinkSpec, ...]:
        """The sinks, or the embedded default: SQLite in the state directory."""
        return self.sinks or (SinkSpec(f"sqlite:{os.path.join(self.state_dir, 'han.db')}"),)


# -- TOML ---------------------------------------------------------------------------
_SECTIONS: dict[str, set[str]] = {
    "": {"serial", "decode", "keys", "daemon", "sink", "sinks", "state_dir"},
    "serial": {"port", "preset", "baud", "parity", "bytesize", "stopbits", "retry_min", "retry_max", "meter"},
    "decode": {
        "transport",
        "system_title",
        "country",
        "profile",
        "profiles",
        "timezone",
        "multipliers",
        "ct_ratio",
        "allow_unauthenticated",
        "unverified",
    },
    "keys": {"key", "auth_key", "file", "meters"},
    "daemon": {
        "state_dir",
        "push_interval",
        "idle_flush",
        "status_interval",
        "counters_every",
        "spool_max_pushes",
        "spool_max_age",
        "stop_timeout",
        "sink_retry_max",
    },
}


def _check_keys(table: Mapping[str, Any], section: str, where: str) -> None:
    unknown = set(table) - _SECTIONS[section]
    if unknown:
        name = f"[{section}] " if section else ""
        raise ConfigError(f"{where}: unknown setting {name}{sorted(unknown)[0]!r} (see samples/han.toml)")


def read_toml(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def check_private(path: str, what: str = "holds keys") -> None:
    """Refuse a file that others may read when it holds keys."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ConfigError(
            f"{path} {what} but is readable by others (mode {stat.S_IMODE(mode):03o});"
            f" make it private: chmod 600 {path}"
        )


def _has_key_material(table: Mapping[str, Any]) -> bool:
    return bool(table.get("key") or table.get("auth_key") or table.get("meters"))


# -- keys -----------------------------------------------------------------------------
@dataclass
class _KeyTexts:
    """Hex texts with the place each came from (for messages), before parsing."""

    ek: tuple[str, str] | None = None
    ak: tuple[str, str] | None = None
    meters: dict[str, tuple[dict[str, str], str]] = field(default_factory=dict)

    def take(self, table: Mapping[str, Any], where: str) -> None:
        """Fill what is still empty from a keys table (lower precedence than what is set)."""
        for name, attr in (("key", "ek"), ("auth_key", "ak")):
            text = table.get(name)
            if text and getattr(self, attr) is None:
                if not isinstance(text, str):
                    raise ConfigError(f"{where}: {name} must be a hex string")
                setattr(self, attr, (text, f"{where} {name}"))
        meters = table.get("meters") or {}
        if not isinstance(meters, Mapping):
            raise ConfigError(f"{where}: [meters] must be a table keyed by system title")
        for st, keys in meters.items():
            if not isinstance(keys, Mapping) or set(keys) - {"key", "auth_key"}:
                raise ConfigError(f"{where}: meters.{st} must hold key and auth_key")
            self.meters.setdefault(st.upper(), (dict(keys), f"{where} meters.{st}"))


def _parse(text_where: tuple[str, str] | None) -> bytes | None:
    if text_where is None:
        return None
    text, where = text_where
    try:
        return parse_key(text, where)
    except InputError as exc:
        raise ConfigError(str(exc)) from None


def load_keys(
    *,
    cli_key: str | None = None,
    cli_auth_key: str | None = None,
    config_keys: Mapping[str, Any] | None = None,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> KeyRing:
    env = os.environ if environ is None else environ
    texts = _KeyTexts()
    if cli_key:
        texts.ek = (cli_key, "--key")
    if cli_auth_key:
        texts.ak = (cli_auth_key, "--auth-key")
    texts.take({"key": env.get("HAN_KEY"), "auth_key": env.get("HAN_AUTH_KEY")}, "environment HAN_KEY/HAN_AUTH_KEY")
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        single = {}
        for name, field_name in (("han-key", "key"), ("han-auth-key", "auth_key")):
            path = os.path.join(cred_dir, name)
            if os.path.isfile(path):
                check_private(path)
                with open(path, encoding="ascii", errors="replace") as fh:
                    single[field_name] = fh.read().strip()
        texts.take(single, f"credential in {cred_dir}")
        ring_file = os.path.join(cred_dir, "han-keys")
        if os.path.isfile(ring_file):
            check_private(ring_file)
            texts.take(_key_file(ring_file), ring_file)
    config_keys = config_keys or {}
    key_file = config_keys.get("file")
    if key_file:
        if config_path and not os.path.isabs(key_file):
            key_file = os.path.join(os.path.dirname(os.path.abspath(config_path)), key_file)
        check_private(key_file)
        texts.take(_key_file(key_file), key_file)
    if config_keys:
        texts.take(config_keys, config_path or "config")
    meters: dict[bytes, Keys] = {}
    for st_text, (keys, where) in texts.meters.items():
        try:
            st = parse_hex(st_text)
        except InputError:
            st = b""
        if len(st) != 8:
            raise ConfigError(f"{where}: a meter is keyed by its 8-byte system title in hex (16 digits)")
        meters[st] = Keys(
            ek=_parse((keys["key"], f"{where} key")) if keys.get("key") else None,
            ak=_parse((keys["auth_key"], f"{where} auth_key")) if keys.get("auth_key") else None,
        )
    return KeyRing(Keys(ek=_parse(texts.ek), ak=_parse(texts.ak)), meters)


def _key_file(path: str) -> dict[str, Any]:
    data = read_toml(path)
    table = data.get("keys", data)  # a key file may be a bare table or hold [keys]
    unknown = set(table) - {"key", "auth_key", "meters"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {sorted(unknown)[0]!r}; a key file holds key, auth_key, [meters.<system title>]"
        )
    return table


# -- state directory ---------------------------------------------------------------------
def default_state_dir(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("STATE_DIRECTORY"):  # systemd StateDirectory=
        return env["STATE_DIRECTORY"].split(":")[0]
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "han")


def ensure_state_dir(path: str) -> str:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"state directory {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"state directory {path} is not writable")
    return path


# -- from flags and file to RunConfig ------------------------------------------------------
def _decode_options(args: Any, table: Mapping[str, Any], config_path: str | None = None) -> dict[str, Any]:
    """Country, time zone, profiles, multipliers and CT ratio, checked the way ``han decode`` checks them.

    Profile files named in the config file are relative to it.
    """
    import argparse

    from .cli import UsageError
    from .commands.decode import decode_options

    multipliers = getattr(args, "multiplier", None)
    if multipliers is None:
        given = table.get("multipliers") or {}
        if not isinstance(given, Mapping):
            raise ConfigError('[decode] multipliers is a table: "1.1.31.7.0.255" = 50')
        multipliers = [f"{obis}={factor}" for obis, factor in given.items()]
    ct_ratio = getattr(args, "ct_ratio", None) or table.get("ct_ratio")
    files = getattr(args, "profiles", None)
    if not files:
        given = table.get("profiles") or []
        if isinstance(given, str):
            given = [given]
        if not isinstance(given, list) or not all(isinstance(f, str) for f in given):
            raise ConfigError(f'{config_path or "config"}: [decode] profiles is a file name or a list: "my-meter.toml"')
        base = os.path.dirname(os.path.abspath(config_path)) if config_path else ""
        files = [os.path.join(base, os.path.expanduser(f)) for f in given]
    merged = argparse.Namespace(
        country=getattr(args, "country", None) or table.get("country"),
        timezone=getattr(args, "timezone", None) or table.get("timezone"),
        profile=getattr(args, "profile", None) or table.get("profile"),
        profiles=files,
        multiplier=multipliers,
        ct_ratio=str(ct_ratio) if ct_ratio is not None else None,
    )
    try:
        return decode_options(merged)
    except UsageError as exc:
        raise ConfigError(str(exc)) from None


def build_run_config(args: Any, environ: Mapping[str, str] | None = None) -> RunConfig:
    """Merge ``--config FILE`` and the command-line flags of ``han run``."""
    data: dict[str, Any] = {}
    config_path = getattr(args, "config", None)
    if config_path:
        data = read_toml(config_path)
        _check_keys(data, "", config_path)
        for section in ("serial", "decode", "keys", "daemon"):
            table = data.get(section, {})
            if not isinstance(table, Mapping):
                raise ConfigError(f"{config_path}: [{section}] must be a table")
            _check_keys(table, section, config_path)
        if _has_key_material(data.get("keys", {})):
            check_private(config_path, "holds keys in [keys]")
    serial_t = data.get("serial", {})
    decode_t = data.get("decode", {})
    daemon_t = data.get("daemon", {})

    def pick(flag: str, table: Mapping[str, Any], key: str, default: Any = None) -> Any:
        v = getattr(args, flag, None)
        return v if v is not None else table.get(key, default)

    preset = pick("preset", serial_t, "preset", "kamstrup-ccc")
    if preset not in PRESETS:
        raise ConfigError(f"unknown serial preset {preset!r}; known: {', '.join(PRESETS)}")
    baud, parity, bytesize, stopbits = PRESETS[preset]
    parity = str(pick("parity", serial_t, "parity", parity)).upper()[:1]
    if parity not in PARITIES:
        raise ConfigError(f"parity must be one of {', '.join(PARITIES)} (none, even, odd, mark, space)")
    serial = SerialSettings(
        port=pick("port", serial_t, "port"),
        baudrate=int(pick("baud", serial_t, "baud", baud)),
        parity=parity,
        bytesize=int(pick("bytesize", serial_t, "bytesize", bytesize)),
        stopbits=float(pick("stopbits", serial_t, "stopbits", stopbits)),
    )
    if serial.bytesize not in (5, 6, 7, 8):
        raise ConfigError("bytesize must be 5, 6, 7 or 8")
    if serial.stopbits not in (1, 1.5, 2):
        raise ConfigError("stopbits must be 1, 1.5 or 2")
    replay = getattr(args, "replay", None)
    if replay and replay != "-" and not os.path.isfile(replay):
        raise ConfigError(f"--replay {replay}: no such file")
    if not replay and not serial.port:
        raise ConfigError("give a serial port (--port /dev/ttyUSB0, or [serial] port in --config), or --replay FILE")

    keyring = load_keys(
        cli_key=getattr(args, "key", None),
        cli_auth_key=getattr(args, "auth_key", None),
        config_keys=data.get("keys", {}),
        config_path=config_path,
        environ=environ,
    )
    system_title = pick("system_title", decode_t, "system_title")
    if system_title:
        try:
            system_title = parse_hex(system_title)
        except InputError as exc:
            raise ConfigError(f"system title: {exc}") from None
        if len(system_title) != 8:
            raise ConfigError("system title must be 8 bytes (16 hex digits)")
    decode_options = _decode_options(args, decode_t, config_path)
    from decoders.stream import TRANSPORTS

    transport = pick("transport", decode_t, "transport", "hdlc")
    if transport not in TRANSPORTS:
        raise ConfigError(f"transport must be one of {', '.join(TRANSPORTS)}")

    sinks = [SinkSpec(url) for url in (getattr(args, "sink", None) or [])]
    if not sinks:
        for entry in data.get("sink", []) or []:
            if isinstance(entry, str):
                sinks.append(SinkSpec(entry))
            elif isinstance(entry, Mapping) and isinstance(entry.get("url"), str):
                sinks.append(SinkSpec(entry["url"], {k: v for k, v in entry.items() if k != "url"}))
            else:
                raise ConfigError(f'{config_path}: each [[sink]] needs url = "SCHEME:TARGET"')
        named = data.get("sinks", {}) or {}
        if not isinstance(named, Mapping):
            raise ConfigError(f"{config_path}: [sinks.<name>] tables, e.g. [sinks.influx] with url = ...")
        for label, entry in named.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
                raise ConfigError(f'{config_path}: [sinks.{label}] needs url = "SCHEME:TARGET"')
            if entry.get("enabled", True) is False:
                continue
            sinks.append(SinkSpec(entry["url"], {k: v for k, v in entry.items() if k not in ("url", "enabled")}))
    state_dir = pick("state_dir", daemon_t, "state_dir") or data.get("state_dir") or default_state_dir(environ)
    state_dir = os.path.abspath(os.path.expanduser(state_dir))

    def num(flag: str, key: str, default: float, kind=float) -> Any:
        v = pick(flag, daemon_t, key, default)
        try:
            v = kind(v) if v is not None else None
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number") from None
        if v is not None and v < 0:
            raise ConfigError(f"{key} must not be negative")
        return v

    retry_max = float(pick("retry_max", serial_t, "retry_max", 30.0))
    meter = meter_name(pick("meter", serial_t, "meter"))
    return RunConfig(
        state_dir=state_dir,
        serial=serial,
        replay=replay,
        pace=bool(getattr(args, "pace", False)),
        keyring=keyring,
        sinks=tuple(sinks),
        transport=transport,
        system_title=system_title or None,
        decode_options=decode_options,
        allow_unauthenticated=bool(pick("allow_unauthenticated", decode_t, "allow_unauthenticated", False)),
        unverified=bool(pick("unverified", decode_t, "unverified", False)),
        push_interval=num("push_interval", "push_interval", None) or None,
        idle_flush=num("idle_flush", "idle_flush", 1.0),
        retry_min=min(float(serial_t.get("retry_min", 1.0)), retry_max),
        retry_max=retry_max,
        sink_retry_max=num("sink_retry_max", "sink_retry_max", 60.0),
        status_interval=num("status_interval", "status_interval", 5.0) or 5.0,
        counters_every=num("counters_every", "counters_every", 60.0),
        spool_max_pushes=num("spool_max_pushes", "spool_max_pushes", 100_000, int),
        spool_max_age=num("spool_max_age", "spool_max_age", 90 * 86400.0),
        stop_timeout=num("stop_timeout", "stop_timeout", 20.0),
        count=getattr(args, "count", None),
        meter=meter,
    )


def meter_name(value: Any) -> str | None:
    """The configured meter name, checked: it becomes a database value, a tag and part of MQTT topics."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError('meter: give a name, e.g. meter = "house" (or --meter house)')
    name = value.strip()
    if len(name) > 64 or not name.isprintable() or any(c in name for c in "/#+"):
        raise ConfigError(f"meter {name[:64]!r}: at most 64 printable characters, without / # +")
    return name
