"""han diagnose: the seed forum log, the shared fixture, and made-up exchanges with keys.

The made-up exchanges are built in ``diagnosekit`` with the project's own
encoders and keys derived from fixed strings (no published key or vector is copied).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SAMPLES, require_vectors
from decoders.association import hls
from decoders.association.acse import Aare, ApplicationContext, Diagnostic, MechanismName
from decoders.xdlms.error_pdus import ConfirmedServiceError, ExceptionResponse
from decoders.ciphering.security import Keys, protect
from diagnosekit import AK, CLIENT_ST, DK, EK, KEYS, SECRET, SERVER_ST, STOC, _k, as_hdlc_log, exchange, hdlc
from han.cli import main
from han.diagnose import NothingToDiagnose, Secrets, diagnose
from han.logscan import scan_log

SEED_LOG = SAMPLES / "gurux_forum_16477.log"


def codes(d) -> list[str]:
    return [f.code for f in d.findings]


# -- the seed forum log ----------------------------------------------------------------


def test_seed_log_diagnosis():
    d = diagnose(SEED_LOG.read_text())
    a = d.association
    assert [p.name for p in d.pdus] == ["AARQ", "AARE", "ded-action-request", "confirmed-service-error"]
    assert [p.sender for p in d.pdus] == ["client", "server", "client", "server"]
    assert a["application_context"]["id"] == 3
    assert a["mechanism"]["id"] == 2
    assert a["client_system_title"]["text"] == "ABCDEFGH" and a["client_system_title"]["placeholder"]
    assert a["server_system_title"]["manufacturer"] == "GOE"
    assert a["dedicated_key"] == {
        "proposed": True,
        "length": 16,
        "how": "inferred from the ciphered InitiateRequest's length, 31 bytes",
    }
    assert a["hls"]["state"] == "failed"
    assert a["hls"]["pass3"] == {
        "pdu": 3,
        "tag": "D3",
        "apdu": "ded-action-request",
        "key": "dedicated",
        "invocation_counter": 3,
        "f_length": 16,
    }
    for code in (
        "placeholder_system_title",
        "mechanism_high",
        "dedicated_key_proposed",
        "ded_before_hls",
        "deciphering_error",
    ):
        assert code in codes(d)
    assert "f_length_mismatch" not in codes(d)  # 16 bytes is what mechanism 2 gives
    assert "write / application-reference / deciphering-error" in d.pdus[3].summary
    assert "dedicated key" in d.cause and "D3" in d.cause and "pass 3" in d.cause
    fixes = " ".join(d.fixes)
    assert "glo-action-request (CB)" in fixes and "global unicast key" in fixes
    assert "do not propose a dedicated key" in fixes
    assert "HighGMAC (mechanism 5)" in fixes
    assert not d.keys_used


def test_seed_log_cli_text(capsys):
    assert main(["diagnose", str(SEED_LOG)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out
    assert out.index("#1 (line 2) client -> server: AARQ") < out.index("#4 (line 7) server -> client")
    assert 'mechanism            2 = HLS "High"' in out
    assert "a 16-byte dedicated key is proposed" in out
    assert "HLS pass 3: reply_to_HLS_authentication(f(StoC)) as ded-action-request (D3)" in out
    assert "deciphering-error" in out
    assert "Likely cause" in out and "Fix" in out and "HighGMAC (mechanism 5)" in out


def test_seed_log_cli_json_from_stdin(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(SEED_LOG.read_text()))
    assert main(["diagnose", "-", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["association"]["mechanism"]["id"] == 2
    assert data["association"]["hls"]["pass3"]["tag"] == "D3"
    assert {"ded_before_hls", "deciphering_error"} <= {f["code"] for f in data["findings"]}
    assert data["pdus"][3]["tag"] == "0E" and data["fixes"]


def test_shared_fixture_frames_give_the_same_diagnosis():
    record = next(v for v in require_vectors("security_vectors.jsonl") if v["category"] == "diagnose_fixture")
    d = diagnose("\n".join(record["inputs"]["frames"]))  # unspaced, one frame per line
    expected = record["expected"]
    assert "all HCS/FCS valid" in expected["hdlc"] and not [e for e in d.events if e.problem]
    assert "client 61 (48) -> server 03 (1)" in d.pdus[0].link  # "client SAP 0x30 (48), server logical 1"
    assert "mech 2" in expected["aarq"] and d.association["mechanism"]["id"] == 2
    assert "16-byte dedicated key" in expected["aarq"] and d.association["dedicated_key"]["length"] == 16
    assert "D3" in expected["pass3"] and d.association["hls"]["pass3"]["tag"] == "D3"
    assert "deciphering-error" in expected["reply"] and "deciphering_error" in codes(d)
    assert "GUEK" in expected["diagnosis"] and "glo-action-request (CB)" in d.fixes[0]


# -- made-up exchanges -------------------------------------------------------------------


def test_highgmac_exchange_verified_with_keys():
    log = as_hdlc_log(exchange(5))
    d = diagnose(log, Secrets(keys=Keys(ek=EK, ak=AK)))
    assert d.keys_used
    assert d.association["hls"]["state"] == "completed"
    assert d.association["dedicated_key"]["how"] == "read from the decrypted InitiateRequest"
    texts = [t for p in d.pdus for _label, t in p.details]
    assert texts.count("verified: matches") == 2  # f(StoC) and f(CtoS)
    assert "17 bytes is what mechanism 5 gives" in texts
    assert not [f for f in d.findings if f.severity == "error"]
    assert "HLS completed" in d.cause and d.fixes == ()
    assert [p.name for p in d.pdus][-2:] == ["ded-get-request", "ded-get-response"]
    assert d.pdus[-1].details[-1] == ("content", "get-response, 9 bytes")


def test_highgmac_exchange_without_keys_uses_lengths():
    d = diagnose(as_hdlc_log(exchange(5)))
    assert d.association["hls"]["pass3"]["f_length"] == 17
    assert d.association["dedicated_key"]["length"] == 16
    assert d.association["hls"]["state"].startswith("completed")
    assert "ded_before_hls" not in codes(d)


def test_mechanism_2_dedicated_pass3_decrypted_with_keys_and_secret():
    err = ConfirmedServiceError(6, 0, 6).to_bytes()
    log = as_hdlc_log(exchange(2, pass3_tag=0xD3, error=err))
    d = diagnose(log, Secrets(keys=Keys(ek=EK, ak=AK), hls_secret=SECRET))
    pass3 = d.pdus[2]
    assert ("f(StoC)", "verified: matches") in pass3.details
    assert "ded_before_hls" in codes(d) and "deciphering_error" in codes(d)
    assert "decrypt_failed" not in codes(d)  # the dedicated key was read from the AARQ
    assert "glo-action-request (CB)" in d.fixes[0]


def test_wrong_hls_secret_is_reported():
    d = diagnose(as_hdlc_log(exchange(2, secret=b"not the secret")), Secrets(keys=KEYS, hls_secret=SECRET))
    assert "f_mismatch" in codes(d)


def test_wrong_key_is_reported_without_showing_keys():
    log = as_hdlc_log(exchange(5))
    wrong = _k("wrong")
    d = diagnose(log, Secrets(keys=Keys(ek=wrong, ak=AK)))
    assert "decrypt_failed" in codes(d)
    dumped = json.dumps(d.to_dict()).upper()
    for secret in (wrong, AK, DK, EK):
        assert secret.hex().upper() not in dumped


def test_keys_never_in_cli_output(tmp_path, capsys):
    path = tmp_path / "log.txt"
    path.write_text(as_hdlc_log(exchange(2, pass3_tag=0xD3, error=ConfirmedServiceError(6, 0, 6).to_bytes())))
    args = ["diagnose", str(path), "--key", EK.hex(), "--auth-key", AK.hex(), "--hls-secret", SECRET.decode()]
    for fmt in ("text", "json"):
        assert main(args + ["--format", fmt]) == 0
        out, err = capsys.readouterr()
        for secret in (EK, AK, DK):
            assert secret.hex().upper() not in (out + err).upper() and secret.hex() not in out + err
        assert SECRET.decode() not in out


def test_raw_apdus_wrapped_over_lines():
    lines = []
    for client, apdu in exchange(5, after=False):
        text = apdu.hex(" ").upper()
        lines.append(("-> " if client else "<- ") + text[:60])  # wrapped, with a prefix on the first line
        if text[60:]:
            lines.append(text[60:])
        lines.append("")
    d = diagnose("\n".join(lines), Secrets(keys=KEYS))
    assert [p.name for p in d.pdus] == ["AARQ", "AARE", "glo-action-request", "glo-action-response"]
    assert d.association["hls"]["state"] == "completed"
    assert all(p.link is None for p in d.pdus)


def test_exception_response_invocation_counter():
    pdus = exchange(5, error=ExceptionResponse(1, 6, 4242).to_bytes())
    d = diagnose(as_hdlc_log(pdus))
    assert "invocation_counter_error" in codes(d)
    assert "4242" in d.cause and "4242" in d.fixes[0]


def test_rejected_association():
    aare = Aare(application_context=ApplicationContext.of(1), result=1, diagnostic=Diagnostic(1, 13))
    d = diagnose(aare.to_bytes().hex(" "))
    assert "association_rejected" in codes(d) and "authentication-failure" in d.cause


def test_repeated_invocation_counter_is_flagged():
    get = bytes.fromhex("C001C1000300000100FF0200")
    pdus = exchange(5, after=False)
    for _ in range(2):
        pdus.append((True, protect(get, keys=KEYS, system_title=CLIENT_ST, invocation_counter=9, tag=0xD0)))
    d = diagnose(as_hdlc_log(pdus))
    assert codes(d).count("ic_not_increasing") == 1


def test_gmac_response_under_mechanism_2_is_a_length_mismatch():
    pdus = exchange(5, pass4=False, after=False)
    # the same pass 3 (17-byte GMAC f) but the AARQ/AARE say mechanism 2
    mech2 = exchange(2, pass4=False, after=False)
    d = diagnose(as_hdlc_log(mech2[:2] + pdus[2:]))
    assert "f_length_mismatch" in codes(d)
    finding = next(f for f in d.findings if f.code == "f_length_mismatch")
    assert "17 bytes" in finding.text and "fits mechanism 5" in finding.text


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no hex frames found"),
        ("just prose, no frames at all\nsecond line", "no hex frames found"),
        ("7E A0 10 61 03 52 7C E2 E6 E7 00 0E 06 00 06 DD 49 7E", "no PDU could be read"),
    ],
)
def test_nothing_to_diagnose(text, message, tmp_path, capsys):
    with pytest.raises(NothingToDiagnose, match=message):
        diagnose(text)
    path = tmp_path / "log"
    path.write_text(text)
    assert main(["diagnose", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("han: diagnose: ") and err.count("\n") == 1 and "Traceback" not in err


def test_garbage_pdus_are_reported_not_raised(tmp_path, capsys):
    log = "60 05 A1 09 06 07 60\n\n61 03 A2 01\n\nAB CD EF 01\n" + SEED_LOG.read_text()
    d = diagnose(log)
    assert codes(d)[:3] == ["malformed_pdu"] * 3
    assert "claims 9 bytes" in d.findings[0].text
    assert "length field says 3 bytes but 2 follow" in d.findings[1].text
    assert "tag 0xAB is not" in d.findings[2].text
    assert d.association["mechanism"]["id"] == 2  # the rest of the log is still analysed
    path = tmp_path / "log"
    path.write_text("AB CD EF 01\n")
    assert main(["diagnose", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "none of the 1 PDU(s)" in err and "Traceback" not in out + err


def test_log_scanner_finds_hex_among_prose():
    frame = hdlc(ConfirmedServiceError(6, 0, 6).to_bytes(), client=False).replace(" ", "")
    scan = scan_log(
        "Send AARQ request.\n"
        "I'd be glad: dead beef\n"  # hex-looking words in prose are not data
        "0x7E, 0xA0\n"  # nor two bytes on their own
        f"12:00:01.250 RX {frame} (reply)\n"
    )
    assert scan.hex_lines == 1 and scan.hdlc_frames == 1 and not scan.events
    (pdu,) = scan.pdus
    assert pdu.line == 4 and pdu.apdu == bytes.fromhex("0E060006") and pdu.link_direction == "server"


def test_several_frames_on_one_line_and_a_frame_wrapped_over_two():
    frames = [hdlc(apdu, client=c) for c, apdu in exchange(5, after=False)]
    one_line = " ".join(frames[:2])
    cut = frames[2].index(" ", len(frames[2]) // 2)
    wrapped = frames[2][:cut] + "\n" + frames[2][cut + 1 :]
    scan = scan_log(one_line + "\n" + wrapped + "\n" + frames[3])
    assert [p.apdu[0] for p in scan.pdus] == [0x60, 0x61, 0xCB, 0xCF]
    assert [p.line for p in scan.pdus] == [1, 1, 2, 4]


def test_key_scope_after_hls():
    get = bytes.fromhex("C001C1000300000100FF0200")
    glo_after = exchange(5, after=False) + [
        (True, protect(get, keys=KEYS, system_title=CLIENT_ST, invocation_counter=4, tag=0xC8))
    ]
    d = diagnose(as_hdlc_log(glo_after))
    assert "glo_with_dedicated" in codes(d) and "ded_before_hls" not in codes(d)
    no_key = exchange(5, dedicated=None)  # ded- APDUs after HLS, but no dedicated key was proposed
    d = diagnose(as_hdlc_log(no_key))
    assert d.association["dedicated_key"]["proposed"] is False
    assert codes(d).count("ded_without_key") == 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(min_size=3, max_size=40), min_size=1, max_size=6))
def test_random_hex_never_raises_anything_but_nothing_to_diagnose(chunks):
    log = "\n".join(chunk.hex(" ") for chunk in chunks)
    try:
        diagnose(log, Secrets(keys=KEYS, hls_secret=SECRET))
    except NothingToDiagnose:
        pass


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3), st.integers(1, 300))
def test_truncated_and_altered_exchanges_never_raise(which, cut):
    pdus = exchange(5)
    client, apdu = pdus[which]
    pdus[which] = (client, apdu[: max(1, len(apdu) - cut % len(apdu))])
    for secrets in (Secrets(), Secrets(keys=KEYS)):
        diagnose(as_hdlc_log(pdus), secrets)


DOCS_EK, DOCS_AK = _k("han docs EK"), _k("han docs AK")  # the made-up keys of samples/highgmac_dedicated_ok.log


def test_docs_sample_with_keys():
    log = (SAMPLES / "highgmac_dedicated_ok.log").read_text()
    d = diagnose(log, Secrets(keys=Keys(ek=DOCS_EK, ak=DOCS_AK)))
    assert d.association["hls"]["state"] == "completed"
    assert not [f for f in d.findings if f.severity != "info"]
    assert [p.name for p in d.pdus][2:] == [
        "glo-action-request",
        "glo-action-response",
        "ded-get-request",
        "ded-get-response",
    ]
    wrong = diagnose(log, Secrets(keys=Keys(ek=DOCS_AK, ak=DOCS_AK)))
    assert "decrypt_failed" in codes(wrong)
    assert wrong.cause.startswith("The meter reported no error, but the log shows problems")
    assert "Check the keys given" in wrong.fixes[0]


def test_ded_tag_over_the_global_key_is_spotted():
    pdus = exchange(2, pass4=False, after=False)
    action = hls.reply_to_hls(hls.aes_ecb_response(SECRET, STOC)).to_bytes()
    mislabelled = protect(
        action, keys=Keys(ek=EK, ak=AK, dedicated=EK), system_title=CLIENT_ST, invocation_counter=3, tag=0xD3
    )
    d = diagnose(as_hdlc_log(pdus[:2] + [(True, mislabelled)]), Secrets(keys=Keys(ek=EK, ak=AK, dedicated=_k("x"))))
    assert {"dedicated_key_differs", "decrypt_failed", "ded_tag_global_key", "ded_before_hls"} <= set(codes(d))


def test_hexdump_c_output_is_read():
    frame = bytes.fromhex(hdlc(ConfirmedServiceError(6, 0, 6).to_bytes(), client=False))
    lines = []
    for off in range(0, len(frame), 16):  # the layout of `hexdump -C`
        chunk = frame[off : off + 16]
        left, right = chunk[:8].hex(" "), chunk[8:].hex(" ")
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {left:<23}  {right:<23}  |{ascii_}|")
    (pdu,) = scan_log("\n".join(lines)).pdus
    assert pdu.apdu == bytes.fromhex("0E060006")


def test_ciphered_error_reply_without_keys():
    err = protect(
        ConfirmedServiceError(6, 5, 1).to_bytes(), keys=KEYS, system_title=SERVER_ST, invocation_counter=101, tag=0x2E
    )
    d = diagnose(as_hdlc_log(exchange(5, error=err)))
    assert d.association["hls"]["state"] == "failed"
    assert "service_error" in codes(d) and "glo-confirmed-service-error" in d.cause
    with_keys = diagnose(as_hdlc_log(exchange(5, error=err)), Secrets(keys=KEYS))
    assert "access / scope-of-access-violated" in with_keys.pdus[3].summary


def test_suite_1_pass3_hint():
    pdus = exchange(5, pass4=False, after=False)
    action = hls.reply_to_hls(
        hls.gmac_response(ek=EK, ak=AK, system_title=CLIENT_ST, invocation_counter=2, challenge=STOC)
    )
    pass3 = protect(
        action.to_bytes(), keys=KEYS, system_title=CLIENT_ST, invocation_counter=3, security_control=0x31, tag=0xCB
    )
    d = diagnose(as_hdlc_log(pdus[:2] + [(True, pass3)]))
    assert "pass3_not_signed" in codes(d)


def test_mechanism_name_outside_the_dlms_arc(tmp_path, capsys):
    aarq = exchange(5)[0][1]
    dlms, other = MechanismName.of(5).oid, "2.16.740.5.8.2.5"
    odd = aarq.replace(bytes.fromhex("60857405080205"), bytes.fromhex("60856405080205"))  # 756 -> 740
    assert odd != aarq and dlms != other
    log = as_hdlc_log([(True, odd)] + exchange(5)[1:])
    d = diagnose(log)
    assert "unknown_mechanism" in codes(d) and d.association["mechanism"] is None
    assert ("mechanism", f"{other}: not a DLMS mechanism name") in d.pdus[0].details
    assert "DLMS mechanism name" in d.fixes[0]
    path = tmp_path / "log"
    path.write_text(log)
    assert main(["diagnose", str(path)]) == 0
    assert "internal error" not in capsys.readouterr().err
