"""CRC-16/ARC, the P1 telegram checksum: the catalogue's check value, every length, real telegrams."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from decoders.link.crc import crc16_arc

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "p1_vectors.jsonl"


def _bytewise(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_the_catalogue_check_value():
    assert crc16_arc(b"123456789") == 0xBB3D
    assert crc16_arc(b"") == 0


def test_every_length_and_odd_tails_match_the_bitwise_definition():
    rng = random.Random(1)
    for n in range(0, 70):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc16_arc(data) == _bytewise(data)
        assert crc16_arc(bytearray(data)) == crc16_arc(memoryview(data)) == _bytewise(data)


def test_the_public_telegrams_carry_their_crc():
    if not VECTORS.exists():
        pytest.skip("../shared/vectors/p1_vectors.jsonl is not present")
    checked = 0
    for line in VECTORS.read_text().splitlines():
        rec = json.loads(line)
        if "NEG" in rec["id"]:
            continue
        raw = rec["telegram"].encode("latin-1")
        bang = raw.find(b"!")
        tail = raw[bang + 1 : bang + 5]
        if len(tail) == 4 and all(c in b"0123456789ABCDEFabcdef" for c in tail):
            assert crc16_arc(raw[: bang + 1]) == int(tail, 16), rec["id"]
            checked += 1
    assert checked >= 5
