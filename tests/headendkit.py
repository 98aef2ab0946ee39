"""A head-end under test: encrypted pushes of many simulated meters published to a real mosquitto, and
``han run`` workers (real processes) that take them from a shared subscription into JSONL sinks.

Every meter is a Kamstrup simulator with its own system title (``KAME`` + its number) and the test keys
of daemonkit; the key file names each meter under ``[meters.<SYSTEM_TITLE>]``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from conftest import ROOT
from daemonkit import AK, EK, START, wait_until_sync
from paho.mqtt.enums import CallbackAPIVersion

from han.simulator import KamstrupSimulator

HAN = [sys.executable, "-m", "han"]


def system_title(number: int) -> str:
    return (b"KAME" + number.to_bytes(4, "big")).hex().upper()


def write_keys(path: Path, numbers, topics: dict[str, dict] | None = None) -> Path:
    """A key file (mode 600) with the test keys for each meter number."""
    lines = []
    for n in numbers:
        lines += [f"[meters.{system_title(n)}]", f'key = "{EK.hex()}"', f'auth_key = "{AK.hex()}"', ""]
    for topic, entry in (topics or {}).items():
        lines.append(f'[topics."{topic}"]')
        lines += [f'{k} = "{v}"' for k, v in entry.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


class Meters:
    """Simulated meters ``first .. first+count-1``; each publishes to ``<prefix>/<number>``."""

    def __init__(self, prefix: str, first: int, count: int) -> None:
        from daemonkit import KEYS

        self.prefix = prefix
        self.sims = {
            first + i: KamstrupSimulator(KEYS, meter_number=first + i, seed=first + i, counter_start=1)
            for i in range(count)
        }

    def frame(self, number: int) -> bytes:
        sim = self.sims[number]
        return sim.frame(START + timedelta(seconds=10 * sim.pushes))

    def topic(self, number: int) -> str:
        return f"{self.prefix}/{number}"


class Publisher:
    """A real MQTT 5 client that publishes at QoS 1 and waits for every PUBACK."""

    def __init__(self, port: int, name: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def env() -> dict:
    e = dict(os.environ)
    e.pop("JOURNAL_STREAM", None)
    e.pop("HAN_KEY", None)
    e.pop("HAN_AUTH_KEY", None)
    e["PYTHONPATH"] = str(ROOT)
    return e


class Worker:
    """``han run --source mqtt://...`` as a process, with its own state directory and JSONL sink."""

    def __init__(self, tmp_path: Path, name: str, source: str, keys: Path, extra: tuple[str, ...] = ()) -> None:
        self.dir = tmp_path / name
        self.dir.mkdir(exist_ok=True)
        self.state = self.dir / "state"
        self.sink = self.dir / "pushes.jsonl"
        self.source, self.keys, self.extra = source, keys, extra
        self.proc: subprocess.Popen | None = None
        self.log = open(self.dir / "log.txt", "ab")  # noqa: SIM115

    def start(self) -> "Worker":
        self.proc = subprocess.Popen(
            HAN + ["run", "--source", self.source, "--keys", str(self.keys), "--state-dir", str(self.state),
                   "--status-interval", "0.2", "--sink", f"jsonl:{self.sink}", *self.extra],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=env(),
            cwd=ROOT,
        )
        wait_until_sync(self.subscribed, f"{self.dir.name} to subscribe")
        return self

    def status(self) -> dict:
        try:
            return json.loads((self.state / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def subscribed(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, (self.dir / "log.txt").read_text()
        s = self.status()
        return s.get("pid") == self.proc.pid and any(x.get("state") == "connected" for x in s.get("sources", []))

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self.proc = None
        return code

    def close(self) -> None:
        if self.proc is not None:
            self.kill()
        self.log.close()

    def logged(self) -> str:
        return (self.dir / "log.txt").read_text(errors="replace")


def pushes(*sinks: Path) -> Counter:
    """(meter, invocation counter) -> how many times the sinks hold it."""
    seen: Counter = Counter()
    for path in sinks:
        if not path.exists():
            continue
        text = path.read_text()
        for line in text[: text.rfind("\n") + 1].splitlines():  # a line the sink is still writing waits
            if line.strip():
                d = json.loads(line)
                seen[(d["meter"], d["security"]["invocation_counter"])] += 1
    return seen


def per_meter(seen: Counter) -> Counter:
    out: Counter = Counter()
    for (meter, _ic), n in seen.items():
        out[meter] += n
    return out


def in_background(fn) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t
