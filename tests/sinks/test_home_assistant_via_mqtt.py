"""Home Assistant through the MQTT sink, as a user meets it, against a real mosquitto and a real subscriber.

- one device per meter, every list merged: each state message carries the latest value of every
  register its meter sent (Norwegian Aidon and Kaifa short and long lists, the Kamstrup seed push),
  also after a restart (from the checkpoint, or from the broker's retained state when that is lost);
- the device named in words (maker, model, serial number);
- availability follows the data: ``expire_after`` from the learned push interval, and the status
  topic goes offline when the port is unplugged or quiet and online when pushes return (a real pty);
- only the main sensors enabled by default;
- the documented Home Assistant version of every device class.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from conftest import ROOT, SEED_AK, SEED_EK, require_vectors
from daemonkit import START, accepted, simulator, start, stop, wait_until
from daemonkit import run_config as config
from servers import mosquitto  # noqa: F401 - session fixture
from mqttkit import MAIN, Subscriber, check_discovery

from decoders.link.hdlc import HdlcFramer, build_frame
from obis.push import Push, Register, SecurityInfo
from sinks.base import Entry, SinkError, create_sink
from sinks.homeassistant import CHANNEL_SENSORS, NEEDS_HOME_ASSISTANT, SENSORS, manufacturer
from sinks.mqtt import MqttPlan

HAN = [sys.executable, "-m", "han"]
AIDON = "7359992891237028"
KAIFA = "6970631401753985"
POWER = "1.0.1.7.0.255"


# -- the Norwegian captures, made into distinct pushes at run time (nothing of them is stored here) ----
def _vectors() -> dict[str, dict]:
    return {v["id"]: v for v in require_vectors("real_vectors.jsonl")}


def variant(frame_hex: str, power: int, new_power: int) -> bytes:
    """The capture with another active power value (a distinct push), its frame rebuilt with HCS and FCS."""
    (f,) = HdlcFramer().feed(bytes.fromhex(frame_hex))
    old, new = b"\x06" + power.to_bytes(4, "big"), b"\x06" + new_power.to_bytes(4, "big")
    assert f.info.count(old) == 1
    return build_frame(f.info.replace(old, new), dest=f.dest, src=f.src, control=f.control)


# -- through `han run --replay`, as a user runs it ------------------------------------------------
def aidon(order: str, base: int) -> list[bytes]:
    """``s`` a 2.5 s list 1 (its own power each, from ``base``), ``L`` the hourly list 3."""
    v = _vectors()
    short, long_ = v["aidon_no_list1_ts"], v["aidon_no_list3_6534_ts"]
    power = short["expected"]["obis"][POWER]["value"]
    return [
        variant(short["hex"], power, base + i) if k == "s" else bytes.fromhex(long_["hex"]) for i, k in enumerate(order)
    ]


def kaifa(order: str, base: int) -> list[bytes]:
    """``s`` a 2 s list 1, ``2`` the 10 s list 2, ``3`` the hourly list 3."""
    v = _vectors()
    short = v["kaifa_no_list1_2017"]
    power = short["expected"]["obis"][POWER]["value"]
    lists = {"2": v["kaifa_no_list2_2017"]["hex"], "3": v["kaifa_no_list3_2017_midnight"]["hex"]}
    return [
        variant(short["hex"], power, base + i) if k == "s" else bytes.fromhex(lists[k]) for i, k in enumerate(order)
    ]


def han_replay(tmp_path, name: str, frames: list[bytes], url: str, *extra: str) -> None:
    capture = tmp_path / f"{name}-{len(list(tmp_path.glob(name + '-*.hex')))}.hex"
    capture.write_text("\n".join(f.hex() for f in frames) + "\n")
    cmd = HAN + ["run", "--replay", str(capture), "--state-dir", str(tmp_path / name), "--sink", url, *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr


def test_each_meter_is_one_device_whose_states_carry_every_key(tmp_path, mosquitto, seed_frame):
    url = f"mqtt://127.0.0.1:{mosquitto.port}?prefix=ha_lists&topic=han_lists"
    keys = ["--key", SEED_EK.hex(), "--auth-key", SEED_AK.hex()]

    async def main():
        sub = Subscriber(mosquitto.port, topics=("ha_lists/#", "han_lists/#"), name="sub-lists")
        await wait_until(sub.subscribed.is_set, "the subscriber")
        loop = asyncio.get_running_loop()

        async def run(name, frames, *extra):
            before = len(sub.states())
            await loop.run_in_executor(None, han_replay, tmp_path, name, frames, url, *extra)
            await wait_until(lambda: len(sub.states()) == before + len(frames), f"{name}: a state per push")

        await run("aidon", aidon("sssLss", 1000), "--country", "NO")
        await run("kaifa", kaifa("ss2s3ss2", 2000), "--country", "NO")
        await run("kamstrup", [seed_frame], *keys)
        # a restart: the first short list carries the hourly list's registers (from the checkpoint)
        await run("aidon", aidon("sLs", 3000), "--country", "NO")
        # a restart whose checkpoint is lost: the broker's retained state gives the values and the position
        for path in glob.glob(str(tmp_path / "aidon" / "sinks" / "*.json")):
            os.unlink(path)
        await run("aidon", aidon("sLs", 4000), "--country", "NO")
        await sub.close()
        return sub

    sub = asyncio.run(main())
    nodes = {f"han_{AIDON}", f"han_{KAIFA}"}
    configs: dict[str, dict[str, dict]] = {}  # node -> key -> the config in force
    states: dict[str, list[dict]] = {}
    for topic, payload, retained in sub.messages:
        if topic.startswith("ha_lists/sensor/"):
            _, _, node, key, _ = topic.split("/")
            configs.setdefault(node, {})[key] = json.loads(payload)
        elif topic.endswith("/state") and not retained:
            node = topic.split("/")[1]
            state = json.loads(payload)
            # every sensor announced so far finds its key: no template misses one
            for key, c in configs.get(node, {}).items():
                check_discovery(f"ha_lists/sensor/{node}/{key}/config", json.dumps(c).encode(), state)
            states.setdefault(node, []).append(state)
    kamstrup = set(states) - nodes
    assert set(states) >= nodes and len(kamstrup) == 1, set(states)  # one device per meter, no han_unknown
    (kam,) = kamstrup

    aid = states[f"han_{AIDON}"]
    powers = [1000, 1001, 1002, 1743, 1004, 1005, 3000, 1743, 3002, 4000, 1743, 4002]
    assert [s["active_power_import"] for s in aid] == powers
    # after the hourly list, the short lists carry its registers; the two restarts carry them from the start
    full = set(aid[3])
    assert {"voltage_l1", "current_l3", "active_energy_import", "meter_type"} <= full
    assert all(set(s) == full for s in aid[3:]), [sorted(full - set(s)) for s in aid[3:]]
    assert aid[-1]["active_energy_import"] == 163777.25  # kWh (the meter sends Wh)
    # exactly once across both restarts: journal positions never repeat
    assert [s["seq"] for s in aid] == list(range(1, 13))

    kai = states[f"han_{KAIFA}"]
    assert [s["active_power_import"] for s in kai][:3] == [2000, 2001, 764]
    assert all("voltage_l1" in s for s in kai[2:]) and all("active_energy_import" in s for s in kai[4:])

    devices = {node: {json.dumps(c["device"], sort_keys=True) for c in cs.values()} for node, cs in configs.items()}
    assert all(len(d) == 1 for d in devices.values()), "one device info per meter, whichever list announced"
    dev = {node: json.loads(next(iter(d))) for node, d in devices.items()}
    assert dev[f"han_{AIDON}"] == {
        "identifiers": [f"han_{AIDON}"], "name": f"Electricity meter {AIDON}",
        "manufacturer": "Aidon", "model": "6534", "serial_number": AIDON,
    }  # fmt: skip
    assert (dev[f"han_{KAIFA}"]["manufacturer"], dev[f"han_{KAIFA}"]["model"]) == ("Kaifa", "MA304H3E")
    assert dev[f"han_{KAIFA}"]["serial_number"] == KAIFA
    assert dev[kam]["manufacturer"] == "Kamstrup" and dev[kam]["serial_number"] == kam.removeprefix("han_")
    assert dev[kam]["model"] and not re.fullmatch(r"[A-Z]{3}", dev[kam]["model"])

    # only the main sensors are enabled by default; the rest are published, disabled
    aidon_configs = configs[f"han_{AIDON}"]
    enabled = {k for k, c in aidon_configs.items() if c["enabled_by_default"]}
    assert enabled == MAIN & set(aidon_configs) and "reactive_power_import" in aidon_configs
    assert enabled == {"active_energy_import", "active_energy_export", "active_power_import", "active_power_export",
                       "voltage_l1", "voltage_l2", "voltage_l3", "current_l1", "current_l2", "current_l3"}


# -- availability on a real pty -------------------------------------------------------------------
def test_status_follows_the_port_unplugged_quiet_and_back(tmp_path, pty, mosquitto):
    sim = simulator(seed=21)

    def frame() -> bytes:
        return sim.frame(START + timedelta(days=5, seconds=10 * sim.pushes))

    url = f"mqtt://127.0.0.1:{mosquitto.port}?prefix=ha_av&topic=han_av"
    seen: list[tuple[bytes, str]] = []  # (status, the port's state when the subscriber got it)

    async def main():
        sub = Subscriber(mosquitto.port, topics=("han_av/status",), name="sub-av")
        await wait_until(sub.subscribed.is_set, "the subscriber")
        d, task = await start(config(tmp_path, pty.link, url, push_interval=1.0))

        async def status(want: bytes, what: str) -> None:
            await wait_until(lambda: sub.last("han_av/status") == want, what)
            seen.append((want, d.source.state))
            sub.messages.clear()

        for _ in range(3):
            await pty.write(frame())
        await wait_until(lambda: accepted(d) == 3, "3 pushes")
        await status(b"online", "online while pushes arrive")
        pty.unplug()  # the adapter is pulled
        await status(b"offline", "offline when the port is lost")
        pty.plug()
        await wait_until(lambda: d.source.connected.is_set(), "the port back")
        await pty.write(frame())
        await status(b"online", "online when pushes return")
        # the port stays open, the meter falls silent: quiet for three push intervals
        await status(b"offline", "offline when the port is quiet")

        async def meter_resumes() -> None:  # pushes again, one every half second (a silent port is reopened
            while True:                     # meanwhile, and a push that lands during the reopen is lost)
                await pty.write(frame())
                await asyncio.sleep(0.5)

        resumed = asyncio.create_task(meter_resumes())
        await status(b"online", "online again")
        resumed.cancel()
        assert await stop(d, task) == 0
        await status(b"offline", "offline at a clean stop (and the last will)")
        await sub.close()

    asyncio.run(main())
    assert [s for s, _ in seen] == [b"online", b"offline", b"online", b"offline", b"online", b"offline"]
    assert seen[1][1] != "connected", "the loss made it offline"
    # the quiet port made it offline, not a loss: it is open, or being reopened by the watchdog (a silent port)
    assert seen[3][1] in ("connected", "waiting"), "the quiet port made it offline"


# -- sans-IO: the plan ------------------------------------------------------------------------------
T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


def push(when: datetime, *regs: tuple[str, object, str | None], list_id=None, meter_id=None, title=None) -> Push:
    registers = tuple(
        Register(None, k, v, u, v, "double_long_unsigned", 0, i, key=k) for i, (k, v, u) in enumerate(regs)
    )
    security = SecurityInfo(title, 1, 0x30, True) if title else None
    return Push(registers=registers, list_id=list_id, profile=None, meter_time=None, invoke_id_and_priority=0,
                security=security, meter_id=meter_id, timestamp_utc=when)  # fmt: skip


def configs_of(msgs) -> dict[str, dict]:
    return {m.topic.split("/")[3]: json.loads(m.payload) for m in msgs if m.topic.endswith("/config")}


def test_expire_after_is_three_learned_intervals_and_configurable():
    def run(plan: MqttPlan, n: int, spacing: float) -> dict[str, dict]:
        out = {}
        for i in range(n):
            when = T0 + timedelta(seconds=spacing * i)
            p = push(when, ("active_power_import", 5, "W"), ("active_energy_import", 9, "Wh"))
            out.update(configs_of(plan.messages([Entry(i + 1, T0, p, "M", "M")])))
        return out

    learned = run(MqttPlan(prefix="ha", topic="t"), 6, 2.5)
    assert learned["active_power_import"]["expire_after"] == 8  # ceil(3 × 2.5 s)
    assert "expire_after" not in learned["active_energy_import"]  # a total is not a measurement
    one = Entry(1, T0, push(T0, ("active_power_import", 5, "W")), "M", "M")
    first = configs_of(MqttPlan(prefix="ha", topic="t").messages([one]))
    assert "expire_after" not in first["active_power_import"]  # not learned yet: no guess
    assert run(MqttPlan(prefix="ha", topic="t", expire_after=90), 2, 2.5)["active_power_import"]["expire_after"] == 90
    assert "expire_after" not in run(MqttPlan(prefix="ha", topic="t", expire_after=0), 6, 2.5)["active_power_import"]
    # jitter does not send the configs again; a real change does
    plan = MqttPlan(prefix="ha", topic="t")
    run(plan, 6, 10.0)
    again = plan.messages([Entry(7, T0, push(T0 + timedelta(seconds=61), ("active_power_import", 5, "W")), "M", "M")])
    assert not configs_of(again)


def test_expire_after_option():
    url = "mqtt://127.0.0.1?topic=t"
    assert create_sink(url).plan.expire_after is None  # auto
    assert create_sink(url + "&expire_after=0").plan.expire_after == 0
    assert create_sink(url, expire_after=45).plan.expire_after == 45
    assert create_sink(url, expire_after="auto").plan.expire_after is None
    for bad in ("-1", "soon", "2.5"):
        with pytest.raises(SinkError, match="expire_after is 'auto'"):
            create_sink(url + f"&expire_after={bad}")
    with pytest.raises(SinkError, match="expire_after"):
        create_sink(url, expire_after=True)


def test_makers_in_words():
    assert manufacturer(push(T0, title=b"KAMx\x01\x02\x03\x04")) == "Kamstrup"
    assert manufacturer(push(T0, title=b"LGZx\x01\x02\x03\x04")) == "Landis+Gyr"
    assert manufacturer(push(T0, list_id="AIDON_V0001")) == "Aidon"
    assert manufacturer(push(T0, list_id="KFM_001")) == "Kaifa"
    assert manufacturer(push(T0, list_id="Kamstrup_V0001")) == "Kamstrup"
    assert manufacturer(push(T0, list_id="ISK1030")) == "Iskraemeco"
    assert manufacturer(push(T0, list_id="XYZ")) is None


def test_the_model_does_not_flap_between_lists():
    plan = MqttPlan(prefix="ha", topic="t")
    a = push(T0, ("active_power_import", 1, "W"), list_id="L1")
    b = push(T0, ("meter_type", "E450", None), ("active_power_import", 2, "W"), list_id="L2", meter_id="7")
    seen = []
    for i, p in enumerate([a, b, a, b, a]):
        seen += [c["device"].get("model") for c in configs_of(plan.messages([Entry(i + 1, T0, p, "M", "7")])).values()]
    assert seen[-1] == "E450" and "E450" in seen
    assert plan.messages([Entry(9, T0, a, "M", "7")])[-1].topic.endswith("/state"), "no configs again"


def test_restore_and_recover():
    """The merged values come back from the checkpoint mark, and a newer retained state wins."""
    plan = MqttPlan(prefix="", topic="t")
    e1 = Entry(1, T0, push(T0, ("voltage_l1", 230, "V"), ("active_energy_import", 5000, "Wh"), meter_id="7"), "7", "7")
    e2 = Entry(2, T0, push(T0, ("active_power_import", 400, "W")), "7", "7")
    plan.messages([e1, e2], "j")
    mark = json.loads(json.dumps(plan.mark()))
    fresh = MqttPlan(prefix="", topic="t")
    fresh.restore(mark)
    e3 = Entry(3, T0, push(T0, ("active_power_import", 500, "W")), "7", "7")
    state = json.loads(fresh.messages([e3], "j")[-1].payload)
    assert state["voltage_l1"] == 230 and state["active_energy_import"] == 5.0 and state["active_power_import"] == 500
    # the broker holds a newer state (published, then killed before the checkpoint): it wins
    newer = json.dumps({"time": "x", "journal": "j", "seq": 5, "voltage_l1": 231, "active_energy_import": 6.0})
    older = json.dumps({"time": "x", "journal": "j", "seq": 1, "voltage_l1": 1})
    other = json.dumps({"time": "x", "journal": "k", "seq": 9, "voltage_l1": 2})
    again = MqttPlan(prefix="", topic="t")
    again.restore(mark)
    assert again.recover([("t/han_7/state", newer.encode()), ("t/han_8/state", older.encode()),
                          ("t/han_9/state", other.encode()), ("t/han_7/state", b"not json")], "j") == 5  # fmt: skip
    assert again.nodes["han_7"].values == {"voltage_l1": 231, "active_energy_import": 6.0}
    assert again.totals["han_7"]["active_energy_import"] == 6.0
    assert "han_9" not in again.nodes or not again.nodes["han_9"].values  # another journal's state is not taken


# -- the documentation ----------------------------------------------------------------------------
def test_the_docs_name_the_home_assistant_version_of_every_device_class():
    text = open(os.path.join(ROOT, "docs", "sinks.md"), encoding="utf-8").read()
    classes = {kind.device_class for _, kind in SENSORS} | {
        k.device_class for k in CHANNEL_SENSORS.values() if k.device_class}
    assert classes == set(NEEDS_HOME_ASSISTANT)
    for device_class, version in NEEDS_HOME_ASSISTANT.items():
        assert re.search(rf"\| `{device_class}` \|[^\n]*\| {re.escape(version)} \|", text), device_class
