"""Every setting of ``han run`` once: its TOML place, type, range, default, flag and help.

The table is the one place a default is written.  :mod:`han.config` reads it
to check and merge the file, the environment and the command line;
``han run --help`` takes its flags and help texts from it; ``samples/han.toml``
documents the same values (a test holds them equal).  A value is checked
for type and range when it is loaded, with one line naming the setting.

This module is light (no decoders, no argparse): the command line's
start-up imports it.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)

if TYPE_CHECKING:
    from typing import Any


class ConfigError(Exception):
    """A configuration problem, in one line (exit status 2)."""


#: serial presets: name -> (baud, parity, bytesize, stopbits)
PRESETS: dict[str, tuple[int, str, int, float]] = {
    "kamstrup-ccc": (2400, "N", 8, 1),  # Kamstrup OMNIPOWER CCC port, RS232 (the default)
    "mbus": (2400, "E", 8, 1),  # M-Bus HAN adapters (Norway, Sweden; Kamstrup HAN-NVE)
    "p1": (115200, "N", 8, 1),  # P1 ports: DSMR 4/5 (NL), e-MUCS (BE), Luxembourg, the Swedish HAN port
    "dsmr22": (9600, "E", 7, 1),  # old Dutch P1 ports: DSMR 2.2 and 3.0
}
#: presets whose ports speak one link layer: the transport they imply unless one is set
PRESET_TRANSPORT: dict[str, str] = {"p1": "p1", "dsmr22": "p1"}
PARITIES = {"N": "none", "E": "even", "O": "odd", "M": "mark", "S": "space"}

#: kinds: text, int, number (int or float), bool, texts (one text or a list), table, ratio (text or number)
_KINDS = {"text", "int", "number", "bool", "texts", "table", "ratio"}


_FIELDS = ("section", "name", "kind", "default", "help", "flag", "metavar", "minimum", "choices", "normalize",
           "choices_hint")


class Setting(namedtuple("_Setting", _FIELDS, defaults=(None, "", None, None, None, (), None, ""))):
    """One setting: an immutable record (a named tuple, not a dataclass: the command line's start-up imports
    this module, and dataclasses costs it more than the whole of argparse).

    ``section``: the TOML table ("" = the command line only); ``name``: the TOML key, and the key of the
    command line's overrides; ``kind``: text, int, number, bool, texts, table or ratio; ``flag``/``metavar``:
    the ``han run`` option and its value in ``--help``; ``minimum``; ``choices``: the values allowed, or a
    function that gives them (imported only when a value is checked); ``normalize``: turns a checked value
    into its stored form (parity "even" -> "E"); ``choices_hint``: the message when ``choices`` do not hold
    the value (default: "unknown ...; known: ...").
    """

    __slots__ = ()

    section: str
    name: str
    kind: str
    default: Any
    help: str
    flag: str | None
    metavar: str | None
    minimum: float | None
    choices: tuple | Callable[[], tuple]
    normalize: Callable[[Any], Any] | None
    choices_hint: str

    def label(self, from_flag: bool) -> str:
        if from_flag and self.flag:
            return self.flag
        return f"[{self.section}] {self.name}" if self.section else self.name

    def check(self, value: Any, *, from_flag: bool = False, where: str = "") -> Any:
        """The value, checked for type and range; ConfigError names the setting in one line."""
        label = self.label(from_flag)
        prefix = f"{where}: " if where and not from_flag else ""

        def fail(text: str) -> ConfigError:
            return ConfigError(f"{prefix}{label} {text}")

        kind = self.kind
        if kind in ("int", "number"):
            ok = isinstance(value, int) or (kind == "number" and isinstance(value, float))
            if isinstance(value, bool) or not ok:
                what = "a whole number" if kind == "int" else "a number"
                raise fail(f"must be {what}, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise fail("must not be negative" if self.minimum == 0 else f"must be at least {self.minimum:g}")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise fail(f"must be true or false, got {value!r}")
        elif kind == "text":
            if not isinstance(value, str):
                raise fail(f'must be a text in quotes, e.g. {self.name} = "...", got {value!r}')
        elif kind == "ratio":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise fail(f'must be a ratio such as "200/5" or 40, got {value!r}')
            value = str(value)
        elif kind == "texts":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise fail(f'is a file name or a list of them: "my-meter.toml"')
            value = list(value)
        elif kind == "table":
            if from_flag and isinstance(value, list):  # the command line's "OBIS=FACTOR" texts
                pass
            elif not isinstance(value, Mapping):
                raise fail('is a table: "1.1.31.7.0.255" = 50')
        if self.normalize is not None:
            value = self.normalize(value)
        choices = self.allowed()
        if choices and value not in choices:
            if self.choices_hint:
                raise fail(self.choices_hint)
            raise ConfigError(f"{prefix}unknown {label} {value!r}; known: {', '.join(map(str, choices))}")
        return value

    def allowed(self) -> tuple:
        return self.choices() if callable(self.choices) else self.choices


def preset_text(name: str) -> str:
    """A preset as people write serial settings: ``2400 8N1``."""
    baud, parity, bytesize, stopbits = PRESETS[name]
    return f"{baud} {bytesize}{parity}{stopbits:g}"


def help_text(setting: Setting) -> str:
    """The option's help with the table's default, for ``--help``."""
    default = setting.default
    if setting.name == "preset":
        return f"{setting.help} (default {default}: {preset_text(default)})"
    if default is None or isinstance(default, bool) or "default" in setting.help:
        return setting.help
    return f"{setting.help} (default {default:g})" if isinstance(default, float) else f"{setting.help} (default {default})"


def read_toml(path: str) -> dict[str, Any]:
    """A TOML file (a config or a key file), or ConfigError in one line."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _parity(value: str) -> str:
    return value.upper()[:1]


def _transports() -> tuple:
    from decoders.stream import TRANSPORTS

    return TRANSPORTS


SETTINGS: tuple[Setting, ...] = (
    # -- [serial] ---------------------------------------------------------------------------------------------
    Setting("serial", "port", "text", None, "serial device (/dev/ttyUSB0) or pyserial URL (socket://host:port)",
            flag="--port", metavar="DEVICE"),
    Setting("serial", "preset", "text", "kamstrup-ccc", "serial settings preset", flag="--preset",
            choices=tuple(PRESETS)),
    Setting("serial", "baud", "int", None, "baud rate (default: the preset's)", flag="--baud", metavar="N", minimum=1),
    Setting("serial", "parity", "text", None, "parity (default: the preset's)", flag="--parity",
            normalize=_parity, choices=tuple(PARITIES),
            choices_hint=f"must be one of {', '.join(PARITIES)} ({', '.join(PARITIES.values())})"),
    Setting("serial", "bytesize", "int", None, "data bits (default: the preset's)", flag="--bytesize",
            choices=(5, 6, 7, 8), choices_hint="must be 5, 6, 7 or 8"),
    Setting("serial", "stopbits", "number", None, "stop bits (default: the preset's)", flag="--stopbits",
            choices=(1, 1.5, 2), choices_hint="must be 1, 1.5 or 2"),
    Setting("serial", "retry_min", "number", 1.0, "first wait before reopening a lost port, doubling", minimum=0.01),
    Setting("serial", "retry_max", "number", 30.0, "longest wait between attempts to reopen the port", minimum=0.01),
    Setting("serial", "meter", "text", None,
            "the meter's name when its pushes never name it (no system title, no meter number; default unknown)",
            flag="--meter", metavar="NAME"),
    # -- [decode] ---------------------------------------------------------------------------------------------
    Setting("decode", "transport", "text", "hdlc", "link layer", flag="--transport", choices=_transports),
    Setting("decode", "system_title", "text", None, "sender system title for APDUs that carry none",
            flag="--system-title", metavar="HEX"),
    Setting("decode", "country", "text", None, "the meter's country, for country profiles", flag="--country", metavar="CC"),
    Setting("decode", "profile", "text", None, "force a meter profile", flag="--profile", metavar="NAME"),
    Setting("decode", "profiles", "texts", None, "load meter profiles from a TOML file (repeatable)",
            flag="--profiles", metavar="FILE"),
    Setting("decode", "timezone", "text", None, "the meter's time zone when its profile has none (Europe/Oslo)",
            flag="--timezone", metavar="ZONE"),
    Setting("decode", "multipliers", "table", None, "scale a register (repeatable)", flag="--multiplier", metavar="OBIS=FACTOR"),
    Setting("decode", "ct_ratio", "ratio", None, "current-transformer ratio, e.g. 200/5", flag="--ct-ratio", metavar="RATIO"),
    Setting("decode", "unverified", "bool", False,
            "decrypt without the authentication key (values marked unverified)", flag="--unverified"),
    Setting("decode", "allow_unauthenticated", "bool", False,
            "accept frames without authentication although an authentication key is set",
            flag="--allow-unauthenticated"),
    # -- [daemon] ---------------------------------------------------------------------------------------------
    Setting("daemon", "state_dir", "text", None,
            "journal, counters, checkpoints, status (default $STATE_DIRECTORY or ~/.local/state/han)",
            flag="--state-dir", metavar="DIR"),
    Setting("daemon", "push_interval", "number", None,
            "the meter's push interval for the watchdog (0: learned; default: learned)", flag="--push-interval", metavar="S",
            minimum=0),
    Setting("daemon", "idle_flush", "number", 1.0, "seconds of silence after which a partial frame is reported",
            minimum=0),
    Setting("daemon", "status_interval", "number", 5.0, "seconds between status file updates",
            flag="--status-interval", metavar="S", minimum=0.01),
    Setting("daemon", "counters_every", "number", 60.0, "seconds between saves of the invocation counters",
            minimum=0),
    Setting("daemon", "spool_max_pushes", "int", 100_000, "pushes the journal keeps for a sink that is down",
            minimum=0),
    Setting("daemon", "spool_max_age", "number", 90 * 86400.0,
            "seconds a push may wait in the journal for a sink (0 = no limit)", minimum=0),
    Setting("daemon", "stop_timeout", "number", 20.0, "seconds to deliver the backlog at SIGTERM", minimum=0),
    Setting("daemon", "unknown_max_mb", "number", 16.0,
            "megabytes of frames from meters without keys kept for han state replay-unknown (oldest dropped)",
            minimum=0),
    Setting("daemon", "sink_retry_max", "number", 60.0, "longest wait between retries of a failing sink",
            minimum=0.01),
    Setting("store", "keep_raw_days", "number", 90.0,
            "days of raw pushes (and minute power) the SQLite store keeps before its newest push; hours,"
            " days and months are kept for ever (0 = keep raw pushes for ever)",
            flag="--keep-raw", metavar="DAYS", minimum=0),
    # -- [http] -----------------------------------------------------------------------------------------------
    Setting("http", "listen", "text", None,
            "serve the live page and its API at HOST:PORT (a port alone: loopback; any other address needs a"
            " token: --http-token, HAN_HTTP_TOKEN or the credential han-http-token)",
            flag="--http", metavar="HOST:PORT"),
    Setting("http", "capacity", "text", None,
            "the capacity-tariff rule the live page shows (default: the tariff file's only rule, else the"
            " country's: no, se, be)", flag="--http-capacity", metavar="RULE"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
#: the default of every setting, by name
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
#: the settings of each TOML table ("" = the top level); [keys] is the key loader's (han.keysource)
SECTIONS: dict[str, frozenset[str]] = {
    "": frozenset({"serial", "decode", "keys", "daemon", "sink", "sinks", "source", "state_dir", "store", "http"}),
    **{sec: frozenset(s.name for s in SETTINGS if s.section == sec)
       for sec in ("serial", "decode", "daemon", "store", "http")},
}
