"""``han run`` as a separate process: kill -9 and restart, SIGTERM, ``han status``, exit statuses, ``han demo``.

The systemd unit has its own tests (test_systemd_unit.py).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from conftest import ROOT
from daemonkit import AK, EK, START, Pty, journal_last_seq, jsonl_counters, simulator, sqlite_counters, wait_until_sync

HAN = [sys.executable, "-m", "han"]


def env() -> dict:
    e = dict(os.environ)
    e.pop("JOURNAL_STREAM", None)
    e.update(HAN_KEY=EK.hex(), HAN_AUTH_KEY=AK.hex(), PYTHONPATH=str(ROOT))
    return e


def start(tmp_path, link, log, extra=(), **popen) -> subprocess.Popen:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        HAN
        + [
            "run",
            "--port",
            link,
            "--state-dir",
            str(state),
            "--status-interval",
            "0.2",
            "--sink",
            f"sqlite:{tmp_path / 'han.db'}",
            "--sink",
            f"jsonl:{tmp_path / 'pushes.jsonl'}",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env(),
        cwd=ROOT,
        **popen,
    )
    status = state / "status.json"

    def connected() -> bool:
        assert proc.poll() is None, (tmp_path / "log.txt").read_text()
        try:
            s = json.loads(status.read_text())
        except (OSError, ValueError):
            return False
        return s.get("pid") == proc.pid and s["input"]["state"] == "connected"

    wait_until_sync(connected, "han run to open the port")
    return proc


def test_kill_9_and_restart_never_duplicates(tmp_path):
    pty = Pty(str(tmp_path / "ttyHAN"))
    sim = simulator(seed=11)
    state = str(tmp_path / "state")
    written = 0
    with open(tmp_path / "log.txt", "wb") as log:
        try:
            for _round in range(3):
                proc = start(tmp_path, pty.link, log)
                for _ in range(40):
                    pty.write_now(sim.frame(START + timedelta(seconds=10 * sim.pushes)))
                written += 40
                wait_until_sync(lambda: journal_last_seq(state) == written, f"{written} pushes in the journal")
                proc.kill()  # SIGKILL while the sinks may still be writing
                proc.wait()
            proc = start(tmp_path, pty.link, log)
            for _ in range(10):
                pty.write_now(sim.frame(START + timedelta(seconds=10 * sim.pushes)))
            written += 10
            wait_until_sync(lambda: journal_last_seq(state) == written, "the last pushes in the journal")
            proc.send_signal(signal.SIGTERM)  # delivers the backlog, flushes, exits 0
            assert proc.wait(timeout=30) == 0
        finally:
            pty.close()
    expected = Counter(range(1000, 1000 + written))
    assert sqlite_counters(str(tmp_path / "han.db")) == expected
    assert jsonl_counters(str(tmp_path / "pushes.jsonl")) == expected
    text = (tmp_path / "log.txt").read_text()
    assert "Traceback" not in text
    assert EK.hex() not in text.lower() and AK.hex() not in text.lower()

    out = subprocess.run(HAN + ["status", "--state-dir", state], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert out.returncode == 1  # not running any more
    assert "not running" in out.stdout and "10 accepted" in out.stdout and "backlog 0" in out.stdout
    assert "4B414D4501DF5E76" in out.stdout  # the meter and its counter
    assert EK.hex() not in out.stdout.lower()
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["counters"] == {
        f"4B414D4501DF5E76/{status['meters']['4B414D4501DF5E76']['key_id']}": 1000 + written - 1
    }


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs resource.prlimit (Linux)")
def test_full_disk_then_space_again(tmp_path):
    """Files may not grow (RLIMIT_FSIZE, what a full disk looks like to han); then the space comes back."""
    limit = 96 * 1024
    conf = tmp_path / "han.toml"
    conf.write_text("[daemon]\nsink_retry_max = 0.3\n")
    pty = Pty(str(tmp_path / "ttyHAN"))
    sim = simulator(seed=13)
    state = str(tmp_path / "state")
    with open(tmp_path / "log.txt", "wb") as log:
        try:
            proc = start(
                tmp_path,
                pty.link,
                log,
                ["--config", str(conf)],
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY)),
            )
            for _ in range(60):
                pty.write_now(sim.frame(START + timedelta(seconds=10 * sim.pushes)))

            def status() -> dict:
                try:
                    return json.loads((tmp_path / "state" / "status.json").read_text())
                except (OSError, ValueError):
                    return {}

            wait_until_sync(lambda: status().get("journal", {}).get("pending_in_memory", 0) > 0, "the disk to be full")
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            wait_until_sync(lambda: journal_last_seq(state) == 60, "the held pushes to reach the journal")
            wait_until_sync(
                lambda: all(s["backlog"] == 0 for s in status().get("sinks", [{"backlog": 1}])), "the sinks"
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            pty.close()
    expected = Counter(range(1000, 1060))
    assert sqlite_counters(str(tmp_path / "han.db")) == expected
    assert jsonl_counters(str(tmp_path / "pushes.jsonl")) == expected
    text = (tmp_path / "log.txt").read_text()
    assert "Traceback" not in text and "journal writable again" in text


def test_replay_file_through_the_pipeline(tmp_path):
    sim = simulator(seed=12)
    capture = tmp_path / "capture.hex"
    # more than one 64 kB block, and the first block ends inside a hex pair
    capture.write_text("# capture.\n" + "\n".join(f.hex() for f in sim.frames(START, 10, 150)) + "\n")
    cmd = HAN + ["run", "--replay", str(capture), "--state-dir", str(tmp_path / "state"), "--sink", "jsonl:-", "-q"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["security"]["invocation_counter"] for x in lines] == list(range(1000, 1150))
    assert lines[0]["time_utc"] == "2026-01-15T11:00:00Z"  # Copenhagen winter time
    assert os.path.exists(tmp_path / "state" / "han.db") is False  # a sink was given: no default database
    again = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert again.returncode == 0 and again.stdout == ""  # every frame is a replay now
    assert "replayed" in again.stderr


def test_config_errors_are_one_line(tmp_path):
    conf = tmp_path / "han.toml"
    conf.write_text(f'[serial]\nport = "/dev/null"\n[keys]\nkey = "{EK.hex()}"\n')
    os.chmod(conf, 0o644)
    out = subprocess.run(HAN + ["run", "--config", str(conf)], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "chmod 600" in out.stderr and EK.hex() not in out.stderr.lower()
    out = subprocess.run(HAN + ["run"], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert out.returncode == 2 and "--port" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(
        HAN + ["run", "--replay", str(tmp_path / "nothing.bin")], capture_output=True, text=True, env=env()
    )
    assert out.returncode == 2 and "no such file" in out.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ('[serial]\nport = "/dev/ttyUSB0"\nbaud = "fast"\n', "[serial] baud must be a whole number, got 'fast'"),
        ('[serial]\nport = "/dev/ttyUSB0"\nretry_min = "x"\n', "[serial] retry_min must be a number, got 'x'"),
        ("[serial]\nport = 5\n", "[serial] port must be a text in quotes"),
        ('[serial]\nport = "/dev/ttyUSB0"\nbaud = -1\n', "[serial] baud must be at least 1"),
        ('bogus = 1\n[serial]\nport = "/dev/ttyUSB0"\n', "unknown setting 'bogus'"),
        ('[serial]\nport = "/dev/ttyUSB0"\nbogus = 1\n', "unknown setting [serial] 'bogus'"),
        ('[serial]\nport = "/dev/ttyUSB0"\n[decode]\nbogus = 1\n', "unknown setting [decode] 'bogus'"),
        ('[serial]\nport = "/dev/ttyUSB0"\n[daemon]\nbogus = 1\n', "unknown setting [daemon] 'bogus'"),
        ('[serial]\nport = "/dev/ttyUSB0"\n[keys]\nbogus = 1\n', "unknown setting [keys] 'bogus'"),
        ('[serial]\nport = "/dev/ttyUSB0"\n[[sink]]\nurl = 5\n', 'each [[sink]] needs url = "SCHEME:TARGET"'),
        (
            '[serial]\nport = "/dev/ttyUSB0"\n[[sink]]\nurl = "jsonl:/tmp/p.jsonl"\nbogus = 1\n',
            "sink jsonl:/tmp/p.jsonl: jsonl sink: unknown option 'bogus'; it takes fsync",
        ),
        (
            '[serial]\nport = "/dev/ttyUSB0"\n[[sink]]\nurl = "jsonl:/tmp/p.jsonl"\nfsync = "yes"\n',
            "sink jsonl:/tmp/p.jsonl: jsonl sink: option fsync must be true or false, got 'yes'",
        ),
        ('[serial]\nport = "/dev/ttyUSB0"\n[[sink]]\nurl = "http://x"\n', "unknown sink 'http'"),
        ('[serial]\nport = "/dev/ttyUSB0"\n[[sink]]\nurl = "mqtt://h:port"\n', "mqtt sink: the port must be a number"),
        ('[serial]\nport = "/dev/ttyUSB0"\n[[sink]]\nurl = "influx://h?x=1"\n', "influx sink: unknown parameter 'x'"),
    ],
)
def test_a_wrong_setting_is_exit_2_and_one_line_and_nothing_starts(tmp_path, text, message):
    conf = tmp_path / "han.toml"
    conf.write_text(text)
    state = tmp_path / "state"
    cmd = HAN + ["run", "--config", str(conf), "--state-dir", str(state)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=30)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    assert not state.exists()  # nothing started: no state directory, no journal, no lock


def test_a_sink_without_its_extra_is_a_configuration_error(tmp_path):
    """aiomqtt cannot be imported (as without han[mqtt]): exit 2 at start, not an endless retry."""
    state = tmp_path / "state"
    blocked = "import sys; sys.modules['aiomqtt'] = None; from han.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", blocked, "run", "--port", "/dev/ttyUSB0", "--state-dir", str(state)]
    out = subprocess.run(cmd + ["--sink", "mqtt://127.0.0.1:1883"], capture_output=True, text=True, env=env(), timeout=30)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("han run: sink mqtt://127.0.0.1:1883: ")
    assert "needs aiomqtt" in out.stderr and "pip install '" in out.stderr and "[mqtt]'" in out.stderr
    assert not state.exists()


def test_replay_with_undelivered_pushes_exits_75(tmp_path):
    sim = simulator(seed=14)
    capture = tmp_path / "capture.hex"
    capture.write_text("\n".join(f.hex() for f in sim.frames(START, 10, 3)) + "\n")
    later = tmp_path / "later"  # the directory of a file sink does not exist yet: that sink fails
    state = str(tmp_path / "state")
    cmd = HAN + ["run", "--replay", str(capture), "--state-dir", state, "-q"]
    cmd += ["--sink", f"jsonl:{later / 'p.jsonl'}", "--sink", f"jsonl:{tmp_path / 'ok.jsonl'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert out.returncode == 75, out.stderr
    lines = [x for x in out.stderr.splitlines() if "not delivered" in x]
    assert len(lines) == 1 and f"jsonl:{later / 'p.jsonl'}: 3 push(es) not delivered" in lines[0], out.stderr
    assert jsonl_counters(str(tmp_path / "ok.jsonl")) == Counter(range(1000, 1003))
    later.mkdir()  # the sink works again: the next run delivers the journal's backlog (the frames are replays now)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert jsonl_counters(str(later / "p.jsonl")) == Counter(range(1000, 1003))
    assert jsonl_counters(str(tmp_path / "ok.jsonl")) == Counter(range(1000, 1003))


def test_reset_counter_of_an_unknown_meter_exits_1(tmp_path):
    sim = simulator(seed=15)
    capture = tmp_path / "capture.hex"
    capture.write_text(sim.frame(START).hex())
    state = str(tmp_path / "state")
    run = subprocess.run(HAN + ["run", "--replay", str(capture), "--state-dir", state, "-q"], env=env(), cwd=ROOT)
    assert run.returncode == 0
    reset = HAN + ["state", "--state-dir", state, "reset-counter", "--system-title"]
    out = subprocess.run(reset + ["4B414D4500000099"], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "no counter stored for meter 4B414D4500000099" in out.stderr and sim.system_title.hex().upper() in out.stderr
    out = subprocess.run(reset + [sim.system_title.hex()], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert out.returncode == 0 and "reset 1 counter(s)" in out.stderr


def test_demo_quick_start(tmp_path):
    out = subprocess.run(
        HAN + ["demo", "--count", "3", "--interval", "0.05", "--state-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 3 and " W " in out.stdout and "kWh" in out.stdout
    assert "sqlite3" in out.stderr and "Traceback" not in out.stderr
    counts = sqlite_counters(str(tmp_path / "demo" / "han.db"))
    assert sum(counts.values()) == 3 and set(counts.values()) == {1}


def test_the_state_directory_lock_is_taken_on_a_full_disk(tmp_path):
    """The pid written into the lock file only names the holder: a full disk (here /dev/full) must not stop han."""
    import os

    from han.daemon import LOCK_FILE, lock_state_dir

    os.symlink("/dev/full", tmp_path / LOCK_FILE)
    fd = lock_state_dir(str(tmp_path))
    os.close(fd)
