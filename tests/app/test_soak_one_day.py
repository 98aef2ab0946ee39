"""The soak in its CI form: one simulated day (8,640 pushes) through a real ``han run`` with every fault class.

``python -m benchmarks.soak --days 7`` is the week-long run (docs/soak.md).  Here the same runner
reconciles a day: accepted = rows in SQLite = points in InfluxDB 1.6.7 = state messages at a real
MQTT subscriber, the same pushes in each, none twice, every fault class exercised.  No timing is
asserted; the runner's waits have generous guards.
"""

from __future__ import annotations

import shutil

import pytest

from benchmarks import soak


def test_one_simulated_day_with_every_fault_loses_and_duplicates_nothing(tmp_path):
    for binary in ("influxd", "mosquitto"):
        if shutil.which(binary) is None and not shutil.which(binary, path="/usr/sbin"):
            pytest.skip(f"{binary} is not installed (CI installs it from .ci/apt-packages)")
    report = soak.run(1.0, tmp_path / "soak", seed=8, progress=lambda m: None)
    print(soak.table(report))
    assert report["lost"] == 0, report
    assert report["duplicates"] == {"sqlite": 0, "influxdb": 0, "mqtt": 0}, report
    assert report["accepted"] == report["delivered"]["sqlite"] == report["delivered"]["influxdb"] \
        == report["delivered"]["mqtt"]
    assert all(report["faults"].values()), report["faults"]
    assert report["tracebacks"] == 0 and report["keys_in_log"] == 0
    rejected = report["rejected_by_reason"]
    for reason in ("bad_checksum", "tag_mismatch", "replayed", "truncated"):
        assert rejected.get(reason, 0) > 0, (reason, rejected)
    assert soak.ok(report)
