"""HLS f() functions and the pass-3/pass-4 APDUs, beyond the published vectors."""

from __future__ import annotations

import hashlib

import pytest
from Crypto.Cipher import AES

from decoders.xdlms import axdr
from decoders.association import hls
from decoders.errors import ApduError, SecurityError


def test_mechanism_table_names_and_lengths():
    assert hls.Mechanism.HIGH_GMAC == 5
    assert "HighGMAC" in hls.mechanism_info(5).name
    assert "NOT used" in hls.mechanism_info(2).uses
    assert [hls.expected_response_length(m) for m in (2, 3, 4, 5, 6)] == [16, 16, 20, 17, 32]
    assert hls.expected_response_length(2, challenge_length=20) == 32
    assert hls.expected_response_length(1) is None
    assert "unknown" in hls.mechanism_info(42).name


def test_aes_ecb_pads_secret_and_challenge_with_zeros():
    f = hls.aes_ecb_response(b"secret", b"12345678")
    assert f == AES.new(b"secret".ljust(16, b"\0"), AES.MODE_ECB).encrypt(b"12345678".ljust(16, b"\0"))
    assert len(hls.aes_ecb_response(b"s" * 16, b"c" * 17)) == 32


@pytest.mark.parametrize("secret", [b"", b"x" * 17])
def test_aes_ecb_rejects_unusable_secrets(secret):
    with pytest.raises(SecurityError, match="mechanism 2"):
        hls.aes_ecb_response(secret, b"challenge")


def test_hash_mechanisms_order_challenge_and_secret():
    assert hls.md5_response(b"S", b"C") == hashlib.md5(b"CS").digest()
    assert hls.sha1_response(b"S", b"C") == hashlib.sha1(b"CS").digest()
    own, peer = b"CLIENT01", b"SERVER01"
    f = hls.sha256_response(b"S", own, peer, b"StoC", b"CtoS")
    assert f == hashlib.sha256(b"S" + own + peer + b"StoC" + b"CtoS").digest()


def test_gmac_response_layout_and_check():
    ek, ak, st = bytes(range(16)), bytes(range(16, 32)), b"ABCDEFGH"
    f = hls.gmac_response(ek=ek, ak=ak, system_title=st, invocation_counter=7, challenge=b"challenge")
    assert len(f) == 17 and f[0] == 0x10 and f[1:5] == (7).to_bytes(4, "big")
    assert hls.check_gmac_response(f, ek=ek, ak=ak, system_title=st, challenge=b"challenge")
    assert not hls.check_gmac_response(f, ek=ek, ak=ak, system_title=b"ABCDEFGI", challenge=b"challenge")
    assert not hls.check_gmac_response(f[:16], ek=ek, ak=ak, system_title=st, challenge=b"challenge")
    with pytest.raises(SecurityError, match="system title"):
        hls.gmac_response(ek=ek, ak=ak, system_title=b"short", invocation_counter=1, challenge=b"c")


def test_reply_to_hls_round_trip():
    action = hls.reply_to_hls(b"\x01" * 16, invoke_id_and_priority=0x81)
    raw = action.to_bytes()
    assert raw[:2] == b"\xc3\x01" and raw[-18:-16] == b"\x09\x10"
    parsed = hls.parse_action_request(raw)
    assert parsed == action and parsed.is_reply_to_hls and parsed.hls_response == b"\x01" * 16


def test_action_response_round_trips():
    ok = hls.ActionResponse(0xC1, 0, axdr.octet_string(b"\x10" + bytes(16)), None)
    assert hls.parse_action_response(ok.to_bytes()) == ok
    assert ok.hls_response == b"\x10" + bytes(16) and ok.result_name == "success"
    denied = hls.ActionResponse(0xC1, 3, None, None)
    assert denied.to_bytes() == bytes.fromhex("C701C10300")
    assert hls.parse_action_response(denied.to_bytes()).result_name == "read-write-denied"
    dar = hls.ActionResponse(0xC1, 0, None, 11)
    assert hls.parse_action_response(dar.to_bytes()) == dar


@pytest.mark.parametrize(
    "raw, message",
    [
        ("C401C1", "C3 01 expected"),
        ("C301C1000F0000", "malformed or truncated"),
        ("C301C1000F0000280000FF010109", "malformed or truncated"),
    ],
)
def test_malformed_action_request(raw, message):
    with pytest.raises(ApduError, match=message):
        hls.parse_action_request(bytes.fromhex(raw))


def test_malformed_action_response():
    with pytest.raises(ApduError, match="C7 01 expected"):
        hls.parse_action_response(b"")
    with pytest.raises(ApduError, match="choice 7"):
        hls.parse_action_response(bytes.fromhex("C701C100010700"))
