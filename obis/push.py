"""The values a decoded push turns into: what sinks and output formats receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from decoders.ciphering.control import SecurityControl
from decoders.frozen import quick_init
from decoders.xdlms.cosem_time import CosemDateTime

from .code import Obis


class Register(NamedTuple):
    """One register reading.

    ``value`` has the scaler applied (an int when the scaler is >= 0, a float
    when it is negative, text for strings and date-times); ``raw`` is the value
    as sent.  ``obis`` is None for values that carry no OBIS code on the wire
    and that no profile could place (they keep their ``position``).
    A NamedTuple rather than a dataclass: a push holds dozens, on the hot path.
    """

    obis: Obis | None
    name: str | None
    value: Any
    unit: str | None
    raw: Any
    type: str  #: A-XDR type name, e.g. ``double_long_unsigned``
    scaler: int | None  #: None when no scaler is known (value == raw)
    position: int  #: index of the value in the notification body
    key: str | None = None  #: stable snake-case field name, e.g. ``active_power_import``
    #: True when the OBIS code came from the profile's layout (by position), not from the wire
    positional: bool = False
    #: the COSEM attribute, when a push object list names one other than the value (2)
    attribute: int | None = None
    #: the value's own time stamp in UTC, when it carries one (a P1 gas reading's
    #: ``0-1:24.2.1(YYMMDDhhmmssX)(value)``): sinks place the value there, not at the push's time
    time_utc: datetime | None = None

    @property
    def obis_text(self) -> str | None:
        return self.obis.dotted if self.obis else None


class RegisterLayout:
    """What the registers of every push of one list share: all their fields but ``value`` and ``raw``.

    The decoder's plan for a list (see :mod:`obis.interpret`) makes one, and
    every push it decodes carries it (see :meth:`Push.shared_layout`).
    Output formats may key caches on it, by identity, for what they derive
    from those fields alone (the JSON writer keeps the text around each
    value).  ``fields[i]`` is register *i* without value and raw:
    ``(obis, name, unit, type, scaler, position, key, positional, attribute)``.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: tuple[tuple, ...]) -> None:
        self.fields = fields


@quick_init
@dataclass(frozen=True, slots=True)
class SecurityInfo:
    system_title: bytes | None
    invocation_counter: int
    security_control: int
    #: True when a GCM tag or GMAC was checked; False for encryption-only or unverified decryption
    verified: bool
    #: the tag of the ciphered APDU (0xDB general-glo-ciphering, 0xDC general-ded-ciphering, ...)
    tag: int = 0xDB

    @property
    def manufacturer(self) -> str | None:
        return _manufacturer(self.system_title)

    @property
    def mode(self) -> str:
        return SecurityControl.of(self.security_control).mode


_MAKERS: dict[bytes | None, str | None] = {}


def _manufacturer(system_title: bytes | None) -> str | None:
    """decoders.ciphering.security.manufacturer, remembered per system title (every push asks; the import waits for the first)."""
    try:
        return _MAKERS[system_title]  # type: ignore[index]
    except (KeyError, TypeError):  # TypeError: an unhashable title (a bytearray) is not remembered
        pass
    from decoders.ciphering.security import manufacturer

    maker = manufacturer(system_title)
    if type(system_title) is bytes or system_title is None:
        if len(_MAKERS) >= 1024:
            _MAKERS.clear()
        _MAKERS[system_title] = maker
    return maker


@quick_init
@dataclass(frozen=True, slots=True)
class Push:
    """One decoded push: the meter's list with its registers and where it came from."""

    registers: tuple[Register, ...]
    list_id: str | None
    profile: str | None  #: the profile that named and scaled the registers, or None (generic)
    meter_time: CosemDateTime | None  #: the notification's date-time, else the clock register
    invoke_id_and_priority: int
    security: SecurityInfo | None
    meter_id: str | None = None
    notes: tuple[str, ...] = ()
    #: an ISO 8601 rendering of ``meter_time`` (with the offset when known)
    timestamp: str | None = None
    #: the meter time in UTC when the deviation or the meter's time zone is known
    timestamp_utc: datetime | None = None
    #: the plain APDU (kept for the XML and explain views)
    apdu: bytes = field(default=b"", repr=False)
    #: the list's shape: flat_pairs, structs, flat_triples, push_object_list, positional, value or dsmr
    shape: str | None = None
    #: True when no profile matched and some values could not be scaled (they are given raw)
    unknown_list: bool = False
    #: the push object list, for lists that send one: (class id, OBIS, attribute, data index) per element
    object_list: tuple[tuple[int, Obis, int, int], ...] = ()
    #: the IANA time zone used for the meter's local time, when one was known
    timezone: str | None = None
    #: the layers that carried the push (a ``decoders.stream.DecodedApdu``), kept only when asked for
    layers: object = field(default=None, repr=False, compare=False)
    #: (RegisterLayout, the registers tuple it was made for): see :meth:`shared_layout`
    _layout: tuple | None = field(default=None, repr=False, compare=False)

    def shared_layout(self) -> RegisterLayout | None:
        """The layout these registers share with the other pushes of their list, when the decoder knows it.

        None when it does not, or when ``registers`` is no longer the tuple
        the layout was made for (a push rebuilt with other registers).
        """
        layout = self._layout
        if layout is not None and layout[1] is self.registers:
            return layout[0]
        return None

    def register(self, obis: Obis | str, attribute: int | None = None) -> Register | None:
        """The first register with this OBIS code (and this attribute, when given)."""
        code = obis if isinstance(obis, Obis) else Obis.parse(obis)
        for r in self.registers:
            if r.obis == code and (attribute is None or (r.attribute or 2) == attribute):
                return r
        return None
