"""``han run`` on a brand-new state directory whose disk is completely full: exit 2 with one clear line.

A real tmpfs filled to the last byte (and one without a free inode, where even the directory
cannot be made).  The line names the state directory and the cause; no traceback.  Skips
without permission to mount.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import crash_sweep

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def full_tmpfs(tmp_path):
    problem = crash_sweep.mount_problem()
    if problem:
        pytest.skip(problem)
    mounted = []

    def make(options: str) -> Path:
        d = tmp_path / f"disk{len(mounted)}"
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)], check=True, capture_output=True)
        mounted.append(d)
        try:
            with open(d / "ballast", "wb", buffering=0) as fh:
                while True:
                    fh.write(b"\0" * 4096)
        except OSError:
            pass
        return d

    yield make
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def han_run(state: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "han", "run", "--replay", str(ROOT / "samples" / "kamstrup_dk_radius.hex"),
           "--state-dir", str(state), "--sink", f"jsonl:{tmp_path / 'out.jsonl'}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def test_a_full_disk_at_the_first_start_exits_2_naming_the_state_directory_and_the_cause(tmp_path, full_tmpfs):
    state = full_tmpfs("size=256k") / "state"
    out = han_run(state, tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith("han run: journal ")
    assert f"the state directory {state}" in lines[0] and "the disk is full" in lines[0], lines[0]


def test_no_room_for_the_state_directory_itself_exits_2_in_one_line(tmp_path, full_tmpfs):
    state = full_tmpfs("size=256k,nr_inodes=2") / "state"
    out = han_run(state, tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [f"han run: state directory {state}: No space left on device"], out.stderr
