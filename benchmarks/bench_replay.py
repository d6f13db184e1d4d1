"""`lienwatch bench replay`: CSV in, alerts out; the engine against a row-at-a-time baseline.

The input is a simulator scenario (`lienwatch simulate --scenario-out`): 300 vehicles x 7 days by
default (about 780,000 positions) with its fences and fleet. Both sides are timed as a user runs
them, each round a new process: `lienwatch replay` (the console script: process start, imports,
reading the three files, every rule, writing JSON lines, exit) against `python -m
benchmarks.rowwise` (the same files and output, the core rules one row at a time), the same
number of rounds each. Both must find the same core alerts.
Besides wall time, each side's CPU time per position is reported (user + system of the process
and of every process it waited for, from RUSAGE_CHILDREN): the engine may split vehicles over
forked processes (`--workers`, automatic on a large file), the baseline is one process, so the
ratio per CPU-second stands next to the wall-clock ratio.
LIENWATCH_BENCH_VEHICLES and LIENWATCH_BENCH_DAYS change the size, LIENWATCH_BENCH_ROUNDS the
rounds (default 3).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from geofence import FenceSet, load_fences
from simulators.config import ScenarioConfig
from simulators.output import write_scenario
from simulators.scenario import build_scenario

ROUNDS = int(os.environ.get("LIENWATCH_BENCH_ROUNDS", "3"))
CORE = {
    "geofence_enter", "geofence_exit", "leave_allowed_area", "hotspot_dwell", "offline",
    "power_cut", "antenna_cut", "device_separation", "gps_jump", "overspeed",
}  # fmt: skip


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    vehicles = int(os.environ.get("LIENWATCH_BENCH_VEHICLES", "300"))
    days = int(os.environ.get("LIENWATCH_BENCH_DAYS", "7"))
    out = tmp_path_factory.mktemp("replay")
    figures = write_scenario(build_scenario(ScenarioConfig(vehicles, days, seed=11)), out)
    return out, int(figures["positions"])


def _lienwatch() -> list[str]:
    """The console script a user runs; through the interpreter when it is not installed."""
    script = Path(sys.executable).with_name("lienwatch")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from lienwatch.cli import main; main()"]


def _inputs(directory: Path, out: Path) -> list[str]:
    return [
        "--positions", str(directory / "positions.csv"),
        "--fences", str(directory / "fences.geojson"),
        "--fleet", str(directory / "fleet.json"),
        "--out", str(out),
    ]  # fmt: skip


def _run(command: list[str], cpu: list[float]) -> None:
    """Runs one round; appends its CPU seconds (children included) to `cpu`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {done.returncode}: {done.stderr[-2000:]}")
    cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def _core(path: Path) -> set[tuple[Any, ...]]:
    """(type, device, vehicle, fence, time) of every core alert in an ALERTS.jsonl."""
    alerts = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {
        (a["type"], a["device_id"], a["vehicle_id"], a["fence_id"], a["time"])
        for a in alerts
        if a["type"] in CORE
    }


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("alerts")
    return {"engine": out / "engine.jsonl", "rowwise": out / "rowwise.jsonl"}


def test_replay_engine(
    benchmark: Any, scenario: tuple[Path, int], outputs: dict[str, Path]
) -> None:
    directory, n = scenario
    command = [*_lienwatch(), "replay", *_inputs(directory, outputs["engine"])]
    cpu: list[float] = []
    benchmark.pedantic(_run, args=(command, cpu), rounds=ROUNDS, iterations=1)
    benchmark.extra_info["items"] = n
    benchmark.extra_info["cpu_s"] = statistics.median(cpu)
    benchmark.extra_info["notes"] = [
        "CPU: the engine's processes together (it may use more than one); the baseline is one"
    ]
    benchmark.extra_info["baseline"] = "test_replay_rowwise"
    benchmark.extra_info["alerts"] = len(outputs["engine"].read_text().splitlines())


def test_replay_rowwise(
    benchmark: Any, scenario: tuple[Path, int], outputs: dict[str, Path]
) -> None:
    directory, n = scenario
    command = [sys.executable, "-m", "benchmarks.rowwise", *_inputs(directory, outputs["rowwise"])]
    cpu: list[float] = []
    benchmark.pedantic(_run, args=(command, cpu), rounds=ROUNDS, iterations=1)
    benchmark.extra_info["items"] = n
    benchmark.extra_info["cpu_s"] = statistics.median(cpu)
    benchmark.extra_info["alerts"] = len(outputs["rowwise"].read_text().splitlines())
    engine = _core(outputs["engine"])
    rowwise = _core(outputs["rowwise"])
    assert engine == rowwise, (sorted(engine - rowwise)[:10], sorted(rowwise - engine)[:10])
    benchmark.extra_info["core_alerts"] = len(rowwise)


def test_replay_fence_set_build(benchmark: Any, scenario: tuple[Path, int]) -> None:
    """The fixed cost inside each engine round that belongs to the geofence index build."""
    directory, _ = scenario
    fences = load_fences(directory / "fences.geojson")
    benchmark.pedantic(FenceSet, args=(fences, 1), rounds=3, iterations=1)
    benchmark.extra_info["fences"] = len(fences)
