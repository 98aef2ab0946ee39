"""Coverage-guided fuzzing with atheris (optional; not a dependency of han).

::

    python3 -m venv /tmp/fuzz && /tmp/fuzz/bin/pip install atheris -e .
    /tmp/fuzz/bin/python -m benchmarks.fuzz_atheris pipeline -max_total_time=300
    /tmp/fuzz/bin/python -m benchmarks.fuzz_atheris --list

The hypothesis tests in ``tests/test_fuzz_*.py`` run in CI; this harness is for
longer hunts guided by coverage.  Each target feeds the fuzzer's bytes to one
entry point and fails on anything but a result or a documented error (a
:class:`~decoders.errors.DecodeError` subclass, or ``ObisError`` for OBIS text),
and on an ``internal_error`` (a bug caught by the pipeline's last guard).
libFuzzer's own options follow the target name; a crash leaves its input in
``crash-*`` for a regression test.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from decoders.association import acse as association
from decoders.xdlms import axdr, error_pdus
from decoders.ciphering import general_ciphering
from decoders.errors import DecodeError
from decoders.ciphering.security import Keys
from decoders.stream import StreamDecoder
from han.pipeline import PushDecoder

EK = bytes(range(0x60, 0x70))  # fuzzing keys, not a meter's
AK = bytes(range(0x70, 0x80))


def _no_internal_error(items) -> None:
    for x in items:
        if isinstance(x, DecodeError) and x.reason == "internal_error":
            raise AssertionError(f"internal error: {x.one_line()}")


def pipeline(data: bytes) -> None:
    """The whole decoder, as ``han decode`` and ``han run`` drive it, in every transport."""
    if not data:
        return
    transport = ("auto", "hdlc", "mbus", "raw")[data[0] & 3]
    keys = Keys(ek=EK, ak=AK) if data[0] & 4 else None
    cut = max(1, data[0] >> 3)
    body = data[1:]
    dec = PushDecoder(keys, transport=transport, keep_layers=True)
    for i in range(0, len(body), cut):
        _no_internal_error(dec.feed(body[i : i + cut]))
    _no_internal_error(dec.flush())


def stream(data: bytes) -> None:
    """The link layers, reassembly and deciphering without the interpreters."""
    dec = StreamDecoder(Keys(ek=EK, ak=AK), transport="auto")
    _no_internal_error(dec.feed(data))
    _no_internal_error(dec.flush())


def p1(data: bytes) -> None:
    """P1 text telegrams: the P1 framer, the telegram parser and the interpreter, in any chunking."""
    if not data:
        return
    cut = max(1, data[0])
    dec = PushDecoder(None, transport="p1", keep_layers=True)
    for i in range(1, len(data), cut):
        _no_internal_error(dec.feed(data[i : i + cut]))
    _no_internal_error(dec.flush())


def axdr_data(data: bytes) -> None:
    try:
        axdr.decode(data)
    except DecodeError:
        pass


def acse(data: bytes) -> None:
    """AARQ, AARE, RLRQ, RLRE, the error PDUs and general-ciphering/signing."""
    for parse in (
        association.parse_acse,
        association.parse_initiate,
        error_pdus.parse_confirmed_service_error,
        error_pdus.parse_exception_response,
        general_ciphering.parse_general_ciphering,
        general_ciphering.parse_general_signing,
    ):
        try:
            parse(data)
        except DecodeError:
            pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "pipeline": pipeline,
    "stream": stream,
    "p1": p1,
    "axdr": axdr_data,
    "acse": acse,
}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] in ("-h", "--help", "--list") or argv[1] not in TARGETS:
        print(__doc__.strip().splitlines()[0])
        print("targets: " + ", ".join(TARGETS))
        return 0 if len(argv) >= 2 and argv[1] in ("-h", "--help", "--list") else 2
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install atheris (it is not a dependency of han)", file=sys.stderr)
        return 2
    target = TARGETS[argv[1]]
    atheris.instrument_all()
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
