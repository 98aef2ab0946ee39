"""``--format xml``: the plain APDU in the element names of the Gurux DLMS translator.

So users can compare with GXDLMSDirector / the online translator::

    <DataNotification>
      <LongInvokeIdAndPriority Value="00000000" />
      <!--2020-01-07 14:47:20-->
      <DateTime Value="07E40107020E2F14FF800000" />
      <NotificationBody>
        <DataValue>
          <Structure Qty="41">            (the count in hex, as Gurux writes it)
            <String Value="Kamstrup_V0001" />
            <!--1.1.1.8.0.255-->
            <OctetString Value="0101010800FF" />
            <UInt32 Value="000D394C" />

One push gives a ``<DataNotification>`` document; several are wrapped in
``<DataNotifications>``.
"""

from __future__ import annotations

import struct
from typing import IO
from xml.sax.saxutils import quoteattr

from decoders.xdlms import axdr
from decoders.xdlms.apdu import parse_data_notification
from decoders.xdlms.cosem_time import CosemDateTime, looks_like_datetime
from obis.code import looks_like_obis
from obis.push import Push

ELEMENT = {
    axdr.NULL: "Null",
    axdr.ARRAY: "Array",
    axdr.STRUCTURE: "Structure",
    axdr.BOOLEAN: "Boolean",
    axdr.BIT_STRING: "BitString",
    axdr.DOUBLE_LONG: "Int32",
    axdr.DOUBLE_LONG_UNSIGNED: "UInt32",
    axdr.OCTET_STRING: "OctetString",
    axdr.VISIBLE_STRING: "String",
    axdr.UTF8_STRING: "StringUTF8",
    axdr.BCD: "Bcd",
    axdr.INTEGER: "Int8",
    axdr.LONG: "Int16",
    axdr.UNSIGNED: "UInt8",
    axdr.LONG_UNSIGNED: "UInt16",
    axdr.COMPACT_ARRAY: "CompactArray",
    axdr.LONG64: "Int64",
    axdr.LONG64_UNSIGNED: "UInt64",
    axdr.ENUM: "Enum",
    axdr.FLOAT32: "Float32",
    axdr.FLOAT64: "Float64",
    axdr.DATE_TIME: "DateTime",
    axdr.DATE: "Date",
    axdr.TIME: "Time",
}
_INT_WIDTH = {
    axdr.DOUBLE_LONG: 4,
    axdr.DOUBLE_LONG_UNSIGNED: 4,
    axdr.BCD: 1,
    axdr.INTEGER: 1,
    axdr.LONG: 2,
    axdr.UNSIGNED: 1,
    axdr.LONG_UNSIGNED: 2,
    axdr.LONG64: 8,
    axdr.LONG64_UNSIGNED: 8,
    axdr.ENUM: 1,
}


def _comment_time(raw: bytes) -> str:
    dt = CosemDateTime.from_bytes(raw)
    text = dt.isoformat()
    return text.replace("T", " ") if text else raw.hex().upper()


def _value_attr(d: axdr.Data) -> str:
    tag, v = d
    if tag in _INT_WIDTH:
        width = _INT_WIDTH[tag]
        return (v & ((1 << (8 * width)) - 1)).to_bytes(width, "big").hex().upper()
    if isinstance(v, (bytes, bytearray)):
        return v.hex().upper()
    if tag == axdr.BOOLEAN:
        return "true" if v else "false"
    if tag == axdr.FLOAT32:
        return struct.pack(">f", v).hex().upper()
    if tag == axdr.FLOAT64:
        return struct.pack(">d", v).hex().upper()
    return str(v)


def _data(d: axdr.Data, lines: list[str], indent: str) -> None:
    tag, v = d
    name = ELEMENT.get(tag, f"Tag{tag}")
    if tag in (axdr.ARRAY, axdr.STRUCTURE, axdr.COMPACT_ARRAY):
        lines.append(f'{indent}<{name} Qty="{len(v):02X}">')
        for item in v:
            _data(item, lines, indent + "  ")
        lines.append(f"{indent}</{name}>")
        return
    if tag == axdr.NULL:
        lines.append(f"{indent}<{name} />")
        return
    if tag == axdr.OCTET_STRING:
        if len(v) == 6 and looks_like_obis(v):
            lines.append(f"{indent}<!--{'.'.join(str(b) for b in v)}-->")
        elif len(v) == 12 and looks_like_datetime(v):
            lines.append(f"{indent}<!--{_comment_time(v)}-->")
    lines.append(f"{indent}<{name} Value={quoteattr(_value_attr(d))} />")


def telegram_xml(push: Push, indent: str = "") -> list[str]:
    """A DSMR text telegram (the plaintext of a Luxembourg Smarty push): its lines, as sent."""
    text = push.apdu.decode("latin-1")
    lines = [f"{indent}<!--a P1 text telegram: the Gurux translator's XML has no elements for it; its lines as sent-->",
             f"{indent}<P1Telegram>"]
    for line in text.replace("\r", "").split("\n"):
        if line:
            lines.append(f"{indent}  <Line Value={quoteattr(line)} />")
    lines.append(f"{indent}</P1Telegram>")
    return lines


def notification_xml(push: Push, indent: str = "") -> list[str]:
    if push.apdu[:1] == b"/":
        return telegram_xml(push, indent)
    n = parse_data_notification(push.apdu)
    lines = [f"{indent}<DataNotification>"]
    i2 = indent + "  "
    lines.append(f'{i2}<LongInvokeIdAndPriority Value="{n.invoke_id_and_priority:08X}" />')
    if n.datetime is not None:
        lines.append(f"{i2}<!--{_comment_time(n.datetime.raw)}-->")
        lines.append(f'{i2}<DateTime Value="{n.datetime.raw.hex().upper()}" />')
    else:
        lines.append(f'{i2}<DateTime Value="" />')
    lines.append(f"{i2}<NotificationBody>")
    lines.append(f"{i2}  <DataValue>")
    _data(n.body, lines, i2 + "    ")
    lines.append(f"{i2}  </DataValue>")
    lines.append(f"{i2}</NotificationBody>")
    lines.append(f"{indent}</DataNotification>")
    return lines


class XmlWriter:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.pushes: list[Push] = []

    def write(self, push: Push) -> None:
        self.pushes.append(push)

    def close(self) -> None:
        w = self.out.write
        w('<?xml version="1.0" encoding="UTF-8"?>\n')
        if len(self.pushes) == 1:
            w("\n".join(notification_xml(self.pushes[0])) + "\n")
            return
        w("<DataNotifications>\n")
        for p in self.pushes:
            w("\n".join(notification_xml(p, "  ")) + "\n")
        w("</DataNotifications>\n")
