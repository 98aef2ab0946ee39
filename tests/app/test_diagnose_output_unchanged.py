"""``han diagnose`` gives the recorded output, byte for byte, for every input of tests/diagnose_compare.py.

The recording holds SHA-256 digests of each case's exit status, standard
output and standard error.  A change of wording that is meant is recorded
again with ``python tests/diagnose_compare.py digests``; to see what changed,
record the full outputs before the change (``... record OUT.json``) and
compare after (``... compare OUT.json``).
"""

from __future__ import annotations

import json

from diagnose_compare import DIGESTS, _fixture_log, differences, digest, record


def test_diagnose_output_is_unchanged(tmp_path):
    expected = json.loads(DIGESTS.read_text())
    if _fixture_log() is None:  # the shared vectors are absent: their cases are not run
        expected = {k: v for k, v in expected.items() if not k.startswith("vectors ")}
    current = {k: digest(v) for k, v in record(tmp_path).items()}
    assert not differences(expected, current), "\n".join(differences(expected, current))
    assert len(current) == len(expected)
