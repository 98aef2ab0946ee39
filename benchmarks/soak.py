"""Soak: a simulated meter pushes through a real ``han run`` into SQLite, InfluxDB and MQTT, with faults.

::

    python -m benchmarks.soak --days 7            # 60,480 pushes; the report as a table and soak-report.json
    python -m benchmarks.soak --days 1 --json r.json

A simulated Kamstrup OMNIPOWER (han's own frame builders: encrypted and
authenticated, a counter that goes up by one) pushes every 10 s of meter
time, written as fast as the daemon takes them into a real pseudo terminal
behind a stable symlink (like /dev/serial/by-id/...).  ``han run`` is a real
subprocess with three sinks: SQLite (in the state directory), a real
InfluxDB 1.6.7 (``influxd``, v1 API) and a real mosquitto, read by a real
subscriber with a persistent session.  The servers are started by
``tests/servers.py``, the same code the tests use.

Faults on a schedule (every class at least once a simulated day, in a
shuffled order, plus extra kill -9 at random points):

- ``unplug``: the serial device disappears mid-frame (the pty is closed) and
  comes back later as a new pty behind the same path; the meter's pushes in
  between are never heard.
- ``kill9``: SIGKILL of the daemon at a random point of the stream, restart.  What
  the port held unread goes with the killed daemon, as when the only reader of
  a USB adapter dies (the kernel drops its queue): the pty's input queue is
  flushed before the restart.  (The harness holds the pty's slave open, so
  without that the restarted daemon, which keeps what the port holds at
  open, would read it: a pty bridge does keep it.)
- ``influx_restart``, ``mqtt_restart``: the server is stopped and started.
- ``influx_hang``, ``mqtt_hang``: the server is SIGSTOPped for longer than the
  sinks' timeout (no TCP reset: a hanging server), then SIGCONTed.
- ``disk_full``: the state directory (a tmpfs mounted for the run) is filled
  to the last byte, pushes go on, then the space comes back; without
  permission to mount, an injected write error (RLIMIT_FSIZE on the daemon).
- ``clock_back``/``clock_forward``: the meter's clock jumps an hour back
  (repeating an hour of meter times) or forward; ``clock_stuck``: 30 pushes
  with the same meter time.
- ``dst_fall_bit``, ``dst_fall_deviation``, ``dst_fall_local``,
  ``dst_spring``: the meter's clock passes a DST change of Europe/Copenhagen:
  local time with the DST status bit, with the UTC deviation (-60/-120), a
  local-time meter that repeats the fall-back hour with identical time
  stamps, and the spring-forward gap.

Bad input on a schedule (each counted by what the daemon says: rejected by
reason): noise, a corrupt checksum, a frame ciphered with another key, a
tampered ciphertext with good checksums, a replayed old frame, a truncated
frame.

Reconciliation: every push is identified by system title + invocation
counter.  accepted (the journal's last position, never reused) = rows in
SQLite = points in InfluxDB = state messages at the subscriber, the same
pushes in each, none twice.  A valid push the daemon never heard (sent while
it was dead or the port unplugged, or in the serial buffer at that moment) is
not a loss; every valid push written while it listened and followed by an
accepted one must be accepted -- including those written while the daemon's
watchdog had closed a silent port to open it again (the pty keeps them).
The lost ones are listed in the report (``lost_counters``); a journal position
that reached the subscriber with two different pushes counts as re-issued
(``reissued_positions``, must be 0).  Peak memory is
the daemon's VmHWM across restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from daemonkit import Pty  # noqa: E402 - the tests' pty (a stable symlink, unplug/replug)

from decoders.link.hdlc import build_frames  # noqa: E402
from decoders.ciphering.security import Keys, protect  # noqa: E402
from han.simulator import KamstrupSimulator  # noqa: E402

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
OTHER = Keys(ek=bytes(range(32, 48)), ak=bytes(range(48, 64)))
ZONE = ZoneInfo("Europe/Copenhagen")
START_UTC = datetime(2026, 10, 20, 0, 0, tzinfo=timezone.utc)  # the week crosses the real fall-back (Oct 25)
FALL = datetime(2026, 10, 25, 1, 0, tzinfo=timezone.utc)
SPRING = datetime(2026, 3, 29, 1, 0, tzinfo=timezone.utc)
PER_DAY = 8640
GUARD = 120.0  #: failure guard for any wait (never a timing assertion)

FAULT_CLASSES = (
    "unplug",
    "kill9",
    "influx_restart",
    "mqtt_restart",
    "influx_hang",
    "mqtt_hang",
    "disk_full",
    "clock_back",
    "clock_forward",
    "clock_stuck",
    "dst_fall_bit",
    "dst_fall_deviation",
    "dst_fall_local",
    "dst_spring",
)
BAD_KINDS = ("noise", "corrupt_checksum", "wrong_key", "tampered", "replayed", "truncated")


class SoakError(Exception):
    pass


def wait_for(cond, what: str, guard: float = GUARD, step: float = 0.02) -> None:
    deadline = time.monotonic() + guard
    while not cond():
        if time.monotonic() > deadline:
            raise SoakError(f"gave up waiting for {what}")
        time.sleep(step)


# -- the MQTT subscriber --------------------------------------------------------------------------
class Subscriber:
    """A real subscriber with a persistent session (QoS 2 subscription): misses nothing across broker restarts.

    paho-mqtt directly: its callback runs before the PUBACK goes out, so a message it acknowledged
    has been recorded.  A message the broker sends again with the DUP flag (its PUBACK to us was cut
    by a broker restart) is the broker-to-subscriber leg's QoS 1, not a second publication by han:
    it is counted apart.
    """

    def __init__(self, port: int, topic: str = "han/+/state") -> None:
        import paho.mqtt.client as mqtt

        self.topic = topic
        self.states: list[dict] = []
        self.redelivered = 0
        self.connects: list[int] = []  #: how many states had arrived at each (re)connection
        self.subscribed = threading.Event()
        self._seen: set = set()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="han-soak-sub", clean_session=False)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.reconnect_delay_set(0.05, 0.5)
        c.connect_async("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        client.subscribe(self.topic, qos=2)
        self.connects.append(len(self.states))
        self.subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.retain:  # the broker's retained copy on (re)subscribing: not a delivery
            return
        state = json.loads(msg.payload)
        ident = (state.get("journal"), state.get("seq"))
        if msg.dup and ident in self._seen:
            self.redelivered += 1
            return
        self._seen.add(ident)
        self.states.append(state)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# -- the meter ----------------------------------------------------------------------------------
@dataclass
class Meter:
    """The simulated meter, its clock (with faults) and the bad input it can produce."""

    seed: int
    sim: KamstrupSimulator = field(init=False)
    offset: timedelta = timedelta(0)
    stuck_left: int = 0
    stuck_at: tuple | None = None
    episode: list = field(default_factory=list)  #: pending (naive, dst, deviation) meter times of a DST episode
    history: list = field(default_factory=list)  #: (ic, frame) of recent valid frames, for replays

    def __post_init__(self) -> None:
        self.sim = KamstrupSimulator(Keys(ek=EK, ak=AK), meter_number=27181828, counter_start=1, seed=self.seed)
        self.wrong = KamstrupSimulator(OTHER, meter_number=27181828, counter_start=10**6, seed=self.seed + 1)
        self.wrong.system_title = self.sim.system_title
        self.rng = random.Random(self.seed)

    def clock(self, i: int) -> tuple[datetime, bool, int | None]:
        """The meter time of push ``i``: (naive local time, DST bit, deviation or None)."""
        if self.episode:
            return self.episode.pop(0)
        if self.stuck_left:
            self.stuck_left -= 1
            assert self.stuck_at is not None
            return self.stuck_at
        local = (START_UTC + timedelta(seconds=10 * i)).astimezone(ZONE)
        when = (local.replace(tzinfo=None) + self.offset, bool(local.dst()), None)
        self.stuck_at = when
        return when

    def dst_episode(self, kind: str) -> None:
        """90 minutes of meter time across a DST change, then the clock is right again."""
        at = SPRING if kind == "dst_spring" else FALL
        out = []
        for k in range(540):
            local = (at - timedelta(minutes=45) + timedelta(seconds=10 * k)).astimezone(ZONE)
            naive, dst = local.replace(tzinfo=None), bool(local.dst())
            if kind == "dst_fall_deviation":
                out.append((naive, dst, -int(local.utcoffset().total_seconds() // 60)))
            elif kind == "dst_fall_local":
                out.append((naive, False, None))  # no DST information: the repeated hour looks the same twice
            else:
                out.append((naive, dst, None))
        self.episode = out

    def push(self, i: int) -> tuple[int, bytes]:
        naive, dst, deviation = self.clock(i)
        ic = self.sim.counter
        frame = self.sim.frame(naive, dst=dst, deviation=deviation)
        self.history.append((ic, frame))
        del self.history[:-200]
        return ic, frame

    def bad(self, kind: str, i: int) -> bytes:
        r = self.rng
        naive, dst, _ = self.clock(i) if not self.episode else self.episode[0]
        if kind == "noise":
            return bytes(r.randrange(256) for _ in range(r.randrange(5, 60)))
        if kind == "replayed":
            return self.history[r.randrange(max(1, len(self.history) - 100))][1]
        if kind == "wrong_key":
            return self.wrong.frame(naive, dst=dst)
        # a push the meter sends that the line damages: the counter goes on
        ic = self.sim.counter
        frame = self.sim.frame(naive, dst=dst)
        if kind == "corrupt_checksum":
            spoiled = bytearray(frame)
            spoiled[-2] ^= 0x5A  # the FCS
            return bytes(spoiled)
        if kind == "truncated":
            return frame[: r.randrange(20, len(frame) - 20)]
        if kind == "tampered":  # good checksums, a changed ciphertext: only the GCM tag can tell
            plain = self.sim.apdu(naive, dst=dst)
            payload = bytearray(
                protect(plain, keys=self.sim.keys, system_title=self.sim.system_title, invocation_counter=ic,
                        security_control=0x30)
            )
            payload[40] ^= 0x01
            (f,) = build_frames(bytes(payload))
            return f
        raise ValueError(kind)


# -- the daemon -----------------------------------------------------------------------------------
class HanProcess:
    def __init__(self, work: Path, state: Path, config: Path, log) -> None:
        self.work, self.state, self.config, self.log = work, state, config, log
        self.proc: subprocess.Popen | None = None
        self.outcomes: Counter = Counter()  #: summed over the runs (each run's last status)
        self.internal_errors = 0  #: the daemon's errors outside any push, summed the same way
        self.peak_kb = 0
        self.runs = 0
        self._watch = threading.Thread(target=self._watch_memory, daemon=True)
        self._watch.start()

    def env(self) -> dict:
        e = dict(os.environ)
        e.pop("JOURNAL_STREAM", None)
        e.update(HAN_KEY=EK.hex(), HAN_AUTH_KEY=AK.hex(), PYTHONPATH=str(ROOT))
        return e

    def status(self) -> dict:
        try:
            return json.loads((self.state / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def start(self, link: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "han", "run", "--config", str(self.config), "--port", link, "-q"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=self.env(),
            cwd=self.work,
        )
        self.runs += 1
        pid = self.proc.pid

        def up() -> bool:
            if self.proc.poll() is not None:
                raise SoakError(f"han run exited with {self.proc.returncode} (see {self.work / 'daemon.log'})")
            s = self.status()
            return s.get("pid") == pid and s.get("input", {}).get("state") == "connected"

        wait_for(up, "han run to open the port")

    def _memory(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
        except OSError:
            pass

    def _watch_memory(self) -> None:
        while True:
            self._memory()
            time.sleep(0.25)

    def _take_outcomes(self) -> None:
        s = self.status()
        with open(self.work / "outcomes.log", "a") as fh:
            fh.write(json.dumps([self.proc.pid if self.proc else None, s.get("pid"), s.get("outcomes")]) + "\n")
        if self.proc is not None and s.get("pid") == self.proc.pid:
            self.outcomes.update(s.get("outcomes", {}))
            self.internal_errors += s.get("internal_errors", 0)

    def kill9(self) -> None:
        assert self.proc is not None
        self._memory()
        self._take_outcomes()  # the last status (at most one status interval old)
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def stop(self) -> int:
        assert self.proc is not None
        self._memory()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(GUARD)
        self._take_outcomes()  # the final status
        self.proc = None
        return code


# -- the state directory's disk -------------------------------------------------------------------
class Disk:
    """The state directory on a small tmpfs (root), else an injected write error (RLIMIT_FSIZE)."""

    def __init__(self, state: Path, size_mb: int, allow_mount: bool) -> None:
        self.state = state
        self.mounted = False
        state.mkdir(parents=True, exist_ok=True)
        if allow_mount:
            out = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(state)],
                capture_output=True,
            )
            self.mounted = out.returncode == 0
        self.method = f"tmpfs of {size_mb} MB filled to the last byte" if self.mounted else "injected write error (RLIMIT_FSIZE)"
        self.ballast = state / "ballast"

    def usage(self) -> str:
        return " ".join(f"{p.name}={p.stat().st_size // 1024}k" for p in sorted(self.state.iterdir()) if p.is_file())

    def fill(self, pid: int) -> None:
        if self.mounted:
            with open(self.ballast, "wb", buffering=0) as fh:
                st = os.statvfs(self.state)
                try:
                    os.posix_fallocate(fh.fileno(), 0, max(1, st.f_bavail * st.f_frsize))
                except OSError:
                    pass
                block = b"\0" * 4096
                try:
                    while True:
                        fh.write(block)
                except OSError:
                    pass
        else:
            import resource

            resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

    def free(self, pid: int | None) -> None:
        if self.mounted:
            self.ballast.unlink(missing_ok=True)
        elif pid is not None:
            import resource

            resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def close(self) -> None:
        if self.mounted:
            if os.environ.get("HAN_SOAK_KEEP"):
                shutil.copytree(self.state, str(self.state) + "-kept", dirs_exist_ok=True)
            subprocess.run(["umount", "-l", str(self.state)], capture_output=True)


# -- the run --------------------------------------------------------------------------------------
@dataclass
class Ongoing:
    kind: str
    until: float
    end: object


def schedule(n: int, days: float, rng: random.Random) -> dict[int, list[str]]:
    """Push index -> faults: every class once per simulated day (at least once), plus extra kill -9."""
    rounds = max(1, round(days))
    per = n // rounds
    plan: dict[int, list[str]] = {}
    for r in range(rounds):
        base = r * per
        classes = list(FAULT_CLASSES) + ["kill9"] * 2
        rng.shuffle(classes)
        slots = sorted(rng.sample(range(base + 200, base + per - 200), len(classes)))
        for at, kind in zip(slots, classes):
            plan.setdefault(at, []).append(kind)
    return plan


def run(days: float, work: Path, seed: int = 1, allow_mount: bool = True, bad_every: int = 97, progress=print,
        tmpfs_mb: int | None = None) -> dict:
    from servers import Influxd, Mosquitto  # the tests' real servers

    n = int(round(days * PER_DAY))
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    state = work / "state"
    disk = Disk(state, size_mb=tmpfs_mb or max(64, int(days * 120) + 64), allow_mount=allow_mount)
    influx = mosq = sub = daemon = pty = None
    t0 = time.monotonic()
    log = open(work / "daemon.log", "wb")
    try:
        influx, mosq = Influxd(), Mosquitto()
        influx.start()
        mosq.start()
        influx.query('CREATE DATABASE "han"')
        sub = Subscriber(mosq.port)
        wait_for(sub.subscribed.is_set, "the MQTT subscriber")
        config = work / "han.toml"
        config.write_text(
            f'[serial]\nretry_min = 0.05\nretry_max = 0.5\n'
            f'[daemon]\nstate_dir = "{state}"\nidle_flush = 0.3\nstatus_interval = 0.2\nsink_retry_max = 0.5\n'
            f'[sinks.sqlite]\nurl = "sqlite:{state}/han.db"\n'
            f'[sinks.influx]\nurl = "influx://127.0.0.1:{influx.port}?api=v1&db=han"\ntimeout = 2\n'
            f'[sinks.mqtt]\nurl = "mqtt://127.0.0.1:{mosq.port}?topic=han&prefix=homeassistant"\ntimeout = 2\n'
        )
        pty = Pty(str(work / "ttyHAN"))
        daemon = HanProcess(work, state, config, log)
        daemon.start(pty.link)

        meter = Meter(seed)
        plan = schedule(n, days, rng)
        faults: Counter = Counter()
        bad_sent: Counter = Counter()
        unheard: Counter = Counter()  # valid pushes never written: the daemon was dead or the port unplugged
        segments: list[list[int]] = [[]]  # valid counters written, split at each kill -9 / unplug
        begins: list[str] = ["start"]  # what began each segment
        ongoing: list[Ongoing] = []
        written = 0

        def end_ongoing(force: bool = False) -> None:
            now = time.monotonic()
            for o in list(ongoing):
                if force or now >= o.until:
                    o.end()
                    ongoing.remove(o)

        def server_fault(kind: str) -> None:
            server = influx if kind.startswith("influx") else mosq
            for o in [o for o in ongoing if o.kind.split("_")[0] == kind.split("_")[0]]:
                o.end()  # that server is already out: it comes back first
                ongoing.remove(o)
            faults[kind] += 1
            if kind.endswith("restart"):
                server.stop()
                ongoing.append(Ongoing(kind, time.monotonic() + rng.uniform(1.0, 4.0), server.start))
            else:
                os.kill(server.proc.pid, signal.SIGSTOP)
                ongoing.append(
                    Ongoing(kind, time.monotonic() + rng.uniform(3.0, 5.0), lambda p=server.proc.pid: os.kill(p, signal.SIGCONT))
                )

        def skip_pushes(count: int, why: str, i: int) -> None:
            for _ in range(count):
                meter.push(i)
                unheard[why] += 1

        i = 0
        while i < n:
            end_ongoing()
            for kind in plan.get(i, ()):
                if kind in ("influx_restart", "mqtt_restart", "influx_hang", "mqtt_hang"):
                    server_fault(kind)
                elif kind == "kill9":
                    faults[kind] += 1
                    daemon.kill9()
                    pty.drop_input()
                    segments.append([])
                    begins.append(f"kill9 at push {i}")
                    skip_pushes(rng.randrange(1, 30), "daemon killed", i)
                    daemon.start(pty.link)
                elif kind == "unplug":
                    faults[kind] += 1
                    _, f = meter.push(i)
                    pty.write_now(f[: len(f) // 2])  # pulled in the middle of a frame
                    bad_sent["torn_by_unplug"] += 1
                    time.sleep(0.05)
                    before = daemon.status().get("input", {}).get("reconnects", 0)
                    pty.unplug()
                    segments.append([])
                    begins.append(f"unplug at push {i}")
                    skip_pushes(rng.randrange(5, 40), "port unplugged", i)
                    time.sleep(rng.uniform(0.2, 1.5))
                    pty.plug()
                    wait_for(
                        lambda: daemon.status().get("input", {}).get("state") == "connected"
                        and daemon.status()["input"].get("reconnects", 0) > before,
                        "the daemon to reopen the port",
                    )
                elif kind == "disk_full":
                    faults[kind] += 1
                    pid = daemon.proc.pid
                    disk.fill(pid)
                    i0 = i
                    for _ in range(150):
                        ic, f = meter.push(i)
                        pty.write_now(f)
                        segments[-1].append(ic)
                        written += 1
                        i += 1
                    for j in range(i0 + 1, i + 1):  # faults scheduled in those pushes come right after
                        if j in plan:
                            plan.setdefault(i + 1, []).extend(plan.pop(j))
                    time.sleep(1.5)  # the journal, the sinks and the status file hit the full disk
                    disk.free(pid)
                    wait_for(
                        lambda: daemon.status().get("journal", {}).get("pending_in_memory", 1) == 0
                        and daemon.status().get("pid") == pid,
                        "the held pushes to reach the journal",
                    )
                elif kind in ("clock_back", "clock_forward"):
                    faults[kind] += 1
                    meter.offset += timedelta(hours=-1 if kind == "clock_back" else 1)
                elif kind == "clock_stuck":
                    faults[kind] += 1
                    meter.stuck_left = 30
                elif kind.startswith("dst_"):
                    faults[kind] += 1
                    meter.dst_episode(kind)
            if bad_every and i % bad_every == bad_every - 1:
                kind = BAD_KINDS[(i // bad_every) % len(BAD_KINDS)]
                pty.write_now(meter.bad(kind, i))
                bad_sent[kind] += 1
            ic, f = meter.push(i)
            pty.write_now(f)
            segments[-1].append(ic)
            written += 1
            i += 1
            if i % 5000 == 0:
                progress(f"soak: {i}/{n} pushes, {time.monotonic() - t0:.0f} s")
        wait_for(lambda: not ongoing or time.monotonic() >= max(o.until for o in ongoing), "the last outages", step=0.1)
        end_ongoing(force=True)

        def drained() -> bool:
            s = daemon.status()
            last = s.get("journal", {}).get("last_seq")
            return bool(s.get("sinks")) and all(w["position"] == last for w in s["sinks"]) and \
                s["journal"]["pending_in_memory"] == 0
        # everything the daemon heard is in the journal and with every sink
        time.sleep(0.5)
        wait_for(drained, "every sink to catch up", guard=600)
        code = daemon.stop()
        if code != 0:
            raise SoakError(f"han run exited with {code} after SIGTERM")
        wall = time.monotonic() - t0

        # -- reconcile ----------------------------------------------------------------------
        from daemonkit import journal_last_seq

        accepted = journal_last_seq(str(state))
        con = sqlite3.connect(f"file:{state}/han.db?mode=ro", uri=True)
        sqlite_ics = Counter(r[0] for r in con.execute("SELECT invocation_counter FROM pushes"))
        con.close()
        (row,) = influx.series('SELECT count("invocation_counter") AS n FROM "han"', "han")
        influx_rows = influx.query('SELECT "invocation_counter" FROM "han"', "han")["results"][0]
        influx_ics = Counter(int(v[1]) for s in influx_rows.get("series", []) for v in s["values"])
        if sum(influx_ics.values()) != row["n"]:
            raise SoakError("InfluxDB returned fewer rows than it counts (a row limit?)")
        try:
            wait_for(lambda: len(sub.states) >= accepted, "the MQTT subscriber to get every state", guard=30)
        except SoakError:
            pass  # the report says what is missing
        time.sleep(1.0)  # a message published twice would have arrived by now
        mqtt_ics = Counter(s.get("invocation_counter") for s in sub.states)
        with open(work / "mqtt-states.jsonl", "w") as fh:
            fh.write(json.dumps({"connects": sub.connects}) + "\n")
            for st in sub.states:
                fh.write(json.dumps({k: st.get(k) for k in ("journal", "seq", "invocation_counter", "time")}) + "\n")

        # a journal position is given once: two pushes under one (journal, position) is a re-issued one
        at_position: dict = {}
        for st in sub.states:
            at_position.setdefault((st.get("journal"), st.get("seq")), set()).add(st.get("invocation_counter"))
        reissued = sum(1 for ics in at_position.values() if len(ics) > 1)

        everyone = set(sqlite_ics) | set(influx_ics) | set(mqtt_ics)
        sinks = {"sqlite": sqlite_ics, "influxdb": influx_ics, "mqtt": mqtt_ics}
        delivered = {k: sum(v.values()) for k, v in sinks.items()}
        duplicates = {k: sum(c - 1 for c in v.values() if c > 1) for k, v in sinks.items()}
        missing = {k: len(everyone - set(v)) for k, v in sinks.items()}
        # every valid push written while the daemon listened is accepted, except a tail still in the
        # serial buffer when the daemon was killed or the port pulled (never heard: not a loss)
        lost_heard = 0
        in_buffer = 0
        lost_counters: list[str] = []
        for k, seg in enumerate(segments):
            got = [ic in everyone for ic in seg]
            last_got = max((j for j, g in enumerate(got) if g), default=-1)
            lost_here = [seg[j] for j in range(last_got + 1) if not got[j]]
            tail = len(got) - last_got - 1
            if k == len(segments) - 1:
                lost_here += seg[last_got + 1 :]  # after the last fault everything must arrive
            else:
                in_buffer += tail
            lost_heard += len(lost_here)
            lost_counters += [f"{ic} (segment {k}, after {begins[k]})" for ic in lost_here]
        rejected = {k: v for k, v in sorted(daemon.outcomes.items()) if k not in ("accepted",)}
        report = {
            "days": days,
            "pushes_sent": written + sum(unheard.values()),
            "pushes_written": written,
            "unheard": dict(unheard, **({"in the serial buffer at a kill or unplug": in_buffer} if in_buffer else {})),
            "bad_input_sent": dict(bad_sent),
            "accepted": accepted,
            "rejected_by_reason": rejected,
            "delivered": delivered,
            "missing": missing,
            "duplicates": duplicates,
            "mqtt_broker_redelivered_dup_flag": sub.redelivered,
            "lost": max(0, accepted - len(everyone)) + sum(missing.values()) + lost_heard,
            "lost_counters": lost_counters[:50],
            "reissued_positions": reissued,
            "faults": {k: faults.get(k, 0) for k in FAULT_CLASSES},
            "disk_full_method": disk.method,
            "daemon_runs": daemon.runs,
            "peak_rss_mb": round(daemon.peak_kb / 1024, 1),
            "wall_s": round(wall, 1),
        }
        text = log_text(work)
        report["tracebacks"] = text.count("Traceback")
        report["internal_errors"] = daemon.internal_errors
        report["internal_errors_in_log"] = text.count("internal error")
        report["keys_in_log"] = int(EK.hex() in text.lower() or AK.hex() in text.lower())
        return report
    finally:
        if sub is not None:
            sub.close()
        if daemon is not None and daemon.proc is not None:
            daemon.proc.kill()
            daemon.proc.wait()
        for server in (influx, mosq):
            if server is not None:
                if server.proc is not None:
                    try:
                        os.kill(server.proc.pid, signal.SIGCONT)
                    except OSError:
                        pass
                server.cleanup()
        if pty is not None:
            pty.close()
        log.close()
        disk.close()


def log_text(work: Path) -> str:
    try:
        return (work / "daemon.log").read_text(errors="replace")
    except OSError:
        return ""


def ok(report: dict) -> bool:
    return (
        report["lost"] == 0
        and report.get("reissued_positions", 0) == 0
        and not any(report["duplicates"].values())
        and report["accepted"] == report["delivered"]["sqlite"] == report["delivered"]["influxdb"]
        == report["delivered"]["mqtt"]
        and all(report["faults"].values())
        and report["tracebacks"] == 0
        and report.get("internal_errors", 0) == 0
        and report.get("internal_errors_in_log", 0) == 0
        and report["keys_in_log"] == 0
    )


def table(r: dict) -> str:
    lines = [
        f"soak: {r['days']:g} simulated day(s) of 10-second pushes through han run ({r['daemon_runs']} daemon runs)",
        f"  pushes sent by the meter   {r['pushes_sent']:>8}",
        f"  written to the port        {r['pushes_written']:>8}",
    ]
    for why, k in r["unheard"].items():
        lines.append(f"  never heard: {why:<24} {k:>5}")
    lines.append(f"  accepted (journal)         {r['accepted']:>8}")
    lines.append("  rejected by reason:")
    for why, k in r["rejected_by_reason"].items():
        lines.append(f"    {why:<24} {k:>8}")
    lines.append("  bad input sent: " + ", ".join(f"{k} {v}" for k, v in r["bad_input_sent"].items()))
    lines.append("  sink        delivered  missing  duplicates")
    for s in ("sqlite", "influxdb", "mqtt"):
        lines.append(f"  {s:<10} {r['delivered'][s]:>10} {r['missing'][s]:>8} {r['duplicates'][s]:>11}")
    lines.append(f"  lost                       {r['lost']:>8}")
    lines.append(f"  re-issued journal positions {r.get('reissued_positions', 0):>7}")
    for what in r.get("lost_counters", [])[:10]:
        lines.append(f"    invocation counter {what}")
    lines.append("  faults: " + ", ".join(f"{k} {v}" for k, v in r["faults"].items()))
    lines.append(f"  disk full by: {r['disk_full_method']}")
    lines.append(f"  peak RSS of han run: {r['peak_rss_mb']} MB; wall time {r['wall_s']} s")
    lines.append(
        f"  tracebacks in the log: {r['tracebacks']}; internal errors: {r.get('internal_errors', 0)} counted,"
        f" {r.get('internal_errors_in_log', 0)} in the log; keys in the log: {r['keys_in_log']}"
    )
    lines.append("  result: " + ("OK: zero loss, zero duplicates, every fault class exercised" if ok(r) else "FAILED"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=float, default=7.0, help="simulated days of 10-second pushes (default 7: 60,480)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default="soak-report.json", help="where the report goes as JSON")
    ap.add_argument("--work", help="working directory (default: a temporary one, removed at the end)")
    ap.add_argument("--no-mount", action="store_true", help="inject the full disk as a write error instead of a tmpfs")
    ap.add_argument("--tmpfs-mb", type=int, help="size of the state directory's tmpfs (default: 120 MB a day + 64)")
    ap.add_argument("--keep-state", action="store_true", help="copy the tmpfs state directory to WORK/state-kept at the end")
    args = ap.parse_args(argv)
    if args.keep_state:
        os.environ["HAN_SOAK_KEEP"] = "1"
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="han-soak-"))
    try:
        report = run(args.days, work, seed=args.seed, allow_mount=not args.no_mount,
                     progress=lambda m: print(m, file=sys.stderr, flush=True), tmpfs_mb=args.tmpfs_mb)
    except SoakError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(table(report))
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
        fh.write("\n")
    return 0 if ok(report) else 1


if __name__ == "__main__":
    sys.exit(main())
