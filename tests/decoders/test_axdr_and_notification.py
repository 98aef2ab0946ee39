"""A-XDR values, COSEM date-time and the DataNotification APDU."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from decoders.xdlms import axdr
from decoders.xdlms.apdu import build_data_notification, parse_data_notification
from decoders.xdlms.axdr import Data
from decoders.xdlms.cosem_time import CosemDateTime, looks_like_datetime
from decoders.errors import ApduError, AxdrError, DecodeError

SAMPLES = [
    Data(axdr.NULL, None),
    Data(axdr.BOOLEAN, True),
    Data(axdr.BIT_STRING, "1011001"),
    Data(axdr.DOUBLE_LONG, -123456),
    Data(axdr.DOUBLE_LONG_UNSIGNED, 0xFFFFFFFF),
    Data(axdr.OCTET_STRING, b"\x01\x02\x03"),
    Data(axdr.VISIBLE_STRING, "Kamstrup_V0001"),
    Data(axdr.UTF8_STRING, "Zürich ⚡"),
    Data(axdr.BCD, 0x42),
    Data(axdr.INTEGER, -3),
    Data(axdr.LONG, -51),
    Data(axdr.UNSIGNED, 255),
    Data(axdr.LONG_UNSIGNED, 0xE0),
    Data(axdr.LONG64, -(2**62)),
    Data(axdr.LONG64_UNSIGNED, 2**64 - 1),
    Data(axdr.ENUM, 27),
    Data(axdr.FLOAT32, 1.5),
    Data(axdr.FLOAT64, -2.25),
    Data(axdr.DATE_TIME, bytes.fromhex("07E40107020E2F14FF800000")),
    Data(axdr.DATE, bytes.fromhex("07E4010702")),
    Data(axdr.TIME, bytes.fromhex("0E2F14FF")),
    Data(axdr.OCTET_STRING, bytes(300)),  # 0x82 length
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda d: d.type_name)
def test_roundtrip(value):
    assert axdr.decode(axdr.encode(value)) == value


def test_nested_structures_and_arrays():
    v = axdr.structure(
        axdr.array(*(axdr.structure(axdr.octet_string(b"\x01\x00\x01\x07\x00\xff"), Data(axdr.LONG, -5)),) * 3),
        axdr.structure(),
        axdr.visible_string("x"),
    )
    assert axdr.decode(axdr.encode(v)) == v


def test_compact_array():
    # compact-array of long-unsigned: type 12, contents 6 bytes
    raw = bytes.fromhex("13 12 06 0001 0002 0003".replace(" ", ""))
    d = axdr.decode(raw)
    assert d.tag == axdr.COMPACT_ARRAY and [x.value for x in d.value] == [1, 2, 3]
    # compact-array of structure{unsigned, long}: two elements
    d2 = axdr.decode(bytes.fromhex("1302021110" "06" "01FFFE" "02000A"))
    assert [[x.value for x in e.value] for e in d2.value] == [[1, -2], [2, 10]]
    with pytest.raises(AxdrError, match="boundary|needs"):
        axdr.decode(bytes.fromhex("1312" "03" "000100"))


@pytest.mark.parametrize(
    "raw,match",
    [
        (b"\x06\x00\x00", "needs 4 bytes"),
        (b"\x02\x05\x11\x01", "claims 5 elements|truncated"),
        (b"\x09\x10abc", "claims 16 bytes"),
        (b"\x07", "unknown A-XDR type"),
        (b"\x11\x01\x00", "left over"),
        (b"", "truncated"),
        (b"\x02\x01" * 40 + b"\x00", "nested deeper"),
        (b"\x09\x85\x00", "invalid length"),
        (b"\x09", "truncated"),
        (b"\x0a", "truncated"),
        (b"\x04", "truncated"),
    ],
)
def test_errors(raw, match):
    with pytest.raises(AxdrError, match=match):
        axdr.decode(raw)


def test_random_bytes_give_values_or_axdr_errors():
    rng = random.Random(3)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        try:
            axdr.decode_at(data, 0)
        except AxdrError:
            pass


def test_cosem_datetime_fields():
    dt = CosemDateTime.from_bytes(bytes.fromhex("07E40107020E2F14FF800000"))
    assert (dt.year, dt.month, dt.day, dt.weekday, dt.hour, dt.minute, dt.second) == (2020, 1, 7, 2, 14, 47, 20)
    assert dt.hundredths is None and dt.deviation is None and dt.clock_status == 0
    assert dt.isoformat() == "2020-01-07T14:47:20" and dt.utc() is None
    summer = CosemDateTime.from_bytes(bytes.fromhex("07E7060602111F14FFFF8880"))
    assert summer.deviation == -120 and summer.dst
    assert summer.isoformat() == "2023-06-06T17:31:20+02:00"
    assert summer.utc() == datetime(2023, 6, 6, 15, 31, 20, tzinfo=timezone.utc)
    aidon = CosemDateTime.from_bytes(bytes.fromhex("07E90C0E0010000000000000"))
    assert aidon.weekday == 0 and aidon.deviation == 0 and aidon.utc() is not None
    unspecified = CosemDateTime.from_bytes(bytes.fromhex("FFFFFFFFFFFFFFFFFF8000FF"))
    assert unspecified.isoformat() is None and not unspecified.complete and unspecified.clock_status is None


def test_cosem_datetime_with_timezone():
    from zoneinfo import ZoneInfo

    dt = CosemDateTime.from_bytes(bytes.fromhex("07E40107020E2F14FF800000"))
    assert dt.utc(ZoneInfo("Europe/Copenhagen")) == datetime(2020, 1, 7, 13, 47, 20, tzinfo=timezone.utc)
    built = CosemDateTime.from_datetime(datetime(2024, 3, 1, 12, 0, 0), deviation=-60)
    assert built.to_datetime().utcoffset() == timedelta(hours=1)


def test_cosem_datetime_naive_is_its_own_fields():
    """naive() is made once per parsed time, yet a value built with other fields and the same bytes gets its own."""
    from dataclasses import replace

    parsed = CosemDateTime.from_bytes(bytes.fromhex("07E40107020E2F14FF800000"))
    assert parsed.naive() is parsed.naive() == datetime(2020, 1, 7, 14, 47, 20)
    assert replace(parsed, hour=5).naive() == datetime(2020, 1, 7, 5, 47, 20)
    assert parsed.naive() == datetime(2020, 1, 7, 14, 47, 20)


def test_looks_like_datetime():
    assert looks_like_datetime(bytes.fromhex("07E40107020E2F14FF800000"))
    assert not looks_like_datetime(b"ABCDEFGHIJKL")


BODY = axdr.structure(axdr.visible_string("L"), axdr.octet_string(bytes.fromhex("0101010700FF")), Data(6, 5))
DT = CosemDateTime.from_bytes(bytes.fromhex("07E40107020E2F14FF800000"))


@pytest.mark.parametrize("dt,tagged,encoding", [(None, False, "absent"), (DT, False, "bare"), (DT, True, "tagged")])
def test_data_notification_datetime_forms(dt, tagged, encoding):
    raw = build_data_notification(BODY, invoke_id_and_priority=0x40000001, datetime=dt, tagged_datetime=tagged)
    n = parse_data_notification(raw)
    assert n.datetime_encoding == encoding and n.datetime == dt and n.body == BODY
    assert n.invoke_id == 1 and n.confirmed and not n.high_priority


@pytest.mark.parametrize(
    "raw,match",
    [
        (b"", "empty"),
        (b"\xc4\x01\x00", "get-response"),
        (b"\x0f\x00\x00\x00\x00\x05" + bytes(5), "00, 0C or 09 0C"),
        (b"\x0f\x00\x00\x00\x00\x00", "no notification body"),
        (build_data_notification(BODY) + b"\x00", "left over"),
        (build_data_notification(BODY)[:-2], "truncated|ends|needs"),
    ],
)
def test_data_notification_errors(raw, match):
    with pytest.raises(DecodeError, match=match) as info:
        parse_data_notification(raw)
    assert isinstance(info.value, (ApduError, AxdrError))
