"""The replay benchmark's row-at-a-time baseline finds exactly the engine's core alerts.

`lienwatch bench replay` asserts this too, but only when someone runs it; this keeps the shipped
baseline honest in every test run, on a small scenario.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench_replay import CORE
from benchmarks.rowwise import run_rowwise
from geofence import load_fences
from pipeline.csv_positions import read_positions_csv
from pipeline.engine import Engine
from pipeline.fleet import parse_fleet
from pipeline.replay import replay
from simulators.config import ScenarioConfig
from simulators.output import write_scenario
from simulators.scenario import build_scenario


def _key(alert: dict[str, object]) -> tuple[object, ...]:
    return tuple(alert.get(k) for k in ("type", "device_id", "vehicle_id", "fence_id", "time"))


def test_the_rowwise_baseline_finds_the_engines_core_alerts(tmp_path: Path) -> None:
    write_scenario(build_scenario(ScenarioConfig(12, 2, seed=5)), tmp_path)
    fleet = parse_fleet((tmp_path / "fleet.json").read_bytes())
    fences = load_fences(tmp_path / "fences.geojson")
    data = (tmp_path / "positions.csv").read_bytes()

    engine = replay(read_positions_csv(data), Engine(fleet=fleet, fences=fences))
    expected = {_key(a.to_json()) for a in engine.alerts if a.to_json()["type"] in CORE}
    found = {_key(a.to_json()) for a in run_rowwise(data, fleet, fences=fences)}

    assert expected, "the scenario raised no core alert: the comparison would prove nothing"
    assert found == expected
