"""``han decode`` as a user runs it: inputs, formats, exit status, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import SAMPLES, SEED_AK, SEED_EK
from han.cli import main

KEYARGS = ["--key", SEED_EK.hex(), "--auth-key", SEED_AK.hex()]
SAMPLE = str(SAMPLES / "kamstrup_dk_radius.hex")


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_table(capsys):
    code, out, err = run(capsys, "decode", SAMPLE, *KEYARGS)
    assert code == 0 and err == ""
    assert "Kamstrup_V0001" in out and "866636 Wh" in out and "1.00" in out and "KAM" in out


def test_json_fields(capsys):
    code, out, _ = run(capsys, "decode", SAMPLE, *KEYARGS, "--format", "json")
    (push,) = json.loads(out)
    assert push["list_id"] == "Kamstrup_V0001" and push["timestamp"] == "2020-01-07T14:47:20+01:00"
    assert push["timestamp_utc"] == "2020-01-07T13:47:20+00:00"
    assert push["security"] == {
        "system_title": "4B414D4501A4DC52",
        "manufacturer": "KAM",
        "invocation_counter": 493793,
        "security_control": 0x30,
        "mode": "authenticated+encrypted",
        "verified": True,
    }
    regs = {r["obis"]: r for r in push["registers"]}
    assert len(push["registers"]) == 33
    assert push["registers"][0]["obis"] == "1.1.0.2.129.255" and push["registers"][0]["value"] == "Kamstrup_V0001"
    assert regs["1.1.1.8.0.255"] == {
        "obis": "1.1.1.8.0.255",
        "name": "Active energy A14",
        "value": 866636,
        "unit": "Wh",
        "raw": 866636,
        "type": "double_long_unsigned",
        "scaler": 0,
        "position": 2,
    }
    assert regs["1.1.31.7.0.255"]["scaler"] == -2 and regs["1.1.13.7.0.255"]["value"] == 1.0


def test_keys_from_environment(capsys, monkeypatch):
    monkeypatch.setenv("HAN_KEY", SEED_EK.hex())
    monkeypatch.setenv("HAN_AUTH_KEY", SEED_AK.hex())
    code, out, _ = run(capsys, "decode", SAMPLE, "-f", "jsonl")
    assert code == 0 and json.loads(out)["registers"][1]["value"] == 866636


def test_jsonl_many_frames_one_stream(capsys, tmp_path):
    data = bytes.fromhex((SAMPLES / "kamstrup_dk_radius.hex").read_text())
    path = tmp_path / "capture.bin"
    path.write_bytes(b"noise" + data * 3)
    code, out, err = run(capsys, "decode", str(path), *KEYARGS, "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 3
    assert "note:" in err and "not part of any HDLC frame" in err


def test_hex_notations(capsys):
    text = (SAMPLES / "kamstrup_dk_radius.hex").read_text().split()
    for joined in (" ".join(text), ":".join(text), ", ".join("0x" + b for b in text), "".join(text).lower()):
        code, out, _ = run(capsys, "decode", joined, *KEYARGS, "-f", "jsonl")
        assert code == 0 and len(out.splitlines()) == 1


def test_stdin(capsys, monkeypatch):
    data = (SAMPLES / "kamstrup_dk_radius.hex").read_text()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    code, out, _ = run(capsys, "decode", "-", *KEYARGS, "-f", "jsonl")
    assert code == 0 and json.loads(out)["list_id"] == "Kamstrup_V0001"


def test_csv(capsys):
    code, out, _ = run(capsys, "decode", SAMPLE, *KEYARGS, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 33
    assert rows[0]["obis"] == "1.1.0.2.129.255" and rows[0]["value"] == "Kamstrup_V0001"
    assert rows[1]["obis"] == "1.1.1.8.0.255" and rows[1]["value"] == "866636" and rows[1]["unit"] == "Wh"


def test_xml_matches_the_seed_translator_view(capsys):
    code, out, _ = run(capsys, "decode", SAMPLE, *KEYARGS, "--format", "xml")
    assert code == 0
    root = ET.fromstring(out)
    assert root.tag == "DataNotification"
    assert root.find("LongInvokeIdAndPriority").get("Value") == "00000000"
    assert root.find("DateTime").get("Value") == "07E40107020E2F14FF800000"
    (struct,) = root.find("NotificationBody/DataValue")
    assert struct.tag == "Structure" and struct.get("Qty") == "41"
    leaves = [(e.tag, e.get("Value")) for e in struct]
    assert leaves[:4] == [
        ("String", "Kamstrup_V0001"),
        ("OctetString", "0101010800FF"),
        ("UInt32", "000D394C"),
        ("OctetString", "0101020800FF"),
    ]
    assert ("UInt16", "00E0") in leaves and leaves[-1] == ("UInt32", "0004691B")
    assert "<!--1.1.1.8.0.255-->" in out and "<!--2020-01-07 14:47:20-->" in out


def test_plain_apdu_input(capsys):
    from decoders.xdlms.apdu import build_data_notification
    from decoders.xdlms import axdr

    apdu = build_data_notification(axdr.structure(axdr.octet_string(bytes.fromhex("0100010700FF")), axdr.Data(6, 7)))
    code, out, _ = run(capsys, "decode", apdu.hex(), "-f", "jsonl")
    assert code == 0 and json.loads(out)["registers"][0]["value"] == 7


@pytest.mark.parametrize(
    "args,fragment",
    [
        ([SAMPLE], "needs the encryption key"),
        ([SAMPLE, "--key", SEED_EK.hex()], "authentication key"),
        ([SAMPLE, "--key", SEED_EK.hex(), "--auth-key", "00" * 16], "tag mismatch"),
        (["7E A0 0A 41 03 13 00 00 7E"], "framing:"),
        (["not hex at all"], "neither an existing file nor hex text"),
        (["abc"], "odd number of hex digits"),
        (["DEADBEEF"], "not part of any HDLC frame"),
    ],
)
def test_failures_are_one_line(capsys, args, fragment):
    code, out, err = run(capsys, "decode", *args)
    assert code == 1 and fragment in err
    assert all(line.startswith("han decode:") for line in err.strip().splitlines())


def test_bad_key_is_usage_error_without_echoing_it(capsys):
    code, _, err = run(capsys, "decode", SAMPLE, "--key", "12345")
    assert code == 2 and "12345" not in err and "--key" in err


def test_keys_never_printed(capsys):
    for fmt in ("table", "json", "csv", "xml"):
        _, out, err = run(capsys, "decode", SAMPLE, *KEYARGS, "-f", fmt)
        for k in (SEED_EK.hex(), SEED_AK.hex()):
            assert k.lower() not in (out + err).lower()


def test_console_script_and_help():
    exe = [sys.executable, "-m", "han"]
    res = subprocess.run(exe + ["decode", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--auth-key" in res.stdout
    res = subprocess.run(exe + ["decode", "zz"], capture_output=True, text=True)
    assert res.returncode == 1 and "Traceback" not in res.stderr
