"""``han security ACTION``: small security helpers, each printing hex on stdout.

    gmac        f = SC || IC || GMAC(SC || AK || challenge)   (HLS mechanism 5)
    hls         f() of mechanisms 2, 3, 4 and 6 from the HLS secret
    protect     protect a plain APDU (glo-/ded- service tags or general DB/DC)
    unprotect   check and remove the protection of an APDU
    wrap-key    AES key wrap (RFC 3394) under a KEK, as global_key_transfer sends keys
    unwrap-key  the reverse, with its integrity check

Keys come from the options or from $HAN_KEY / $HAN_AUTH_KEY; they are never printed.
"""

from __future__ import annotations

import argparse
import sys

from decoders.association import hls
from decoders.ciphering import keywrap
from decoders.xdlms.tags import apdu_name, ciphered_tag, key_family
from decoders.ciphering.control import SecurityControl
from decoders.ciphering.security import Keys, parse_ciphered, protect, unprotect
from decoders.errors import KeyMissing

from .. import keyargs
from ..advice import advise
from ..keysource import load_keys
from ..cli import UsageError

TAG_WORDS = {"general-glo": 0xDB, "general-ded": 0xDC}


def _keys(p: argparse.ArgumentParser, dedicated: bool = False) -> None:
    p.add_argument("--key", help="encryption key (GUEK), hex; default $HAN_KEY")
    p.add_argument("--auth-key", help="authentication key (AK), hex; default $HAN_AUTH_KEY")
    if dedicated:
        p.add_argument("--dedicated-key", help="dedicated key, hex, for ded- tags and DC")
        p.add_argument("--broadcast-key", help="global broadcast key (GBEK), hex, for SC with bit 0x40")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = sub.add_parser("gmac", help="HLS-GMAC response f = SC || IC || GMAC(SC || AK || challenge)")
    _keys(p)
    p.add_argument("--system-title", required=True, help="the sender's system title (8 bytes, hex)")
    p.add_argument("--invocation-counter", required=True, help="the IC used in the GMAC (decimal, or 0x hex)")
    p.add_argument("--challenge", required=True, help="the peer's challenge (StoC for the client), hex")
    p.add_argument("--security-control", default="10", help="security control byte, hex (default 10)")

    p = sub.add_parser("hls", help="HLS response f() of mechanism 2 (AES-ECB), 3 (MD5), 4 (SHA-1) or 6 (SHA-256)")
    p.add_argument("--mechanism", type=int, choices=(2, 3, 4, 6), required=True)
    p.add_argument("--hls-secret", help="HLS secret as text")
    p.add_argument("--hls-secret-hex", help="HLS secret as hex")
    p.add_argument("--challenge", required=True, help="the peer's challenge, hex")
    p.add_argument("--own-system-title", help="mechanism 6: the answering side's system title")
    p.add_argument("--peer-system-title", help="mechanism 6: the other side's system title")
    p.add_argument("--own-challenge", help="mechanism 6: the answering side's own challenge, hex")

    p = sub.add_parser("protect", help="protect a plain APDU")
    _keys(p, dedicated=True)
    p.add_argument("--system-title", required=True, help="the sender's system title (8 bytes, hex)")
    p.add_argument("--invocation-counter", required=True, help="decimal, or 0x hex")
    p.add_argument("--security-control", default="30", help="hex: 10 auth, 20 enc, 30 both (default 30)")
    p.add_argument(
        "--tag",
        default="glo",
        help="glo (default) or ded: the service-specific tag of the APDU (C0 -> C8 or D0);"
        " general-glo (DB) or general-ded (DC); or a tag byte in hex",
    )
    p.add_argument("apdu", metavar="APDU", help="the plain APDU, hex")

    p = sub.add_parser("unprotect", help="check and remove the protection of an APDU")
    _keys(p, dedicated=True)
    p.add_argument("--system-title", help="the sender's system title; needed when the APDU carries none")
    p.add_argument(
        "--no-auth-check", action="store_true", help="decrypt an authenticated APDU without its tag (no AK known)"
    )
    p.add_argument("apdu", metavar="APDU", help="the protected APDU, hex (starting with its tag)")

    for name, verb in (("wrap-key", "wrap"), ("unwrap-key", "unwrap")):
        p = sub.add_parser(name, help=f"{verb} a key under the master key (AES key wrap, RFC 3394)")
        p.add_argument("--kek", required=True, help="master key (KEK), hex")
        p.add_argument("key", metavar="KEY_HEX", help=f"the key to {verb}, hex")


def run(args: argparse.Namespace) -> int:
    out = ACTIONS[args.action](args)
    print(out.hex().upper())
    return 0


def _gmac(args: argparse.Namespace) -> bytes:
    keys = load_keys({"--key": args.key, "--auth-key": args.auth_key}).default
    ek = _required(keys.ek, "--key")
    ak = _required(keys.ak, "--auth-key")
    return hls.gmac_response(
        ek=ek,
        ak=ak,
        system_title=keyargs.system_title(args.system_title),
        invocation_counter=keyargs.counter(args.invocation_counter),
        challenge=keyargs.hex_bytes(args.challenge, "--challenge"),
        security_control=keyargs.byte(args.security_control, "--security-control"),
    )


def _hls(args: argparse.Namespace) -> bytes:
    secret = _required(keyargs.secret_text(args.hls_secret, args.hls_secret_hex), "--hls-secret")
    challenge = keyargs.hex_bytes(args.challenge, "--challenge")
    if args.mechanism == 2:
        return hls.aes_ecb_response(secret, challenge)
    if args.mechanism == 3:
        return hls.md5_response(secret, challenge)
    if args.mechanism == 4:
        return hls.sha1_response(secret, challenge)
    own = _required(keyargs.system_title(args.own_system_title, "--own-system-title"), "--own-system-title")
    peer = _required(keyargs.system_title(args.peer_system_title, "--peer-system-title"), "--peer-system-title")
    own_challenge = keyargs.hex_bytes(_required(args.own_challenge, "--own-challenge"), "--own-challenge")
    return hls.sha256_response(secret, own, peer, challenge, own_challenge)


def _all_keys(args: argparse.Namespace) -> Keys:
    flags = {"--key": args.key, "--auth-key": args.auth_key, "--dedicated-key": args.dedicated_key}
    return load_keys({**flags, "--broadcast-key": args.broadcast_key}).default


def _tag(word: str, apdu: bytes) -> int:
    if word in ("glo", "ded"):
        try:
            return ciphered_tag(apdu[0], dedicated=word == "ded")
        except ValueError as exc:
            raise UsageError(f"--tag {word}: {exc}") from None
    if word in TAG_WORDS:
        return TAG_WORDS[word]
    tag = keyargs.byte(word, "--tag")
    if key_family(tag) not in ("global", "dedicated"):
        raise UsageError(f"--tag {word}: 0x{tag:02X} ({apdu_name(tag)}) is not a glo-/ded- tag or DB/DC")
    return tag


def _protect(args: argparse.Namespace) -> bytes:
    apdu = keyargs.hex_bytes(args.apdu, "APDU")
    if not apdu:
        raise UsageError("APDU: empty")
    keys, tag = _all_keys(args), _tag(args.tag, apdu)
    sc = keyargs.byte(args.security_control, "--security-control")
    control = SecurityControl.of(sc)
    if control.protected:  # name the key this tag and security control need, before protect() asks for "a key"
        if key_family(tag) == "dedicated":
            _required(keys.dedicated, "--dedicated-key")
        elif control.broadcast:
            _required(keys.broadcast, "--broadcast-key")
        else:
            _required(keys.ek, "--key")
    if control.authenticated:
        _required(keys.ak, "--auth-key")
    return protect(
        apdu,
        keys=keys,
        system_title=keyargs.system_title(args.system_title),
        invocation_counter=keyargs.counter(args.invocation_counter),
        security_control=sc,
        tag=tag,
    )


def _unprotect(args: argparse.Namespace) -> bytes:
    ciphered = parse_ciphered(keyargs.hex_bytes(args.apdu, "APDU"))
    try:
        result = unprotect(
            ciphered,
            _all_keys(args),
            system_title=keyargs.system_title(args.system_title),
            allow_unauthenticated=True,
            allow_unverified=args.no_auth_check,
        )
    except KeyMissing as exc:
        raise advise(exc) from None
    if not result.verified:
        print(
            "han security: note: no authentication tag was checked (not authenticated or --no-auth-check)",
            file=sys.stderr,
        )
    return result.apdu


def _wrap(args: argparse.Namespace) -> bytes:
    kek = keyargs.hex_bytes(args.kek, "--kek", secret=True, lengths=(16, 24, 32))
    return keywrap.wrap(kek, keyargs.hex_bytes(args.key, "KEY_HEX", secret=True))


def _unwrap(args: argparse.Namespace) -> bytes:
    kek = keyargs.hex_bytes(args.kek, "--kek", secret=True, lengths=(16, 24, 32))
    return keywrap.unwrap(kek, keyargs.hex_bytes(args.key, "KEY_HEX", secret=True))


def _required(value, option: str):
    if value is None:
        env = {"--key": " (or set $HAN_KEY)", "--auth-key": " (or set $HAN_AUTH_KEY)"}.get(option, "")
        raise UsageError(f"{option} is required{env}")
    return value


ACTIONS = {
    "gmac": _gmac,
    "hls": _hls,
    "protect": _protect,
    "unprotect": _unprotect,
    "wrap-key": _wrap,
    "unwrap-key": _unwrap,
}
