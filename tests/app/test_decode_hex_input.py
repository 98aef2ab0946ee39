"""``han decode`` input edges: labelled hex lines, odd digit counts with their line, live standard input."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

import pytest

from conftest import ROOT, SAMPLES, SEED_AK, SEED_EK
from han.cli import main
from han.inputs import CHUNK, HexReader, open_input, parse_hex, read_input
from pushkit import kamstrup_frames

KEYARGS = ["--key", SEED_EK.hex(), "--auth-key", SEED_AK.hex()]
FRAME = bytes.fromhex((SAMPLES / "kamstrup_dk_radius.hex").read_text())
SPACED = FRAME.hex(" ").upper()


def read(text: bytes, pieces: int = 1) -> tuple[bytes, list, list]:
    """The reader fed ``text`` in ``pieces`` parts (split anywhere): (bytes, problems, skipped lines)."""
    reader = HexReader()
    step = max(1, -(-len(text) // pieces))
    out = b"".join(reader.feed(text[i : i + step]) for i in range(0, len(text), step)) + reader.close()
    return out, reader.problems, reader.skipped


LABELLED = [
    "RX: {h}",
    "RX:{s}{h}",
    "TX -> {h}",
    "12:00:01.123 > {h}",
    "12:00:01 {h}",
    "12:00:01 <- {c}",
    "[2024-01-01 12:00:01] <- {c}",
    "2024-01-01 12:00:01 {c}",
    "2024-01-01T12:00:01.5Z RX {h}",
    "RX1: {h}",
    "RX1 {c}",
    "<- {x}",
    "Received frame: {h}   # with a comment",
    "\t[12:00:01.123] RX | {h}",
]


@pytest.mark.parametrize("form", LABELLED)
def test_labelled_lines_read_as_hex_and_their_digits_are_not(form):
    line = form.format(h=SPACED, s="\t", c=FRAME.hex(), x="0x" + " 0x".join(FRAME.hex(" ").split()))
    text = ("\n".join([line] * 3) + "\n").encode()
    for pieces in (1, 7, len(text)):  # whole, in parts, byte by byte (as a pipe may deliver it)
        assert read(text, pieces) == (FRAME * 3, [], [])


@pytest.mark.parametrize(
    "text",
    [
        SPACED,
        FRAME.hex(),
        FRAME.hex(":"),
        FRAME.hex("-"),
        FRAME.hex(","),
        "0x" + ", 0x".join(FRAME.hex(" ").split()),
        "# a comment\n" + FRAME.hex(" ", 8).replace(" ", "\n"),
        FRAME.hex()[:301] + "\n" + FRAME.hex()[301:],  # a byte split over a line break
        "\n".join(FRAME.hex()[i : i + 75] for i in range(0, len(FRAME.hex()), 75)),  # wrapped at an odd width
    ],
)
def test_plain_hex_reads_as_before(text):
    assert read(text.encode()) == (FRAME, [], []) == (read(text.encode(), 9)[0], [], [])
    assert parse_hex(text) == FRAME


def test_a_line_of_hex_then_text_is_an_error_not_a_label():
    out, problems, _ = read(b"7E A1 E9 4G 03\n" + SPACED.encode() + b"\n")
    assert out == FRAME and problems == [(1, "not hex text (found 'G')")]


def test_a_label_with_hex_words_after_the_first_is_named():
    out, problems, _ = read(b"RX 12 bytes: 7E A1\n")
    assert out == b"" and problems[0][0] == 1 and "after the label 'RX'" in problems[0][1]


def test_lines_with_a_label_and_no_hex_are_skipped_and_counted():
    text = f"logging started\nRX: {SPACED}\nRX: (timeout)\nRX: {SPACED}\n".encode()
    assert read(text) == (FRAME * 2, [], [1, 3])


def test_an_odd_labelled_line_is_named_and_the_others_decode(tmp_path, capsys):
    path = tmp_path / "log.txt"
    lines = [f"RX: {SPACED}", f"RX: {SPACED[:-1]}", f"RX: {SPACED}"]  # line 2 lost a digit
    path.write_text("\n".join(lines) + "\n")
    assert main(["decode", str(path), "-f", "jsonl", *KEYARGS]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2
    assert err.strip().splitlines()[0] == (
        f"han decode: {path}: line 2: odd number of hex digits ({2 * len(FRAME) - 1}) after the label 'RX:':"
        " a digit is missing"
    )
    assert "Traceback" not in err


def test_an_odd_plain_file_names_the_line(tmp_path, capsys):
    path = tmp_path / "frames.hex"
    hexes = [FRAME.hex()] * 4
    hexes[2] = hexes[2][:100] + hexes[2][101:]
    path.write_text("\n".join(hexes) + "\n")
    assert main(["decode", str(path), "-f", "jsonl", *KEYARGS]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) >= 2
    assert f"han decode: {path}: line 3: odd number of hex digits ({2 * len(FRAME) - 1}): a digit is missing" in err
    assert "baud" not in err.split("line 3")[0]


def test_an_odd_argument_still_says_so(capsys):
    assert main(["decode", "7E A1 E"]) == 1
    assert "odd number of hex digits (5): a digit is missing" in capsys.readouterr().err


def test_a_labelled_capture_decodes_like_the_binary_one(tmp_path, capsys):
    frames = split_frames(kamstrup_frames(50))
    labelled = tmp_path / "log.txt"
    labelled.write_text("".join(f"12:00:{i % 60:02d}.{i:03d} RX <- {f.hex(' ')}\n" for i, f in enumerate(frames)))
    binary = tmp_path / "capture.bin"
    binary.write_bytes(b"".join(frames))
    outs = []
    for path in (labelled, binary):
        assert main(["decode", str(path), "-f", "jsonl", *KEYARGS]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        outs.append(out)
    assert outs[0] == outs[1] and len(outs[0].splitlines()) == 50


def test_text_that_is_not_hex_is_not_blamed_on_the_baud_rate(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("12:00:01 the meter said hello\n")
    assert main(["decode", str(path)]) == 1
    err = capsys.readouterr().err
    assert "baud" not in err and "line 1" in err


def test_a_big_labelled_file_comes_in_pieces(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("".join(f"RX: {SPACED}\n" for _ in range(200)))
    assert path.stat().st_size > 2 * CHUNK
    label, chunks = open_input(str(path))
    pieces = list(chunks)
    assert len(pieces) > 2 and b"".join(pieces) == FRAME * 200 == read_input(str(path))[1]


def split_frames(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = ((data[i + 1] & 7) << 8 | data[i + 2]) + 2
        out.append(data[i : i + n])
        i += n
    return out


# -- live standard input -------------------------------------------------------------------
def _live(chunks: list[bytes]) -> list[bytes]:
    """Write each chunk to a real `han decode -` process and read one JSON line back before the next."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "han", "decode", "-", "-f", "jsonl", *KEYARGS]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    got = []
    try:
        for chunk in chunks:
            for i in range(0, len(chunk), 200):  # slowly, in pieces
                proc.stdin.write(chunk[i : i + 200])
                proc.stdin.flush()
                time.sleep(0.01)
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "no output before the end of input: standard input is not decoded live"
            got.append(proc.stdout.readline())
        proc.stdin.close()
        assert proc.stdout.read() == b""
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return got


@pytest.mark.parametrize("kind", ["labelled", "plain", "binary"])
def test_stdin_is_decoded_as_it_arrives(kind):
    frames = split_frames(kamstrup_frames(3))
    if kind == "labelled":
        chunks = [f"12:00:0{i}.000 RX: {f.hex(' ')}\n".encode() for i, f in enumerate(frames)]
    elif kind == "plain":
        chunks = [f"{f.hex()}\n".encode() for f in frames]
    else:
        chunks = frames
    got = [json.loads(line) for line in _live(chunks)]
    assert [x["security"]["invocation_counter"] for x in got] == [1000, 1001, 1002]
