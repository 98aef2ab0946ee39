"""``han decode`` options for meters (--explain, --country, --profile, --timezone, --multiplier, --ct-ratio,
--transport, --summary) and ``han profiles``, as a user runs them."""

from __future__ import annotations

import json

import pytest

from conftest import load_vectors
from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime
from decoders.link.hdlc import build_frame
from decoders.link.mbus import build_frames as mbus_frames
from decoders.ciphering.security import Keys, protect
from han.cli import main
from obis.code import Obis
from obis.profiles import PROFILES
from vectorcheck import country_of, is_push_vector

EK = bytes(range(0x30, 0x40))
OTHER = bytes.fromhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF")
ST = b"KFMg\x10\x00\x00\x23"
DT = CosemDateTime.from_bytes(bytes.fromhex("07E807010110000000FF8880"))  # 2024-07-01 16:00, deviation -120, DST


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def obis(text: str) -> Data:
    return axdr.octet_string(bytes(Obis.parse(text)))


def austrian_apdu(ic: int = 1, key: bytes = EK) -> bytes:
    def triple(o, v, s, u):
        return [obis(o), Data(axdr.LONG_UNSIGNED if v < 65536 else axdr.DOUBLE_LONG_UNSIGNED, v),
                axdr.structure(Data(axdr.INTEGER, s), Data(axdr.ENUM, u))]  # fmt: skip

    body = axdr.structure(
        axdr.octet_string(DT.raw),
        *triple("1.0.1.8.0.255", 123456, 0, 30),
        *triple("1.0.32.7.0.255", 2301, -1, 35),
        *triple("1.0.31.7.0.255", 517, -2, 33),
        axdr.octet_string(b"TEST00000042"),
    )
    plain = build_data_notification(body, invoke_id_and_priority=0x80000000 | ic, datetime=DT)
    return protect(plain, keys=Keys(ek=key), system_title=ST, invocation_counter=ic, security_control=0x20)


def austrian_mbus(ic: int = 1, key: bytes = EK) -> bytes:
    return b"".join(mbus_frames(austrian_apdu(ic, key), max_data=80))


def nve_frame(energy: int = 1000) -> bytes:
    body = axdr.structure(
        axdr.visible_string("Kamstrup_V0001"),
        obis("1.1.0.0.5.255"), axdr.visible_string("9990000000000017"),
        obis("1.1.31.7.0.255"), Data(axdr.DOUBLE_LONG_UNSIGNED, 655),
        obis("1.1.1.8.0.255"), Data(axdr.DOUBLE_LONG_UNSIGNED, energy),
    )  # fmt: skip
    when = CosemDateTime.from_bytes(bytes.fromhex("07E8010101100000FF800000"))
    return build_frame(b"\xe6\xe7\x00" + build_data_notification(body, datetime=when), dest=b"\x2b", src=b"\x21")


def regs(out: str) -> dict:
    (push,) = json.loads(out)
    return {r["obis"]: r for r in push["registers"]}


# -- han profiles ------------------------------------------------------------------------------
def test_profiles_lists_every_profile(capsys):
    code, out, _ = run(capsys, "profiles")
    assert code == 0 and all(p.name in out for p in PROFILES)
    assert max(len(line) for line in out.splitlines()) <= 80


def test_profiles_shows_one(capsys):
    code, out, _ = run(capsys, "profiles", "kamstrup_no")
    assert code == 0 and "1.1.1.8.0.255" in out and "x10^1 Wh" in out and "NO" in out
    code, _, err = run(capsys, "profiles", "nope")
    assert code == 2 and "unknown profile" in err


# -- country, profile, time zone, multipliers -----------------------------------------------------
def test_country_decides_kamstrup_energy(capsys):
    frame = nve_frame(1000).hex()
    _, out, _ = run(capsys, "decode", frame, "-f", "json")
    assert regs(out)["1.1.1.8.0.255"]["value"] == 10000  # Norway by default: 10 Wh
    _, out, _ = run(capsys, "decode", frame, "-f", "json", "--country", "se")
    r = regs(out)["1.1.1.8.0.255"]
    assert (r["value"], r["unit"]) == (1000, "Wh")
    _, out, _ = run(capsys, "decode", frame, "-f", "json", "--country", "FI")
    (push,) = json.loads(out)
    assert push["profile"] == "kamstrup_nve" and regs(out)["1.1.1.8.0.255"]["unit"] is None


def test_profile_option(capsys):
    _, out, _ = run(capsys, "decode", nve_frame(1000).hex(), "-f", "json", "--profile", "kamstrup_se", "--country", "NO")
    (push,) = json.loads(out)
    assert push["profile"] == "kamstrup_se" and regs(out)["1.1.1.8.0.255"]["value"] == 1000


def test_timezone_option(capsys):
    _, out, _ = run(capsys, "decode", nve_frame().hex(), "-f", "json")
    (push,) = json.loads(out)
    assert push["timestamp"] == "2024-01-01T16:00:00+01:00" and push["timestamp_utc"] == "2024-01-01T15:00:00+00:00"
    _, out, _ = run(capsys, "decode", nve_frame().hex(), "-f", "json", "--timezone", "Europe/London")
    assert json.loads(out)[0]["timestamp"] == "2024-01-01T16:00:00+00:00"


def test_multiplier_and_ct_ratio(capsys):
    frame = nve_frame(1000).hex()
    _, out, _ = run(capsys, "decode", frame, "-f", "json", "--country", "SE", "--ct-ratio", "200/5")
    r = regs(out)
    assert r["1.1.31.7.0.255"]["value"] == pytest.approx(262.0) and r["1.1.1.8.0.255"]["value"] == 40000
    assert r["1.1.31.7.0.255"]["raw"] == 655
    _, out, _ = run(capsys, "decode", frame, "-f", "json", "--country", "SE", "--multiplier", "1-1:31.7.0=10")
    r = regs(out)
    assert r["1.1.31.7.0.255"]["value"] == pytest.approx(65.5) and r["1.1.1.8.0.255"]["value"] == 1000


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--country", "NOR"], "ISO 3166"),
        (["--country", "XX"], "ISO 3166"),
        (["--timezone", "Mars/Olympus_Mons"], "time zone"),
        (["--multiplier", "1.1.31.7.0.255"], "OBIS=FACTOR"),
        (["--multiplier", "nonsense=2"], "OBIS=FACTOR"),
        (["--ct-ratio", "0"], "positive ratio"),
        (["--ct-ratio", "5/0"], "positive ratio"),
        (["--profile", "nope"], "unknown profile"),
        (["--explain", "--format", "json"], "--explain"),
    ],
)
def test_usage_errors(capsys, args, fragment):
    code, _, err = run(capsys, "decode", nve_frame().hex(), *args)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def test_unknown_transport_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        main(["decode", nve_frame().hex(), "--transport", "x25"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


# -- transports through the CLI ------------------------------------------------------------------
def test_mbus_push(capsys):
    code, out, err = run(capsys, "decode", austrian_mbus().hex(), "--key", EK.hex(), "--country", "AT")
    assert code == 0 and err == ""
    assert "profile at_evn" in out and "230.1 V" in out and "5.17 A" in out and "2024-07-01T16:00:00+02:00" in out


def test_forced_transport(capsys):
    code, _, err = run(capsys, "decode", austrian_mbus().hex(), "--key", EK.hex(), "--transport", "hdlc")
    assert code == 1 and "not part of any HDLC frame" in err


# -- --explain -----------------------------------------------------------------------------------
def test_explain_every_layer(capsys):
    code, out, _ = run(capsys, "decode", austrian_mbus().hex(), "--key", EK.hex(), "--explain")
    assert code == 0
    for fragment in (
        "M-Bus long frame 1 of",
        "CI 0x00: DLMS segment 0",
        "STSAP 0x01, DTSAP 0x67",
        "checksum: ok",
        '"KFM" = Kaifa',
        "security control 0x20",
        "invocation counter 1",
        "ciphertext",
        "long-invoke-id-and-priority",
        "high priority",
        "deviation -120 min",
        "Notification body (A-XDR)",
        "OBIS 1.0.32.7.0.255 (Voltage L1)",
        "Voltage L1 = 230.1 V",
        "profile: at_evn",
    ):
        assert fragment in " ".join(out.split()), fragment
    assert max(len(line) for line in out.splitlines()) <= 80


def test_explain_hdlc_and_segment_headers(capsys, seed_frame):
    from conftest import SEED_AK, SEED_EK

    code, out, _ = run(capsys, "decode", seed_frame.hex(), "--key", SEED_EK.hex(), "--auth-key", SEED_AK.hex(), "--explain")
    assert code == 0
    for fragment in ("opening flag", "format: frame type 3", "destination (client) address 32", "source (server) address 1",
                     "control 0x13: UI frame", "HCS (header checksum): ok", "LLC: destination LSAP E6", "FCS (frame checksum): ok",
                     '"KAM" = Kamstrup', "authenticated and encrypted", "authentication tag (12 bytes): verified",
                     'visible-string "Kamstrup_V0001"', "Active energy A14 = 866636 Wh"):  # fmt: skip
        assert fragment in " ".join(out.split()), fragment
    assert max(len(line) for line in out.splitlines()) <= 80


def test_explain_failed_frames_up_to_the_failing_layer(capsys):
    frame = bytearray(build_frame(b"\xe6\xe7\x00" + austrian_apdu()))
    frame[30] ^= 0x01
    data = austrian_mbus().hex() + bytes(frame).hex()
    code, out, err = run(capsys, "decode", data, "--explain", "--transport", "mbus")
    assert code == 1
    assert "FAILED (security: no key)" in out and "M-Bus long frame" in out and "security control 0x20" in out
    assert "✗ failed here" in out and "--key" in out
    code, out, _ = run(capsys, "decode", bytes(frame).hex(), "--key", EK.hex(), "--explain")
    assert "FAILED (framing: bad checksum)" in out and "FCS (frame checksum): WRONG" in out
    assert max(len(line) for line in out.splitlines()) <= 80


# -- summary --------------------------------------------------------------------------------------
def capture() -> bytes:
    good = [austrian_mbus(ic) for ic in (1, 2, 3)]
    corrupt = bytearray(austrian_mbus(4))
    corrupt[50] ^= 0x40
    return good[0] + b"\r\ndebug\r\n" + bytes(corrupt) + good[1] + austrian_mbus(5, OTHER) + good[2]


def test_summary_tells_a_wrong_key_from_a_bad_cable(capsys, tmp_path):
    path = tmp_path / "capture.bin"
    path.write_bytes(capture())
    code, out, err = run(capsys, "decode", str(path), "--key", EK.hex())
    assert code == 1 and out.count("push ") == 3
    (summary,) = [line for line in err.splitlines() if line.startswith("summary:")]
    assert "5 frames: 3 decoded, 1 bad checksum, 1 wrong key?" in summary and "noise" in summary
    hints = [line for line in err.splitlines() if line.startswith("hint:")]
    assert any("cable" in h for h in hints) and any("--key is wrong" in h for h in hints)


def test_summary_only_when_asked_for_other_formats(capsys, tmp_path):
    path = tmp_path / "capture.bin"
    path.write_bytes(capture())
    _, out, err = run(capsys, "decode", str(path), "--key", EK.hex(), "-f", "jsonl")
    assert "summary:" not in err and len(out.splitlines()) == 3
    _, _, err = run(capsys, "decode", str(path), "--key", EK.hex(), "-f", "jsonl", "--summary")
    assert "summary: 5 frames" in err


def test_summary_counts_missing_keys_and_unknown_lists(capsys):
    unknown = build_frame(b"\xe6\xe7\x00" + build_data_notification(axdr.structure(Data(6, 1), Data(6, 2))))
    code, _, err = run(capsys, "decode", (austrian_mbus() + austrian_mbus(2)).hex(), "--summary")
    assert "2 frames: 2 no key" in err and "give --key" in err
    code, _, err = run(capsys, "decode", (unknown + unknown).hex())
    assert code == 0 and "2 frames: 2 unknown list" in err and "han profiles" in err


def test_no_summary_for_a_single_frame_table(capsys):
    code, _, err = run(capsys, "decode", austrian_mbus().hex(), "--key", EK.hex())
    assert code == 0 and err == ""


# -- the whole corpus through han decode ---------------------------------------------------------
VECTORS = [v for v in load_vectors("real_vectors.jsonl") if is_push_vector(v)]


@pytest.mark.skipif(not VECTORS, reason="shared vectors not available")
@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"])
def test_corpus_through_the_cli(capsys, vector):
    args = ["decode", vector["hex"]]
    keys = vector["keys"] or {}
    if keys.get("ek"):
        args += ["--key", keys["ek"]]
    if keys.get("ak"):
        args += ["--auth-key", keys["ak"]]
    if country_of(vector):
        args += ["--country", country_of(vector)]
    code, out, err = run(capsys, *args, "-f", "json")
    negative = vector.get("expect_framing_failure") or vector.get("expect_decrypt_failure")
    if negative or (vector["keys"] is None and vector["expected"].get("security")):
        assert code == 1 and json.loads(out) == []
        reason = "frame checksum" if vector.get("expect_framing_failure") else ("tag mismatch" if negative else "--key")
        assert reason in err
    else:
        assert code == 0 and err == ""
        (push,) = json.loads(out)
        want = {k: e["value"] for k, e in vector["expected"].get("scaled", {}).items()}
        got = {r["obis"]: r["value"] for r in push["registers"] if r["obis"] in want}
        assert got == pytest.approx(want)
    code, out, _ = run(capsys, *args, "--explain")
    assert out and max(len(line) for line in out.splitlines()) <= 80


def test_dsmr_push_in_every_format(capsys):
    from decoders.xdlms.dsmr import crc16_arc

    telegram = b"/ABC5\\2X\r\n\r\n1-3:0.2.8(42)\r\n0-0:1.0.0(240101120000W)\r\n1-0:1.8.0(000123.456*kWh)\r\n!"
    telegram += b"%04X\r\n" % crc16_arc(telegram)
    keys = Keys(ek=EK, ak=OTHER)
    wire = protect(telegram, keys=keys, system_title=b"SAGgp\x00\x00\x01", invocation_counter=5)
    base = ["decode", wire.hex(), "--key", EK.hex(), "--auth-key", OTHER.hex(), "--country", "LU"]
    _, out, _ = run(capsys, *base, "-f", "json")
    (push,) = json.loads(out)
    assert push["profile"] == "dsmr" and push["timestamp"] == "2024-01-01T12:00:00+01:00"
    r = {x["obis"]: x for x in push["registers"]}["1.0.1.8.0.255"]
    assert (r["value"], r["unit"], r["raw"]) == (123.456, "kWh", "000123.456*kWh")
    for fmt in ("table", "csv", "xml", "jsonl"):
        code, out, err = run(capsys, *base, "-f", fmt)
        assert code == 0 and "123.456" in out and err == "", fmt
    code, out, _ = run(capsys, *base, "--explain")
    assert code == 0 and "P1 text telegram (the plaintext)" in out and "CRC" in out
