"""``[[source]]`` tables, ``--source`` and ``--keys`` in the configuration: checked in one line naming the setting."""

from __future__ import annotations

import os

import pytest

from han.config import Overrides, build_run_config
from han.settings import ConfigError


def config(tmp_path, text: str) -> str:
    path = tmp_path / "han.toml"
    path.write_text(text)
    return str(path)


def test_source_tables_in_the_file(tmp_path):
    pw = tmp_path / "mqtt-password"
    pw.write_text("pw-from-file\n")
    pw.chmod(0o600)
    path = config(tmp_path, f'''
state_dir = "{tmp_path / 'state'}"
[[source]]
url = "mqtt://worker@broker.example/han/raw/#"
share = "headend"
format = "hex"
password_file = "{pw}"
[[source]]
url = "socket://192.168.1.20:3001"
''')
    cfg = build_run_config(Overrides(config=path), environ={})
    mqtt, sock = cfg.sources
    assert (mqtt.kind, mqtt.topic, mqtt.share, mqtt.format, mqtt.username) == (
        "mqtt", "han/raw/#", "headend", "hex", "worker")
    assert mqtt.password == "pw-from-file" and "pw-from-file" not in repr(mqtt) + mqtt.describe()
    assert (sock.kind, sock.host, sock.port) == ("socket", "192.168.1.20", 3001)


def test_the_command_line_sources_replace_the_file_and_a_password_from_the_environment(tmp_path):
    path = config(tmp_path, '[[source]]\nurl = "/dev/ttyUSB9"\n')
    cfg = build_run_config(
        Overrides(config=path, sources=("mqtt://u@h/t/+?password_env=HEADEND_PW",)), environ={"HEADEND_PW": "x1"}
    )
    (spec,) = cfg.sources
    assert spec.kind == "mqtt" and spec.password == "x1"


@pytest.mark.parametrize(
    "table, text",
    [
        ('url = "mqtt://h/t"\nshare = "a/b"', "[[source]] number 1: share 'a/b'"),
        ('url = "mqtt://h/t"\nlevel = 3', "[[source]] number 1: unknown option 'level'"),
        ('url = "mqtt://h/t"\npassword_env = "NOPE"', "password_env NOPE: no such variable"),
        ('url = "socket://h:1"\nshare = "g"', "unknown option 'share'"),
        ("share = 'g'", "[[source]] number 1 needs url"),
        ('url = "mqtts://h/t"\ncert = "/nonexistent.pem"', "cert '/nonexistent.pem': no such file"),
    ],
)
def test_a_wrong_source_table_is_one_line_naming_it(tmp_path, table, text):
    path = config(tmp_path, f"[[source]]\n{table}\n")
    with pytest.raises(ConfigError) as err:
        build_run_config(Overrides(config=path), environ={})
    assert text in str(err.value) and "\n" not in str(err.value)


def test_a_password_file_others_may_read_is_refused(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x")
    pw.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        build_run_config(Overrides(sources=(f"mqtt://u@h/t?password_file={pw}",)), environ={})


def test_keys_file_meters_and_topics(tmp_path):
    keys = tmp_path / "meters.toml"
    fd = os.open(keys, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            '[meters.4B414D4501A4DC52]\nkey = "' + "ab" * 16 + '"\n'
            '[topics."han/raw/flat12"]\nmeter = "flat12"\nsystem_title = "4B414D4501A4DC53"\n'
        )
    cfg = build_run_config(Overrides(sources=("mqtt://h/han/raw/+",), keys_file=str(keys)), environ={})
    assert list(cfg.keyring.meters) == [bytes.fromhex("4B414D4501A4DC52")]
    topic = cfg.topics["han/raw/flat12"]
    assert topic.meter == "flat12" and topic.system_title == bytes.fromhex("4B414D4501A4DC53")
    keys.chmod(0o640)  # group-readable: refused for --keys (owner only)
    with pytest.raises(ConfigError, match="readable by its owner only"):
        build_run_config(Overrides(sources=("mqtt://h/t",), keys_file=str(keys)), environ={})
