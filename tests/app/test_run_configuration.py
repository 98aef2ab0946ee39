"""``han run`` configuration: TOML, presets, flags over the file, keys from safe places only."""

from __future__ import annotations

import os
import re

import pytest
from conftest import ROOT
from daemonkit import AK, EK

from han.config import ConfigError, Overrides, build_run_config, check_private, default_state_dir
from han.keysource import load_keys
from han.settings import DEFAULTS, SETTINGS, preset_text

ST = "4B414D4500000002"


def args(config: str | None = None, key: str | None = None, **settings) -> Overrides:
    """What ``han run`` hands over: the file, flags by setting name, keys by flag."""
    return Overrides(config=config, settings=settings, keys={"--key": key})


def private(path, text: str):
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


def test_sample_config_parses():
    cfg = build_run_config(args(config=str(ROOT / "samples" / "han.toml")), environ={})
    assert cfg.serial.port == "/dev/ttyUSB0" and cfg.serial.describe() == "2400 8N1"
    assert cfg.push_interval == 10 and cfg.spool_max_pushes == 100_000
    assert cfg.keyring.empty


def test_presets_and_flags_over_the_file(tmp_path):
    conf = private(
        tmp_path / "han.toml", '[serial]\nport = "/dev/ttyAMA0"\npreset = "mbus"\n[daemon]\nstate_dir = "st"\n'
    )
    cfg = build_run_config(args(config=conf), environ={})
    assert cfg.serial.describe() == "2400 8E1" and cfg.state_dir == os.path.abspath("st")
    cfg = build_run_config(args(config=conf, port="socket://10.0.0.2:3001", baud=9600, parity="n"), environ={})
    assert cfg.serial.port == "socket://10.0.0.2:3001" and cfg.serial.describe() == "9600 8N1"
    cfg = build_run_config(args(port="/dev/x", preset="p1"), environ={"XDG_STATE_HOME": "/xdg"})
    assert cfg.serial.describe() == "115200 8N1" and cfg.state_dir == "/xdg/han"
    assert cfg.sink_specs()[0].url == "sqlite:/xdg/han/han.db"  # the embedded default
    cfg = build_run_config(args(port="/dev/x", preset="dsmr22"), environ={})
    assert cfg.serial.describe() == "9600 7E1"  # DSMR 2.2 and 3.0 P1 ports
    assert (cfg.serial.baudrate, cfg.serial.bytesize, cfg.serial.parity, cfg.serial.stopbits) == (9600, 7, "E", 1)
    assert default_state_dir({"STATE_DIRECTORY": "/var/lib/han"}) == "/var/lib/han"


@pytest.mark.parametrize(
    "text, message",
    [
        ('[serial]\nport = "/dev/x"\nbaudrate = 2400\n', "unknown setting \\[serial\\] 'baudrate'"),
        ('[serial]\nport = "/dev/x"\npreset = "fast"\n', "unknown \\[serial\\] preset 'fast'"),
        ('[serial]\nport = "/dev/x"\n[[sink]]\npath = "x"\n', "needs url"),
        ('port = "/dev/x"\n', "unknown setting 'port'"),
        ("[serial\n", "not valid TOML"),
    ],
)
def test_config_mistakes_are_named(tmp_path, text, message):
    conf = private(tmp_path / "han.toml", text)
    with pytest.raises(ConfigError, match=message):
        build_run_config(args(config=conf), environ={})


def test_keys_precedence_and_meters(tmp_path):
    keyfile = private(
        tmp_path / "keys.toml",
        f'key = "{"11" * 16}"\nauth_key = "{"22" * 16}"\n[meters.{ST}]\nkey = "{"33" * 16}"\nauth_key = "{"44" * 16}"\n',
    )
    conf = private(
        tmp_path / "han.toml", f'[serial]\nport = "/dev/x"\n[keys]\nfile = "keys.toml"\nkey = "{"55" * 16}"\n'
    )
    ring = build_run_config(args(config=conf), environ={}).keyring
    assert ring.default.ek == bytes.fromhex("11" * 16)  # the key file wins over the config's own [keys]
    assert ring.keys_for(bytes.fromhex(ST)).ek == bytes.fromhex("33" * 16)
    assert ring.keys_for(b"KAME\0\0\0\1").ek == bytes.fromhex("11" * 16)
    ring = build_run_config(args(config=conf), environ={"HAN_KEY": EK.hex()}).keyring
    assert ring.default.ek == EK and ring.default.ak == bytes.fromhex("22" * 16)
    ring = build_run_config(args(config=conf, key=AK.hex()), environ={"HAN_KEY": EK.hex()}).keyring
    assert ring.default.ek == AK
    assert keyfile and ring.key_id(bytes.fromhex(ST)) != ring.key_id(None)
    assert EK.hex() not in repr(ring).lower()


def test_systemd_credentials(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    private(creds / "han-key", EK.hex() + "\n")
    private(creds / "han-auth-key", AK.hex())
    ring = load_keys(environ={"CREDENTIALS_DIRECTORY": str(creds)}, credentials=True)
    assert ring.default.ek == EK and ring.default.ak == AK
    (creds / "han-key").unlink()
    (creds / "han-auth-key").unlink()
    private(creds / "han-keys", f'[keys]\nkey = "{EK.hex()}"\n[keys.meters.{ST}]\nkey = "{AK.hex()}"\n')
    ring = load_keys(environ={"CREDENTIALS_DIRECTORY": str(creds)}, credentials=True)
    assert ring.default.ek == EK and ring.keys_for(bytes.fromhex(ST)).ek == AK


def test_files_with_keys_must_be_private(tmp_path):
    conf = tmp_path / "han.toml"
    conf.write_text(f'[serial]\nport = "/dev/x"\n[keys]\nkey = "{EK.hex()}"\n')
    os.chmod(conf, 0o644)
    with pytest.raises(ConfigError) as err:
        build_run_config(args(config=str(conf)), environ={})
    msg = str(err.value)
    assert "readable by others (mode 644)" in msg and f"chmod 600 {conf}" in msg and EK.hex() not in msg.lower()
    os.chmod(conf, 0o640)  # a group (e.g. root:han) may read it
    build_run_config(args(config=str(conf)), environ={})
    # a config without keys may be world-readable
    plain = tmp_path / "plain.toml"
    plain.write_text('[serial]\nport = "/dev/x"\n')
    os.chmod(plain, 0o644)
    build_run_config(args(config=str(plain)), environ={})
    check_private(str(conf))


def test_bad_key_messages_never_show_the_key(tmp_path):
    bad = "ZZ" + EK.hex()[2:]
    with pytest.raises(ConfigError) as err:
        load_keys(environ={"HAN_KEY": bad})
    assert "HAN_KEY" in str(err.value) and bad.lower() not in str(err.value).lower()
    with pytest.raises(ConfigError, match="16 or 32 bytes"):
        load_keys({"--key": EK.hex()[:-2]})
    conf = private(tmp_path / "han.toml", f'[serial]\nport = "/dev/x"\n[keys.meters.ABCD]\nkey = "{EK.hex()}"\n')
    with pytest.raises(ConfigError, match="8-byte system title"):
        build_run_config(args(config=conf), environ={})


def test_decode_options_as_han_decode_takes_them(tmp_path):
    conf = private(
        tmp_path / "han.toml",
        '[serial]\nport = "/dev/x"\n[decode]\ncountry = "dk"\ntimezone = "Europe/Oslo"\nct_ratio = "200/5"\n'
        '[decode.multipliers]\n"1.1.31.7.0.255" = 2\n',
    )
    opts = build_run_config(args(config=conf), environ={}).decode_options
    assert opts.country == "DK" and opts.timezone == "Europe/Oslo" and opts.ct_ratio == 40.0
    assert list(opts.multipliers.values()) == [2.0]
    opts = build_run_config(args(config=conf, profile="kamstrup_dk", multipliers=[]), environ={}).decode_options
    assert opts.profile.name == "kamstrup_dk" and opts.multipliers == {}
    bad = private(tmp_path / "bad.toml", '[serial]\nport = "/dev/x"\n[decode]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        build_run_config(args(config=bad), environ={})


def _wrong(setting):
    """A value of the wrong type, or out of range, for a setting."""
    if setting.kind in ("int", "number"):
        return '"ten"' if setting.minimum is None else "-1"
    if setting.kind == "ratio":
        return "true"
    return "42" if setting.kind in ("text", "texts", "table") else '"yes"'


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"{s.section}.{s.name}")
def test_every_setting_is_checked_when_loaded(tmp_path, setting):
    line = f"{setting.name} = {_wrong(setting)}\n"
    if setting.section == "serial":
        text = "[serial]\n" + line + ('port = "/dev/x"\n' if setting.name != "port" else "")
    else:
        text = f'[serial]\nport = "/dev/x"\n[{setting.section}]\n' + line
    conf = private(tmp_path / "han.toml", text)
    with pytest.raises(ConfigError) as err:
        build_run_config(args(config=conf), environ={})
    message = str(err.value)
    assert f"[{setting.section}] {setting.name}" in message and len(message.splitlines()) == 1, message


def test_flags_are_checked_like_the_file():
    with pytest.raises(ConfigError, match="^--push-interval must not be negative$"):
        build_run_config(args(port="/dev/x", push_interval=-1.0), environ={})
    with pytest.raises(ConfigError, match="^--baud must be at least 1$"):
        build_run_config(args(port="/dev/x", baud=0), environ={})


def test_defaults_are_written_once():
    """RunConfig, --help and samples/han.toml take their defaults from the settings table."""
    import tomllib

    from han.config import RunConfig, SerialSettings

    cfg = RunConfig(state_dir="/x")
    for name in ("idle_flush", "retry_min", "retry_max", "status_interval", "spool_max_pushes", "stop_timeout"):
        assert getattr(cfg, name) == DEFAULTS[name]
    assert SerialSettings().describe() == preset_text(DEFAULTS["preset"])
    sample = tomllib.loads((ROOT / "samples" / "han.toml").read_text())
    for section in ("serial", "daemon"):
        for name, value in sample[section].items():
            if DEFAULTS.get(name) is not None:
                assert value == DEFAULTS[name], f"samples/han.toml [{section}] {name} = {value} is not the default"
    commented = re.findall(r"^# (\w+) = (\S+)", (ROOT / "samples" / "han.toml").read_text(), re.M)
    for name, value in commented:
        if name in DEFAULTS and isinstance(DEFAULTS[name], bool):
            assert value == str(DEFAULTS[name]).lower(), name


def test_run_help_shows_the_defaults(capsys):
    from han.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"(default {DEFAULTS['status_interval']:g})" in out and f"(default {DEFAULTS['transport']})" in out
    assert f"default {DEFAULTS['preset']}: {preset_text(DEFAULTS['preset'])}" in out


def test_key_files_and_credentials_must_be_private_and_never_shown(tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text(f'key = "{EK.hex()[:-2]}"\n')
    os.chmod(keys, 0o604)
    conf = private(tmp_path / "han.toml", '[serial]\nport = "/dev/x"\n[keys]\nfile = "keys.toml"\n')
    with pytest.raises(ConfigError, match="readable by others"):
        build_run_config(args(config=conf), environ={})
    os.chmod(keys, 0o600)
    with pytest.raises(ConfigError) as err:
        build_run_config(args(config=conf), environ={})
    assert "keys.toml key must be 16 or 32 bytes" in str(err.value) and EK.hex()[:-2] not in str(err.value).lower()
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "han-key").write_text(EK.hex())
    os.chmod(creds / "han-key", 0o644)
    with pytest.raises(ConfigError, match="han-key holds keys but is readable by others"):
        load_keys(environ={"CREDENTIALS_DIRECTORY": str(creds)}, credentials=True)


def test_the_file_is_checked_even_where_a_flag_wins(tmp_path):
    """A wrong value in the file is a mistake although the command line overrides it."""
    conf = private(tmp_path / "han.toml", '[serial]\nport = "/dev/x"\nbaud = "fast"\n')
    with pytest.raises(ConfigError, match=r"\[serial\] baud must be a whole number, got 'fast'$"):
        build_run_config(args(config=conf, baud=9600), environ={})
    conf = private(tmp_path / "top.toml", 'state_dir = 5\n[serial]\nport = "/dev/x"\n')
    with pytest.raises(ConfigError, match="state_dir must be a directory name"):
        build_run_config(args(config=conf, state_dir="/tmp/st"), environ={})


@pytest.mark.parametrize(
    "text, message",
    [
        ('[decode]\ncountry = "XX"\n', r"han.toml: \[decode\] country 'XX' is not an ISO 3166"),
        ('[decode]\nprofile = "nope"\n', r"han.toml: \[decode\] profile: unknown profile 'nope'"),
        ('[decode]\nct_ratio = "0/5"\n', r"han.toml: \[decode\] ct_ratio '0/5': expected a positive ratio"),
        ('[decode]\nsystem_title = "ABCD"\n', r"han.toml: \[decode\] system_title must be 8 bytes"),
        ('[sinks.a]\nurl = "jsonl:/tmp/a.jsonl"\nenabled = "no"\n', r"\[sinks.a\] enabled must be true or false"),
        ("[daemon]\nstatus_interval = 0\n", r"\[daemon\] status_interval must be at least 0.01"),
        ("[daemon]\nsink_retry_max = 0\n", r"\[daemon\] sink_retry_max must be at least 0.01"),
    ],
)
def test_values_are_named_by_their_place_in_the_file(tmp_path, text, message):
    conf = private(tmp_path / "han.toml", '[serial]\nport = "/dev/x"\n' + text)
    with pytest.raises(ConfigError, match=message) as err:
        build_run_config(args(config=conf), environ={})
    assert len(str(err.value).splitlines()) == 1


def test_flags_are_named_by_their_flag():
    with pytest.raises(ConfigError, match="^--country 'XX' is not"):
        build_run_config(args(port="/dev/x", country="XX"), environ={})
    with pytest.raises(ConfigError, match="^--status-interval must be at least 0.01$"):
        build_run_config(args(port="/dev/x", status_interval=0.0), environ={})


@pytest.mark.parametrize(
    "options, message",
    [
        ({"fsync": "yes"}, "jsonl sink: option fsync must be true or false, got 'yes'"),
        ({"fsynk": True}, "jsonl sink: unknown option 'fsynk'; it takes fsync"),
    ],
)
def test_sink_options_are_checked(options, message):
    from sinks.base import SinkError, create_sink

    with pytest.raises(SinkError, match=re.escape(message)):
        create_sink("jsonl:/tmp/never-written.jsonl", **options)


def test_sink_option_kinds():
    from sinks.base import SinkError, create_sink

    with pytest.raises(SinkError, match="option busy_timeout must be a number, got True"):
        create_sink("sqlite:/tmp/never.db", busy_timeout=True)
    with pytest.raises(SinkError, match="option qos must be a whole number, got 'x'"):
        create_sink("mqtt://127.0.0.1", qos="x")
    assert create_sink("sqlite:/tmp/never.db", busy_timeout=2).target == "/tmp/never.db"  # an int is a number
