"""One command for the performance table: ``python -m benchmarks.run``.

Each case runs in its own subprocess pinned to one CPU, so its peak RSS is
its own and "frames/s on one core" means what it says.  Cases:

  a  seed-format encrypted Kamstrup push, library: bytes -> Push with registers
  b  plain Aidon list (array of {obis, value, {scaler, unit}}), library
  c  encrypted Austrian M-Bus two-frame push, library
  d  `han decode --format jsonl` on a file of 100,000 pushes (wall time, peak RSS)
  e  `han run --replay` of one simulated day (8,640 pushes) into SQLite (CPU s, peak RSS)
  f  start-up time of `han decode --help`
  g  live-path latency of `han run`: a frame written into a pty -> committed in SQLite
  h  hex text parsing (MB/s), and `han decode --format jsonl` of 20,000 pushes as hex against binary (CPU s)
  i  `han decode --format jsonl` on a hex file of 20,000 encrypted Kamstrup pushes, one per line, against
     dlms-cosem doing the same job (benchmarks/peer_jsonl.py, in the --peers-python interpreter), whole processes
  peers  dlms-cosem / gurux_dlms on (a), when they happen to be installed (comparison only)

Numbers are printed, never asserted: the test suite checks behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _pin() -> None:
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _library(frames: list[bytes], keys, repeat: int, transport: str = "auto") -> dict:
    from han.pipeline import PushDecoder
    from obis.push import Push

    # warm-up and correctness check
    dec = PushDecoder(keys, transport=transport)
    out = [x for f in frames for x in dec.feed(f)] + dec.flush()
    if not out or not all(isinstance(x, Push) for x in out):
        raise SystemExit(f"benchmark input does not decode: {out[:1]}")
    pushes_per_round = len(out)
    best = float("inf")
    for _ in range(5):
        dec = PushDecoder(keys, transport=transport)
        t0 = time.perf_counter()
        for _ in range(repeat):
            for f in frames:
                dec.feed(f)
        best = min(best, time.perf_counter() - t0)
    n = repeat * pushes_per_round
    return {"frames_per_s": n / best, "us_per_frame": best / n * 1e6, "peak_rss_mb": _peak_rss_mb(), "n": n}


def case_a() -> dict:
    from benchmarks.build import SEED_FRAME, SEED_KEYS

    return _library([SEED_FRAME], SEED_KEYS, 4000)


def case_b() -> dict:
    from benchmarks.build import aidon_plain_frame
    from decoders.ciphering.security import Keys

    return _library([aidon_plain_frame()], Keys(), 4000)


def case_c() -> dict:
    try:
        from benchmarks.build import austrian_mbus_push
    except ImportError:
        return {"skipped": "no M-Bus support in this build"}
    frames, keys = austrian_mbus_push()
    return _library(frames, keys, 3000)


def case_d() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="han-bench-"))
    try:
        path = tmp / "pushes.bin"
        # built by a process of its own, so that this one stays small: Linux carries a process's peak RSS
        # across fork and exec into the child's ru_maxrss, which would then be this process's, not han's
        build = f"from benchmarks.build import kamstrup_frames; open({str(path)!r}, 'wb').write(kamstrup_frames(100_000))"
        subprocess.run([PY, "-c", build], cwd=ROOT, check=True)
        cmd = [PY, "-m", "han", "decode", str(path), "--format", "jsonl"]
        cmd += ["--key", "5AD84121D9D20B364B7A11F3C1B5827F", "--auth-key", "AFB3F93E3E7204EDB3C27F96DBD51AE0"]
        t0 = time.perf_counter()
        with open(os.devnull, "w") as null, open(tmp / "stderr", "w+") as err:
            proc = subprocess.Popen(cmd, stdout=null, stderr=err)
            _pid, status, usage = os.wait4(proc.pid, 0)  # the rusage of han decode alone
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - t0
            err.seek(0)
            stderr = err.read()
        if proc.returncode != 0:
            return {"error": stderr.strip()[-300:]}
        return {"pushes": 100_000, "wall_s": wall, "us_per_frame": wall / 100_000 * 1e6,
                "frames_per_s": 100_000 / wall, "peak_rss_mb": usage.ru_maxrss / 1024}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_e() -> dict:
    from benchmarks.build import kamstrup_frames

    tmp = Path(tempfile.mkdtemp(prefix="han-bench-"))
    try:
        capture = tmp / "day.bin"
        capture.write_bytes(kamstrup_frames(8_640))
        state = tmp / "state"
        cmd = [PY, "-m", "han", "run", "--replay", str(capture), "--state-dir", str(state)]
        env = dict(os.environ, HAN_KEY="5AD84121D9D20B364B7A11F3C1B5827F", HAN_AUTH_KEY="AFB3F93E3E7204EDB3C27F96DBD51AE0")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip() or proc.stdout.strip())[-300:]}
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows = None
        db = state / "han.db"
        if db.exists():
            import sqlite3

            with sqlite3.connect(db) as con:
                rows = con.execute("select count(*) from pushes").fetchone()[0]
        return {"pushes": 8_640, "stored": rows, "cpu_s": cpu, "ms_cpu_per_push": cpu / 8_640 * 1e3,
                "wall_s": wall, "peak_rss_mb": after.ru_maxrss / 1024}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_f() -> dict:
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        subprocess.run([PY, "-m", "han", "decode", "--help"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    heavy = subprocess.run(
        [PY, "-c", "import sys, han.cli as c; c.main(['decode','--help']) if False else None;"
         "import han.commands.decode, han.pipeline, han.formats.jsonfmt;"
         "print(','.join(m for m in ('influxdb_client','aiomqtt','paho','sqlite3') if m in sys.modules))"],
        capture_output=True, text=True,
    ).stdout.strip()
    return {"median_s": statistics.median(times), "min_s": min(times), "heavy_imports": heavy or "none"}


def case_g() -> dict:
    from benchmarks.daemon_latency import measure

    return measure()


KEYS = ["--key", "5AD84121D9D20B364B7A11F3C1B5827F", "--auth-key", "AFB3F93E3E7204EDB3C27F96DBD51AE0"]
E2E_PUSHES = 20_000


def _capture(tmp: Path, count: int) -> tuple[Path, Path]:
    hex_path, bin_path = tmp / "pushes.hex", tmp / "pushes.bin"
    build = f"from benchmarks.build import write_capture; write_capture({count}, {str(hex_path)!r}, {str(bin_path)!r})"
    subprocess.run([PY, "-c", build], cwd=ROOT, check=True)
    return hex_path, bin_path


def _process(cmd: list[str], out=None) -> dict:
    """Run one whole process: wall time, its own CPU time and peak RSS (os.wait4), exit code."""
    with open(os.devnull, "w") as null, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out or null, stderr=err, cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
                "rc": os.waitstatus_to_exitcode(status), "stderr": err.read()[-300:]}


def _hex_parser():
    """Parse hex text as `han decode` does: HexReader fed 64 KiB at a time (before it existed: parse_hex whole)."""
    try:
        from han.inputs import HexReader
    except ImportError:
        from han.inputs import parse_hex

        return lambda data: parse_hex(data.decode("ascii"))

    def parse(data: bytes) -> None:
        reader = HexReader()
        for i in range(0, len(data), 1 << 16):
            reader.feed(data[i : i + (1 << 16)])
        reader.close()

    return parse


def case_h() -> dict:
    parse = _hex_parser()
    tmp = Path(tempfile.mkdtemp(prefix="han-bench-"))
    try:
        hex_path, bin_path = _capture(tmp, E2E_PUSHES)
        text = hex_path.read_bytes()
        spaced = b"\n".join(bytes.fromhex(line.decode()).hex(" ").encode() for line in text.splitlines()) + b"\n"
        rates = {}
        for name, data in (("compact", text), ("spaced", spaced)):
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                parse(data)
                best = min(best, time.perf_counter() - t0)
            rates[name] = len(data) / best / 1e6
        runs = {"hex": [], "binary": []}
        for _ in range(3):
            for name, path in (("hex", hex_path), ("binary", bin_path)):
                r = _process([PY, "-m", "han", "decode", str(path), "--format", "jsonl", *KEYS])
                if r["rc"] != 0:
                    return {"error": r["stderr"].strip()}
                runs[name].append(r["cpu_s"])
        hex_cpu, bin_cpu = min(runs["hex"]), min(runs["binary"])
        return {"mb_per_s_compact": rates["compact"], "mb_per_s_spaced": rates["spaced"], "hex_cpu_s": hex_cpu,
                "binary_cpu_s": bin_cpu, "hex_over_binary": hex_cpu / bin_cpu - 1, "hex_mb": len(text) / 1e6}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_i() -> dict:
    peers = os.environ.get("HAN_BENCH_PEERS_PYTHON")
    tmp = Path(tempfile.mkdtemp(prefix="han-bench-"))
    try:
        hex_path, _bin = _capture(tmp, E2E_PUSHES)
        han_cmd = [PY, "-m", "han", "decode", str(hex_path), "--format", "jsonl", *KEYS]
        peer_cmd = [peers, str(ROOT / "benchmarks" / "peer_jsonl.py"), str(hex_path), KEYS[1], KEYS[3]] if peers else None
        han, peer = [], []
        for _ in range(3):  # alternated, so both see the same machine
            r = _process(han_cmd)
            if r["rc"] != 0:
                return {"error": r["stderr"].strip()}
            han.append(r)
            if peer_cmd:
                with open(tmp / "peer.jsonl", "w") as out:
                    r = _process(peer_cmd, out)
                if r["rc"] != 0:
                    return {"error": "dlms-cosem: " + (r["stderr"].strip().splitlines() or ["failed"])[-1]}
                with open(tmp / "peer.jsonl") as fh:
                    if sum(1 for _ in fh) != E2E_PUSHES:
                        return {"error": "dlms-cosem did not write one line per push"}
                peer.append(r)
        best = min(han, key=lambda r: r["wall_s"])
        result = {"pushes": E2E_PUSHES, "wall_s": best["wall_s"], "cpu_s": min(r["cpu_s"] for r in han),
                  "us_per_push": best["wall_s"] / E2E_PUSHES * 1e6, "peak_rss_mb": best["peak_rss_mb"]}
        if peer:
            pbest = min(r["wall_s"] for r in peer)
            result.update(peer_wall_s=pbest, peer_cpu_s=min(r["cpu_s"] for r in peer), ratio=pbest / best["wall_s"],
                          ratio_cpu=min(r["cpu_s"] for r in peer) / result["cpu_s"])
        else:
            result["peer"] = "no --peers-python: dlms-cosem not measured"
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_peers() -> dict:
    from benchmarks import peers

    return peers.measure()


CASES = {"a": case_a, "b": case_b, "c": case_c, "d": case_d, "e": case_e, "f": case_f, "g": case_g, "h": case_h,
         "i": case_i, "peers": case_peers}
TITLES = {
    "a": "(a) Kamstrup DK encrypted push, library",
    "b": "(b) Aidon plain list, library",
    "c": "(c) Austrian M-Bus 2-frame encrypted push, library",
    "d": "(d) han decode --format jsonl, 100,000 pushes",
    "e": "(e) han run --replay, 8,640 pushes into SQLite",
    "f": "(f) han decode --help start-up",
    "g": "(g) han run live path, pty -> SQLite, 200 pushes",
    "h": "(h) hex text parsing; han decode of hex vs binary",
    "i": "(i) han decode --format jsonl, 20,000 hex lines, vs dlms-cosem",
    "peers": "peers on (a)",
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def run_case(name: str, peers_python: str | None = None) -> dict:
    py = peers_python if (name == "peers" and peers_python) else PY
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if peers_python:
        env["HAN_BENCH_PEERS_PYTHON"] = peers_python
    proc = subprocess.run([py, "-m", "benchmarks.run", "--case", name], capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt(name: str, r: dict) -> str:
    if "skipped" in r or "error" in r:
        return f"{TITLES[name]:<52} {r.get('skipped') or 'ERROR: ' + r['error']}"
    if name in ("a", "b", "c"):
        return f"{TITLES[name]:<52} {r['frames_per_s']:>9,.0f} frames/s {r['us_per_frame']:>8.1f} µs/frame  peak RSS {r['peak_rss_mb']:.1f} MB"
    if name == "d":
        return f"{TITLES[name]:<52} {r['wall_s']:>9.2f} s      {r['us_per_frame']:>8.1f} µs/frame  peak RSS {r['peak_rss_mb']:.1f} MB"
    if name == "e":
        return (f"{TITLES[name]:<52} {r['cpu_s']:>9.2f} CPU s  {r['ms_cpu_per_push']:>8.3f} ms/push   peak RSS "
                f"{r['peak_rss_mb']:.1f} MB  (stored {r['stored']}, wall {r['wall_s']:.1f} s)")
    if name == "f":
        return f"{TITLES[name]:<52} {r['median_s']:>9.3f} s median (min {r['min_s']:.3f} s); heavy imports: {r['heavy_imports']}"
    if name == "h":
        return (f"{TITLES[name]:<52} {r['mb_per_s_compact']:>9,.0f} MB/s compact, {r['mb_per_s_spaced']:,.0f} MB/s spaced;"
                f" decode CPU hex {r['hex_cpu_s']:.2f} s, binary {r['binary_cpu_s']:.2f} s ({r['hex_over_binary']:+.1%})")
    if name == "i":
        line = f"{TITLES[name]:<52} {r['wall_s']:>9.2f} s      {r['us_per_push']:>8.1f} µs/push   CPU {r['cpu_s']:.2f} s"
        if "ratio" in r:
            line += (f"; dlms-cosem {r['peer_wall_s']:.2f} s (CPU {r['peer_cpu_s']:.2f} s):"
                     f" {r['ratio']:.1f}x wall, {r['ratio_cpu']:.1f}x CPU")
        else:
            line += f"; {r['peer']}"
        return line
    if name == "g":
        return f"{TITLES[name]:<52} {r['median_ms']:>9.1f} ms median, p95 {r['p95_ms']:.1f} ms, max {r['max_ms']:.1f} ms"
    lines = [f"{TITLES[name]}:"]
    for peer, pr in r.items():
        if isinstance(pr, dict) and "frames_per_s" in pr:
            lines.append(f"  {peer:<50} {pr['frames_per_s']:>9,.0f} frames/s {pr['us_per_frame']:>8.1f} µs/frame")
        else:
            lines.append(f"  {peer:<50} {pr}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    ap.add_argument("--only", help="comma-separated cases to run (default: all)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    ap.add_argument(
        "--peers-python",
        default=os.environ.get("HAN_BENCH_PEERS_PYTHON"),
        help="an interpreter that has dlms-cosem / gurux_dlms installed, for the comparison (never a dependency)",
    )
    args = ap.parse_args()
    if args.case:
        _pin()
        sys.path.insert(0, str(ROOT))
        print(json.dumps(CASES[args.case]()))
        return 0
    names = args.only.split(",") if args.only else list(CASES)
    print(f"machine: {machine()}")
    results = {}
    for name in names:
        results[name] = r = run_case(name, args.peers_python)
        print(fmt(name, r), flush=True)
    a, peers = results.get("a"), results.get("peers") or {}
    for peer, pr in peers.items():
        if a and "frames_per_s" in a and isinstance(pr, dict) and "frames_per_s" in pr:
            print(f"ratio han / {peer}: {a['frames_per_s'] / pr['frames_per_s']:.1f}x")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
