"""Scenario mode: deterministic files in the contract's formats, with a complete, exact truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from simulators.config import ScenarioConfig
from simulators.files import read_fences, read_fleet, read_positions
from simulators.output import FILES, write_scenario
from simulators.scenario import build_scenario
from simulators.truth import ALERT_TYPES, evaluate

SMALL = ScenarioConfig(vehicles=8, days=2, seed=5)


@pytest.fixture(scope="module")
def scenario_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenario")
    write_scenario(build_scenario(SMALL), out)
    return out


def test_same_seed_writes_the_same_bytes(scenario_dir: Path, tmp_path: Path) -> None:
    write_scenario(build_scenario(SMALL), tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (scenario_dir / name).read_bytes(), name


def test_another_seed_writes_other_positions(scenario_dir: Path, tmp_path: Path) -> None:
    other = ScenarioConfig(vehicles=SMALL.vehicles, days=SMALL.days, seed=SMALL.seed + 1)
    write_scenario(build_scenario(other), tmp_path)
    assert (tmp_path / "positions.csv").read_bytes() != (
        scenario_dir / "positions.csv"
    ).read_bytes()


def test_positions_csv_has_the_contract_columns_and_local_times(scenario_dir: Path) -> None:
    with (scenario_dir / "positions.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "device_id",
        "time",
        "lat",
        "lon",
        "speed_kmh",
        "course",
        "alarm",
        "status",
    ]
    assert all(r["time"].endswith("+08:00") and len(r["time"]) == 25 for r in rows)
    assert all(len(r["device_id"]) == 12 and r["device_id"].isdigit() for r in rows)
    for r in rows:
        float(r["lat"]), float(r["lon"]), float(r["speed_kmh"])
        assert 0 <= int(r["course"]) < 360 and int(r["alarm"]) >= 0 and int(r["status"]) >= 0


def test_rows_of_a_device_are_in_time_order_but_for_a_few_resends(scenario_dir: Path) -> None:
    stream = read_positions(scenario_dir / "positions.csv")
    last: dict[int, int] = {}
    older = 0
    for device, time_ms in zip(stream.device.tolist(), stream.time_ms.tolist(), strict=True):
        if time_ms < last.get(device, 0):
            older += 1
        last[device] = max(time_ms, last.get(device, 0))
    assert 0 < older < len(stream.time_ms) * 0.01


def test_fences_geojson_features_carry_the_contract_properties(scenario_dir: Path) -> None:
    doc = json.loads((scenario_dir / "fences.geojson").read_text())
    assert doc["type"] == "FeatureCollection"
    ids = [f["properties"]["id"] for f in doc["features"]]
    assert len(ids) == len(set(ids))
    kinds = {f["properties"]["kind"] for f in doc["features"]}
    assert kinds == {"hotspot", "allowed_area", "zone"}
    geometries = {f["geometry"]["type"] for f in doc["features"]}
    assert geometries == {"Point", "Polygon", "MultiPolygon", "LineString"}
    for f in doc["features"]:
        props = f["properties"]
        if f["geometry"]["type"] == "Point":
            assert props["radius_m"] > 0
        if f["geometry"]["type"] == "LineString":
            assert props["buffer_m"] > 0
        if props["kind"] == "zone":
            assert set(props["notify"]) <= {"enter", "exit"}
    assert len(read_fences(scenario_dir / "fences.geojson")) == len(ids)


def test_fleet_json_lists_every_device_once_with_an_allowed_area_fence(scenario_dir: Path) -> None:
    doc = json.loads((scenario_dir / "fleet.json").read_text())
    fence_ids = {f.fence_id for f in read_fences(scenario_dir / "fences.geojson")}
    devices = [d for v in doc["vehicles"] for d in v["devices"]]
    assert len(doc["vehicles"]) == SMALL.vehicles
    assert len(devices) == len(set(devices))
    for v in doc["vehicles"]:
        assert set(v) == {"vehicle_id", "devices", "allowed_area"}
        assert v["allowed_area"] is None or v["allowed_area"] in fence_ids
    csv_devices = set(read_positions(scenario_dir / "positions.csv").device_ids)
    assert csv_devices == set(devices)


def test_truth_lines_have_the_contract_fields(scenario_dir: Path) -> None:
    lines = [json.loads(x) for x in (scenario_dir / "truth.jsonl").read_text().splitlines()]
    assert lines
    for line in lines:
        assert {"type", "device_id", "vehicle_id", "fence_id", "time"} <= set(line)
        assert line["type"] in ALERT_TYPES
        assert line["time"].endswith("+08:00")


def test_every_alert_type_appears_in_a_small_default_scenario(scenario_dir: Path) -> None:
    lines = [json.loads(x) for x in (scenario_dir / "truth.jsonl").read_text().splitlines()]
    assert {line["type"] for line in lines} == set(ALERT_TYPES)


def test_truth_is_what_the_contract_defines_in_the_written_files(scenario_dir: Path) -> None:
    stream = read_positions(scenario_dir / "positions.csv")
    result = evaluate(
        stream,
        read_fleet(scenario_dir / "fleet.json"),
        read_fences(scenario_dir / "fences.geojson"),
    )
    written = [json.loads(x) for x in (scenario_dir / "truth.jsonl").read_text().splitlines()]
    assert [(i.type, i.device_id, i.fence_id) for i in result.incidents] == [
        (w["type"], w["device_id"], w["fence_id"]) for w in written
    ]
    assert result.doubts == []


def test_every_injected_incident_is_in_the_truth_and_confounders_are_not(
    scenario_dir: Path,
) -> None:
    manifest = json.loads((scenario_dir / "scenario.json").read_text())
    causes = {
        json.loads(x)["cause"] for x in (scenario_dir / "truth.jsonl").read_text().splitlines()
    }
    kinds = {e["kind"] for e in manifest["episodes"]}
    confounders = {
        "hotspot_short_stop", "hotspot_drive_by", "speed_burst", "separation_short",
        "zone_visit_unlisted", "short_gap", "invalid_fixes", "other_alarm_bits",
    }  # fmt: skip
    assert confounders <= kinds
    assert kinds - confounders <= causes
    assert not causes & confounders


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_scenarios_without_incidents_have_an_empty_truth(seed: int) -> None:
    scenario = build_scenario(ScenarioConfig(vehicles=10, days=3, seed=seed, incidents=False))
    assert scenario.evaluation.incidents == []
    assert scenario.evaluation.doubts == []
    assert len(scenario.episodes) >= 8


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_scenarios_leave_no_spot_where_readings_of_the_contract_differ(seed: int) -> None:
    scenario = build_scenario(ScenarioConfig(vehicles=16, days=3, seed=seed))
    assert scenario.evaluation.doubts == []
    assert {i.type for i in scenario.evaluation.incidents} == set(ALERT_TYPES)


def test_the_model_gives_a_position_batch_of_the_pipeline() -> None:
    scenario = build_scenario(ScenarioConfig(vehicles=3, days=1, seed=2))
    batch, index = scenario.batch()
    assert len(batch) == len(scenario.stream.time_ms)
    assert len(index) == len(scenario.stream.device_ids)
    assert (batch.recv_ms >= batch.time_ms).all()
