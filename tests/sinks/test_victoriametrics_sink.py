"""The VictoriaMetrics sink against the real victoria-metrics: series labelled per meter, and a push
written twice (another worker, a re-sent batch) is one sample under ``-dedup.minScrapeInterval=1ms``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from daemonkit import START
from servers import Victoria, victoria  # noqa: F401 - session fixture

from decoders.ciphering.security import Keys
from han.keyring import KeyRing
from han.pipeline import PushDecoder
from han.simulator import KamstrupSimulator
from sinks.base import Checkpoint, Entry, SinkError, create_sink

#: Europe/Copenhagen in January: the meters' local clock is UTC+1
UTC_START = int(START.replace(tzinfo=timezone(timedelta(hours=1))).timestamp())
METERS = {  # meter number -> its own keys (a head-end's key file holds one entry per meter)
    10000001: Keys(ek=bytes(range(16)), ak=bytes(range(16, 32))),
    10000002: Keys(ek=bytes(range(32, 48)), ak=bytes(range(48, 64))),
}


class DedupVictoria(Victoria):
    """VictoriaMetrics as a head-end runs it: samples of a series in the same millisecond are one."""

    def argv(self) -> list[str]:
        return super().argv() + ["-dedup.minScrapeInterval=1ms"]


def entries(n: int, seq0: int = 1) -> list[Entry]:
    sims = {m: KamstrupSimulator(k, meter_number=m, counter_start=500, seed=m) for m, k in METERS.items()}
    ring = KeyRing(meters={s.system_title: METERS[m] for m, s in sims.items()})
    dec = PushDecoder(ring)
    out: list[Entry] = []
    for i in range(n):
        for sim in sims.values():
            for push in dec.feed(sim.frame(START + timedelta(seconds=10 * i))):
                out.append(Entry(seq0 + len(out), datetime.now(timezone.utc), push))
    assert len(out) == 2 * n
    return out


def write(url: str, batch: list[Entry]) -> None:
    async def main():
        sink = create_sink(url)
        await sink.open(Checkpoint("j"))
        await sink.write(batch)
        await sink.flush()
        await sink.close()

    asyncio.run(main())


def test_every_series_is_labelled_per_meter_with_numbers_only(victoria):
    url = f"victoriametrics://127.0.0.1:{victoria.port}?measurement=vmtags"
    write(url, entries(6))
    series = victoria.export('{__name__="vmtags_active_power_import_w"}', samples=12)
    by_meter = {s["metric"]["meter_id"]: s for s in series}
    assert set(by_meter) == {"10000001", "10000002"}
    for number, s in by_meter.items():
        m = s["metric"]
        assert m["meter"] == m["system_title"] == (b"KAME" + int(number).to_bytes(4, "big")).hex().upper()
        assert m["list_id"] == "Kamstrup_V0001" and "db" not in m
        # meter time in UTC, whole seconds plus the invocation counter's millisecond
        assert s["timestamps"] == [(UTC_START + 10 * i) * 1000 + 500 + i for i in range(6)]
        assert all(v > 0 for v in s["values"])
    counters = victoria.export('{__name__="vmtags_invocation_counter"}', samples=12)
    assert sorted(v for s in counters for v in s["values"]) == sorted([500.0 + i for i in range(6)] * 2)
    names = {s["metric"]["__name__"] for s in victoria.export('{__name__=~"vmtags_.*",meter_id="10000001"}', 6 * 20)}
    assert "vmtags_voltage_l1_v" in names and "vmtags_active_energy_import_wh" in names
    assert not any("clock" in n or "meter_number" in n for n in names)  # the time and the identity are labels


def test_a_push_written_twice_by_two_workers_is_one_sample_with_dedup():
    vm = DedupVictoria()
    try:
        vm.start()
        url = f"victoriametrics://127.0.0.1:{vm.port}?measurement=twice"
        first = entries(5)
        write(url, first)
        # the same pushes again, as another worker writes them: its own journal positions, later arrival
        write(url, [Entry(e.seq + 1000, e.received + timedelta(seconds=3), e.push) for e in first[3:]])
        series = vm.export('{__name__="twice_active_power_import_w"}', samples=10)
        assert sorted(len(s["timestamps"]) for s in series) == [5, 5]
        assert all(len(set(s["timestamps"])) == 5 for s in series)
    finally:
        vm.cleanup()


def test_url_errors_name_the_sink_and_never_the_password(monkeypatch):
    with pytest.raises(SinkError, match="unknown parameter 'bucket'"):
        create_sink("victoriametrics://127.0.0.1:8428?bucket=x")
    with pytest.raises(SinkError, match="time must be"):
        create_sink("victoriametrics://127.0.0.1:8428?time=later")
    sink = create_sink("victoriametrics+https://writer:s3cret-pw@vm.example:8443/insert")
    assert sink.name == "victoriametrics+https://vm.example:8443/insert" and sink.base_url.startswith("https://")
