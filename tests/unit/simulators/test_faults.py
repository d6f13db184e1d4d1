"""Faulty clocks and hostile connections of the simulator: who gets which, what time they send,
and scenario files that carry them with their truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ingest.jt808.batch import decode_location_frames
from ingest.jt808.batch_encode import encode_location_frames, terminal_bytes
from ingest.jt808.ids import Edition
from positions import PositionBatch
from simulators.config import ScenarioConfig
from simulators.faults import (
    CLOCK_FAULTS,
    HOUR_MS,
    RESET_1980_MS,
    RESET_2000_MS,
    ROLLOVER_MS,
    FaultError,
    device_times,
    parse_faults,
    plan_faults,
)
from simulators.output import write_scenario
from simulators.scenario import build_scenario
from trajectory.clock import DeviceClocks

NOW = 1_710_000_000_000


def test_fault_names_parse_and_a_bad_one_is_named() -> None:
    assert parse_faults("mixed") == ("mixed",)
    assert parse_faults("utc, backfill,utc") == ("utc", "backfill")
    with pytest.raises(FaultError, match="'sleepy'"):
        parse_faults("utc,sleepy")


def test_mixed_deals_every_clock_fault_and_sound_clocks_and_adds_hostiles() -> None:
    plan = plan_faults(("mixed",), 70)
    assert plan.kinds() == dict.fromkeys(("ok", *CLOCK_FAULTS), 10)
    assert plan.hostile == {"impostor": 7, "silent": 7, "garbage": 7}
    only = plan_faults(("utc",), 5, hostile=3)
    assert only.kinds() == {"utc": 5} and only.hostile == {}


def test_each_clock_fault_sends_the_time_it_is_known_for() -> None:
    start = NOW - 10_000
    true = np.full(8, NOW, np.int64)
    codes = np.array([0, 1, 2, 2, 3, 4, 5, 6], np.int8)
    sent = device_times(codes, true, start, np.arange(8), backfill_ms=48 * HOUR_MS)
    assert sent.tolist() == [
        NOW,
        NOW - 8 * HOUR_MS,
        RESET_2000_MS + 10_000,  # an even device resets to 2000-01-01
        RESET_1980_MS + 10_000,  # an odd one to 1980-01-06, sent as 2080 in BCD
        NOW - ROLLOVER_MS,
        NOW - 48 * HOUR_MS,
        NOW + 3 * 24 * HOUR_MS,
        start,
    ]
    # Every one of them is a time JT808 can carry.
    frames = encode_location_frames(
        terminals=terminal_bytes([f"1390000000{i}" for i in range(8)], Edition.V2013),
        edition=Edition.V2013,
        serial=np.arange(8),
        alarm=0,
        status=3,
        lon=np.full(8, 121.0),
        lat=np.full(8, 31.0),
        time_ms=sent,
        speed_kmh=np.zeros(8),
        course=np.zeros(8, np.int64),
    )
    decoded = decode_location_frames(frames)
    assert decoded.time_ms.tolist() == sent.tolist()


def test_the_platform_recognises_each_fault_it_is_sent() -> None:
    """A minute of reports every second from each kind, through the clock model."""
    codes = np.repeat(np.arange(7, dtype=np.int8), 60)
    device = np.repeat(np.arange(7), 60)
    recv = NOW + np.tile(np.arange(60, dtype=np.int64) * 1000, 7)
    sent = device_times(codes, recv - 400, NOW, device)
    clocks = DeviceClocks()
    clocks.apply(
        PositionBatch.from_columns(
            {"device": device, "time_ms": sent, "device_time_ms": sent, "recv_ms": recv}
        )
    )
    states = [int(s) for s in clocks.states(np.arange(7))[0]]
    names = ["ok", "corrected_hours", "reset", "rollover", "ok", "future", "ok"]
    assert [
        ("ok", "corrected_hours", "rollover", "reset", "stuck", "future")[s] for s in states
    ] == (names)  # backfill is no clock fault; one minute of a stuck clock is not yet past resends


def test_a_scenario_without_faults_has_no_received_column(tmp_path: Path) -> None:
    write_scenario(build_scenario(ScenarioConfig(vehicles=4, days=1, seed=3)), tmp_path)
    header = (tmp_path / "positions.csv").read_text().split("\n", 1)[0]
    assert "received" not in header
    assert not (tmp_path / "faults.jsonl").exists()


def test_a_faulty_scenario_writes_device_times_receive_times_and_its_faults(
    tmp_path: Path,
) -> None:
    scenario = build_scenario(ScenarioConfig(vehicles=12, days=2, seed=3, faults=("mixed",)))
    write_scenario(scenario, tmp_path)
    faults = [json.loads(x) for x in (tmp_path / "faults.jsonl").read_text().splitlines()]
    assert {f["fault"] for f in faults} <= set(CLOCK_FAULTS)
    assert len(faults) == len(scenario.faults) > 0
    with (tmp_path / "positions.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    utc = next(f["device_id"] for f in faults if f["fault"] == "utc")
    mine = [r for r in rows if r["device_id"] == utc]
    # A UTC clock: the time column is 8 hours before the receive time (and its offset says so).
    assert mine[0]["time"].endswith("+08:00") and mine[0]["received"].endswith("+08:00")
    first = np.datetime64(mine[0]["received"][:23]) - np.datetime64(mine[0]["time"][:19])
    assert abs(first.astype("timedelta64[ms]").astype(np.int64) - 8 * HOUR_MS) < 5_000
    same = build_scenario(ScenarioConfig(vehicles=12, days=2, seed=3, faults=("mixed",)))
    assert same.faults == scenario.faults  # the same seed, the same faults
