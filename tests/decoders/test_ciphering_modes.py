"""Ciphering: the three protection modes both ways, key handling, downgrades, diagnostics."""

from __future__ import annotations

import pytest

from decoders.errors import (
    DowngradeRefused,
    KeyMissing,
    MalformedSecurityHeader,
    SecurityError,
    TagMismatch,
    UnsupportedSecurity,
)
from decoders.ciphering.control import SecurityControl
from decoders.ciphering.security import Keys, manufacturer, parse_ciphered, protect, unprotect

EK = bytes(range(16))
AK = bytes(range(16, 32))
ST = b"TST\x00\x01\x02\x03\x04"
APDU = bytes.fromhex("0f00000001000203") + b"\x0a\x05hello"


def roundtrip(sc: int, keys: Keys, **kw) -> tuple[bytes, bool]:
    wire = protect(APDU, keys=keys, system_title=ST, invocation_counter=42, security_control=sc)
    res = unprotect(parse_ciphered(wire), keys, **kw)
    return res.apdu, res.verified


@pytest.mark.parametrize("sc,verified", [(0x30, True), (0x10, True), (0x20, False), (0x31, True), (0x21, False)])
def test_roundtrip_modes(sc, verified):
    keys = Keys(ek=EK, ak=AK) if sc & 0x10 else Keys(ek=EK)
    assert roundtrip(sc, keys) == (APDU, verified)


def test_suite2_uses_32_byte_keys():
    keys = Keys(ek=bytes(32), ak=bytes(range(32)))
    assert roundtrip(0x32, keys) == (APDU, True)
    with pytest.raises(SecurityError, match="32-byte keys"):
        wire = protect(APDU, keys=keys, system_title=ST, invocation_counter=1, security_control=0x32)
        unprotect(parse_ciphered(wire), Keys(ek=EK, ak=AK))


def test_layout_of_general_glo_ciphering():
    wire = protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=0x01020304)
    assert wire[:2] == b"\xdb\x08" and wire[2:10] == ST
    assert wire[10] == 5 + len(APDU) + 12 and wire[11] == 0x30 and wire[12:16] == b"\x01\x02\x03\x04"
    c = parse_ciphered(wire)
    assert (c.system_title, c.invocation_counter, c.security_control) == (ST, 0x01020304, 0x30)
    assert len(c.auth_tag) == 12 and c.control.authenticated and c.control.encrypted


def test_long_length_forms():
    big = b"\x0f\x00\x00\x00\x00\x00\x09\x82\x01\x00" + bytes(256)
    wire = protect(big, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1)
    assert wire[10] == 0x82
    assert unprotect(parse_ciphered(wire), Keys(ek=EK, ak=AK)).apdu == big


def test_service_specific_ciphering_needs_system_title():
    wire = protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=5, tag=0xC8)
    c = parse_ciphered(wire)
    assert c.system_title is None and c.tag == 0xC8
    with pytest.raises(KeyMissing, match="system title"):
        unprotect(c, Keys(ek=EK, ak=AK))
    assert unprotect(c, Keys(ek=EK, ak=AK), system_title=ST).apdu == APDU


def test_dedicated_ciphering_uses_dedicated_key():
    dk = bytes(range(100, 116))
    wire = protect(APDU, keys=Keys(ek=EK, ak=AK, dedicated=dk), system_title=ST, invocation_counter=5, tag=0xDC)
    with pytest.raises(KeyMissing, match="dedicated key"):
        unprotect(parse_ciphered(wire), Keys(ek=EK, ak=AK))
    assert unprotect(parse_ciphered(wire), Keys(ek=EK, ak=AK, dedicated=dk)).apdu == APDU


def test_missing_keys():
    wire = protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1)
    with pytest.raises(KeyMissing, match="encryption key"):
        unprotect(parse_ciphered(wire), Keys())
    with pytest.raises(KeyMissing, match="authentication key"):
        unprotect(parse_ciphered(wire), Keys(ek=EK))


def test_unverified_opt_in():
    wire = protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1)
    res = unprotect(parse_ciphered(wire), Keys(ek=EK), allow_unverified=True)
    assert res.apdu == APDU and res.verified is False


def test_wrong_authentication_key_is_named():
    wire = protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1)
    with pytest.raises(TagMismatch, match="authentication key is probably wrong"):
        unprotect(parse_ciphered(wire), Keys(ek=EK, ak=bytes(16)))


def test_wrong_encryption_key_is_named():
    wire = protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1)
    with pytest.raises(TagMismatch, match="encryption key is probably wrong"):
        unprotect(parse_ciphered(wire), Keys(ek=bytes(16), ak=AK))


def test_downgrade_refused_unless_allowed():
    wire = protect(APDU, keys=Keys(ek=EK), system_title=ST, invocation_counter=1, security_control=0x20)
    with pytest.raises(DowngradeRefused):
        unprotect(parse_ciphered(wire), Keys(ek=EK, ak=AK))
    assert unprotect(parse_ciphered(wire), Keys(ek=EK, ak=AK), allow_unauthenticated=True).apdu == APDU


def test_authenticated_frame_altered_to_encryption_only_is_refused():
    wire = bytearray(protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1))
    wire[11] = 0x20  # 0x30 -> 0x20 still decrypts in counter mode
    with pytest.raises(DowngradeRefused):
        unprotect(parse_ciphered(bytes(wire)), Keys(ek=EK, ak=AK))


def test_compression_and_unknown_suite():
    for sc, msg in ((0xB0, "compress"), (0x35, "suite 5")):
        wire = bytearray(protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1))
        wire[11] = sc
        with pytest.raises(UnsupportedSecurity, match=msg):
            unprotect(parse_ciphered(bytes(wire)), Keys(ek=EK, ak=AK))


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda w: w + b"\x00", "extra bytes"),
        (lambda w: w[:-1], "truncated"),
        (lambda w: w[:1] + b"\x07" + w[2:], "system title length"),
        (lambda w: w[:10] + b"\x85" + w[11:], "malformed"),
        (lambda w: w[:3], "malformed|too short|length"),
    ],
)
def test_malformed_headers(mutate, match):
    wire = protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1)
    with pytest.raises(MalformedSecurityHeader, match=match):
        parse_ciphered(mutate(wire))


def test_keys_never_in_repr_or_messages():
    keys = Keys(ek=EK, ak=AK)
    assert repr(keys) == str(keys) == "Keys(ek, ak given)"
    wire = protect(APDU, keys=keys, system_title=ST, invocation_counter=1)
    for bad in (Keys(ek=EK, ak=bytes(16)), Keys(ek=bytes(16), ak=AK), Keys(ek=EK)):
        try:
            unprotect(parse_ciphered(wire), bad)
        except SecurityError as exc:
            text = str(exc).lower()
            assert EK.hex() not in text and AK.hex() not in text and "00000000000000000000" not in text


def test_security_control_describe_and_manufacturer():
    assert SecurityControl(0x30).describe() == "suite 0, authenticated and encrypted, unicast key"
    assert SecurityControl(0x21).suite == 1 and not SecurityControl(0x21).authenticated
    assert manufacturer(b"KAME\x01\xa4\xdcR") == "KAM" and manufacturer(b"\x01\x02\x03\x04") is None


@pytest.fixture(params=[True, False], ids=["cached-engine", "public-api"])
def gcm_path(request):
    from decoders.ciphering import gcm

    gcm.set_fast_path(request.param)
    if request.param and not gcm.fast_path_enabled():
        pytest.skip("the cached GCM engine is not available with this pycryptodome")
    yield request.param
    gcm.set_fast_path(True)


@pytest.mark.parametrize("sc", [0x30, 0x10, 0x20, 0x32])
def test_both_gcm_paths_agree(gcm_path, sc):
    keys = Keys(ek=bytes(32), ak=bytes(range(32))) if sc & 0x0F == 2 else Keys(ek=EK, ak=AK)
    if not sc & 0x10:
        keys = Keys(ek=keys.ek)
    wire = protect(APDU * 7, keys=keys, system_title=ST, invocation_counter=9, security_control=sc)
    assert unprotect(parse_ciphered(wire), keys).apdu == APDU * 7
    bad = bytearray(wire)
    bad[-1] ^= 1
    if sc & 0x10:
        with pytest.raises(TagMismatch):
            unprotect(parse_ciphered(bytes(bad)), keys)


def test_gcm_engine_matches_public_api():
    from Crypto.Cipher import AES

    from decoders.ciphering import gcm

    for n in (0, 1, 15, 16, 17, 447, 1000):
        key, iv, aad, pt = bytes(range(16)), bytes(12), b"\x30" + AK, bytes(range(n % 256)) * (n // 256 + 1)
        pt = pt[:n]
        c = AES.new(key, AES.MODE_GCM, nonce=iv, mac_len=12)
        c.update(aad)
        assert gcm.encrypt(key, iv, aad, pt) == c.encrypt_and_digest(pt)


# -- library messages name no option of the command line; the CLI adds it (han/advice.py) ---------------
def _missing(wire: bytes, keys: Keys, **kw) -> KeyMissing:
    with pytest.raises(KeyMissing) as info:
        unprotect(parse_ciphered(wire), keys, **kw)
    return info.value


def test_key_missing_names_the_key_in_words():
    glo = protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1)
    ded = protect(APDU, keys=Keys(ek=EK, ak=AK, dedicated=EK), system_title=ST, invocation_counter=1, tag=0xDC)
    bc = protect(APDU, keys=Keys(ek=EK, ak=AK, broadcast=EK), system_title=ST, invocation_counter=1, security_control=0x70)
    cases = {
        "encryption": _missing(glo, Keys()),
        "authentication": _missing(glo, Keys(ek=EK)),
        "dedicated": _missing(ded, Keys(ek=EK, ak=AK)),
        "broadcast": _missing(bc, Keys(ek=EK, ak=AK)),
    }
    words = {"encryption": "encryption key (GUEK)", "authentication": "authentication key",
             "dedicated": "dedicated key", "broadcast": "broadcast encryption key (GBEK)"}  # fmt: skip
    for key, err in cases.items():
        assert err.key == key and err.reason == "no_key"
        assert "--" not in err.message and words[key] in err.message, err.message
    assert cases["authentication"].message.endswith(
        "needs the authentication key; or decrypt it unverified if your grid operator gave you no authentication key"
    )
    assert cases["encryption"].message == "this frame needs the encryption key (GUEK)"
    c = parse_ciphered(protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=5, tag=0xC8))
    with pytest.raises(KeyMissing) as info:
        unprotect(c, Keys(ek=EK, ak=AK))
    assert info.value.key == "system_title"


def test_the_cli_adds_the_option_as_before():
    """advise() gives the text the library used to write itself, byte for byte, once however often it is called."""
    from han.advice import advise

    glo = protect(APDU, keys=Keys(ek=EK, ak=AK), system_title=ST, invocation_counter=1)
    err = advise(advise(_missing(glo, Keys())))
    assert err.one_line() == "security: this frame needs the encryption key (GUEK); give it with --key"
    err = advise(_missing(glo, Keys(ek=EK)))
    assert err.message == (
        "this frame is authenticated (security control 0x30) and needs the authentication key (--auth-key);"
        " or decrypt it unverified if your grid operator gave you no authentication key"
    )
    ded = protect(APDU, keys=Keys(ek=EK, ak=AK, dedicated=EK), system_title=ST, invocation_counter=1, tag=0xDC)
    assert str(advise(_missing(ded, Keys(ek=EK, ak=AK)))) == "this frame needs the dedicated key; give it with --dedicated-key"


def test_decoders_name_no_command_line_option():
    """No message of the decoders names an option such as --key (docstrings and comments may mention commands)."""
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "decoders"  # the package, not tests/decoders
    found = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docs = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                if re.search(r"(^|[\s(])--[a-z]", node.value):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
    assert not found, found


def test_counter_blocks_are_the_iv_and_each_counter():
    import random

    from decoders.ciphering.gcm import _counter_blocks

    rng = random.Random(3)
    for _ in range(500):
        iv = bytes(rng.randrange(256) for _ in range(8)) + rng.choice([b"\x00" * 4, b"\xff" * 4, rng.randbytes(4)])
        first, blocks = rng.choice([1, 2]), rng.randrange(0, 260)
        want = b"".join(iv + i.to_bytes(4, "big") for i in range(first, first + blocks))
        assert _counter_blocks(iv, first, blocks) == want
