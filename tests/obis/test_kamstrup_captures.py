"""The Kamstrup captures of ../shared/vectors/real_vectors.jsonl (read at test time, never copied here).

The other meters of the corpus belong to the meter-coverage work; here every
Kamstrup vector must decode to its expected raw values, or be rejected when
it is a negative vector.
"""

from __future__ import annotations

import pytest

from conftest import load_vectors
from decoders.errors import ChecksumError, DecodeError
from decoders.ciphering.security import Keys
from decoders.stream import StreamDecoder
from han.pipeline import PushDecoder, to_push
from obis.push import Push
from vectorcheck import keys_of, mismatches, scaled_mismatches

KAMSTRUP = [v for v in load_vectors("real_vectors.jsonl") if v["id"].startswith("kamstrup")]
if not KAMSTRUP:
    pytest.skip("shared vectors not available (../shared/vectors/real_vectors.jsonl)", allow_module_level=True)


def run(vector: dict, keys: Keys | None = None) -> list:
    d = PushDecoder(keys if keys is not None else keys_of(vector))
    return d.feed(bytes.fromhex(vector["hex"])) + d.flush()


@pytest.mark.parametrize("vector", KAMSTRUP, ids=lambda v: v["id"])
def test_kamstrup_vector(vector):
    out = run(vector)
    if vector.get("expect_framing_failure"):
        assert not any(isinstance(x, Push) for x in out)
        assert any(isinstance(x, ChecksumError) for x in out)
        return
    if vector["keys"] is None and vector["expected"].get("security"):
        # encrypted, key not public: the header must parse and the error must ask for the key
        (err,) = out
        assert isinstance(err, DecodeError) and err.reason == "no_key"
        if vector["expected"].get("plaintext_from_source"):
            decoded = StreamDecoder().decode_apdu(bytes.fromhex(vector["expected"]["plaintext_apdu"]))
            push = to_push(decoded)
            assert mismatches(push, vector) == []
        return
    (push,) = out
    assert isinstance(push, Push), push
    assert mismatches(push, vector) == []
    if vector["expected"].get("plaintext_apdu"):
        assert push.apdu.hex().upper() == vector["expected"]["plaintext_apdu"]
    sec = vector["expected"].get("security")
    if sec:
        assert push.security.system_title.hex().upper() == sec["system_title"]
        assert push.security.invocation_counter == int(sec["frame_counter"], 16)
        assert push.security.security_control == int(sec["sc"], 16)


@pytest.mark.parametrize(
    "vector", [v for v in KAMSTRUP if "65-element" in v["notes"] or "_dk_" in v["id"]], ids=lambda v: v["id"]
)
def test_danish_lists_are_scaled(vector):
    out = run(vector)
    pushes = [x for x in out if isinstance(x, Push)]
    if not pushes:
        pytest.skip("encrypted without a public key")
    (push,) = pushes
    assert push.profile == "kamstrup_dk"
    assert scaled_mismatches(push, vector) == []
