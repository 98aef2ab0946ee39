"""``han decode`` reads binary captures in chunks and hex text line by line as it comes (memory stays flat)."""

from __future__ import annotations

import io
import json
import sys

from conftest import SAMPLES, SEED_AK, SEED_EK
from han.cli import main
from han.inputs import CHUNK, open_input, parse_hex, read_input
from pushkit import kamstrup_frames

KEYARGS = ["--key", SEED_EK.hex(), "--auth-key", SEED_AK.hex()]


def test_a_binary_capture_comes_in_chunks(tmp_path):
    path = tmp_path / "capture.bin"
    data = kamstrup_frames(300)
    assert len(data) > 2 * CHUNK
    path.write_bytes(data)
    label, chunks = open_input(str(path))
    pieces = list(chunks)
    assert label == str(path) and len(pieces) > 2 and max(map(len, pieces)) <= CHUNK
    assert b"".join(pieces) == read_input(str(path))[1]


def test_hex_text_comes_in_pieces_and_parses_as_a_whole(tmp_path):
    text = (SAMPLES / "kamstrup_dk_radius.hex").read_text()
    path = tmp_path / "big.hex"
    path.write_text("# a comment\n" + "\n".join([text] * 200))  # more than a chunk of text
    assert path.stat().st_size > CHUNK
    label, chunks = open_input(str(path))
    pieces = list(chunks)
    assert len(pieces) > 1 and chunks.kind == "text" and not chunks.problems
    assert b"".join(pieces) == read_input(str(path))[1] == parse_hex(path.read_text())


def test_text_that_is_not_hex_is_reported_as_text_not_as_binary(tmp_path):
    # it used to go to the framers as binary, and the error blamed the baud rate
    path = tmp_path / "ascii.txt"
    path.write_bytes(b"0123" * CHUNK + b" not hex")
    label, chunks = open_input(str(path))
    assert b"".join(chunks) == b"" and chunks.kind == "text" and chunks.problems == [(1, "not hex text (found 'n')")]


def test_binary_with_a_text_like_start_is_binary(tmp_path):
    path = tmp_path / "capture.bin"
    data = b"OK\r\n" + kamstrup_frames(3)  # a modem's answer before the frames: not a line that carries hex
    path.write_bytes(data)
    label, chunks = open_input(str(path))
    assert b"".join(chunks) == data and chunks.kind == "binary"


def test_empty_file_and_hex_argument(tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert list(open_input(str(empty))[1]) == [b""]
    assert open_input("7E A0 7E")[0] == "argument" and list(open_input("7E A0 7E")[1]) == [bytes.fromhex("7EA07E")]


def test_stdin_in_chunks(monkeypatch):
    data = kamstrup_frames(300)

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))

    monkeypatch.setattr(sys, "stdin", Stdin)
    label, chunks = open_input("-")
    pieces = list(chunks)
    assert label == "stdin" and len(pieces) > 1 and b"".join(pieces) == data


def test_decoding_a_capture_across_chunks_loses_nothing(tmp_path, capsys):
    path = tmp_path / "capture.bin"
    path.write_bytes(kamstrup_frames(300))
    assert main(["decode", str(path), "--format", "jsonl", *KEYARGS]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(x) for x in out.splitlines()]
    assert err == "" and len(lines) == 300
    assert [x["security"]["invocation_counter"] for x in lines] == list(range(1000, 1300))


def test_a_read_error_while_streaming_is_reported(tmp_path, capsys, monkeypatch):
    path = tmp_path / "capture.bin"
    path.write_bytes(kamstrup_frames(300))
    import han.inputs as inputs

    real = inputs.Chunks._reads

    def failing(self):
        it = real(self)
        yield next(it)
        raise inputs.InputError(f"cannot read {self.label}: Input/output error")

    monkeypatch.setattr(inputs.Chunks, "_reads", failing)
    assert main(["decode", str(path), "--format", "jsonl", *KEYARGS]) == 1
    out, err = capsys.readouterr()
    assert "cannot read" in err and "Traceback" not in err and len(out.splitlines()) > 100
