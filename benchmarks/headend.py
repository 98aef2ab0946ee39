"""A head-end under load: 10,000 simulated meters through a real mosquitto into a real VictoriaMetrics.

``python -m benchmarks.headend`` (about 2-3 minutes on loopback)::

    publisher (this process)  --QoS 1-->  mosquitto  --$share/g/han/raw/+-->  N workers  -->  VictoriaMetrics
    10,000 meters, own keys,                 (tests/servers.py)                1, then 2          (no dedup: a
    Kamstrup-style encrypted pushes                                                               duplicate shows)

Each meter pushes every 10 s: 1,000 frames/s.  Every meter has its own keys (a key
file with 10,000 ``[meters.<system title>]`` tables, mode 600).  For 1 and 2 workers it
measures:

- **paced**: 1,000 frames/s for ``--seconds`` seconds; end-to-end latency p50/p99 from
  the publish (a side table: system title + invocation counter -> time) to the point being
  stored (library workers: VictoriaMetrics answered 204 for the batch holding it;
  ``han`` workers: the point first seen in VictoriaMetrics' export, polled);
- **saturation**: a backlog of ``--backlog`` frames published as fast as the publisher
  goes; frames/s per worker while it drains;
- CPU per frame in each worker (user + system time / frames);
- lost and duplicated points, counted at VictoriaMetrics (every push's invocation counter
  sample, per meter; VictoriaMetrics runs without de-duplication so a duplicate shows);
- and, in this process, the decode CPU per frame of the library ``PushDecoder`` with the
  per-meter key lookup (a ``KeyRing`` of 10,000 meters), and the publisher's rate.

Workers (``--workers``): ``han`` runs the documented command line, one process each::

    han run --source 'mqtt://127.0.0.1:PORT/han/raw/+?share=g&qos=1' --keys FILE \\
            --sink 'victoriametrics://127.0.0.1:VMPORT?measurement=...' --state-dir DIR

``library`` runs a stand-in built from what exists on this branch: an MQTT 5 shared
subscription (aiomqtt), the library ``PushDecoder`` with the key ring, and the
``victoriametrics`` sink, batched every 100 ms (no journal, so no replay protection or
restart safety: it measures the decode and delivery path).  ``auto`` (the default)
takes ``han`` when ``han run --help`` lists ``--source``, else ``library``.

Numbers are printed (and written as JSON with ``--json``), never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

METERS = 10_000
INTERVAL = 10.0  #: seconds between a meter's pushes: 10,000 meters -> 1,000 frames/s
START = datetime(2026, 1, 15, 12, 0, 0)
SHARED = "$share/g/han/raw/+"  #: the library workers' subscription


# -- the meters ---------------------------------------------------------------------------------
def meter_keys(i: int):
    from decoders.ciphering.security import Keys

    d = hashlib.sha256(b"han-headend-bench-%d" % i).digest()
    return Keys(ek=d[:16], ak=d[16:])


def meters(n: int):
    from han.simulator import KamstrupSimulator

    return [KamstrupSimulator(meter_keys(i), meter_number=60_000_000 + i, counter_start=1, seed=i) for i in range(n)]


def write_key_file(path: Path, sims) -> None:
    lines = []
    for sim in sims:
        k = sim.keys
        lines.append(f'[meters.{sim.system_title.hex().upper()}]\nkey = "{k.ek.hex()}"\nauth_key = "{k.ak.hex()}"\n')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines))


def build_frames(sims, count: int, first_round: int) -> list[tuple[str, bytes, str, int]]:
    """``count`` frames in push order: meter after meter, round after round, as (topic, frame, st, ic)."""
    out = []
    i = 0
    r = first_round
    while len(out) < count:
        sim = sims[i]
        ic = sim.counter
        frame = sim.frame(START + timedelta(seconds=INTERVAL * r))
        out.append((f"han/raw/m{60_000_000 + i}", frame, sim.system_title.hex().upper(), ic))
        i += 1
        if i == len(sims):
            i, r = 0, r + 1
    return out


# -- the decode side in this process --------------------------------------------------------------
def decode_cpu(frames, ring) -> dict:
    from han.pipeline import PushDecoder

    dec = PushDecoder(ring)
    sample = [f for _, f, _, _ in frames[:5000]]
    t0 = time.process_time()
    n = 0
    for f in sample:
        n += len(dec.feed(f))
    cpu = time.process_time() - t0
    return {"frames": len(sample), "pushes": n, "cpu_us_per_frame": round(cpu / len(sample) * 1e6, 1)}


# -- the publisher ----------------------------------------------------------------------------------
def publish(port: int, frames, rate: float | None, sent: dict) -> dict:
    """Publish with QoS 1, paced at ``rate`` frames/s (None: as fast as it goes); returns when all are acknowledged.

    The load generator uses paho-mqtt's own network thread (the client under aiomqtt): a publish
    costs it a few tens of microseconds, so the generator is not what limits the rate.
    """
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    infos = []
    try:
        for k, (topic, frame, st, ic) in enumerate(frames):
            if rate:
                delay = t0 + k / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            sent[(st, ic)] = time.time()
            infos.append(client.publish(topic, frame, qos=1))
        for info in infos:
            info.wait_for_publish(60)
    finally:
        client.loop_stop()
        client.disconnect()
    wall = time.perf_counter() - t0
    return {"frames": len(frames), "seconds": round(wall, 2), "frames_per_s": round(len(frames) / wall),
            "publisher_cpu_us_per_frame": round((time.process_time() - cpu0) / len(frames) * 1e6, 1)}


# -- the library worker (a stand-in for `han run --source mqtt://...`) -------------------------------
async def library_worker(port: int, vm_url: str, keys_file: str, out: str, ident: str) -> None:
    import aiomqtt
    from paho.mqtt.client import MQTTv5

    from datetime import timezone

    from han.keysource import load_keys
    from han.pipeline import PushDecoder
    from sinks.base import Checkpoint, Entry, create_sink

    ring = load_keys(config_keys={"file": keys_file}, environment=False)
    dec = PushDecoder(ring)
    sink = create_sink(vm_url)
    await sink.open(Checkpoint("bench"))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    acks: list[tuple[str, int, float]] = []
    batch: list = []
    stats = {"frames": 0, "pushes": 0, "errors": 0, "first": None, "last": None, "cpu0": None}
    seq = 0

    async def flusher():
        nonlocal batch
        while not stop.is_set() or batch:
            await asyncio.sleep(0.1)
            if batch:
                todo, batch = batch, []
                await sink.write(todo)
                await sink.flush()
                now = time.time()
                stats["last"] = time.perf_counter()
                acks.extend((e.push.security.system_title.hex().upper(), e.push.security.invocation_counter, now)
                            for e in todo)
            elif stop.is_set():
                break

    flush_task = asyncio.ensure_future(flusher())
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-worker-{ident}", protocol=MQTTv5,
                              max_queued_incoming_messages=0) as client:
        await client.subscribe(SHARED, qos=1)
        Path(out + ".ready").write_text("ready")

        async def consume():
            nonlocal seq
            async for msg in client.messages:
                if stats["first"] is None:
                    stats["first"] = time.perf_counter()
                    t = os.times()
                    stats["cpu0"] = t.user + t.system
                stats["frames"] += 1
                try:
                    pushes = dec.feed(bytes(msg.payload))
                except Exception:  # noqa: BLE001 - counted
                    stats["errors"] += 1
                    continue
                now = datetime.now(timezone.utc)
                for p in pushes:
                    seq += 1
                    batch.append(Entry(seq, now, p))
                stats["pushes"] += len(pushes)

        consumer = asyncio.ensure_future(consume())
        await stop.wait()
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    await flush_task
    await sink.close()
    t = os.times()
    cpu = t.user + t.system - (stats["cpu0"] or 0)
    span = (stats["last"] or 0) - (stats["first"] or 0)
    Path(out).write_text(json.dumps({"frames": stats["frames"], "pushes": stats["pushes"], "errors": stats["errors"],
                                     "cpu_s": cpu, "span_s": span, "acks": acks}))


# -- running a configuration ------------------------------------------------------------------------
def han_has_source() -> bool:
    out = subprocess.run([sys.executable, "-m", "han", "run", "--help"], capture_output=True, text=True, cwd=ROOT)
    return "--source" in out.stdout


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def han_ready(state_dir: Path) -> bool:
    """The worker's status file says its MQTT source is subscribed."""
    try:
        status = json.loads((state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(status.get("sources")) and all(s.get("state") == "connected" for s in status["sources"])


def start_workers(kind: str, n: int, port: int, vm_url: str, keys_file: Path, tmp: Path, tag: str,
                  profile: str | None = None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = []
    for k in range(n):
        out = tmp / f"{tag}-w{k}.json"
        if kind == "han":
            # a share group of its own per configuration: the workers of an earlier one keep their
            # (persistent) membership of theirs, and would be handed a share of these messages
            cmd = [sys.executable, "-m", "han", "run", "--source",
                   f"mqtt://127.0.0.1:{port}/han/raw/+?share={tag}&qos=1",
                   "--keys", str(keys_file), "--sink", vm_url, "--state-dir", str(tmp / f"{tag}-state{k}"), "-q"]
            if profile:
                env = dict(env, HAN_PROFILE=f"{profile}-{tag}-w{k}.prof")
        else:
            cmd = [sys.executable, "-m", "benchmarks.headend", "--worker", "--port", str(port), "--vm", vm_url,
                   "--keys", str(keys_file), "--out", str(out), "--id", f"{tag}{k}"]
        log = open(tmp / f"{tag}-w{k}.log", "wb")
        procs.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), out, log))
    deadline = time.monotonic() + 60
    for p, out, _ in procs:
        if kind == "library":
            while not Path(str(out) + ".ready").exists():
                if p.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker did not start: see {tmp}")
                time.sleep(0.05)
    if kind == "han":
        for k, (p, _, _) in enumerate(procs):
            while not han_ready(tmp / f"{tag}-state{k}"):
                if p.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker did not start: see {tmp}")
                time.sleep(0.1)
    return procs


def vm_counts(vm, measurement: str) -> tuple[dict, int]:
    """(meter -> list of invocation counters stored, total samples)."""
    import urllib.parse

    from servers import _http

    _http(vm.url + "/internal/force_flush")
    status, body = _http(vm.url + "/api/v1/export",
                         urllib.parse.urlencode({"match[]": f'{{__name__="{measurement}_invocation_counter"}}'}).encode())
    per: dict[str, list[int]] = {}
    total = 0
    for line in body.decode().splitlines():
        if line.strip():
            s = json.loads(line)
            per.setdefault(s["metric"]["system_title"], []).extend(int(v) for v in s["values"])
            total += len(s["values"])
    return per, total


def vm_total(vm, measurement: str) -> int:
    """Samples stored (duplicates included: VictoriaMetrics runs without de-duplication); a cheap query."""
    import urllib.parse

    from servers import _http

    _http(vm.url + "/internal/force_flush")
    at = (START + timedelta(days=1)).timestamp()
    q = f'sum(count_over_time({{__name__="{measurement}_invocation_counter"}}[3d]))'
    _, body = _http(vm.url + "/api/v1/query", urllib.parse.urlencode({"query": q, "time": at, "nocache": 1}).encode())
    result = json.loads(body)["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


class LatencyProbe:
    """Polls VictoriaMetrics every 0.25 s for a 1 % sample of the meters (cheap): when each push was first seen."""

    def __init__(self, vm, measurement: str, titles: list[str]) -> None:
        import threading

        self.vm, self.measurement = vm, measurement
        self.regex = "|".join(titles)
        self.seen: dict[tuple[str, int], float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import urllib.parse

        from servers import _http

        while not self.stop.wait(0.25):
            _http(self.vm.url + "/internal/force_flush")
            match = f'{{__name__="{self.measurement}_invocation_counter",system_title=~"{self.regex}"}}'
            _, body = _http(self.vm.url + "/api/v1/export", urllib.parse.urlencode({"match[]": match}).encode())
            now = time.time()
            for line in body.decode().splitlines():
                if line.strip():
                    row = json.loads(line)
                    for v in row["values"]:
                        self.seen.setdefault((row["metric"]["system_title"], int(v)), now)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run_config(kind: str, n_workers: int, args, mosq, vm, sims, keys_file: Path, tmp: Path) -> dict:
    tag = f"{kind}{n_workers}"
    measurement = f"bench_{tag}_{int(time.time())}"
    vm_url = f"victoriametrics://127.0.0.1:{vm.port}?measurement={measurement}"
    paced_n = int(args.seconds * METERS / INTERVAL)
    print(f"[{tag}] building {paced_n + args.backlog} frames ...", flush=True)
    frames = build_frames(sims, paced_n + args.backlog, args.round)
    args.round += (paced_n + args.backlog) // METERS + 1  # the next configuration's pushes come later
    procs = start_workers(kind, n_workers, mosq.port, vm_url, keys_file, tmp, tag, args.profile)
    cpu0 = [cpu_seconds(p.pid) for p, _, _ in procs] if kind == "han" else []
    cpu1: list[float] = []
    sent: dict = {}
    sample_titles = sorted({st for _, _, st, _ in frames[: METERS : 100]})
    probe = LatencyProbe(vm, measurement, sample_titles) if kind == "han" else None
    drain: dict = {}
    try:
        print(f"[{tag}] paced: {paced_n} frames at {METERS / INTERVAL:.0f}/s ...", flush=True)
        paced = publish(mosq.port, frames[:paced_n], METERS / INTERVAL, sent)
        time.sleep(2.0)
        print(f"[{tag}] saturation: a backlog of {args.backlog} frames ...", flush=True)
        t_burst = time.time()
        stored_at_burst = vm_total(vm, measurement) if kind == "han" else 0
        burst = publish(mosq.port, frames[paced_n:], None, sent)
        expected = len(frames)
        deadline = time.monotonic() + 180
        visible: dict = {}
        while kind == "han" and time.monotonic() < deadline:
            if vm_total(vm, measurement) >= expected:
                drain = {"frames": expected - stored_at_burst, "seconds": time.time() - t_burst}
                break
            time.sleep(0.2)
        while kind != "han" and time.monotonic() < deadline:
            per, total = vm_counts(vm, measurement)
            now = time.time()
            for st, ics in per.items():
                for ic in ics:
                    visible.setdefault((st, ic), now)
            if len(visible) >= expected:
                break
            time.sleep(0.5)
        if kind == "han":
            cpu1 = [cpu_seconds(p.pid) for p, _, _ in procs]
    finally:
        if probe is not None:
            probe.close()
        for p, _, _ in procs:
            p.send_signal(signal.SIGTERM)
        for p, _, log in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
            log.close()
    per, total = vm_counts(vm, measurement)
    distinct = {(st, ic) for st, ics in per.items() for ic in ics}
    want = {(st, ic) for _, _, st, ic in frames}
    result = {
        "workers": n_workers, "kind": kind, "frames": len(frames),
        "publisher_paced": paced, "publisher_backlog": burst,
        "lost": len(want - distinct), "duplicated": total - len(distinct), "unexpected": len(distinct - want),
        "meters_seen": len(per),
    }
    paced_keys = {(st, ic) for _, _, st, ic in frames[:paced_n]}
    if kind == "library":
        workers = [json.loads(out.read_text()) for _, out, _ in procs if out.exists()]
        acks = {(st, ic): t for w in workers for st, ic, t in w["acks"]}
        lat = [acks[k] - sent[k] for k in paced_keys if k in acks]
        result["latency_basis"] = "publish -> VictoriaMetrics answered 204 for the batch"
        result["per_worker"] = [
            {"frames": w["frames"], "errors": w["errors"],
             "cpu_us_per_frame": round(w["cpu_s"] / max(1, w["frames"]) * 1e6, 1)} for w in workers
        ]
        # saturation: the backlog's frames per worker over the time the worker took to drain it
        back = {(st, ic) for _, _, st, ic in frames[paced_n:]}
        t_burst0 = min(sent[k] for k in back)
        for w, pw in zip(workers, result["per_worker"]):
            mine = [t for st, ic, t in w["acks"] if (st, ic) in back]
            if mine:
                pw["backlog_frames"] = len(mine)
                pw["saturation_frames_per_s"] = round(len(mine) / max(1e-3, max(mine) - t_burst0))
    else:
        assert probe is not None
        lat = [probe.seen[k] - sent[k] for k in paced_keys if k in probe.seen]
        result["latency_basis"] = ("publish -> first seen in VictoriaMetrics' export, a 1 % sample of the meters"
                                   " polled every 0.25 s (includes up to 0.25 s of polling)")
        # saturation: from the start of the backlog, the workers drain everything not yet stored
        # (the backlog, and any paced frames still queued) at their full rate
        rate = drain["frames"] / max(1e-3, drain["seconds"]) if drain else 0.0
        result["saturation_frames_per_s"] = round(rate)
        result["drain"] = {k: round(v, 2) for k, v in drain.items()}
        messages = []
        for k in range(n_workers):
            try:
                st = json.loads((tmp / f"{tag}-state{k}" / "status.json").read_text())
                messages.append(sum(s.get("messages", 0) for s in st.get("sources", [])))
            except (OSError, ValueError):
                messages.append(0)
        total_msgs = max(1, sum(messages))
        result["per_worker"] = [
            {"frames": m, "cpu_us_per_frame": round((c1 - c0) / max(1, m) * 1e6, 1) if cpu1 else None,
             # the group's drain rate split by each worker's share of the messages
             "saturation_frames_per_s": round(rate * m / total_msgs)}
            for m, c0, c1 in zip(messages, cpu0, cpu1 or cpu0)
        ]
    result["latency_ms"] = {"p50": round(pct(lat, 0.50) * 1000, 1), "p99": round(pct(lat, 0.99) * 1000, 1),
                            "n": len(lat)}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", choices=("auto", "han", "library"), default="auto")
    ap.add_argument("--seconds", type=float, default=15.0, help="seconds of the paced phase (default 15)")
    ap.add_argument("--backlog", type=int, default=10_000, help="frames of the saturation phase (default 10,000)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--only", type=int, choices=(1, 2), help="run only the configuration with this many workers")
    ap.add_argument("--profile", metavar="PREFIX",
                    help="han workers: profile each with cProfile (HAN_PROFILE) into PREFIX-<config>-w<k>.prof")
    # the worker process (internal)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--vm", help=argparse.SUPPRESS)
    ap.add_argument("--keys", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--id", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        asyncio.run(library_worker(args.port, args.vm, args.keys, args.out, args.id))
        return 0

    from servers import Mosquitto, Victoria

    from han.keysource import load_keys

    args.round = 0
    kind = args.workers
    if kind == "auto":
        kind = "han" if han_has_source() else "library"
        if kind == "library":
            print("han run has no --source yet: the workers are the library stand-in (see the docstring)")
    tmp = Path(tempfile.mkdtemp(prefix="han-headend-"))
    t0 = time.perf_counter()
    sims = meters(METERS)
    keys_file = tmp / "keys.toml"
    write_key_file(keys_file, sims)
    t1 = time.perf_counter()
    ring = load_keys(config_keys={"file": str(keys_file)}, environment=False)
    t2 = time.perf_counter()
    sample = build_frames(meters(METERS), 5000, 0)
    results: dict = {
        "meters": METERS, "frames_per_s_offered": METERS / INTERVAL,
        "setup_s": round(t1 - t0, 2), "key_file_load_s": round(t2 - t1, 3),
        "decode": decode_cpu(sample, ring), "configs": [],
    }
    print(f"decode with the per-meter key ring: {results['decode']['cpu_us_per_frame']} us CPU per frame", flush=True)
    mosq, vm = Mosquitto(), Victoria()
    try:
        mosq.start()
        vm.start()
        for n in (args.only,) if args.only else (1, 2):
            r = run_config(kind, n, args, mosq, vm, sims, keys_file, tmp)
            print(json.dumps(r), flush=True)
            results["configs"].append(r)
    finally:
        mosq.cleanup()
        vm.cleanup()
    print()
    print(f"{'workers':>8} {'paced pub/s':>11} {'backlog pub/s':>13} {'sat. frames/s per worker':>25} "
          f"{'CPU us/frame':>13} {'p50 ms':>7} {'p99 ms':>7} {'lost':>5} {'dup':>4}")
    for r in results["configs"]:
        pw = r.get("per_worker", [])
        sat = "/".join(str(w.get("saturation_frames_per_s", "-")) for w in pw) or "-"
        cpu = "/".join(str(w["cpu_us_per_frame"]) for w in pw) or "-"
        print(f"{r['workers']:>8} {r['publisher_paced']['frames_per_s']:>11} {r['publisher_backlog']['frames_per_s']:>13}"
              f" {sat:>25} {cpu:>13} {r['latency_ms']['p50']:>7} {r['latency_ms']['p99']:>7} {r['lost']:>5}"
              f" {r['duplicated']:>4}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
