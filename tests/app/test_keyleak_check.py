"""The key-leak check itself: it finds a key in every form and place it claims, and fails the run."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pytest

from keyleak import Scanner

LEAKY = bytes(range(0x40, 0x50))  # not a test key of the suite: only scanned inside the inner sessions below


@pytest.mark.parametrize(
    "text",
    [
        LEAKY.hex(),
        LEAKY.hex().upper(),
        " ".join(f"{b:02X}" for b in LEAKY),
        ":".join(f"{b:02x}" for b in LEAKY),
        repr(LEAKY),
        base64.b64encode(LEAKY).decode(),
    ],
    ids=["hex", "HEX", "spaced", "colons", "repr", "base64"],
)
def test_every_text_form_is_found(text):
    s = Scanner()
    s.add("LEAKY", LEAKY)
    s.scan_text(f"han: something {text} happened", "here")
    assert [(f.key, f.where) for f in s.findings] == [("LEAKY", "here")]


def test_raw_bytes_in_a_file_are_found_and_inputs_are_skipped(tmp_path):
    s = Scanner()
    s.add("LEAKY", LEAKY)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "journal.db").write_bytes(b"\0" * 100 + LEAKY + b"\0")
    (tmp_path / "han.toml").write_text(f'[keys]\nkey = "{LEAKY.hex()}"\n')  # a test's input: skipped
    (tmp_path / "han-key").write_text(LEAKY.hex())
    s.scan_tree(tmp_path, "tmp")
    assert [(f.form, f.where) for f in s.findings] == [("raw bytes", "tmp/state/journal.db")]


def test_low_entropy_keys_are_not_searched():
    s = Scanner()
    s.add("ZEROS", bytes(16))
    s.add("ONES", b"\x11" * 16)
    assert not s.needles


INNER = '''
import logging, subprocess, sys
import pytest

EK = bytes(range(0x40, 0x50))

def test_logs_it():
    logging.getLogger("han.inner").warning("using key %s", EK.hex())

def test_writes_it(tmp_path):
    (tmp_path / "status.json").write_text('{"key": "%s"}' % EK.hex().upper())

def test_child_prints_it():
    out = subprocess.run([sys.executable, "-c", "print(%r)" % repr(EK)], capture_output=True, text=True)
    assert out.returncode == 0

@pytest.mark.prints_keys
def test_allowed_to_print_it(capsys):
    print(EK.hex())
    assert capsys.readouterr().out

def test_clean():
    print("nothing secret here")
'''


def _inner(pytester) -> pytest.RunResult:
    pytester.makeconftest('pytest_plugins = ["keyleak"]\n')
    pytester.makepyfile(test_inner=INNER)
    here = str(Path(__file__).resolve().parent.parent)  # tests/: keyleak.py
    env_path = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])
    pytester._monkeypatch.setenv("PYTHONPATH", env_path)
    pytester._monkeypatch.setenv("HAN_VECTORS_DIR", str(pytester.path / "no-vectors"))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_a_leak_fails_the_run_and_names_the_place_not_the_key(pytester):
    result = _inner(pytester)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, out
    result.assert_outcomes(passed=5)
    assert "key leak" in out
    assert "test_inner.py::test_logs_it" in out
    assert "test_inner.py::test_child_prints_it" in out
    assert "status.json" in out
    assert "test_allowed_to_print_it" not in out.split("key leak")[1] and "test_clean" not in out
    assert bytes(range(0x40, 0x50)).hex() not in out.lower()


def test_the_check_can_be_switched_off(pytester):
    pytester.makeconftest('pytest_plugins = ["keyleak"]\n')
    pytester.makepyfile(test_inner=INNER)
    pytester._monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-key-leak-check")
    assert result.ret == 0


def test_server_data_is_searched_for_text_forms_only(tmp_path):
    """A key of printable bytes is its own repr: in a server's binary files only hex and base64 count."""
    s = Scanner()
    printable = bytes(range(0x50, 0x60))  # b"PQRSTUVWXYZ[\\]^_", not a key of the suite
    s.add("ASCII_KEY", printable)
    (tmp_path / "items.bin").write_bytes(b"\x01" + printable + b"\x02")
    s.scan_tree(tmp_path, "server", raw=False)
    assert not s.findings
    (tmp_path / "wal").write_bytes(b"power=1 key=" + printable.hex().encode())
    s.scan_tree(tmp_path, "server", raw=False)
    assert [f.form for f in s.findings] == ["hex"]
