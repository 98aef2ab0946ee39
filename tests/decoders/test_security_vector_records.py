"""Every record of ../shared/vectors/security_vectors.jsonl, checked against the decoders.

The vectors are read at run time and never copied here; without them these
tests skip.  One test per record, chosen by its category.
"""

from __future__ import annotations

import pytest

from conftest import load_vectors, require_vectors
from decoders.association import ecc, hls
from decoders.ciphering import keywrap
from decoders.association.acse import Release, UserInformation, dedicated_key_length, open_initiate, parse_aare, parse_aarq
from decoders.xdlms.error_pdus import parse_confirmed_service_error, parse_exception_response
from decoders.errors import KeyMissing, TagMismatch
from decoders.ciphering.general_ciphering import (
    agreed_key,
    decrypt_unverified,
    parse_general_ciphering,
    verify_agreed_key_signature,
)
from decoders.link.hdlc import HdlcFramer, HdlcReassembler
from decoders.ciphering.security import Keys, parse_ciphered, protect, unprotect

FILE = "security_vectors.jsonl"
VECTORS = load_vectors(FILE)


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def up(b: bytes) -> str:
    return b.hex().upper()


def by_category(*categories: str):
    chosen = [v for v in VECTORS if v["category"] in categories]
    return pytest.mark.parametrize("v", chosen, ids=[v["id"] for v in chosen])


HANDLED = {
    "apdu_protection",
    "hls_gmac",
    "hls_high_mech2",
    "acse_encoding",
    "acse_ciphered",
    "push_decrypt",
    "general_ciphering",
    "suite1_signature",
    "key_wrap",
    "error_pdu",
    "apdu_format",
    "diagnose_fixture",  # tests/app/test_diagnose_command.py
}


def test_every_vector_has_a_test():
    records = require_vectors(FILE)
    assert len(records) == 19
    assert {v["category"] for v in records} <= HANDLED


@by_category("apdu_protection")
def test_apdu_protection(v):
    i, e = v["inputs"], v["expected"]
    keys = Keys(ek=h(i["EK"]), ak=h(i["AK"]))
    st, ic, sc = h(i["system_title"]), int(i["invocation_counter"], 16), int(i["security_control"], 16)
    assert st + h(i["invocation_counter"]) == h(i["iv"])
    plain = h(i["plaintext_apdu"])
    built = protect(plain, keys=keys, system_title=st, invocation_counter=ic, security_control=sc, tag=0xC8)
    assert up(built) == e["ciphered_apdu"]
    parsed = parse_ciphered(built)
    assert (parsed.security_control, parsed.invocation_counter, parsed.system_title) == (sc, ic, None)
    if "tag12" in e:
        assert up(parsed.auth_tag) == e["tag12"]
    if "ciphertext" in e:
        assert up(parsed.body) == e["ciphertext"]
    result = unprotect(parsed, keys, system_title=st, allow_unauthenticated=True)
    assert result.apdu == plain
    assert result.verified == bool(sc & 0x10)


@by_category("hls_gmac")
def test_hls_gmac(v):
    i, e = v["inputs"], v["expected"]
    ek, ak = h(i["EK"]), h(i["AK"])
    if "gmac_IC" in i:  # Gurux pass 3: GMAC with IC n, the carrying glo-action-request with IC n+1
        st = h(i["client_system_title"])
        f = hls.gmac_response(
            ek=ek, ak=ak, system_title=st, invocation_counter=int(i["gmac_IC"], 16), challenge=h(i["StoC"])
        )
        assert up(f) == e["f_StoC"]
        action = hls.reply_to_hls(f)
        assert up(action.to_bytes()) == e["action_request_plain"]
        glo = protect(
            action.to_bytes(),
            keys=Keys(ek=ek, ak=ak),
            system_title=st,
            invocation_counter=int(i["outer_IC"], 16),
            security_control=0x30,
            tag=0xCB,
        )
        assert up(glo) == e["glo_action_request"]
        assert glo[1] == 0x31  # 17-byte f: one byte longer than mechanism 2's
        return
    side = "client" if "client_system_title" in i else "server"
    st, ic = h(i[f"{side}_system_title"]), int(i[f"{side}_IC"], 16)
    challenge = h(i["StoC"] if side == "client" else i["CtoS"])
    assert challenge == i["StoC_ascii" if side == "client" else "CtoS_ascii"].encode()
    f = hls.gmac_response(ek=ek, ak=ak, system_title=st, invocation_counter=ic, challenge=challenge)
    assert up(f) == e["f_StoC" if side == "client" else "f_CtoS"]
    assert up(f[5:]) == e["gmac_tag12"]
    assert hls.check_gmac_response(f, ek=ek, ak=ak, system_title=st, challenge=challenge)
    assert not hls.check_gmac_response(f, ek=ek, ak=ak, system_title=st, challenge=challenge[::-1])
    if "action_request_plain" in e:
        parsed = hls.parse_action_request(h(e["action_request_plain"]))
        assert parsed.is_reply_to_hls and parsed.hls_response == f
        assert parsed.to_bytes() == h(e["action_request_plain"])


@by_category("hls_high_mech2")
def test_hls_high_mechanism_2(v):
    i, e = v["inputs"], v["expected"]
    f = hls.aes_ecb_response(i["secret"].encode(), h(i["StoC"]))
    assert up(f) == e["f_StoC"]
    action = hls.reply_to_hls(f).to_bytes()
    assert up(action) == e["action_request_plain"]
    keys = Keys(ek=h(i["EK(GUEK)"]), ak=h(i["AK"]))
    st = h(i["client_system_title"])
    glo = protect(action, keys=keys, system_title=st, invocation_counter=int(i["outer_IC"], 16), tag=0xCB)
    assert up(glo) == e["glo_action_request"]
    # protected with the global key, not a dedicated one: it opens with the GUEK
    assert unprotect(parse_ciphered(glo), keys, system_title=st).apdu == action


@by_category("acse_encoding")
def test_acse_encoding(v):
    i, e = v["inputs"], v["expected"]
    if "aarq" in i:
        raw = h(i["aarq"])
        pdu = parse_aarq(raw)
        assert e["application_context"].startswith(pdu.application_context.oid)
        assert pdu.application_context.id == 1 and not pdu.application_context.ciphered
        assert e["mechanism"].startswith(pdu.mechanism.oid) and pdu.mechanism.id == 5
        assert up(pdu.calling_authentication_value.value) == e["calling_authentication_value_CtoS"]
        assert pdu.user_information.content.dedicated_key is None
    else:
        raw = h(i["aare"])
        pdu = parse_aare(raw)
        assert e["result"].startswith(str(pdu.result)) and pdu.accepted
        assert pdu.diagnostic.source_name in e["result_source_diagnostic"]
        assert pdu.diagnostic.name in e["result_source_diagnostic"] and pdu.diagnostic.value == 14
        assert pdu.mechanism.oid == e["mechanism"]
        assert up(pdu.responding_authentication_value.value) == e["StoC"]
    assert pdu.to_bytes() == raw


@by_category("acse_ciphered")
def test_acse_ciphered(v):
    i, e = v["inputs"], v["expected"]
    keys = Keys(ek=h(i["EK"]), ak=h(i["AK"]))
    if "aarq" in i:
        raw = h(i["aarq"])
        pdu = parse_aarq(raw)
        assert pdu.to_bytes() == raw
        assert e["application_context"].startswith(pdu.application_context.oid) and pdu.application_context.ciphered
        assert e["mechanism"].startswith(pdu.mechanism.oid) and pdu.mechanism.id == 1
        assert pdu.calling_authentication_value.value.decode() == e["LLS_password"]
        assert pdu.calling_ap_title == h(i["calling_AP_title(client ST)"])
        ciphered = pdu.user_information.content
        assert ciphered.tag == 0x21 and pdu.calling_ap_title + ciphered.invocation_counter.to_bytes(4, "big") == h(
            i["iv"]
        )
        assert dedicated_key_length(len(ciphered.body)) == 16  # the length rule, without keys
        plain = unprotect(ciphered, keys, system_title=pdu.calling_ap_title).apdu
        assert up(plain) == e["InitiateRequest_plain"]
        initiate = open_initiate(ciphered, keys, pdu.calling_ap_title)
        assert initiate.dedicated_key is not None and up(initiate.dedicated_key) in e["InitiateRequest_fields"]
        assert initiate.to_bytes() == plain
        assert "hidden" in repr(initiate) and up(initiate.dedicated_key) not in repr(initiate).upper()
    else:
        st, ic = h(i["system_title"]), int(i["IC"], 16)
        plain = h(i["InitiateResponse_plain"])
        glo = protect(plain, keys=keys, system_title=st, invocation_counter=ic, security_control=0x30, tag=0x28)
        assert up(glo) == e["glo_initiate_response"]
        rlre = Release(0x63, reason=0, user_information=UserInformation.parse(glo))
        assert up(rlre.to_bytes()) == e["in_RLRE"]
        assert open_initiate(parse_ciphered(glo), keys, st).to_bytes() == plain


@by_category("push_decrypt")
def test_push_decrypt(v):
    i, e = v["inputs"], v["expected"]
    (frame,) = HdlcFramer().feed(h(i["hdlc_frame"]))
    (message,) = HdlcReassembler().push(frame)
    ciphered = parse_ciphered(message.payload)
    assert (up(ciphered.system_title), ciphered.security_control) == (i["system_title"], 0x30)
    assert ciphered.invocation_counter == int(i["IC"], 16)
    result = unprotect(ciphered, Keys(ek=h(i["EK"]), ak=h(i["AK"])))
    assert result.verified and up(result.apdu) == e["plaintext"]


@by_category("general_ciphering")
def test_general_ciphering_partial(v):
    """Partly verified: ECDH, KDF, signature and ciphertext only; the GCM tag is NOT checked (its AAD is unknown)."""
    i, e = v["inputs"], v["expected"]
    raw = h(i["apdu"])
    gc = parse_general_ciphering(raw)
    assert gc.to_bytes() == raw
    assert (up(gc.transaction_id), up(gc.originator_system_title), up(gc.recipient_system_title)) == (
        i["transaction_id"],
        i["originator_system_title"],
        i["recipient_system_title"],
    )
    assert e["kdf"].startswith("SHA-256") and i["SC"].startswith(f"{gc.security_control:02X}")
    assert gc.invocation_counter == int(i["IC"], 16)
    ephemeral = gc.key_info.key_ciphered_data[:64]
    assert up(ecc.shared_secret(1, h(i["static_private_V"]), ephemeral)) == e["Z"]
    # the same Z from the other side: the originator's ephemeral private key and the recipient's public key
    assert up(ecc.shared_secret(1, h(i["ephemeral_private_U"]), h(i["static_public_V"]))) == e["Z"]
    key = agreed_key(gc, 1, h(i["static_private_V"]))
    assert up(key) == e["derived_key"]
    verify_agreed_key_signature(gc, 1, h(i["signing_public_U"]))
    assert up(decrypt_unverified(gc, key)) == e["plaintext"]
    assert v["verified"] == "partial"  # the tag stays unchecked until the AAD rule is confirmed


@by_category("suite1_signature")
def test_suite1_signature(v):
    i, e = v["inputs"], v["expected"]
    public, data = h(i["public_key_P256"]), h(i["signed_data(key_id||ephemeral_pub)"])
    ecc.verify(1, public, data, h(e["signature_R||S"]))
    with pytest.raises(TagMismatch):
        ecc.verify(1, public, data[:-1] + b"\x00", h(e["signature_R||S"]))
    assert ecc.public_bytes(ecc.private_key(1, h(i["private_key"]))) == public
    ours = ecc.sign(1, h(i["private_key"]), data)
    assert len(ours) == 64
    ecc.verify(1, public, data, ours)


@by_category("key_wrap")
def test_key_wrap(v):
    i, e = v["inputs"], v["expected"]
    kek, key = h(i["KEK"]), h(i["key"])
    assert up(keywrap.wrap(kek, key)) == e["wrapped"]
    assert keywrap.unwrap(kek, h(e["wrapped"])) == key
    with pytest.raises(TagMismatch):
        keywrap.unwrap(kek[::-1], h(e["wrapped"]))


@by_category("error_pdu")
def test_error_pdus(v):
    i, e = v["inputs"], v["expected"]
    if "apdu" in i:
        err = parse_confirmed_service_error(h(i["apdu"]))
        for part in (err.service_name, err.error_type_name, err.value_name):
            assert part in e["decode"]
        assert err.deciphering_error and err.to_bytes() == h(i["apdu"])
        return
    for example in i["examples"]:
        raw = h(example.replace("xxxxxxxx", "0000002A"))
        exc = parse_exception_response(raw)
        described = e["D80106+u32" if exc.service_error == 6 else example]
        assert exc.state_error_name in e["D80105"] and exc.service_error_name in described
        assert exc.to_bytes() == raw
        if exc.service_error == 6:
            assert exc.invocation_counter == 42


@by_category("apdu_format")
def test_empty_system_title(v):
    i, e = v["inputs"], v["expected"]
    raw = h(e["apdu"])
    ciphered = parse_ciphered(raw)
    assert ciphered.system_title == b"" and i["system_title"] == "(empty)"
    assert (ciphered.security_control, ciphered.invocation_counter) == (int(i["SC"], 16), int(i["IC"], 16))
    keys = Keys(ek=bytes(16), ak=bytes(16))
    with pytest.raises(KeyMissing, match="system title"):
        unprotect(ciphered, keys)
    # the same shape is what protect() writes without the title
    built = protect(
        bytes(len(ciphered.body)),
        keys=keys,
        system_title=bytes(8),
        invocation_counter=ciphered.invocation_counter,
        include_system_title=False,
    )
    assert built[:7] == raw[:7]
