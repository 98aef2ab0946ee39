"""Hypothesis settings shared by the fuzz tests (``tests/test_fuzz_*.py``), and their common helpers.

Two profiles, chosen by the ``HAN_FUZZ`` environment variable:

``ci`` (the default)
    derandomized, so a CI run is reproducible and a failure seen there is
    seen again on any machine; no deadline (a 2-core CI box is slow and
    noisy, and time is not what these tests check); example counts small
    enough that all fuzz tests together take well under a minute.

``deep`` (``HAN_FUZZ=deep``)
    random seeds and 25 times more examples, for a longer local run that
    looks for new failures.  A failure prints the ``@reproduce_failure``
    blob and the input: turn the input into a literal regression test.

Why a module and not ``conftest.py``: the fuzz tests own their budget, and
importing this module is what registers and loads the profile, so running
one fuzz file alone gets the same settings as the whole suite.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from decoders.errors import DecodeError

#: examples per test in the CI profile; a test that is costly per example asks for a fraction of it
CI_EXAMPLES = 150
DEEP_FACTOR = 25

settings.register_profile(
    "ci",
    max_examples=CI_EXAMPLES,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    max_examples=CI_EXAMPLES * DEEP_FACTOR,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PROFILE = "deep" if os.environ.get("HAN_FUZZ", "").lower() == "deep" else "ci"
settings.load_profile(PROFILE)


def examples(n: int) -> settings:
    """Settings for a test that should run ``n`` examples in CI (scaled up in the deep profile)."""
    return settings(max_examples=n * (DEEP_FACTOR if PROFILE == "deep" else 1))


def documented(call, *args, **kwargs):
    """Call a decoder; return its result, or the :class:`DecodeError` it raised.

    Any other exception propagates and fails the test: that is the property
    every fuzz test checks (the documented error classes, nothing else).
    """
    try:
        return call(*args, **kwargs)
    except DecodeError as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        return exc


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` split at the (sorted, deduplicated) offsets ``cuts``: how a serial port hands bytes over."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


def feed_all(decoder, chunks) -> list:
    """Feed every chunk to a sans-IO decoder, then flush; everything it returned, in order."""
    out = []
    for c in chunks:
        out += decoder.feed(c)
    return out + decoder.flush()
