"""``han run`` configuration: the TOML file (``--config``), the environment, credentials and the command line, merged.

The command line hands over plain values (:class:`Overrides`, no argparse);
this module checks each against the settings table (:mod:`han.settings`, the
one place of every default), merges them over the file and returns a frozen
:class:`RunConfig`.  Precedence, highest first: the command line, the file,
the defaults.  Keys come from :mod:`han.keysource` (command line,
environment, systemd credentials, key file, the file's ``[keys]``).  The
command modules depend on this module, never the reverse.

See ``samples/han.toml`` for every setting, with comments.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .inputs import InputError, parse_hex
from .keyring import KeyRing
from .keysource import KEYS_TABLE, check_private, holds_keys, load_keys, topic_table
from .settings import BY_NAME, DEFAULTS, PRESET_TRANSPORT, PRESETS, SECTIONS, ConfigError, read_toml

if TYPE_CHECKING:
    from obis.interpret import InterpretOptions

__all__ = [
    "ConfigError",
    "Overrides",
    "RunConfig",
    "SerialSettings",
    "SinkSpec",
    "build_run_config",
    "check_private",
    "decode_options",
    "default_state_dir",
    "ensure_state_dir",
    "meter_name",
    "read_toml",
]

_PRESET = PRESETS[DEFAULTS["preset"]]


@dataclass(frozen=True)
class SerialSettings:
    port: str | None = DEFAULTS["port"]  #: a device (/dev/ttyUSB0) or a pyserial URL (socket://host:port)
    baudrate: int = _PRESET[0]
    parity: str = _PRESET[1]
    bytesize: int = _PRESET[2]
    stopbits: float = _PRESET[3]

    def describe(self) -> str:
        stop = int(self.stopbits) if float(self.stopbits).is_integer() else self.stopbits
        return f"{self.baudrate} {self.bytesize}{self.parity}{stop}"


@dataclass(frozen=True)
class StreamSettings:
    """Per stream (an MQTT topic) from the key file's [topics."<topic>"]: a plain meter's name, a system title."""

    meter: str | None = None
    system_title: bytes | None = None


@dataclass(frozen=True)
class SinkSpec:
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)


def _default_options() -> InterpretOptions:
    from obis.interpret import InterpretOptions  # not at start-up: every command's flags import this module

    return InterpretOptions()


@dataclass(frozen=True)
class RunConfig:
    """Everything ``han run`` needs; the defaults are the settings table's (han.settings)."""

    state_dir: str
    serial: SerialSettings = SerialSettings()
    replay: str | None = None  #: feed a capture instead of reading a port
    pace: bool = False  #: replay at the meter's own pace
    keyring: KeyRing = field(default_factory=KeyRing)
    sinks: tuple[SinkSpec, ...] = ()
    transport: str = DEFAULTS["transport"]
    system_title: bytes | None = None
    #: country, timezone, profile, multipliers, CT ratio, profile catalogue: as ``han decode`` takes them
    decode_options: InterpretOptions = field(default_factory=_default_options)
    allow_unauthenticated: bool = DEFAULTS["allow_unauthenticated"]
    unverified: bool = DEFAULTS["unverified"]
    push_interval: float | None = DEFAULTS["push_interval"]  #: seconds; None = learn it (10 s until known)
    idle_flush: float = DEFAULTS["idle_flush"]  #: seconds of silence after which a partial frame is reported
    retry_min: float = DEFAULTS["retry_min"]  #: first reconnect delay, doubling up to retry_max
    retry_max: float = DEFAULTS["retry_max"]
    sink_retry_max: float = DEFAULTS["sink_retry_max"]
    status_interval: float = DEFAULTS["status_interval"]
    counters_every: float = DEFAULTS["counters_every"]
    spool_max_pushes: int = DEFAULTS["spool_max_pushes"]
    #: seconds a push may wait in the journal for a sink (0 = no limit)
    spool_max_age: float = DEFAULTS["spool_max_age"]
    stop_timeout: float = DEFAULTS["stop_timeout"]
    count: int | None = None  #: stop after this many accepted pushes
    #: the meter's name for pushes of this source that never name it (see han.identity)
    meter: str | None = DEFAULTS["meter"]
    #: days of raw pushes the SQLite store keeps ([store] keep_raw_days; 0 = for ever)
    keep_raw_days: float = DEFAULTS["keep_raw_days"]
    #: where to read (--source, [[source]]); empty: the serial port (or the replay)
    sources: tuple = ()
    #: per stream (topic): its meter name and system title, from the key file's [topics."<topic>"]
    topics: Mapping[str, StreamSettings] = field(default_factory=dict)
    #: the meters' keys come from --keys FILE (a missing key is advised as one to add there)
    keys_file: str | None = None
    unknown_max_bytes: int = int(DEFAULTS["unknown_max_mb"] * (1 << 20))
    #: the live page: where it listens (han.web.access.Listen), None = no page
    http: Any = None
    #: the token the page's requests must show (required off loopback; see han.web.access)
    http_token: str | None = field(default=None, repr=False)
    #: the capacity-tariff rule the page shows ([http] capacity; None: from the tariff file or the country)
    http_capacity: str | None = DEFAULTS["capacity"]

    def sink_specs(self) -> tuple[SinkSpec, ...]:
        """The sinks, or the embedded default: SQLite in the state directory.

        Every SQLite sink gets ``keep_raw_days`` unless its own table sets it.
        """
        specs = self.sinks or (SinkSpec(f"sqlite:{os.path.join(self.state_dir, 'han.db')}"),)
        return tuple(
            SinkSpec(s.url, {"keep_raw_days": self.keep_raw_days, **s.options}) if s.url.startswith("sqlite:") else s
            for s in specs
        )


@dataclass(frozen=True)
class Overrides:
    """What the command line gives over the file, as plain values (the CLI's argparse stays in the CLI)."""

    config: str | None = None  #: the TOML file
    #: setting name (han.settings) -> value as typed; None or absent = not given.
    #: ``multipliers`` from the command line is a list of "OBIS=FACTOR" texts.
    settings: Mapping[str, Any] = field(default_factory=dict)
    keys: Mapping[str, str | None] = field(default_factory=dict)  #: flag (--key, --auth-key) -> hex text
    sinks: tuple[str, ...] = ()  #: sink URLs; given, they replace the file's sinks
    replay: str | None = None  #: a capture instead of a port ("-" = standard input)
    pace: bool = False
    count: int | None = None
    sources: tuple[str, ...] = ()  #: source URLs (--source); given, they replace the file's [[source]]
    keys_file: str | None = None  #: --keys FILE (owner-only): [meters.<system title>] and [topics."<topic>"]
    http_token: str | None = field(default=None, repr=False)  #: --http-token (visible in ps: the last resort)


# -- the file ---------------------------------------------------------------------------------
def read_config(path: str) -> dict[str, Any]:
    """The config file, its tables and settings checked by name; a file with keys must be private."""
    data = read_toml(path)
    _known(data, "", path)
    for section in ("serial", "decode", "keys", "daemon", "store", "http"):
        table = data.get(section, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{path}: [{section}] must be a table")
        _known(table, section, path)
        if section != "keys":  # every value, also those a flag overrides: a wrong one is a mistake all the same
            for name, value in table.items():
                BY_NAME[name].check(value, where=path)
    if "state_dir" in data and not isinstance(data["state_dir"], str):
        raise ConfigError(f'{path}: state_dir must be a directory name in quotes, e.g. state_dir = "/var/lib/han"')
    if holds_keys(data.get("keys", {})):
        check_private(path, "holds keys in [keys]")
    return data


def _known(table: Mapping[str, Any], section: str, where: str) -> None:
    unknown = set(table) - (KEYS_TABLE if section == "keys" else SECTIONS[section])
    if unknown:
        name = f"[{section}] " if section else ""
        raise ConfigError(f"{where}: unknown setting {name}{sorted(unknown)[0]!r} (see samples/han.toml)")


class _Values:
    """One setting's value: from the command line, else the file, else the table's default; checked."""

    def __init__(self, overrides: Overrides, data: Mapping[str, Any], path: str | None) -> None:
        self.cli = overrides.settings
        self.data = data
        self.path = path or "config"

    def __getitem__(self, name: str) -> Any:
        return self.get(name, DEFAULTS[name])

    def get(self, name: str, default: Any) -> Any:
        setting = BY_NAME[name]
        value = self.cli.get(name)
        if value is not None:
            return setting.check(value, from_flag=True)
        table = self.data.get(setting.section, {})
        if name in table:
            return setting.check(table[name], where=self.path)
        return default

    def label(self, name: str) -> str:
        """How an error names the setting: its flag when given there, else its place in the file."""
        setting = BY_NAME[name]
        if self.cli.get(name) is not None:
            return setting.label(True)
        return f"{self.path}: {setting.label(False)}"


# -- from the command line and the file to RunConfig ----------------------------------------------
def build_run_config(overrides: Overrides, environ: Mapping[str, str] | None = None) -> RunConfig:
    """Merge ``--config FILE``, the environment, credentials and the command line of ``han run``."""
    config_path = overrides.config
    data = read_config(config_path) if config_path else {}
    v = _Values(overrides, data, config_path)

    baud, parity, bytesize, stopbits = PRESETS[v["preset"]]
    serial = SerialSettings(
        port=v["port"],
        baudrate=v.get("baud", baud),
        parity=v.get("parity", parity),
        bytesize=v.get("bytesize", bytesize),
        stopbits=float(v.get("stopbits", stopbits)),
    )
    replay = overrides.replay
    if replay and replay != "-" and not os.path.isfile(replay):
        raise ConfigError(f"--replay {replay}: no such file")
    sources = _sources(overrides, data, config_path, environ)
    if sources and serial.port:  # --port is the shorthand for a serial source: one more, read with the others
        from .sources.spec import SourceSpec

        sources = (SourceSpec("serial", serial.port), *sources)
    if replay and sources:
        raise ConfigError("--replay reads a capture: give it without --source / [[source]]")
    if not replay and not serial.port and not sources:
        raise ConfigError(
            "give a serial port (--port /dev/ttyUSB0, or [serial] port in --config), a --source URL, or --replay FILE"
        )

    keys_files = (overrides.keys_file,) if overrides.keys_file else ()
    keyring = load_keys(
        overrides.keys,
        environ=environ,
        credentials=True,
        config_keys=data.get("keys", {}),
        config_path=config_path,
        files=keys_files,
    )
    topics = {}
    for path in keys_files:
        for topic, entry in topic_table(path).items():
            topics[topic] = _stream_settings(entry, f'{path}: topics."{topic}"')
    system_title = None
    if v["system_title"]:
        try:
            system_title = parse_hex(v["system_title"])
        except InputError as exc:
            raise ConfigError(f"{v.label('system_title')}: {exc}") from None
        if len(system_title) != 8:
            raise ConfigError(f"{v.label('system_title')} must be 8 bytes (16 hex digits)")

    state_dir = v["state_dir"] or data.get("state_dir") or default_state_dir(environ)
    http, http_token = _http(v, overrides, environ)
    retry_max = float(v["retry_max"])
    return RunConfig(
        state_dir=os.path.abspath(os.path.expanduser(state_dir)),
        serial=serial,
        replay=replay,
        pace=bool(overrides.pace),
        keyring=keyring,
        sinks=_sinks(overrides, data, config_path),
        transport=v.get("transport", PRESET_TRANSPORT.get(v["preset"], DEFAULTS["transport"])),
        system_title=system_title,
        decode_options=_decode_settings(v, config_path),
        allow_unauthenticated=v["allow_unauthenticated"],
        unverified=v["unverified"],
        push_interval=v["push_interval"] or None,  # 0: learned
        idle_flush=float(v["idle_flush"]),
        retry_min=min(float(v["retry_min"]), retry_max),
        retry_max=retry_max,
        sink_retry_max=float(v["sink_retry_max"]),
        status_interval=float(v["status_interval"] or DEFAULTS["status_interval"]),
        counters_every=float(v["counters_every"]),
        spool_max_pushes=v["spool_max_pushes"],
        spool_max_age=float(v["spool_max_age"]),
        stop_timeout=float(v["stop_timeout"]),
        count=overrides.count,
        meter=meter_name(v["meter"]),
        keep_raw_days=float(v["keep_raw_days"]),
        sources=sources,
        topics=topics,
        keys_file=overrides.keys_file,
        unknown_max_bytes=int(float(v["unknown_max_mb"]) * (1 << 20)),
        http=http,
        http_token=http_token,
        http_capacity=v["capacity"],
    )


def _http(v: _Values, overrides: Overrides, environ: Mapping[str, str] | None):
    """The live page's address and token, checked: off loopback without a token is a ConfigError."""
    listen = v["listen"]
    if listen is None:
        return None, None
    from .web.access import TokenError, check_listen, parse_listen, token_from

    try:
        where = parse_listen(listen)
        token = token_from(overrides.http_token, os.environ if environ is None else environ)
        check_listen(where, token)
    except (ValueError, TokenError) as exc:
        raise ConfigError(f"{v.label('listen')}: {exc}") from None
    return where, token


def _stream_settings(entry: Mapping[str, Any], where: str) -> StreamSettings:
    st = None
    if entry.get("system_title") is not None:
        try:
            st = parse_hex(str(entry["system_title"]))
        except InputError:
            st = b""
        if len(st) != 8:
            raise ConfigError(f"{where} system_title must be 8 bytes (16 hex digits)")
    try:
        meter = meter_name(entry.get("meter"))
    except ConfigError as exc:
        raise ConfigError(f"{where} {exc}") from None
    return StreamSettings(meter=meter, system_title=st)


def _sources(overrides: Overrides, data: Mapping[str, Any], config_path: str | None, environ) -> tuple:
    """The command line's --source URLs, else the file's [[source]] tables, checked (han.sources.spec)."""
    from .sources.spec import parse_source

    if overrides.sources:
        return _mqtt_installed(
            tuple(parse_source(url, where=f"--source {_shown(url)}", environ=environ) for url in overrides.sources)
        )
    entries = data.get("source", []) or []
    if not isinstance(entries, list):
        raise ConfigError(f'{config_path}: each [[source]] needs url = "..." (a device, socket:// or mqtt://)')
    specs = []
    for i, entry in enumerate(entries, 1):
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
            raise ConfigError(f'{config_path}: [[source]] number {i} needs url = "..." (a device, socket:// or mqtt://)')
        options = {k: v for k, v in entry.items() if k != "url"}
        specs.append(parse_source(entry["url"], options, where=f"{config_path}: [[source]] number {i}", environ=environ))
    return _mqtt_installed(tuple(specs))


def _mqtt_installed(specs: tuple) -> tuple:
    """An MQTT source needs paho-mqtt (the mqtt extra): said before anything starts."""
    import importlib.util

    if any(s.kind == "mqtt" for s in specs) and importlib.util.find_spec("paho") is None:
        raise ConfigError("an mqtt:// source needs paho-mqtt: pip install 'han-logger[mqtt]'")
    return specs


def _shown(url: str) -> str:
    """A source URL for a message, without its password."""
    import re

    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _sinks(overrides: Overrides, data: Mapping[str, Any], config_path: str | None) -> tuple[SinkSpec, ...]:
    """The command line's sinks, else the file's [[sink]] and [sinks.<name>] tables."""
    if overrides.sinks:
        return tuple(SinkSpec(url) for url in overrides.sinks)
    sinks: list[SinkSpec] = []
    entries = data.get("sink", []) or []
    if not isinstance(entries, list):
        raise ConfigError(f'{config_path}: each [[sink]] needs url = "SCHEME:TARGET"')
    for entry in entries:
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
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{config_path}: [sinks.{label}] enabled must be true or false, got {enabled!r}")
        if not enabled:
            continue
        sinks.append(SinkSpec(entry["url"], {k: v for k, v in entry.items() if k not in ("url", "enabled")}))
    return tuple(sinks)


def _decode_settings(v: _Values, config_path: str | None) -> dict[str, Any]:
    """[decode] and its flags through :func:`decode_options`; profile files in the file are relative to it."""
    multipliers = v["multipliers"] or {}
    if isinstance(multipliers, Mapping):  # the file's table; the command line gives OBIS=FACTOR texts
        multipliers = [f"{obis}={factor}" for obis, factor in multipliers.items()]
    files = v.cli.get("profiles") or []
    if not files:
        base = os.path.dirname(os.path.abspath(config_path)) if config_path else ""
        files = [os.path.join(base, os.path.expanduser(f)) for f in v["profiles"] or []]
    return decode_options(
        country=v["country"],
        timezone=v["timezone"],
        profile=v["profile"],
        profile_files=files,
        multipliers=multipliers,
        ct_ratio=v["ct_ratio"],
        labels={name: v.label(name) for name in ("country", "timezone", "profile", "multipliers", "ct_ratio")},
    )


def decode_options(
    *,
    country: str | None = None,
    timezone: str | None = None,
    profile: str | None = None,
    profile_files: Iterable[str] = (),
    multipliers: Iterable[str] = (),
    ct_ratio: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> InterpretOptions:
    """Country, time zone, profiles, multipliers and CT ratio, checked, as ``han decode`` and ``han run`` take them.

    ``multipliers`` are "OBIS=FACTOR" texts.  Raises ConfigError in one line, naming the
    setting by ``labels`` (setting name -> e.g. "han.toml: [decode] country"; default its flag).
    """
    label = {"country": "--country", "timezone": "--timezone", "profile": "--profile",
             "multipliers": "--multiplier", "ct_ratio": "--ct-ratio", **(labels or {})}  # fmt: skip
    from obis.code import Obis, ObisError
    from obis.interpret import InterpretOptions
    from obis.profiles import ISO_3166, catalogue, profile_by_name

    code = None
    if country:
        code = country.strip().upper()
        if code not in ISO_3166:
            raise ConfigError(f"{label['country']} {country!r} is not an ISO 3166 alpha-2 code (NO, SE, DK, AT, ...)")
    zone = None
    if timezone:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(timezone)
        except (ValueError, OSError, KeyError):
            raise ConfigError(f"{label['timezone']} {timezone!r} is not a known time zone (e.g. Europe/Oslo, UTC)") from None
        zone = timezone
    profiles = None
    files = list(profile_files)
    if files:
        from obis.profile_file import ProfileFileError, load_profiles

        try:
            profiles = catalogue(load_profiles(files))
        except ProfileFileError as exc:
            raise ConfigError(str(exc)) from None
    chosen = None
    if profile:
        chosen = profile_by_name(profile, profiles)
        if chosen is None:
            names = ", ".join(p.name for p in profiles or catalogue())
            raise ConfigError(f"{label['profile']}: unknown profile {profile!r} (one of: {names}; see 'han profiles')")
    factors = {}
    for text in multipliers:
        obis_text, sep, factor_text = text.partition("=")
        try:
            if not sep:
                raise ValueError
            obis = Obis.parse(obis_text)
            factor = float(factor_text)
        except (ObisError, ValueError):
            raise ConfigError(f"{label['multipliers']} {text!r}: expected OBIS=FACTOR, e.g. 1.1.31.7.0.255=50") from None
        factors[obis] = factor
    ratio = None
    if ct_ratio:
        try:
            num, sep, den = ct_ratio.replace(":", "/").partition("/")
            ratio = float(num) / (float(den) if sep else 1.0)
            if ratio <= 0:
                raise ValueError
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"{label['ct_ratio']} {ct_ratio!r}: expected a positive ratio such as 200/5 or 40") from None
    return InterpretOptions(
        country=code, timezone=zone, profile=chosen, multipliers=factors, ct_ratio=ratio, profiles=profiles
    )


# -- state directory ---------------------------------------------------------------------------
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
