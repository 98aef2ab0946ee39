"""The bridge's spool on disk (order, cursor, torn records, one user) and its target URL's checks."""

from __future__ import annotations

import os

import pytest

from han.bridge import parse_target
from han.settings import ConfigError
from han.spool import Spool, SpoolError


def test_records_come_back_in_order_across_reopening_and_the_cursor_holds(tmp_path):
    s = Spool(str(tmp_path), max_bytes=64 * 1024)
    for i in range(300):
        s.append(b"frame %d" % i)
    s.ack(120)
    s.close()
    s = Spool(str(tmp_path), max_bytes=64 * 1024)
    assert s.pending == 180
    got = s.peek(1000)
    assert [n for n, _ in got] == list(range(121, 301))
    assert got[0][1] == b"frame 120" and got[-1][1] == b"frame 299"
    s.ack(300)
    assert s.pending == 0 and s.peek(5) == []
    s.close()


def test_a_torn_last_record_is_cut_off_and_a_bad_cursor_resends_rather_than_loses(tmp_path):
    s = Spool(str(tmp_path), max_bytes=64 * 1024)
    for i in range(5):
        s.append(b"r%d" % i)
    s.ack(2)
    s.close()
    seg = sorted(n for n in os.listdir(tmp_path) if n.startswith("seg-"))[-1]
    with open(tmp_path / seg, "ab") as fh:
        fh.write(b"\x00\x00\x00\x20half a rec")  # the power went mid-write
    s = Spool(str(tmp_path), max_bytes=64 * 1024)
    assert [p for _, p in s.peek(10)] == [b"r2", b"r3", b"r4"]
    assert s.append(b"r5") == 6
    s.close()
    with open(tmp_path / "cursor", "r+b") as fh:
        fh.write(b"\xff")
    s = Spool(str(tmp_path), max_bytes=64 * 1024)
    assert [p for _, p in s.peek(10)] == [b"r0", b"r1", b"r2", b"r3", b"r4", b"r5"]  # sent again, never lost
    s.close()


def test_one_bridge_per_spool(tmp_path):
    s = Spool(str(tmp_path))
    with pytest.raises(SpoolError, match="in use by another han bridge"):
        Spool(str(tmp_path))
    s.close()


def test_target_url(tmp_path, monkeypatch):
    t = parse_target("mqtt://127.0.0.1:1884/han/raw/flat-12")
    assert (t.host, t.port, t.topic, t.format, t.tls) == ("127.0.0.1", 1884, "han/raw/flat-12", "binary", False)
    assert parse_target("mqtts://broker/han/raw/a", format="hex").port == 8883
    monkeypatch.setenv("HAN_MQTT_PASSWORD", "pw-from-env")
    t = parse_target("mqtt://bridge@broker/han/raw/a")
    assert t.user == "bridge" and t.password == "pw-from-env" and "pw-from-env" not in repr(t) + t.describe()
    for url, says in [
        ("http://broker/x", "give an MQTT URL"),
        ("mqtt://broker:1883", "give the topic"),
        ("mqtt://broker/han/raw/+", "no wildcards"),
        ("mqtt://u:hunter2@broker/a?format=json", "format .json.: one of binary, hex"),
        ("mqtts://broker/a?ca=/x", "no such file"),
        ("mqtt://broker/a?qos=0", "QoS 1"),
        ("mqtt://broker/a?retain=1", "unknown option .retain."),
    ]:
        with pytest.raises(ConfigError, match=says) as err:
            parse_target(url)
        assert "hunter2" not in str(err.value)
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ConfigError, match="use mqtts://"):
        parse_target(f"mqtt://broker/a?ca={ca}")
