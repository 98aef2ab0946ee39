"""What edge bridges publish, unpacked by ``format=auto`` (han.sources.payload), and decoded per topic.

Binary frames, amsreader's hex dump (a frame, a whole push, or the DLMS body alone), amsreader's debug
JSON, Tibber Pulse's envelope and batched frames, the P1 hook; every malformed kind is one PayloadError.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from daemonkit import KEYS, START, simulator

from decoders.link.hdlc import build_frames
from han.keyring import KeyRing
from han.pipeline import PushDecoder
from han.sources.payload import BODY_HEADER, PayloadError, detect, unpack
from obis.push import Push


def frames(n: int = 2) -> list[bytes]:
    sim = simulator(seed=5)
    return [sim.frame(START + timedelta(seconds=10 * i)) for i in range(n)]


def decoded(data: bytes, keys=KEYS) -> list:
    dec = PushDecoder(keys, transport="auto")
    return dec.feed(data) + dec.end_message()


def test_binary_hex_json_and_tibber_messages_give_the_same_push():
    (frame,) = frames(1)
    messages = {
        "binary": frame,
        "hex": frame.hex().upper().encode(),
        "json": json.dumps({"data": frame.hex().upper()}).encode(),
        "tibber": b"\x08\xdc\xd9\x02\x00\x10" + frame,  # an envelope before the 7E flag
    }
    apdus = set()
    for kind, message in messages.items():
        payload = unpack(message)
        assert payload.kind == kind
        (push,) = decoded(payload.data)
        assert isinstance(push, Push), push
        apdus.add(push.apdu)
    assert len(apdus) == 1


def test_several_frames_in_one_tibber_message_are_cut_out_by_their_lengths():
    a, b = frames(2)
    message = b"\x08\xdc\xd9\x02" + a + b"\x08\x01" + b  # envelope bytes before and between the frames
    payload = unpack(message)
    assert payload.kind == "tibber" and payload.data == a + b
    assert [type(x) for x in decoded(payload.data)] == [Push, Push]


def test_a_whole_push_of_several_frames_in_one_hex_message():
    a, b = frames(2)
    payload = unpack((a + b).hex().upper().encode())
    assert [type(x) for x in decoded(payload.data)] == [Push, Push]


def test_a_bare_dlms_body_in_hex_gets_the_data_notification_header_it_lacks():
    sim = simulator(seed=5, keys=None)
    frame = sim.frame(START)
    (push,) = decoded(frame, keys=None)
    # the plain APDU: 0F, invoke id (4), date-time (length 0C + 12 bytes), then the body
    assert push.apdu[0] == 0x0F and push.apdu[5] == 0x0C
    body = push.apdu[18:]
    payload = unpack(body.hex().upper().encode())
    assert payload.data == BODY_HEADER + body
    (again,) = decoded(payload.data, keys=None)
    assert isinstance(again, Push) and again.meter_id == push.meter_id
    assert again.registers == push.registers


def test_p1_text_is_passed_on_as_it_is():
    telegram = b"/ISK5\\2M550T-1012\r\n\r\n1-0:1.8.1(000123.456*kWh)\r\n!ABCD\r\n"
    assert detect(telegram) == "p1"
    assert unpack(telegram).data == telegram
    assert unpack(telegram, "p1").kind == "p1"


def test_a_json_message_without_data_is_ignored_not_malformed():
    payload = unpack(b'{"status": "online", "rssi": -60}')
    assert payload.kind == "ignored" and payload.data == b"" and "data field" in payload.note


@pytest.mark.parametrize(
    "message, fmt, text",
    [
        (b"", "auto", "empty"),
        (b"\x42\x43\x44\x45 no frame", "auto", "no HDLC or M-Bus frame"),
        (b"7EA0Z1", "hex", "not whole hex pairs"),
        (b"7EA", "auto", "not whole hex pairs"),
        (b'{"data": "7EA0"', "auto", "not valid JSON"),
        (b'{"data": 17}', "auto", "must be hex text"),
        (b'{"data": "XYZ"}', "auto", "not whole hex pairs"),
        (b"\x08\x00\x01\x7e\xa0\x40\x01", "auto", "no whole HDLC frame"),
        (b"\x7e\xa0", "hex", "not whole hex pairs"),
    ],
)
def test_a_malformed_message_is_one_line(message, fmt, text):
    with pytest.raises(PayloadError) as err:
        unpack(message, fmt)
    assert text in str(err.value) and "\n" not in str(err.value)


def test_each_topic_has_its_own_framer_state(tmp_path):
    """Two bridges' frames cut in halves and interleaved: each topic's decoder joins its own."""
    from han.ingest import Ingest
    from han.journal import Journal, read_all
    from han.replay import CounterStore
    from han.burstlog import BurstLog

    a = simulator(seed=1).frame(START)
    b = simulator(seed=2, counter_start=5000).frame(START)
    ring = KeyRing(KEYS)
    journal = Journal(str(tmp_path / "journal.db"))
    ingest = Ingest(
        PushDecoder(ring), ring, CounterStore(str(tmp_path / "counters.json")), journal,
        decoders=lambda name: PushDecoder(ring, transport="auto"), burst=BurstLog(lambda m: None),
    )  # fmt: skip
    got = []
    got += ingest.feed(a[:40], "bridge/a")
    got += ingest.feed(b[:40], "bridge/b")
    got += ingest.feed(a[40:], "bridge/a")
    got += ingest.feed(b[40:], "bridge/b")
    assert len(got) == 2 and not ingest.outcomes.counts.keys() - {"accepted"}
    assert [(r.stream, r.meter) for r in read_all(journal.path)] == [
        ("bridge/a", got[0].security.system_title.hex().upper()),
        ("bridge/b", got[1].security.system_title.hex().upper()),
    ]
