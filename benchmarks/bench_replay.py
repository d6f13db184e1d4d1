"""`lienwatch bench replay`: CSV in, alerts out; the engine against a row-at-a-time baseline.

The input is a simulator scenario (`lienwatch simulate --scenario-out`): 300 vehicles x 7 days by
default (about 790,000 positions) with its fences and fleet. Both sides are timed end to end:
reading the three files, every core rule including the fence rules, and writing JSON lines.
LIENWATCH_BENCH_VEHICLES and LIENWATCH_BENCH_DAYS change the size.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from geofence import FenceSet, load_fences
from pipeline.csv_positions import read_positions_csv
from pipeline.engine import Engine
from pipeline.fleet import parse_fleet
from pipeline.reference import run_reference
from pipeline.replay import replay
from simulators.config import ScenarioConfig
from simulators.output import write_scenario
from simulators.scenario import build_scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    vehicles = int(os.environ.get("LIENWATCH_BENCH_VEHICLES", "300"))
    days = int(os.environ.get("LIENWATCH_BENCH_DAYS", "7"))
    out = tmp_path_factory.mktemp("replay")
    figures = write_scenario(build_scenario(ScenarioConfig(vehicles, days, seed=11)), out)
    return out, int(figures["positions"])


def _engine_end_to_end(directory: Path) -> str:
    fleet = parse_fleet((directory / "fleet.json").read_bytes())
    fences = load_fences(directory / "fences.geojson")
    rows = read_positions_csv((directory / "positions.csv").read_bytes())
    result = replay(rows, Engine(fleet=fleet, fences=fences))
    out = io.StringIO()
    for alert in result.alerts:
        out.write(json.dumps(alert.to_json()) + "\n")
    return out.getvalue()


def _rowwise_end_to_end(directory: Path) -> str:
    fleet = parse_fleet((directory / "fleet.json").read_bytes())
    fences = load_fences(directory / "fences.geojson")
    data = (directory / "positions.csv").read_bytes()
    out = io.StringIO()
    for alert in run_reference(data, fleet, fences=fences):
        out.write(json.dumps(alert.to_json()) + "\n")
    return out.getvalue()


def test_replay_engine(benchmark: Any, scenario: tuple[Path, int]) -> None:
    directory, n = scenario
    text = benchmark.pedantic(_engine_end_to_end, args=(directory,), rounds=5, iterations=1)
    benchmark.extra_info["items"] = n
    benchmark.extra_info["baseline"] = "test_replay_rowwise"
    benchmark.extra_info["alerts"] = text.count("\n")


def test_replay_rowwise(benchmark: Any, scenario: tuple[Path, int]) -> None:
    directory, n = scenario
    text = benchmark.pedantic(_rowwise_end_to_end, args=(directory,), rounds=1, iterations=1)
    benchmark.extra_info["items"] = n
    benchmark.extra_info["alerts"] = text.count("\n")


def test_replay_fence_set_build(benchmark: Any, scenario: tuple[Path, int]) -> None:
    """The fixed cost inside each engine round that belongs to the geofence index build."""
    directory, _ = scenario
    fences = load_fences(directory / "fences.geojson")
    benchmark.pedantic(FenceSet, args=(fences, 1), rounds=3, iterations=1)
    benchmark.extra_info["fences"] = len(fences)
