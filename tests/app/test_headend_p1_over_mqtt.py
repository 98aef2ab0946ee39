"""P1 text telegrams through a real mosquitto into a ``han run`` worker: one telegram per MQTT message,
as the text itself, as hex text, and as hex in a JSON ``data`` field (``format=auto`` tells them apart)."""

from __future__ import annotations

import json

from daemonkit import wait_until_sync
from headendkit import Publisher, Worker, write_keys
from servers import mosquitto  # noqa: F401 - session fixture

from decoders.link.p1build import build_telegram

LINES = [
    "1-3:0.2.8(50)",
    "0-0:1.0.0(260115120000W)",
    "0-0:96.1.1(4530303034303031353934353132323136)",
    "1-0:1.8.1(001234.567*kWh)",
    "1-0:1.8.2(000765.432*kWh)",
    "1-0:1.7.0(01.234*kW)",
    "1-0:32.7.0(230.1*V)",
]
EXPECTED = {"1.0.1.8.1.255": (1234.567, "kWh"), "1.0.1.8.2.255": (765.432, "kWh"), "1.0.1.7.0.255": (1.234, "kW"),
            "1.0.32.7.0.255": (230.1, "V"), "0.0.96.1.1.255": ("E0004001594512216", None)}  # fmt: skip


def test_a_p1_telegram_as_text_hex_and_json_decodes_in_a_worker(tmp_path, mosquitto):
    telegram = build_telegram("/ISK5\\2M550T-1012", LINES)
    messages = {
        "text": telegram,
        "hex": telegram.hex().upper().encode(),
        "json": json.dumps({"data": telegram.hex().upper()}).encode(),
    }
    keys = write_keys(tmp_path / "meters.toml", [])
    w = Worker(tmp_path, "w1", f"mqtt://127.0.0.1:{mosquitto.port}/p1/+", keys).start()
    pub = Publisher(mosquitto.port, "pub-p1")
    try:
        for kind, message in messages.items():
            pub.publish(f"p1/{kind}", message)
        wait_until_sync(lambda: w.sink.exists() and len(w.sink.read_text().splitlines()) >= 3, "three P1 pushes")
        wait_until_sync(lambda: w.status().get("outcomes", {}).get("accepted") == 3, "the status to count them")
        outcomes = w.status()["outcomes"]
        assert w.stop() == 0
    finally:
        pub.close()
        w.close()
    pushes = [json.loads(line) for line in w.sink.read_text().splitlines()]
    assert outcomes.get("accepted") == 3 and sum(outcomes.values()) == 3, outcomes
    for push in pushes:
        got = {r["obis"]: (r["value"], r.get("unit")) for r in push["registers"]}
        for obis, want in EXPECTED.items():
            assert got.get(obis) == want, (obis, got)
