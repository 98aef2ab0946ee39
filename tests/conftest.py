"""Shared test helpers.

The reference vectors live outside the repository in ``../shared/vectors``
(override with ``HAN_VECTORS_DIR``).  They are read at test time and never
copied here; tests that need them skip cleanly when the folder is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# keyleak: every output of the run is searched for the test keys (tests/keyleak.py);
# pytester: tests/app/test_keyleak_check.py runs a small session of its own to show a leak fails it
pytest_plugins = ["keyleak", "pytester"]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
VECTORS_DIR = Path(os.environ.get("HAN_VECTORS_DIR", ROOT.parent / "shared" / "vectors"))


def load_vectors(name: str) -> list[dict]:
    """All records of ``name`` (e.g. ``real_vectors.jsonl``), or [] when absent."""
    path = VECTORS_DIR / name
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def require_vectors(name: str) -> list[dict]:
    """Like :func:`load_vectors` but skips the calling test when the file is absent."""
    records = load_vectors(name)
    if not records:
        pytest.skip(f"shared vectors not available ({VECTORS_DIR / name} is absent)")
    return records


SEED_EK = bytes.fromhex("5AD84121D9D20B364B7A11F3C1B5827F")
SEED_AK = bytes.fromhex("AFB3F93E3E7204EDB3C27F96DBD51AE0")


@pytest.fixture
def seed_frame() -> bytes:
    """The seed document's Kamstrup push (published with its keys; bundled in samples/)."""
    return bytes.fromhex((SAMPLES / "kamstrup_dk_radius.hex").read_text())


@pytest.fixture
def pty(tmp_path):
    """A real pseudo terminal standing in for the meter's serial port (see daemonkit.Pty)."""
    from daemonkit import Pty

    p = Pty(str(tmp_path / "ttyHAN"))
    yield p
    p.close()
