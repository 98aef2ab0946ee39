"""``han decode`` reads binary captures in chunks (memory stays flat) and hex text whole, as before."""

from __future__ import annotations

import io
import json
import sys

from conftest import SAMPLES, SEED_AK, SEED_EK
from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification
from decoders.xdlms.axdr import Data
from decoders.link.hdlc import build_frame
from decoders.ciphering.security import Keys, protect
from han.cli import main
from han.inputs import CHUNK, open_input, read_input

KEYARGS = ["--key", SEED_EK.hex(), "--auth-key", SEED_AK.hex()]


def kamstrup_frames(count: int) -> bytes:
    """``count`` ciphered pushes (invocation counters 1000, 1001, ...) of a short Kamstrup-like list."""
    keys = Keys(ek=SEED_EK, ak=SEED_AK)
    out = bytearray()
    for i in range(count):
        body = axdr.structure(
            axdr.visible_string("Kamstrup_V0001"),
            axdr.octet_string(bytes((1, 1, 1, 7, 0, 255))), Data(axdr.DOUBLE_LONG_UNSIGNED, i),
            axdr.octet_string(bytes((1, 1, 96, 1, 0, 255))), axdr.octet_string(b"x" * 400),
        )  # fmt: skip
        apdu = build_data_notification(body)
        wire = protect(apdu, keys=keys, system_title=bytes.fromhex("4B414D4501A4DC52"), invocation_counter=1000 + i)
        out += build_frame(b"\xe6\xe7\x00" + wire)
    return bytes(out)


def test_a_binary_capture_comes_in_chunks(tmp_path):
    path = tmp_path / "capture.bin"
    data = kamstrup_frames(300)
    assert len(data) > 2 * CHUNK
    path.write_bytes(data)
    label, chunks = open_input(str(path))
    pieces = list(chunks)
    assert label == str(path) and len(pieces) > 2 and max(map(len, pieces)) <= CHUNK
    assert b"".join(pieces) == read_input(str(path))[1]


def test_hex_text_is_read_whole_and_parsed(tmp_path):
    text = (SAMPLES / "kamstrup_dk_radius.hex").read_text()
    path = tmp_path / "big.hex"
    path.write_text("# a comment\n" + "\n".join([text] * 200))  # more than a chunk of text
    assert path.stat().st_size > CHUNK
    assert list(open_input(str(path))[1]) == [read_input(str(path))[1]]


def test_ascii_that_is_not_hex_is_binary_as_before(tmp_path):
    path = tmp_path / "ascii.bin"
    path.write_bytes(b"0123" * CHUNK + b"not hex")
    assert list(open_input(str(path))[1]) == [path.read_bytes()] == [read_input(str(path))[1]]


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

    real = inputs._chunks

    def failing(fh, label, chunk, close):
        it = real(fh, label, chunk, close)
        yield next(it)
        raise inputs.InputError(f"cannot read {label}: Input/output error")

    monkeypatch.setattr(inputs, "_chunks", failing)
    assert main(["decode", str(path), "--format", "jsonl", *KEYARGS]) == 1
    out, err = capsys.readouterr()
    assert "cannot read" in err and "Traceback" not in err and len(out.splitlines()) > 100
