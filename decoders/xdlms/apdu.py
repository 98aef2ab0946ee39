"""xDLMS APDUs carrying pushed data: DataNotification (0x0F).

::

    0F | invoke-id-and-priority (4) | date-time | notification-body (A-XDR Data)
                                      00                 absent
                                      0C + 12 bytes      conformant
                                      09 0C + 12 bytes   tagged (Kaifa, Kamstrup before fw 3.0)

The invoke-id-and-priority's bit 31 is the high-priority bit (set by some
Sagemcom meters), bit 30 the service class (Aidon and Kaifa set it).
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError

from . import axdr
from .cosem_time import CosemDateTime
from ..errors import ApduError, AxdrError
from .tags import APDU_NAMES, DATA_NOTIFICATION



class DataNotification:
    """A parsed data-notification (immutable).

    ``body`` is decoded on first use when the notification was parsed with
    a template cache and its body matched a template: the body was checked
    then, and ``template`` and ``values`` (the template's slot values) are
    what the fast path of :meth:`obis.interpret.Interpreter.interpret` reads instead.
    Equality, hashing and ``repr`` are those of the five fields, as for a
    dataclass.
    """

    __slots__ = (
        "invoke_id_and_priority",
        "datetime",
        "datetime_encoding",
        "_body",
        "body_offset",
        "_apdu",
        "template",
        "values",
    )
    __match_args__ = ("invoke_id_and_priority", "datetime", "datetime_encoding", "body", "body_offset")

    invoke_id_and_priority: int
    datetime: CosemDateTime | None
    #: how the header date-time was encoded: "absent", "bare" (0C) or "tagged" (09 0C)
    datetime_encoding: str
    #: offset of the body in the APDU (for annotated dumps)
    body_offset: int
    #: the template the body matched (see :class:`decoders.xdlms.axdr.Templates`), else None
    template: axdr.Template | None
    #: the template's slot values, when ``template`` is set
    values: tuple | None

    def __init__(
        self,
        invoke_id_and_priority: int,
        datetime: CosemDateTime | None,
        datetime_encoding: str,
        body: axdr.Data | None,
        body_offset: int,
        *,
        apdu: bytes = b"",
        template: axdr.Template | None = None,
        values: tuple | None = None,
    ) -> None:
        """``body`` None means: decode it from ``apdu`` at ``body_offset`` when asked (it matched ``template``)."""
        if body is None and template is None:
            raise TypeError("a DataNotification needs its body, or the template its body matched")
        init = object.__setattr__
        init(self, "invoke_id_and_priority", invoke_id_and_priority)
        init(self, "datetime", datetime)
        init(self, "datetime_encoding", datetime_encoding)
        init(self, "_body", body)
        init(self, "body_offset", body_offset)
        init(self, "_apdu", apdu if body is None else b"")
        init(self, "template", template)
        init(self, "values", values)

    @property
    def body(self) -> axdr.Data:
        body = self._body
        if body is None:
            body = axdr.decode_at(self._apdu, self.body_offset)[0]  # checked when it matched its template
            object.__setattr__(self, "_body", body)
            object.__setattr__(self, "_apdu", b"")
        return body

    def __setattr__(self, name: str, value) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _fields(self) -> tuple:
        return (self.invoke_id_and_priority, self.datetime, self.datetime_encoding, self.body, self.body_offset)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self):
        return (DataNotification, self._fields())  # pickled and copied with its body (not the template)

    def __repr__(self) -> str:
        return (
            f"DataNotification(invoke_id_and_priority={self.invoke_id_and_priority!r}, datetime={self.datetime!r},"
            f" datetime_encoding={self.datetime_encoding!r}, body={self.body!r}, body_offset={self.body_offset!r})"
        )

    @property
    def invoke_id(self) -> int:
        return self.invoke_id_and_priority & 0x00FFFFFF

    @property
    def high_priority(self) -> bool:
        return bool(self.invoke_id_and_priority & 0x80000000)

    @property
    def confirmed(self) -> bool:
        return bool(self.invoke_id_and_priority & 0x40000000)


def parse_data_notification(apdu: bytes, templates: axdr.Templates | None = None) -> DataNotification:
    """Parse a plain DataNotification; every byte must be accounted for.

    With ``templates`` (a stream's cache) a body that matches a known
    template is not decoded into a tree here (see :class:`DataNotification`);
    one that does not is decoded and its template learned.  The result, and
    every error, is the same either way.
    """
    apdu = bytes(apdu)
    n = len(apdu)
    if n == 0:
        raise ApduError("the APDU is empty")
    tag = apdu[0]
    if tag != DATA_NOTIFICATION:
        name = APDU_NAMES.get(tag)
        what = f"0x{tag:02X} ({name})" if name else f"0x{tag:02X} (not an xDLMS APDU tag)"
        raise ApduError(f"APDU {what} is not a data-notification (0x0F), the APDU meters push")
    if n < 6:
        raise ApduError("data-notification is truncated before its date-time")
    invoke = int.from_bytes(apdu[1:5], "big")
    pos = 5
    first = apdu[pos]
    dt: CosemDateTime | None = None
    if first == 0x00:
        encoding, pos = "absent", pos + 1
    elif first == 0x0C:
        encoding, raw, pos = "bare", apdu[pos + 1 : pos + 13], pos + 13
    elif first == 0x09 and n > pos + 1 and apdu[pos + 1] == 0x0C:
        encoding, raw, pos = "tagged", apdu[pos + 2 : pos + 14], pos + 14
    else:
        raise ApduError(
            f"data-notification date-time field starts with 0x{first:02X}; 00, 0C or 09 0C expected"
            " (a wrong key gives random bytes here)"
        )
    if encoding != "absent":
        if pos > n:
            raise ApduError("data-notification is truncated inside its date-time")
        dt = CosemDateTime.from_bytes(raw)
    if pos >= n:
        raise ApduError("data-notification has no notification body")
    if templates is not None:
        hit = templates.match(apdu, pos)
        if hit is not None:
            return DataNotification(invoke, dt, encoding, None, pos, apdu=apdu, template=hit[0], values=hit[1])
    try:
        body, end = axdr.decode_at(apdu, pos)
    except AxdrError as exc:
        raise AxdrError(f"notification body: {exc}") from None
    if end != n:
        raise ApduError(f"{n - end} byte(s) left over after the notification body ended at offset {end}")
    if templates is not None:
        template = templates.learn(apdu, pos, end)
        if template is not None:
            values = template.match(apdu, pos)
            return DataNotification(invoke, dt, encoding, body, pos, template=template, values=values)
    return DataNotification(invoke, dt, encoding, body, pos)


def build_data_notification(
    body: axdr.Data,
    *,
    invoke_id_and_priority: int = 0,
    datetime: CosemDateTime | None = None,
    tagged_datetime: bool = False,
) -> bytes:
    """Encode a DataNotification (tests and the simulator)."""
    head = bytes((DATA_NOTIFICATION,)) + invoke_id_and_priority.to_bytes(4, "big")
    if datetime is None:
        dt = b"\x00"
    else:
        dt = (b"\x09\x0c" if tagged_datetime else b"\x0c") + datetime.raw
    return head + dt + axdr.encode(body)
