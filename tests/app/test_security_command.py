"""han security ...: every helper against the shared vectors, and its errors (one line, no keys, no traceback)."""

from __future__ import annotations

import pytest

from conftest import require_vectors
from han.cli import main


@pytest.fixture(autouse=True)
def no_env_keys(monkeypatch):
    monkeypatch.delenv("HAN_KEY", raising=False)
    monkeypatch.delenv("HAN_AUTH_KEY", raising=False)


def vector(vid: str) -> dict:
    return next(v for v in require_vectors("security_vectors.jsonl") if v["id"] == vid)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["security", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out.strip(), err.strip()


def test_gmac_client_and_server_side(capsys):
    for vid, side, challenge, f in (
        ("gb_hls5_gmac_pass3_f_StoC", "client", "StoC", "f_StoC"),
        ("gb_hls5_gmac_pass4_f_CtoS", "server", "CtoS", "f_CtoS"),
    ):
        i, e = vector(vid)["inputs"], vector(vid)["expected"]
        code, out, _ = run(
            capsys,
            "gmac",
            "--key",
            i["EK"],
            "--auth-key",
            i["AK"],
            "--system-title",
            i[f"{side}_system_title"],
            "--invocation-counter",
            "0x" + i[f"{side}_IC"],
            "--challenge",
            i[challenge],
            "--security-control",
            i["SC"],
        )
        assert (code, out) == (0, e[f])


def test_gmac_keys_from_environment(capsys, monkeypatch):
    v = vector("gurux_hls5_gmac_pass3_glo_action_request")
    i = v["inputs"]
    monkeypatch.setenv("HAN_KEY", i["EK"])
    monkeypatch.setenv("HAN_AUTH_KEY", i["AK"])
    code, out, _ = run(
        capsys,
        "gmac",
        "--system-title",
        i["client_system_title"],
        "--invocation-counter",
        str(int(i["gmac_IC"], 16)),
        "--challenge",
        i["StoC"],
    )
    assert (code, out) == (0, v["expected"]["f_StoC"])


@pytest.mark.parametrize(
    "vid", ["gb_glo_get_request_auth_only", "gb_glo_get_request_enc_only", "gb_glo_get_request_auth_enc"]
)
def test_protect_and_unprotect_service_specific(capsys, vid):
    v = vector(vid)
    i, e = v["inputs"], v["expected"]
    keys = ["--key", i["EK"], "--auth-key", i["AK"], "--system-title", i["system_title"]]
    code, out, _ = run(
        capsys,
        "protect",
        *keys,
        "--security-control",
        i["security_control"],
        "--invocation-counter",
        "0x" + i["invocation_counter"],
        i["plaintext_apdu"],
    )  # --tag glo is the default: C0 -> C8
    assert (code, out) == (0, e["ciphered_apdu"])
    code, out, err = run(capsys, "unprotect", *keys, e["ciphered_apdu"])
    assert (code, out) == (0, i["plaintext_apdu"])
    assert ("no authentication tag was checked" in err) == (i["security_control"] == "20")


def test_protect_with_explicit_tags(capsys):
    v = vector("gurux_hls2_aes_ecb_pass3_glo_action_request")
    i, e = v["inputs"], v["expected"]
    common = ["--key", i["EK(GUEK)"], "--auth-key", i["AK"], "--system-title", i["client_system_title"]]
    code, out, _ = run(
        capsys,
        "protect",
        *common,
        "--invocation-counter",
        "0x" + i["outer_IC"],
        "--tag",
        "CB",
        e["action_request_plain"],
    )
    assert (code, out) == (0, e["glo_action_request"])
    # the same action under a dedicated key gets the ded- tag D3 and needs that key
    code, out, err = run(
        capsys, "protect", *common, "--invocation-counter", "3", "--tag", "ded", e["action_request_plain"]
    )
    assert code == 2 and "--dedicated-key is required" in err and out == ""
    code, out, _ = run(
        capsys,
        "protect",
        *common,
        "--dedicated-key",
        i["AK"],
        "--invocation-counter",
        "3",
        "--tag",
        "ded",
        e["action_request_plain"],
    )
    assert code == 0 and out.startswith("D330300000000")


def test_general_glo_ciphering_round_trip(capsys):
    v = vector("kamstrup_omnipower_push_general_glo_ciphering")
    i, e = v["inputs"], v["expected"]
    keys = ["--key", i["EK"], "--auth-key", i["AK"]]
    code, out, _ = run(
        capsys,
        "protect",
        *keys,
        "--system-title",
        i["system_title"],
        "--invocation-counter",
        "0x" + i["IC"],
        "--tag",
        "general-glo",
        e["plaintext"],
    )
    assert code == 0 and out.startswith("DB08" + i["system_title"] + "8201D030" + i["IC"])
    assert out in i["hdlc_frame"]  # byte-identical to the meter's frame
    code, plain, _ = run(capsys, "unprotect", *keys, out)
    assert (code, plain) == (0, e["plaintext"])


def test_unprotect_errors_are_one_line_without_keys(capsys):
    v = vector("gb_glo_get_request_auth_enc")
    i, e = v["inputs"], v["expected"]
    code, out, err = run(
        capsys,
        "unprotect",
        "--key",
        i["EK"],
        "--auth-key",
        i["EK"],
        "--system-title",
        i["system_title"],
        e["ciphered_apdu"],
    )
    assert code == 1 and out == "" and err.startswith("han: security: GCM tag mismatch") and "\n" not in err
    assert i["EK"] not in err.upper()
    code, out, err = run(capsys, "unprotect", "--key", i["EK"], "--auth-key", i["AK"], e["ciphered_apdu"])
    assert code == 1 and "system title" in err
    code, out, err = run(capsys, "unprotect", "--key", i["EK"], "--system-title", i["system_title"], e["ciphered_apdu"])
    assert code == 1 and "--auth-key" in err
    code, out, _ = run(
        capsys,
        "unprotect",
        "--key",
        i["EK"],
        "--system-title",
        i["system_title"],
        "--no-auth-check",
        e["ciphered_apdu"],
    )
    assert (code, out) == (0, i["plaintext_apdu"])


@pytest.mark.prints_keys  # unwrap-key's output is the key it unwrapped
def test_wrap_and_unwrap_key(capsys):
    v = vector("rfc3394_aes_keywrap_128")
    i, e = v["inputs"], v["expected"]
    assert run(capsys, "wrap-key", "--kek", i["KEK"], i["key"])[:2] == (0, e["wrapped"])
    assert run(capsys, "unwrap-key", "--kek", i["KEK"], e["wrapped"])[:2] == (0, i["key"])
    code, out, err = run(capsys, "unwrap-key", "--kek", i["key"], e["wrapped"])
    assert code == 1 and out == "" and "integrity check failed" in err
    assert i["key"] not in err and i["KEK"] not in err


def test_hls_mechanism_2(capsys):
    v = vector("gurux_hls2_aes_ecb_pass3_glo_action_request")
    i, e = v["inputs"], v["expected"]
    code, out, _ = run(capsys, "hls", "--mechanism", "2", "--hls-secret", i["secret"], "--challenge", i["StoC"])
    assert (code, out) == (0, e["f_StoC"])
    code, out, _ = run(
        capsys, "hls", "--mechanism", "2", "--hls-secret-hex", i["secret"].encode().hex(), "--challenge", i["StoC"]
    )
    assert (code, out) == (0, e["f_StoC"])


def test_hls_sha256_needs_titles(capsys):
    code, out, err = run(capsys, "hls", "--mechanism", "6", "--hls-secret", "s", "--challenge", "00112233")
    assert code == 2 and "--own-system-title is required" in err
    code, out, _ = run(
        capsys,
        "hls",
        "--mechanism",
        "6",
        "--hls-secret",
        "s",
        "--challenge",
        "00112233",
        "--own-system-title",
        "48414E636C6E7431",
        "--peer-system-title",
        "4142434445464749",
        "--own-challenge",
        "AA",
    )
    assert code == 0 and len(out) == 64


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            [
                "gmac",
                "--key",
                "nothex",
                "--auth-key",
                "00" * 16,
                "--system-title",
                "00" * 8,
                "--invocation-counter",
                "1",
                "--challenge",
                "00",
            ],
            "--key is not valid hex",
        ),
        (
            [
                "gmac",
                "--key",
                "00" * 15,
                "--auth-key",
                "00" * 16,
                "--system-title",
                "00" * 8,
                "--invocation-counter",
                "1",
                "--challenge",
                "00",
            ],
            "--key must be 16 or 32 bytes (32 or 64 hex digits), got 15 bytes",
        ),
        (
            ["gmac", "--key", "00" * 16, "--system-title", "00" * 8, "--invocation-counter", "1", "--challenge", "00"],
            "--auth-key is required (or set $HAN_AUTH_KEY)",
        ),
        (
            [
                "gmac",
                "--key",
                "00" * 16,
                "--auth-key",
                "00" * 16,
                "--system-title",
                "00" * 7,
                "--invocation-counter",
                "1",
                "--challenge",
                "00",
            ],
            "--system-title: 7 bytes given, 8 expected",
        ),
        (
            [
                "gmac",
                "--key",
                "00" * 16,
                "--auth-key",
                "00" * 16,
                "--system-title",
                "00" * 8,
                "--invocation-counter",
                "-1",
                "--challenge",
                "00",
            ],
            "outside 0..4294967295",
        ),
        (
            [
                "gmac",
                "--key",
                "00" * 16,
                "--auth-key",
                "00" * 16,
                "--system-title",
                "00" * 8,
                "--invocation-counter",
                "x",
                "--challenge",
                "00",
            ],
            "is not a number",
        ),
        (
            ["protect", "--key", "00" * 16, "--system-title", "00" * 8, "--invocation-counter", "1", "0F00"],
            "has no service-specific ciphered form",
        ),
        (
            [
                "protect",
                "--key",
                "00" * 16,
                "--system-title",
                "00" * 8,
                "--invocation-counter",
                "1",
                "--tag",
                "C0",
                "C000",
            ],
            "is not a glo-/ded- tag",
        ),
        (
            [
                "protect",
                "--key",
                "00" * 16,
                "--system-title",
                "00" * 8,
                "--invocation-counter",
                "1",
                "--security-control",
                "3030",
                "C000",
            ],
            "--security-control: one byte",
        ),
        (["wrap-key", "--kek", "00" * 16, "0011"], "a multiple of 8"),
    ],
)
def test_usage_errors(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code in (1, 2) and out == "" and message in err and err.count("\n") == 0


def test_unprotect_malformed_apdu(capsys):
    code, out, err = run(capsys, "unprotect", "--key", "00" * 16, "C81E30")
    assert code == 1 and err.startswith("han: security: ciphered APDU length field says 30")


def _doc_examples():
    """(command, expected output) for every one-line ``$ han ...`` example in docs/security.md."""
    from conftest import ROOT

    text = (ROOT / "docs" / "security.md").read_text()
    examples = []
    for block in text.split("```")[1::2]:
        if "..." in block or "\\\n" in block:
            continue  # excerpts and multi-line commands are illustrations
        command, output = None, []
        for line in block.strip("\n").splitlines():
            if line.startswith("$ "):
                if command and command.startswith("han "):
                    examples.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command and command.startswith("han ") and "|" not in command:
            examples.append((command, "\n".join(output)))
    # unwrap-key prints the key it unwrapped: that output is key material by design
    return [
        pytest.param(c, e, marks=pytest.mark.prints_keys) if "unwrap-key" in c and not e.startswith("han:") else (c, e)
        for c, e in examples
    ]


@pytest.mark.parametrize("command, expected", _doc_examples(), ids=lambda x: x[:40] if isinstance(x, str) else "")
def test_docs_examples_are_current(command, expected, capsys, monkeypatch):
    import shlex

    monkeypatch.setenv("HAN_KEY", "CFD67182DCD7356D46B33630EAEEDF80")  # the docs' made-up keys
    monkeypatch.setenv("HAN_AUTH_KEY", "E85E950113928306990F0A440B79C9D5")
    argv = shlex.split(command)[1:]
    if argv[0] == "diagnose":
        monkeypatch.delenv("HAN_KEY")
        monkeypatch.delenv("HAN_AUTH_KEY")
        monkeypatch.chdir(__import__("conftest").ROOT)
    main(argv)
    out, err = capsys.readouterr()
    assert (out + err).rstrip("\n") == expected
