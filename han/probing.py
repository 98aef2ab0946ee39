"""What a meter's port says at one serial setting, and what to configure (``han probe``), sans-IO.

``han probe`` opens the port at each common setting in turn and feeds what
arrives to a :class:`Listening`: the bytes go through the one decode pipeline
(:class:`~han.pipeline.PushDecoder`, transport ``auto``), which says whether
frames arrive intact (their HDLC or M-Bus checksums good), whether a push
decodes with the keys given, or why not.  P1 text telegrams (``/…!CRC``,
DSMR) decode through the same pipeline (its ``auto`` transport finds them);
they are also looked for in the raw bytes, so that a telegram is recognised
(its maker, its CRC) even when it gave no push.

A setting is *right* when the link layer vouches for the frames: a decoded
push, or an HDLC/M-Bus frame with good checksums whose content failed
later (a key missing or wrong).  Bare APDUs (a Luxembourg P1 port) carry no
checksum; there, two frames from the same system title vouch instead.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from decoders.errors import DecodeError, NotAFrame, SecurityError
from decoders.xdlms.dsmr import Telegram, parse_telegram
from obis.names import MANUFACTURERS
from obis.push import Push

from .config import SerialSettings
from .settings import DEFAULTS, PRESETS
from .summary import Summary


@dataclass(frozen=True)
class LinkSetting:
    baud: int
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1

    @property
    def label(self) -> str:
        """As people write it: ``2400 8E1``."""
        return f"{self.baud} {self.bytesize}{self.parity}{self.stopbits:g}"

    @property
    def preset(self) -> str | None:
        for name, values in PRESETS.items():
            if values == (self.baud, self.parity, self.bytesize, self.stopbits):
                return name
        return None

    def serial(self, port: str) -> SerialSettings:
        return SerialSettings(port, self.baud, self.parity, self.bytesize, float(self.stopbits))

    @classmethod
    def parse(cls, text: str) -> LinkSetting:
        """``2400 8E1``, ``2400-8E1`` or ``9600,7E1``; ValueError otherwise."""
        m = re.fullmatch(r"\s*(\d+)[\s,/-]*([5-8])([NEOMS])(1|1\.5|2)\s*", text.upper())
        if not m or int(m.group(1)) <= 0:
            raise ValueError(f"{text!r} is not a serial setting such as '2400 8E1'")
        return cls(int(m.group(1)), int(m.group(2)), m.group(3), float(m.group(4)))


#: the settings meters use, in the order they are tried
COMMON_SETTINGS: tuple[LinkSetting, ...] = (
    LinkSetting(2400, 8, "N"),  # Kamstrup CCC port (RS232), Kamstrup HAN-NVE module
    LinkSetting(2400, 8, "E"),  # M-Bus HAN ports: Aidon, Kaifa (Norway, Sweden), Austria
    LinkSetting(9600, 8, "N"),  # Landis+Gyr E360 (Switzerland), Wiener Netze infrared interface
    LinkSetting(115200, 8, "N"),  # P1 ports: Sweden, Luxembourg, Switzerland (Iskraemeco), Slovenia
    LinkSetting(9600, 7, "E"),  # older P1 ports (DSMR 2/3): text telegrams
)

#: list id prefix -> FLAG id, for plain lists whose frames carry no system title
LIST_MAKERS: dict[str, str] = {"Kamstrup_": "KAM", "KFM_": "KFM", "AIDON_": "ADN"}

#: what the security control says the meter wants, by its authentication and encryption bits
KEYS_NEEDED = {
    (True, True): "the encryption key (GUEK) and the authentication key (GAK)",
    (False, True): "the encryption key (GUEK) only",
    (True, False): "the authentication key (GAK) and the encryption key (GUEK)",
}

_OBIS_LINE = re.compile(rb"\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}\(")
_TEXT = re.compile(rb"/[\x20-\x7e]{3,}\r?\n(?:[\x20-\x7e]*\r?\n){1,200}?![0-9A-Fa-f]{0,4}")


def maker_name(flag: str | None) -> str | None:
    """``KAM`` -> ``Kamstrup``; an unknown FLAG id stays as it is."""
    if not flag:
        return None
    return MANUFACTURERS.get(flag.upper(), flag)


def maker_of(push: Push) -> str | None:
    """The manufacturer in words: from the system title, else the profile, else the list id."""
    from obis.profiles import profile_by_name

    flag = push.security.manufacturer if push.security else None
    if not flag and push.profile:
        profile = profile_by_name(push.profile)
        if profile is not None:
            makers = profile.manufacturers or ((profile.manufacturer,) if profile.manufacturer else ())
            flag = makers[0] if len(makers) == 1 else None
    if not flag and push.list_id:
        flag = next((f for prefix, f in LIST_MAKERS.items() if push.list_id.startswith(prefix)), None)
    return maker_name(flag)


@dataclass(frozen=True)
class Outcome:
    """What one setting gave."""

    setting: LinkSetting
    verdict: str  #: decoded | keys | content | p1 (a P1 telegram, no push) | garbled | silent | refused
    bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)  #: frames by outcome (han.summary's reasons)
    noise_bytes: int = 0
    transport: str | None = None  #: hdlc, mbus, raw or p1, when frames were found
    push: Push | None = None
    problem: DecodeError | None = None  #: why intact frames gave no push (a key missing or wrong, ...)
    telegram: Telegram | None = None
    error: str | None = None  #: the port refused this setting

    @property
    def found(self) -> bool:
        """The setting is right: a push, or frames the link layer vouches for, or a P1 telegram."""
        return self.verdict in ("decoded", "keys", "content", "p1")

    def frames_text(self) -> str:
        """``3 frames: 2 decoded, 1 bad checksum; 40 bytes of noise``."""
        n = sum(self.counts.values())
        parts = [f"{k} {v.replace('_', ' ')}" for v, k in sorted(self.counts.items(), key=lambda kv: -kv[1])]
        text = f"{n} frame{'s' if n != 1 else ''}" + (f" ({', '.join(parts)})" if parts else "")
        if self.noise_bytes:
            text += f", {self.noise_bytes} bytes of noise"
        return text


class Listening:
    """One setting: bytes in, an :class:`Outcome` out.  ``decided`` turns True once nothing more is needed."""

    TEXT_KEEP = 1 << 14  #: bytes kept to look for a P1 telegram across chunks

    def __init__(self, setting: LinkSetting, decoder) -> None:
        self.setting = setting
        self.decoder = decoder  #: a han.pipeline.PushDecoder (transport auto)
        self.summary = Summary()
        self.size = 0
        self.push: Push | None = None
        self.problem: DecodeError | None = None
        self.transport: str | None = None
        self.telegram: Telegram | None = None
        self._text = bytearray()
        self._raw_titles: Counter[bytes] = Counter()
        self._vouched = False

    @property
    def decided(self) -> bool:
        """A push that names its meter, a P1 telegram, or intact frames whose keys are the trouble."""
        if self.telegram is not None:
            return True
        if self.push is not None:
            return bool(self.push.meter_id or self.push.security)
        return self._vouched and self.problem is not None

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        self._take(self.decoder.feed(data))
        self._look_for_text(data)

    def finish(self) -> Outcome:
        self._take(self.decoder.flush())
        return self.outcome()

    def refused(self, error: str) -> Outcome:
        return Outcome(self.setting, "refused", error=error)

    def outcome(self) -> Outcome:
        if self.push is not None:
            verdict = "decoded"
        elif self.telegram is not None:
            verdict = "p1"  # a telegram arrived intact, but gave no push
        elif self._vouched:
            verdict = "keys" if isinstance(self.problem, SecurityError) else "content"
        elif self.size:
            verdict = "garbled"
        else:
            verdict = "silent"
        return Outcome(
            self.setting,
            verdict,
            bytes=self.size,
            counts=dict(self.summary.counts),
            noise_bytes=self.summary.noise_bytes,
            transport=self.transport or ("p1" if self.telegram is not None else None),
            push=self.push,
            problem=self.problem,
            telegram=self.telegram,
        )

    def _take(self, items) -> None:
        for item in items:
            self.summary.add(item)
            if isinstance(item, Push):
                if self.push is None or (item.meter_id and not self.push.meter_id):
                    self.push = item
                self.transport = self.decoder.transport
                continue
            if isinstance(item, NotAFrame) or not isinstance(item, DecodeError):
                continue
            if item.layer in ("framing", "hdlc", "mbus", "gbt") or item.consequence:
                continue  # the link layer failed: nothing vouches for these bytes
            if self._vouches(item):
                self._vouched = True
                self.transport = item.transport or self.decoder.transport
                if self.problem is None or isinstance(item, SecurityError):
                    self.problem = item

    def _vouches(self, err: DecodeError) -> bool:
        """An HDLC or M-Bus frame passed its checksums; bare APDUs: the second from one system title."""
        if err.transport in ("hdlc", "mbus"):
            return True
        ciphered = getattr(err.partial, "ciphered", None)
        title = getattr(ciphered, "system_title", None)
        if not title:
            return False
        self._raw_titles[title] += 1
        return self._raw_titles[title] >= 2

    def _look_for_text(self, data: bytes) -> None:
        if self.telegram is not None:
            return
        self._text += data
        if len(self._text) > self.TEXT_KEEP:
            del self._text[: len(self._text) - self.TEXT_KEEP]
        if b"!" not in data:
            return
        for m in _TEXT.finditer(self._text):
            span = m.group(0)
            if not _OBIS_LINE.search(span):
                continue
            try:
                telegram = parse_telegram(span)
            except DecodeError:
                continue
            self.telegram = telegram
            return


# -- what to tell the user --------------------------------------------------------------------------
def security_text(push: Push) -> str:
    s = push.security
    if s is None:
        return "none (plain pushes)"
    return f"{s.mode} (security control 0x{s.security_control:02X})"


def keys_text(outcome: Outcome, keys_given: bool) -> str:
    """Whether the keys given work, or which keys the meter needs."""
    push, problem = outcome.push, outcome.problem
    if outcome.telegram is not None and (push is None or push.security is None):
        return "none needed (P1 text telegrams are plain)" + ("; the keys given are not used" if keys_given else "")
    if push is not None:
        s = push.security
        if s is None:
            return "none needed (the meter sends plain pushes)" + ("; the keys given are not used" if keys_given else "")
        if s.verified:
            return "the keys given work: the pushes decrypt and their authentication tag checks"
        if s.security_control & 0x10:
            return "the encryption key works, but the tag was not checked (no authentication key)"
        return "the encryption key given works (encryption only: the pushes carry no tag; they decrypt and parse)"
    if problem is None:
        return "unknown"
    ciphered = getattr(problem.partial, "ciphered", None)
    sc = getattr(ciphered, "security_control", None)
    needed = KEYS_NEEDED.get((bool(sc & 0x10), bool(sc & 0x20))) if sc is not None else None
    if problem.reason == "no_key":
        want = f": {needed}" if needed else ""
        return f"needed{want}, from your grid operator (see docs/keys-by-country.md)"
    if problem.reason in ("tag_mismatch", "wrong_key", "bad_key", "downgrade"):
        return f"the keys given do not fit: {problem.one_line()}"
    return problem.one_line()


def _flag_of(outcome: Outcome) -> str | None:
    return maker_of(outcome.push) if outcome.push is not None else None


def meter_lines(outcome: Outcome) -> list[str]:
    """The meter found, in words: manufacturer, list, meter number, security."""
    lines = []
    maker = _flag_of(outcome)
    push = outcome.push
    if outcome.telegram is not None:
        t = outcome.telegram
        flag = t.header[:3]
        crc = {True: "CRC good", False: "CRC wrong", None: "no CRC (DSMR 2.2/3)"}[t.crc_ok]
        lines.append(f"manufacturer: {maker_name(flag) or flag} (identification /{t.header})")
        lines.append(f"P1 text telegram: {len(t.lines)} lines, {crc}")
        if push is not None:
            lines.append(f"specification: {push.list_id}")
            lines.append(f"meter number: {push.meter_id or '(not in this telegram)'}")
            lines.append(f"registers: {len(push.registers)}" + (f", meter time {push.timestamp}" if push.timestamp else ""))
        return lines
    if maker:
        lines.append(f"manufacturer: {maker}")
    if push is not None:
        lines.append(f"list: {push.list_id or '(no list id sent)'}" + (f", profile {push.profile}" if push.profile else ""))
        lines.append(f"meter number: {push.meter_id or '(not in this list)'}")
        lines.append(f"registers: {len(push.registers)}" + (f", meter time {push.timestamp}" if push.timestamp else ""))
        lines.append(f"security: {security_text(push)}")
        return lines
    ciphered = getattr(getattr(outcome.problem, "partial", None), "ciphered", None)
    if ciphered is not None:
        from decoders.ciphering.control import SecurityControl
        from decoders.ciphering.security import manufacturer

        sc = SecurityControl.of(ciphered.security_control)
        if ciphered.system_title:
            flag = manufacturer(ciphered.system_title)
            if not maker and flag:
                lines.append(f"manufacturer: {maker_name(flag)}")
            lines.append(f"system title: {ciphered.system_title.hex().upper()}")
        lines.append(f"security: {sc.mode} (security control 0x{sc.value:02X})")
    return lines


def run_command(port: str, outcome: Outcome, *, country: str | None, keys_needed: bool) -> str:
    """The ``han run`` line for what was found (keys from the environment, never on the command line)."""
    s = outcome.setting
    parts = []
    if keys_needed:
        parts.append("HAN_KEY=<encryption key>")
        if _needs_ak(outcome):
            parts.append("HAN_AUTH_KEY=<authentication key>")
    parts += ["han", "run", "--port", _quote(port)]
    parts += _serial_flags(s)
    if outcome.transport and outcome.transport != DEFAULTS["transport"]:
        parts += ["--transport", outcome.transport]
    if country:
        parts += ["--country", country.upper()]
    return " ".join(parts)


def config_snippet(port: str, outcome: Outcome, *, country: str | None, keys_needed: bool) -> list[str]:
    """The [serial] and [decode] tables for a configuration file (and where the keys go)."""
    s = outcome.setting
    lines = ["[serial]", f'port = "{port}"']
    if s.preset:
        lines.append(f'preset = "{s.preset}"')
    else:
        lines += [f"baud = {s.baud}", f'parity = "{s.parity}"', f"bytesize = {s.bytesize}", f"stopbits = {s.stopbits:g}"]
    decode = []
    if outcome.transport and outcome.transport != DEFAULTS["transport"]:
        decode.append(f'transport = "{outcome.transport}"')
    if country:
        decode.append(f'country = "{country.upper()}"')
    if decode:
        lines += ["", "[decode]", *decode]
    if keys_needed:
        lines += ["", "# keys: in a file of mode 600 (e.g. /etc/han/keys.toml, passed as the credential han-keys)"]
        lines.append('# key = "<encryption key>"' + ('   auth_key = "<authentication key>"' if _needs_ak(outcome) else ""))
    return lines


def _needs_ak(outcome: Outcome) -> bool:
    push = outcome.push
    if push is not None:
        return bool(push.security and push.security.security_control & 0x10)
    ciphered = getattr(getattr(outcome.problem, "partial", None), "ciphered", None)
    return bool(ciphered is not None and ciphered.security_control & 0x10)


def needs_keys(outcome: Outcome) -> bool:
    if outcome.push is not None:
        return outcome.push.security is not None and bool(outcome.push.security.security_control & 0x30)
    return getattr(getattr(outcome.problem, "partial", None), "ciphered", None) is not None


def _serial_flags(s: LinkSetting) -> list[str]:
    if s.preset:
        return ["--preset", s.preset]
    base = PRESETS[DEFAULTS["preset"]]
    flags = ["--baud", str(s.baud)]
    if s.parity != base[1]:
        flags += ["--parity", s.parity]
    if s.bytesize != base[2]:
        flags += ["--bytesize", str(s.bytesize)]
    if s.stopbits != base[3]:
        flags += ["--stopbits", f"{s.stopbits:g}"]
    return flags


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
