"""Fuzz: every parser of the decoders, given any bytes, returns a result or raises a documented error.

The documented errors are :class:`decoders.errors.DecodeError` and its
subclasses (each parser's docstring names which).  Anything else -- an
IndexError, a KeyError, a struct.error, a construct exception -- reaching
the caller is a bug: a peer's decoder crashes this way on an unexpected
frame, and a daemon that crashes on one frame loses every frame after it.

Inputs are random bytes, and random bytes behind the tag each parser
expects, so that the fuzzer gets past the first check and into the body.
"""

from __future__ import annotations

from hypothesis import given, strategies as st

from fuzzprofile import documented, examples

from decoders.association import acse as association, ber, hls
from decoders.xdlms import error_pdus
from decoders.ciphering import general_ciphering, keywrap
from decoders.xdlms.apdu import parse_data_notification
from decoders.xdlms.axdr import Templates
from decoders.xdlms.cosem_time import CosemDateTime, looks_like_datetime
from decoders.xdlms.dsmr import parse_telegram
from decoders.errors import DecodeError
from decoders.link.gbt import parse_block
from decoders.ciphering.security import parse_ciphered

anybytes = st.binary(max_size=300)


def tagged(*tags: int, max_size: int = 300) -> st.SearchStrategy[bytes]:
    """Bytes that open with one of ``tags`` (and often a plausible short length after it)."""
    length = st.one_of(st.just(b""), st.integers(0, 0x7F).map(lambda n: bytes((n,))), st.binary(min_size=1, max_size=5))
    return st.builds(lambda t, ln, rest: bytes((t,)) + ln + rest, st.sampled_from(tags), length, st.binary(max_size=max_size))


@given(st.one_of(anybytes, tagged(0x60, 0x61, 0x62, 0x63)))
def test_acse_parsers(data):
    for parse in (association.parse_aarq, association.parse_aare, association.parse_release, association.parse_acse):
        documented(parse, data)


@given(st.one_of(anybytes, tagged(0x01, 0x08, 0x21, 0x28, 0x41, 0x48)))
def test_initiate_and_user_information(data):
    documented(association.parse_initiate, data)
    documented(association.UserInformation.parse, data)


@given(st.one_of(anybytes, tagged(0x0E, 0xD8)))
def test_error_pdus(data):
    documented(error_pdus.parse_confirmed_service_error, data)
    documented(error_pdus.parse_exception_response, data)


@given(st.one_of(anybytes, tagged(0xDD, 0xDF, max_size=400)))
def test_general_ciphering_and_signing(data):
    gc = documented(general_ciphering.parse_general_ciphering, data)
    documented(general_ciphering.parse_general_signing, data)
    if isinstance(gc, general_ciphering.GeneralCiphering):
        documented(general_ciphering.decrypt_unverified, gc, bytes(16))


@given(st.one_of(anybytes, tagged(0xC3, 0xC7, 0xCB, 0xCF, 0xD3, 0xD7)))
def test_hls_action_pdus(data):
    documented(hls.parse_action_request, data)
    documented(hls.parse_action_response, data)


@given(
    f=st.binary(max_size=40),
    ek=st.sampled_from([bytes(16), bytes(range(16)), bytes(32), b"\x01" * 15]),
    st_=st.binary(min_size=0, max_size=10),
    challenge=st.binary(max_size=40),
)
def test_hls_check_gmac_response(f, ek, st_, challenge):
    """Any reply f(), any key or system-title length: True/False or a documented error."""
    r = documented(hls.check_gmac_response, f, ek=ek, ak=bytes(16), system_title=st_, challenge=challenge)
    assert isinstance(r, (bool, DecodeError))


@given(st.integers(-5, 20), st.integers(0, 100))
def test_hls_mechanism_tables(mechanism, challenge_length):
    documented(hls.mechanism_info, mechanism)
    documented(hls.expected_response_length, mechanism, challenge_length)


@given(kek=st.binary(min_size=0, max_size=40), wrapped=st.binary(max_size=64))
def test_keywrap_unwrap(kek, wrapped):
    """A wrong KEK, a wrong length, an altered key: an error, never a key (integrity value checked)."""
    r = documented(keywrap.unwrap, kek, wrapped)
    if isinstance(r, bytes):
        assert keywrap.wrap(kek, r) == wrapped


@given(anybytes)
def test_ber_oid_and_walk(data):
    """oid_from_bytes is a building block: its ValueError becomes a ConstructError, then an AssociationError."""
    try:
        oid = ber.oid_from_bytes(data)
    except ValueError:
        oid = None
    if oid is not None:  # not always the same bytes back (a sub-identifier may be padded with 0x80)
        assert ber.oid_from_bytes(ber.oid_to_bytes(oid)) == oid
    problem = ber.walk_problem(data)
    assert isinstance(problem, str)


@given(st.one_of(anybytes, tagged(0xDB, 0xDC, 0xC8, 0xCC, 0xD0, 0xD4, 0x21, 0x28)))
def test_security_header(data):
    c = documented(parse_ciphered, data)
    if not isinstance(c, DecodeError):
        assert c.tag == data[0]


@given(st.one_of(anybytes, tagged(0xE0)))
def test_gbt_block(data):
    documented(parse_block, data)


@given(st.one_of(anybytes, st.builds(lambda rest: b"\x0f" + rest, anybytes)))
def test_data_notification(data):
    documented(parse_data_notification, data)
    documented(parse_data_notification, data, Templates())


@given(st.binary(max_size=14))
def test_cosem_datetime(raw):
    """Any 12 bytes are a date-time kept as sent; the conversions give a value or None, never raise."""
    assert isinstance(looks_like_datetime(raw), bool)
    dt = documented(CosemDateTime.from_bytes, raw)
    if isinstance(dt, DecodeError):
        assert len(raw) != 12
        return
    assert dt.raw == raw
    dt.isoformat()
    dt.utc()
    dt.complete  # noqa: B018
    dt.naive() if dt.complete else None


@given(st.one_of(anybytes, st.builds(lambda b: b"/" + b, anybytes), st.text(max_size=200).map(lambda s: ("/" + s).encode())))
def test_dsmr_telegram(data):
    documented(parse_telegram, data)
