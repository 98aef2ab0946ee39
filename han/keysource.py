"""Keys from wherever a user keeps them: one loader for every command and the daemon.

Places, highest precedence first::

    command line     --key, --auth-key, --dedicated-key, --broadcast-key (visible in ps: the last resort)
    environment      HAN_KEY, HAN_AUTH_KEY
    systemd          $CREDENTIALS_DIRECTORY/han-key, han-auth-key, han-keys (a key file)
    key file         [keys] file = "keys.toml" in the config (relative to it)
    config file      its own [keys] table

A key is hex, 16 or 32 bytes, written as :func:`han.inputs.parse_hex` reads
it.  A file that holds keys must not be readable by others (``chmod 600``; a
group such as ``root:han`` may read it): the loader refuses it otherwise.
Keys never appear in messages: an error names the flag, variable or file and
the length, never the value.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from decoders.ciphering.security import Keys

from .inputs import InputError, parse_hex
from .keyring import KeyRing
from .settings import ConfigError, read_toml

#: command-line flag -> the Keys field it sets
FLAGS = {"--key": "ek", "--auth-key": "ak", "--dedicated-key": "dedicated", "--broadcast-key": "broadcast"}
#: TOML name (key files, credentials, the config's [keys]) -> Keys field
TOML_NAMES = {"key": "ek", "auth_key": "ak"}
ENVIRONMENT = {"ek": "HAN_KEY", "ak": "HAN_AUTH_KEY"}
CREDENTIALS = {"ek": "han-key", "ak": "han-auth-key"}
CREDENTIAL_RING = "han-keys"
#: the settings of the config's [keys] table
KEYS_TABLE = frozenset({*TOML_NAMES, "file", "meters"})


def parse_key(text: str, where: str) -> bytes:
    """A key given as hex (16 or 32 bytes).  The message names ``where``, never the key."""
    try:
        key = parse_hex(text)
    except InputError:
        raise ConfigError(f"{where} is not valid hex") from None
    if len(key) not in (16, 32):
        raise ConfigError(f"{where} must be 16 or 32 bytes (32 or 64 hex digits), got {len(key)} bytes")
    return key


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


def holds_keys(table: Mapping[str, Any]) -> bool:
    """Whether a config's [keys] table holds key material (then the file must be private)."""
    return bool(table.get("key") or table.get("auth_key") or table.get("meters"))


@dataclass
class _Texts:
    """Hex texts with the place each came from (for messages), before parsing; the first place wins."""

    default: dict[str, tuple[str, str]] = field(default_factory=dict)  #: Keys field -> (text, where)
    meters: dict[str, tuple[dict[str, str], str]] = field(default_factory=dict)

    def give(self, name: str, text: Any, where: str) -> None:
        if text and name not in self.default:
            if not isinstance(text, str):
                raise ConfigError(f"{where} must be a hex string")
            self.default[name] = (text, where)

    def take(self, table: Mapping[str, Any], where: str) -> None:
        """Fill what is still empty from a keys table (lower precedence than what is set)."""
        for toml_name, name in TOML_NAMES.items():
            self.give(name, table.get(toml_name), f"{where} {toml_name}")
        meters = table.get("meters") or {}
        if not isinstance(meters, Mapping):
            raise ConfigError(f"{where}: [meters] must be a table keyed by system title")
        for st, keys in meters.items():
            if not isinstance(keys, Mapping) or set(keys) - set(TOML_NAMES):
                raise ConfigError(f"{where}: meters.{st} must hold key and auth_key")
            self.meters.setdefault(st.upper(), (dict(keys), f"{where} meters.{st}"))

    def keyring(self) -> KeyRing:
        meters: dict[bytes, Keys] = {}
        for st_text, (keys, where) in self.meters.items():
            try:
                st = parse_hex(st_text)
            except InputError:
                st = b""
            if len(st) != 8:
                raise ConfigError(f"{where}: a meter is keyed by its 8-byte system title in hex (16 digits)")
            meters[st] = Keys(**{
                name: parse_key(keys[toml_name], f"{where} {toml_name}")
                for toml_name, name in TOML_NAMES.items() if keys.get(toml_name)
            })  # fmt: skip
        default = Keys(**{name: parse_key(text, where) for name, (text, where) in self.default.items()})
        return KeyRing(default, meters)


def load_keys(
    flags: Mapping[str, str | None] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    environment: bool = True,
    credentials: bool = False,
    config_keys: Mapping[str, Any] | None = None,
    config_path: str | None = None,
    files: tuple[str, ...] = (),
) -> KeyRing:
    """The keys from every place, in order of precedence (see the module's docstring).

    ``flags``: option -> text as typed (``{"--key": args.key}``; None = not given).
    ``environment``: read HAN_KEY / HAN_AUTH_KEY; ``credentials``: read systemd's credentials
    (``han run``).  ``config_keys`` is the config file's [keys] table, ``config_path`` its file.
    Raises ConfigError, in one line that never shows a key.
    """
    env = os.environ if environ is None else environ
    texts = _Texts()
    for flag, text in (flags or {}).items():
        texts.give(FLAGS[flag], text, flag)
    if environment:
        for name, var in ENVIRONMENT.items():
            texts.give(name, env.get(var), f"{var} in the environment")
    cred_dir = env.get("CREDENTIALS_DIRECTORY") if credentials else None
    if cred_dir:
        for name, cred in CREDENTIALS.items():
            path = os.path.join(cred_dir, cred)
            if os.path.isfile(path):
                check_private(path)
                with open(path, encoding="ascii", errors="replace") as fh:
                    texts.give(name, fh.read().strip(), f"credential {path}")
        ring_file = os.path.join(cred_dir, CREDENTIAL_RING)
        if os.path.isfile(ring_file):
            texts.take(key_file(ring_file), ring_file)
    for path in files:  # --keys FILE: before the config's own key file and table
        texts.take(key_file(path, owner_only=True), path)
    config_keys = config_keys or {}
    path = config_keys.get("file")
    if path:
        if not isinstance(path, str):
            raise ConfigError(f'{config_path or "config"}: [keys] file must be a file name in quotes')
        if config_path and not os.path.isabs(path):
            path = os.path.join(os.path.dirname(os.path.abspath(config_path)), path)
        texts.take(key_file(path), path)
    if config_keys:
        texts.take(config_keys, config_path or "config")
    return texts.keyring()


def check_owner_only(path: str, what: str = "holds keys") -> None:
    """Refuse a file that anybody but its owner may read or write (``--keys FILE``: chmod 600)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(
            f"{path} {what} but others may read it (mode {stat.S_IMODE(mode):03o}); it must be readable by its"
            f" owner only: chmod 600 {path}"
        )


def topic_table(path: str) -> dict[str, dict[str, Any]]:
    """The ``[topics."<topic>"]`` tables of a key file: per stream, ``meter`` and ``system_title`` (plain meters)."""
    table = key_file(path)
    topics = table.get("topics") or {}
    if not isinstance(topics, Mapping):
        raise ConfigError(f'{path}: [topics."<topic>"] tables, e.g. [topics."han/raw/flat12"] with meter = "flat12"')
    out = {}
    for topic, entry in topics.items():
        if not isinstance(entry, Mapping) or set(entry) - {"meter", "system_title"}:
            raise ConfigError(f'{path}: topics."{topic}" holds meter = "NAME" and system_title = "HEX" only')
        out[str(topic)] = dict(entry)
    return out


def key_file(path: str, *, owner_only: bool = False) -> dict[str, Any]:
    """A key file's table: a bare table, or one that holds [keys].  The file must be private."""
    if owner_only:
        check_owner_only(path)
    check_private(path)
    data = read_toml(path)
    table = data.get("keys", data)
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: [keys] must be a table")
    unknown = set(table) - set(TOML_NAMES) - {"meters", "topics"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {sorted(unknown)[0]!r}; a key file holds key, auth_key, [meters.<system title>],"
            ' [topics."<topic>"]'
        )
    return table
