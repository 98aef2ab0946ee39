"""Key wrap, suites and the ECC helpers, beyond the published vectors."""

from __future__ import annotations

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.association import ecc
from decoders.ciphering import keywrap
from decoders.errors import SecurityError, TagMismatch
from decoders.ciphering.suites import SUITES, security_control


@settings(max_examples=40, deadline=None)
@given(
    kek=st.sampled_from([16, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)
def test_key_wrap_round_trip_and_matches_pycryptodome(kek, key):
    wrapped = keywrap.wrap(kek, key)
    assert len(wrapped) == len(key) + 8
    assert keywrap.unwrap(kek, wrapped) == key
    if hasattr(AES, "MODE_KW"):  # an independent implementation, when the library has one
        assert wrapped == AES.new(kek, AES.MODE_KW).seal(key)


def test_key_wrap_detects_alteration_and_bad_sizes():
    kek, key = bytes(16), bytes(range(16))
    wrapped = bytearray(keywrap.wrap(kek, key))
    wrapped[-1] ^= 1
    with pytest.raises(TagMismatch, match="integrity check failed"):
        keywrap.unwrap(kek, bytes(wrapped))
    with pytest.raises(SecurityError, match="KEK is 5 bytes"):
        keywrap.wrap(bytes(5), key)
    with pytest.raises(SecurityError, match="multiple of 8"):
        keywrap.wrap(kek, bytes(15))


def test_security_control_byte():
    assert security_control(authenticated=True, encrypted=True).value == 0x30
    assert security_control(authenticated=True, encrypted=False).value == 0x10
    assert security_control(authenticated=False, encrypted=True, suite=1).value == 0x21
    sc = security_control(authenticated=True, encrypted=True, broadcast=True)
    assert sc.value == 0x70 and sc.broadcast and "broadcast key" in sc.describe()
    with pytest.raises(ValueError, match="suite 3"):
        security_control(authenticated=True, encrypted=True, suite=3)
    assert [SUITES[i].key_length for i in (0, 1, 2)] == [16, 16, 32]
    assert SUITES[2].curve == "P-384"


@pytest.mark.parametrize("suite", [1, 2])
def test_ecdh_and_signatures_agree_between_two_parties(suite):
    from Crypto.PublicKey import ECC

    curve = SUITES[suite].curve
    a, b = ECC.generate(curve=curve), ECC.generate(curve=curve)
    size = 32 if suite == 1 else 48
    da, db = int(a.d).to_bytes(size, "big"), int(b.d).to_bytes(size, "big")
    z1 = ecc.shared_secret(suite, da, ecc.public_bytes(b))
    z2 = ecc.shared_secret(suite, db, ecc.public_bytes(a))
    assert z1 == z2 and len(z1) == size
    key = ecc.derive_key(suite, z1, b"ORIGINAT", b"RECIPIEN")
    assert len(key) == SUITES[suite].key_length
    sig = ecc.sign(suite, da, b"data")
    assert len(sig) == 2 * size
    ecc.verify(suite, ecc.public_bytes(a), b"data", sig)
    with pytest.raises(TagMismatch, match="does not verify"):
        ecc.verify(suite, ecc.public_bytes(b), b"data", sig)


def test_ecc_rejects_bad_inputs():
    with pytest.raises(SecurityError, match="suite 0"):
        ecc.derive_key(0, bytes(32), bytes(8), bytes(8))
    with pytest.raises(SecurityError, match="64 bytes"):
        ecc.public_key(1, bytes(10))
    with pytest.raises(SecurityError, match="not a point"):
        ecc.public_key(1, bytes(31) + b"\x01" + bytes(31) + b"\x01")
