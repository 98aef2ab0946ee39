"""The end-of-run summary of a multi-frame decode: frames counted by outcome, and what that points to.

Counting uses ``DecodeError.reason``, so a wrong key (``tag_mismatch``:
the frames arrived intact) is never confused with a bad cable
(``bad_checksum``: the frames did not)::

    summary: 12 frames: 9 decoded, 1 unknown list, 1 bad checksum, 1 no key; 1 stretch of noise (37 bytes)
    hint: ...
"""

from __future__ import annotations

from collections import Counter

from decoders.errors import DecodeError, NotAFrame
from obis.push import Push

#: reason -> label, in the order they are listed
LABELS: dict[str, str] = {
    "decoded": "decoded",
    "unknown_list": "unknown list",
    "bad_checksum": "bad checksum",
    "truncated": "truncated",
    "broken_segments": "broken segments",
    "broken_blocks": "broken block transfer",
    "bad_frame": "bad frame",
    "not_dlms": "not DLMS",
    "no_key": "no key",
    "bad_key": "bad key",
    "tag_mismatch": "tag mismatch",
    "wrong_key": "wrong key?",
    "downgrade": "refused unauthenticated",
    "unsupported_security": "unsupported security",
    "malformed_security": "bad security header",
    "bad_apdu": "bad APDU",
    "bad_axdr": "bad A-XDR",
}

HINTS: dict[str, str] = {
    "bad_checksum": "bad checksums mean corrupted bytes: check the cable and the serial settings"
    " (baud rate; parity: Kamstrup 8N1, Aidon/Kaifa M-Bus 8E1)",
    "tag_mismatch": "the frames arrive intact (their checksums are good) but the key does not fit:"
    " check --key and --auth-key (swapped? a key for another meter?)",
    "wrong_key": "encryption-only frames decrypted to garbage: the checksums are good, so the --key is wrong",
    "no_key": "the frames are encrypted: give --key (and --auth-key when the meter authenticates)",
    "unknown_list": "no profile knows this list, so values without a scaler are raw:"
    " try --country, or --profile (see 'han profiles')",
    "broken_segments": "a push split over several frames lost one of them (noise, a cut frame, or the capture"
    " began mid-push): only that push is lost; many of these point at the cable or the serial settings",
    "broken_blocks": "a block transfer lost a block (noise, a cut frame, or the capture began mid-transfer):"
    " only that push is lost",
    "not_a_frame": "bytes that are no frame: noise, or the wrong baud rate or link layer (--transport)",
}


class Summary:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.noise = 0
        self.noise_bytes = 0
        self.consequences = 0

    def add(self, item: Push | DecodeError) -> None:
        if isinstance(item, Push):
            self.counts["unknown_list" if item.unknown_list else "decoded"] += 1
        elif isinstance(item, NotAFrame):
            self.noise += 1
            self.noise_bytes += item.length or 0
        elif isinstance(item, DecodeError):
            if item.consequence:
                self.consequences += 1  # the result of a damaged frame already counted
            else:
                self.counts[item.reason] += 1

    @property
    def frames(self) -> int:
        return sum(self.counts.values())

    def render(self) -> list[str]:
        order = list(LABELS) + sorted(k for k in self.counts if k not in LABELS)
        parts = [f"{self.counts[k]} {LABELS.get(k, k.replace('_', ' '))}" for k in order if self.counts[k]]
        n = self.frames
        line = f"summary: {n} frame{'s' if n != 1 else ''}" + (": " + ", ".join(parts) if parts else "")
        if self.noise:
            s = "" if self.noise == 1 else "es"
            line += f"; {self.noise} stretch{s} of noise ({self.noise_bytes} bytes)"
        lines = [line]
        for reason, hint in HINTS.items():
            hit = self.noise if reason == "not_a_frame" else self.counts[reason]
            if hit and (reason != "not_a_frame" or not self.counts["decoded"]):
                lines.append("hint: " + hint)
        return lines
