"""The watchdog's line for each fault (han.watchdog, sans-IO); the pty tests in app/test_daemon_on_a_pty.py drive it for real."""

from __future__ import annotations

import pytest

from han.watchdog import Quiet, message


def bytes_with(**window) -> str:
    return message(Quiet(quiet_for=31, since_start=False, interval=10, silent_for=2, bytes_since_push=900,
                         window=window, serial="2400 8N1"))  # fmt: skip


@pytest.mark.parametrize(
    "window, says",
    [
        ({"not_a_frame": 3}, "no HDLC frames in them: wrong baud rate or parity (now 2400 8N1)"),
        ({"bad_checksum": 4, "not_a_frame": 1}, "HDLC frames found, but their checksums fail"),
        ({"no_key": 3}, "encrypted HDLC frames, but no key is given"),
        ({"tag_mismatch": 3, "bad_checksum": 1}, "decryption fails: a wrong key"),
        ({"wrong_key": 2}, "decryption fails: a wrong key"),
        ({"downgrade": 3}, "without authentication although an authentication key is set"),
        ({"replayed": 3}, "invocation counters are not above the last accepted"),
        ({"bad_apdu": 3}, "no push han can read in them (an unknown APDU or list"),
        ({}, "no complete HDLC frame in them yet"),
    ],
)
def test_bytes_without_a_push_say_what_they_look_like(window, says):
    line = bytes_with(**window)
    assert line.startswith("no push for 31 s (3 × 10 s push interval): bytes but no valid push (900 bytes")
    assert says in line, line
    if window:
        assert line.endswith("]") and all(f"{k} {v}" in line for k, v in window.items())


def test_silence_and_a_lost_port():
    silent = message(Quiet(quiet_for=30, since_start=False, interval=10, silent_for=30))
    assert "no bytes for 30 s: the meter is quiet" in silent and "bytes but" not in silent
    never = message(Quiet(quiet_for=30, since_start=True, interval=10, silent_for=None))
    assert never.startswith("no push since start") and "no bytes since start" in never
    lost = message(Quiet(quiet_for=30, since_start=False, interval=10, port_lost="closed", silent_for=1))
    assert lost.endswith("port lost (closed); han keeps reopening it")
