"""The library API: ``from han import ...`` has what the README's Python section uses, and its examples run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

import han


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Using han from Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_every_public_name_resolves():
    assert han.__all__ and len(set(han.__all__)) == len(han.__all__)
    for name in han.__all__:
        assert getattr(han, name) is not None, name
    assert set(han.__all__) <= set(dir(han))
    with pytest.raises(AttributeError):
        han.no_such_name  # noqa: B018
    from decoders.ciphering.security import Keys
    from han.pipeline import PushDecoder

    assert han.Keys is Keys and han.PushDecoder is PushDecoder


def test_the_readme_uses_only_the_public_api():
    examples = readme_examples()
    assert len(examples) >= 2
    for code in examples:
        for line in code.splitlines():
            if line.startswith(("import ", "from ")):
                assert re.match(r"from han import [\w, ]+$", line), line
                names = line.split(" import ", 1)[1].split(", ")
                assert set(names) <= set(han.__all__), line


@pytest.mark.parametrize("number", [0, 1])
def test_the_readme_examples_run(number, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    exec(compile(readme_examples()[number], f"README example {number + 1}", "exec"), {"__name__": "__example__"})
    out = capsys.readouterr().out
    if number == 0:
        assert "kamstrup_dk 4b414d4501a4dc52 True" in out and "energy 866636 Wh" in out
        assert "1.1.1.8.0.255 active_energy_import 866636 Wh" in out and "offset" not in out
    else:
        assert out.strip() == "['27581522']"


def test_a_key_lookup_picks_keys_per_frame():
    """The stream decoder takes keys, or a callable from a system title to keys (a KeyRing is one)."""
    text = (ROOT / "samples" / "kamstrup_dk_radius.hex").read_text()
    data = bytes.fromhex(text)
    seen: list[bytes | None] = []

    def lookup(system_title):
        seen.append(system_title)
        return han.Keys()  # no keys: the frame fails at the security layer, by value

    items = han.PushDecoder(lookup).feed(data)
    assert seen == [bytes.fromhex("4B414D4501A4DC52")]
    assert len(items) == 1 and isinstance(items[0], han.DecodeError) and items[0].layer == "security"


def test_import_han_stays_cheap_and_keyring_and_pipeline_stand_alone():
    code = (
        "import sys, han\n"
        "assert 'han.pipeline' not in sys.modules and 'decoders.stream' not in sys.modules\n"
        "import han.keyring\n"
        "assert 'han.pipeline' not in sys.modules and 'decoders.stream' not in sys.modules\n"
        "import han.config\n"
        "assert not [m for m in sys.modules if m == 'han.cli' or m.startswith('han.commands')]\n"
        "assert 'argparse' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
