"""What the watchdog says when pushes stop: a lost port, a silent line, or bytes that make no push.

Sans-IO: the daemon hands over what it knows (the port's state, when the last byte
came, the outcome counts since the last accepted push) and logs the line this
module returns.  For bytes without a push the outcome counts tell how far the
bytes got, and so the likely fault::

    no frame in them            -> baud rate, parity, transport, or not a meter
    frames, checksums fail      -> baud rate or parity (8N1 against 8E1), or noise
    frames, no key              -> give the keys
    frames, decryption fails    -> a wrong key
    frames decrypt, old counter -> replays (a meter reset: han state reset-counter)
    frames, content unknown     -> an APDU or list han cannot read
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass

#: outcome reasons by how far the bytes got, the furthest first (see decoders.errors)
WRONG_KEY = ("tag_mismatch", "wrong_key")
NO_KEY = ("no_key",)
DOWNGRADE = ("downgrade",)
REPLAYED = ("replayed",)
CONTENT = (
    "bad_apdu", "bad_axdr", "not_dlms", "profile", "unsupported_security", "malformed_security", "security",
    "bad_error_pdu",
)  # fmt: skip
CHECKSUM = ("bad_checksum", "truncated", "broken_segments", "broken_blocks")
NO_FRAME = ("not_a_frame", "bad_frame")

_FRAMES = {"hdlc": "HDLC frames", "mbus": "M-Bus frames", "raw": "APDUs"}


class SourceWatch:
    """One source's watch: when it last pushed, what came since, and whether it was warned about.

    A port or socket is watched on its own; an MQTT source as a whole (its topics' newest
    push: one bridge of thousands going quiet is not a warning).  Pushes are noted as they are
    accepted; ``committed`` runs once they are in the journal and learns the source's push interval.
    """

    __slots__ = ("source", "gaps", "last_push", "_learned_at", "warned_at", "last_byte", "bytes_in",
                 "bytes_at_push", "window")  # fmt: skip

    def __init__(self, source) -> None:
        self.source = source
        self.gaps: deque[float] = deque(maxlen=20)  #: seconds between its pushes (its push interval)
        self.last_push: float | None = None  #: its last accepted push
        self._learned_at: float | None = None  #: the push its last gap was learned from
        self.warned_at: float | None = None  #: when the watchdog last warned about it (None: all clear)
        self.last_byte: float | None = None
        self.bytes_in = 0
        self.bytes_at_push = 0
        self.window: Counter = Counter()  #: failure outcomes since its last push

    def pushed(self, now: float) -> None:
        self.last_push = now
        self.bytes_at_push = self.bytes_in
        self.window.clear()

    def failed(self, reason: str) -> None:
        self.window[reason] += 1

    def received(self, n: int, now: float) -> None:
        self.bytes_in += n
        self.last_byte = now

    def committed(self) -> bool:
        """Its new pushes are journaled: learn the gap; True when it was warned about (pushes arrive again)."""
        if self.last_push is None or self.last_push == self._learned_at:
            return False
        if self._learned_at is not None:
            self.gaps.append(self.last_push - self._learned_at)
        self._learned_at = self.last_push
        warned, self.warned_at = self.warned_at is not None, None
        return warned

    def interval(self, configured: float | None, fallback: float) -> float:
        """The configured push interval, else its own learned one, else ``fallback`` (the daemon's)."""
        if configured:
            return configured
        if len(self.gaps) >= 3:
            return max(1.0, statistics.median(self.gaps))
        return fallback


@dataclass(frozen=True)
class Quiet:
    """What the daemon knows when no push came for ``quiet_for`` seconds."""

    quiet_for: float  #: seconds since the last push (or since start)
    since_start: bool  #: no push since han started
    interval: float  #: the push interval the limit is made of (3 of them)
    port_lost: str | None = None  #: why the port is not open (it is being reopened), or None
    silent_for: float | None = None  #: seconds since the last byte (None: no byte since start)
    bytes_since_push: int = 0
    #: outcome counts since the last push (failures by reason; see han.ingest.Outcomes)
    window: Mapping[str, int] | None = None
    transport: str = "hdlc"
    serial: str = ""  #: the serial settings in use, e.g. "2400 8N1"

    @property
    def bytes_arrive(self) -> bool:
        """Bytes came within the last three push intervals (the line is not silent)."""
        return self.silent_for is not None and self.silent_for < 3 * self.interval


def message(q: Quiet) -> str:
    """The watchdog's line: ``no push for 30 s (3 × 10 s push interval): <the fault>``."""
    what = "since start" if q.since_start else f"for {q.quiet_for:.0f} s"
    head = f"no push {what} (3 × {q.interval:g} s push interval)"
    if q.port_lost is not None:
        return f"{head}: port lost ({q.port_lost}); han keeps reopening it"
    if not q.bytes_arrive:
        silent = "since start" if q.silent_for is None else f"for {q.silent_for:.0f} s"
        return (
            f"{head}: no bytes {silent}: the meter is quiet (a Kamstrup CCC port must be enabled by the grid"
            " operator), the cable or adapter is loose, or the port is the wrong one"
        )
    return f"{head}: bytes but no valid push ({q.bytes_since_push} bytes since the last push): {looks(q)}"


def looks(q: Quiet) -> str:
    """What the bytes since the last push look like, and the likely fault, from the outcome counts."""
    window = {k: v for k, v in (q.window or {}).items() if v > 0 and k not in ("accepted", "lost", "journal_error")}
    frames = _FRAMES.get(q.transport, "frames")
    serial = f" (now {q.serial})" if q.serial else ""
    now = f"now {q.serial}; " if q.serial else ""

    def has(reasons: tuple[str, ...]) -> bool:
        return any(window.get(r) for r in reasons)

    if has(WRONG_KEY):
        text = f"{frames} with valid checksums, but decryption fails: a wrong key (the encryption or authentication key)"
    elif has(NO_KEY):
        text = f"encrypted {frames}, but no key is given for them (HAN_KEY and HAN_AUTH_KEY, or [keys])"
    elif has(DOWNGRADE):
        text = (
            f"{frames} without authentication although an authentication key is set"
            " (--allow-unauthenticated if the meter really sends them so)"
        )
    elif has(REPLAYED):
        text = (
            f"{frames} decrypt, but their invocation counters are not above the last accepted: replays,"
            " or a meter that was reset (han state reset-counter)"
        )
    elif has(CONTENT):
        text = (
            f"{frames} with valid checksums, but no push han can read in them (an unknown APDU or list;"
            " han decode on a capture shows more)"
        )
    elif has(CHECKSUM):
        text = (
            f"{frames} found, but their checksums fail: wrong baud rate or parity ({now}kamstrup-ccc is"
            " 2400 8N1, mbus 2400 8E1), or noise on the line"
        )
    elif has(NO_FRAME):
        text = f"no {frames} in them: wrong baud rate or parity{serial}, the wrong --transport, or not a meter"
    else:
        text = f"no complete {frames[:-1] if frames.endswith('s') else frames} in them yet: wrong baud rate or parity{serial}"
    if window:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(window.items(), key=lambda kv: (-kv[1], kv[0])))
        text += f" [{counts}]"
    return text
