"""The MQTT sink end to end: simulator → pty → ``han run`` → real mosquitto → a real subscriber.

Home Assistant discovery configs are checked against the documented MQTT
discovery and sensor conventions (topics, required options, device and state
classes with their units) by :func:`check_discovery`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from daemonkit import START, UTC_START, caught_up, simulator, wait_until
from servers import mosquitto  # noqa: F401 - session fixture
from daemonkit import accepted, start, stop
from daemonkit import run_config as config

from obis.push import Push, Register
from sinks.base import Checkpoint, Entry, create_sink
from sinks.mqtt import MqttPlan

# -- Home Assistant's documented conventions (home-assistant.io mqtt + sensor docs) ------------
from mqttkit import Subscriber, check_discovery


def test_discovery_state_and_availability_reach_a_real_subscriber(tmp_path, pty, mosquitto):
    sim = simulator(seed=3)
    frames = [sim.frame(START + timedelta(seconds=10 * i)) for i in range(6)]
    url = f"mqtt://127.0.0.1:{mosquitto.port}?prefix=homeassistant&topic=han"

    async def main():
        sub = Subscriber(mosquitto.port, name="sub-discovery")
        await wait_until(sub.subscribed.is_set, "the subscriber")
        d, task = await start(config(tmp_path, pty.link, url))
        for f in frames:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 6 and caught_up(d), "6 pushes published")
        await wait_until(lambda: len(sub.states()) == 6, "6 state messages")
        assert sub.last("han/status") == b"online"
        assert await stop(d, task) == 0
        await wait_until(lambda: sub.last("han/status") == b"offline", "offline at a clean stop")
        await sub.close()
        # retained: a subscriber that comes later (Home Assistant after a restart) still gets the configs
        late = Subscriber(mosquitto.port, topics=("homeassistant/sensor/han_31415926/#",), name="sub-late")
        await wait_until(lambda: len(late.messages) >= 25, "retained discovery configs")
        await late.close()
        return sub, late

    sub, late = asyncio.run(main())
    states = sub.states()
    assert [s["time"] for s in states] == [
        datetime.fromtimestamp(UTC_START + 10 * i, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(6)
    ]
    assert states[0]["active_power_import"] > 0 and states[0]["voltage_l1"] > 200
    assert 1000 < states[0]["active_energy_import"] < 100_000  # kWh (the meter sends Wh, about 10^7)
    configs = {t: check_discovery(t, p, states[0]) for t, p, _ in sub.messages if t.startswith("homeassistant/")}
    assert all(r for _, _, r in late.messages), "discovery configs are retained"
    by_key = {t.split("/")[3]: c for t, c in configs.items()}  # the last config of each sensor
    assert set(by_key) >= {"active_energy_import", "active_energy_export", "active_power_import", "voltage_l1",
                           "current_l3", "power_factor", "active_power_import_l2"}
    e = by_key["active_energy_import"]
    assert (e["device_class"], e["state_class"], e["unit_of_measurement"]) == ("energy", "total_increasing", "kWh")
    p = by_key["active_power_import"]
    assert (p["device_class"], p["state_class"], p["unit_of_measurement"]) == ("power", "measurement", "W")
    assert "unit_of_measurement" not in by_key["power_factor"]
    assert "meter_number" not in by_key and "clock" not in by_key
    assert e["device"]["serial_number"] == "31415926" and e["device"]["manufacturer"] == "Kamstrup"
    assert e["device"]["model"] and e["device"]["model"] != "KAM"
    # the pushes come every 10 s (meter time): measurement sensors expire after three intervals
    assert p["expire_after"] == 30 and "expire_after" not in e
    assert p["enabled_by_default"] and not by_key["power_factor"]["enabled_by_default"]
    # every state message carries every key (the first one too)
    assert all(set(s) == set(states[-1]) for s in states)


def test_broker_restart_backlog_arrives_in_order(tmp_path, pty, mosquitto, caplog):
    caplog.set_level(logging.INFO)
    sim = simulator(seed=4)
    frames = [sim.frame(START + timedelta(days=1, seconds=10 * i)) for i in range(15)]
    url = f"mqtt://127.0.0.1:{mosquitto.port}?topic=outage&prefix="  # no discovery

    async def main():
        sub = Subscriber(mosquitto.port, topics=("outage/#",), name="sub-outage")
        await wait_until(sub.subscribed.is_set, "the subscriber")
        d, task = await start(config(tmp_path, pty.link, url))
        for f in frames[:5]:
            await pty.write(f)
        await wait_until(lambda: len(sub.states()) == 5, "5 states")
        mosquitto.stop()
        for f in frames[5:10]:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 10 and d.workers[0].state == "failing", "the sink to fail")
        mosquitto.start()
        for f in frames[10:]:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 15 and caught_up(d), "the backlog to drain")
        await wait_until(lambda: len({s["time"] for s in sub.states()}) == 15, "15 distinct states")
        gc.collect()  # the client dropped at the outage goes now, not at some later collection
        await asyncio.sleep(0.05)
        outcomes = dict(d.ingest.outcomes.counts)
        assert await stop(d, task) == 0
        await sub.close()
        return sub, outcomes

    try:
        sub, outcomes = asyncio.run(main())
    finally:
        if mosquitto.proc is None:
            mosquitto.start()
    # the lost connection's reason, left on the dropped client, is not an internal error of han's
    assert outcomes == {"accepted": 15} and "internal error" not in caplog.text
    times = [s["time"] for s in sub.states()]
    expected = [
        datetime.fromtimestamp(UTC_START + 86400 + 10 * i, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for i in range(15)
    ]
    assert sorted(set(times)) == expected
    assert list(dict.fromkeys(times)) == expected, "in order"
    assert not any(t.startswith("homeassistant/") for t, _, _ in sub.messages)
    assert "retrying with back-off" in caplog.text and "writing again" in caplog.text


def test_a_checkpoint_behind_the_broker_never_publishes_a_push_twice(tmp_path, pty, mosquitto):
    """kill -9 between the PUBACK and the checkpoint (or a lost PUBACK): the local checkpoint lags behind
    what the broker holds.  On (re)connecting the sink reads its retained state messages and resumes
    after the highest journal position among them: every push is published exactly once."""
    import glob

    sim = simulator(seed=9)
    frames = [sim.frame(START + timedelta(days=2, seconds=10 * i)) for i in range(12)]
    url = f"mqtt://127.0.0.1:{mosquitto.port}?topic=once&prefix="

    async def main():
        sub = Subscriber(mosquitto.port, topics=("once/#",), name="sub-once")
        await wait_until(sub.subscribed.is_set, "the subscriber")
        cfg = config(tmp_path, pty.link, url)
        d, task = await start(cfg)
        for f in frames[:8]:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 8 and caught_up(d), "8 pushes published")
        assert await stop(d, task) == 0
        (ckpt,) = glob.glob(str(tmp_path / "state" / "sinks" / "*.json"))
        data = json.loads(open(ckpt).read())
        assert data["seq"] == 8
        data["seq"] = 3  # as if the daemon died after the PUBACKs of 4..8 but before their checkpoint
        with open(ckpt, "w") as fh:
            json.dump(data, fh)
        d, task = await start(cfg)
        for f in frames[8:]:
            await pty.write(f)
        await wait_until(lambda: accepted(d) == 4 and caught_up(d), "4 more pushes published")
        assert await stop(d, task) == 0
        await wait_until(lambda: len(sub.states()) >= 12, "12 state messages")
        await asyncio.sleep(0.2)  # anything published twice would have arrived by now (not an assertion of time)
        await sub.close()
        return sub.states()

    states = asyncio.run(main())
    counters = [s["invocation_counter"] for s in states]
    assert counters == list(range(1000, 1012)), "each push exactly once, in order"
    assert [s["seq"] for s in states] == list(range(1, 13))
    assert len({s["journal"] for s in states}) == 1


def energy_push(wh: int, when: datetime) -> Push:
    r = Register(None, "Active energy import", wh, "Wh", wh, "double_long_unsigned", 0, 0, key="active_energy_import")
    p = Register(None, "Active power import", 500, "W", 500, "double_long_unsigned", 0, 1, key="active_power_import")
    return Push(registers=(r, p), list_id="L", profile=None, meter_time=None, invoke_id_and_priority=0,
                security=None, meter_id="7", timestamp_utc=when)


def test_a_decreasing_total_is_never_published_even_after_a_restart(caplog):
    t = datetime(2026, 5, 1, tzinfo=timezone.utc)
    plan = MqttPlan(prefix="homeassistant", topic="han")
    msgs = plan.messages([Entry(1, t, energy_push(5000, t)), Entry(2, t, energy_push(4000, t + timedelta(seconds=10)))])
    states = [json.loads(m.payload) for m in msgs if m.topic.endswith("/state")]
    assert states[0]["active_energy_import"] == 5.0
    assert states[1]["active_energy_import"] == 5.0  # the lower value is not published: the last good one stays
    assert states[1]["active_power_import"] == 500  # the rest of the push still goes
    assert "went down from 5.0 to 4.0; not published" in caplog.text
    # the highest values travel in the checkpoint: a new sink (after a restart) keeps the guard
    sink = create_sink("mqtt://127.0.0.1:1")
    sink.plan.totals = plan.totals
    mark = asyncio.run(sink.flush()).mark
    assert mark["totals"] == {"han_7": {"active_energy_import": 5.0}}
    again = MqttPlan(prefix="", topic="han")
    sink2 = create_sink("mqtt://127.0.0.1:1")
    sink2.plan = again
    try:
        asyncio.run(sink2.open(Checkpoint("j", 2, json.loads(json.dumps(mark)))))
    except Exception:  # noqa: BLE001 - no broker on port 1: the totals are loaded before connecting
        pass
    asyncio.run(sink2.close())
    msgs = again.messages([Entry(3, t, energy_push(4500, t + timedelta(seconds=20)))])
    assert "active_energy_import" not in json.loads(msgs[-1].payload)  # 4.5 < 5.0; this sink never saw 5.0


def test_url_options_and_no_password_in_names(monkeypatch):
    s = create_sink("mqtt://han:pa55word@broker.lan:1884?prefix=ha&topic=home/han&qos=0")
    assert (s.host, s.port, s.user, s.qos, s.plan.prefix, s.plan.topic) == ("broker.lan", 1884, "han", 0, "ha", "home/han")
    assert "pa55word" not in s.name
    monkeypatch.setenv("HAN_MQTT_PASSWORD", "envpw")
    assert create_sink("mqtt://u@b")._password == "envpw"
    assert create_sink("mqtts://b").port == 8883
    with pytest.raises(Exception, match="wildcards"):
        create_sink("mqtt://b?topic=han/%23")
    with pytest.raises(Exception, match="unknown parameter"):
        create_sink("mqtt://b?prefx=x")


def test_discovery_checker_rejects_a_bad_config():
    plan = MqttPlan(prefix="homeassistant", topic="han")
    t = datetime(2026, 5, 1, tzinfo=timezone.utc)
    msgs = plan.messages([Entry(1, t, energy_push(5000, t))])
    state = json.loads(msgs[-1].payload)
    topic, payload = msgs[0].topic, json.loads(msgs[0].payload)
    check_discovery(topic, json.dumps(payload).encode(), state)
    with pytest.raises(AssertionError):
        check_discovery(topic, json.dumps({**payload, "state_class": "measurement"}).encode(), state)
    with pytest.raises(AssertionError):
        check_discovery(topic, json.dumps({**payload, "object_id": "x"}).encode(), state)


def test_a_broker_lost_while_the_sink_closes_is_not_an_internal_error(mosquitto):
    """The broker hangs, then dies, while the sink closes: the reason aiomqtt keeps is read, not left to asyncio.

    Left unread, asyncio reports it when the client is collected, and the daemon logged that as
    "internal error ... a bug" and counted a push outcome ``internal_error`` (seen in a soak week).
    """
    import os
    import signal

    from sinks.base import Checkpoint, create_sink

    async def main():
        sink = create_sink(f"mqtt://127.0.0.1:{mosquitto.port}?topic=closing&prefix=", timeout=1)
        await sink.open(Checkpoint(""))
        client = sink._client
        pid = mosquitto.proc.pid
        os.kill(pid, signal.SIGSTOP)  # the "offline" message of the close waits for its PUBACK
        closing = asyncio.ensure_future(sink.close())
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGKILL)  # meanwhile the connection is reset
        mosquitto.proc.wait()
        mosquitto.proc = None
        await asyncio.wait_for(closing, 30)
        await asyncio.sleep(0.05)
        return client._disconnected

    try:
        reason = asyncio.run(main())
    finally:
        if mosquitto.proc is None:
            mosquitto.start()
    # the client lives on in reference cycles, so when asyncio would report it cannot be waited
    # for: what it checks at that moment is checked here (Future.__del__ reports it while unread)
    assert reason.done() and not reason._log_traceback


def test_a_socket_closed_before_the_loop_registers_it_is_not_an_internal_error(mosquitto):
    """The race of a soak week's "internal error: OSError: [Errno 9] Bad file descriptor", built directly.

    paho connects in an executor thread, and the client hands the new socket to the event loop
    for reading and writing with ``call_soon_threadsafe``.  When the loop closes that socket
    first (the broker reset the connection as it was made), aiomqtt's own client registered the
    closed descriptor and the loop raised EBADF; a chaos run against a SIGSTOPped and killed
    mosquitto hit it about once a minute.  The sink's client registers only an open socket.
    """

    async def main():
        errors: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        sink = create_sink(f"mqtt://127.0.0.1:{mosquitto.port}?topic=race&prefix=", timeout=2)
        await sink.open(Checkpoint(""))
        client = sink._client
        paho = client._client
        sock = paho.socket()
        # what the connect thread does: schedule the registrations of the socket ...
        client._on_socket_open(paho, None, sock)
        client._on_socket_register_write(paho, None, sock)
        # ... and the socket is closed before the loop runs them (here: at once, on the loop)
        paho._sock_close()
        await asyncio.sleep(0.1)
        await sink.close()
        gc.collect()
        await asyncio.sleep(0.05)
        return errors

    errors = asyncio.run(main())
    assert errors == []


def test_an_unanswered_connect_leaves_no_socket_and_no_unread_reason(mosquitto):
    """A hung broker: the attempt's client is not reused, its socket is closed on the loop.

    A reused client closed the last attempt's socket in the next connect's executor thread
    while the loop still read it, and the hung broker's late CONNACK left an "Unexpected
    disconnection" nobody read: both reached the daemon's loop handler as internal errors.
    """
    import os
    import signal

    from sinks.base import SinkError

    async def main():
        errors: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        sink = create_sink(f"mqtt://127.0.0.1:{mosquitto.port}?topic=hung&prefix=", timeout=0.5)
        made = []
        new_client = sink._new_client
        sink._new_client = lambda aiomqtt: made.append(new_client(aiomqtt)) or made[-1]
        pid = mosquitto.proc.pid
        os.kill(pid, signal.SIGSTOP)  # the TCP connect succeeds (the kernel accepts), no CONNACK comes
        try:
            with pytest.raises(SinkError, match="cannot connect"):
                await sink.open(Checkpoint(""))
            assert made[0]._client.socket() is None  # closed here, not left for the next attempt
        finally:
            os.kill(pid, signal.SIGCONT)  # the broker answers the abandoned connection now
        await asyncio.sleep(0.3)
        await sink.open(Checkpoint(""))
        assert len(made) == 2 and sink._client is made[1]
        await sink.status(True)
        await sink.close()
        assert made[1]._client.socket() is None
        del made[:]
        gc.collect()
        await asyncio.sleep(0.05)
        return errors

    errors = asyncio.run(main())
    assert errors == []
