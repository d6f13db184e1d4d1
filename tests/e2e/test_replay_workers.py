"""`lienwatch replay --workers N`: vehicles split over forked processes give the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pipeline.replay as replay_module
from geofence import load_fences
from pipeline.csv_positions import read_positions_csv
from pipeline.engine import Engine
from pipeline.fleet import parse_fleet
from simulators.config import ScenarioConfig
from simulators.output import write_scenario
from simulators.scenario import build_scenario

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork: Linux only")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("workers")
    write_scenario(build_scenario(ScenarioConfig(vehicles=20, days=2, seed=3)), directory)
    return directory


def _replay(directory: Path, out: Path, *extra: str) -> dict[str, object]:
    args = ["replay", "--positions", str(directory / "positions.csv"),
            "--fences", str(directory / "fences.geojson"),
            "--fleet", str(directory / "fleet.json"), "--out", str(out), *extra]  # fmt: skip
    code = "from lienwatch.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    del summary["seconds"]
    return summary


def test_any_number_of_workers_writes_the_same_bytes(scenario: Path, tmp_path: Path) -> None:
    one = _replay(scenario, tmp_path / "1.jsonl", "--workers", "1")
    assert one["alerts"]
    for n in ("2", "3"):
        assert _replay(scenario, tmp_path / f"{n}.jsonl", "--workers", n) == one
        assert (tmp_path / f"{n}.jsonl").read_bytes() == (tmp_path / "1.jsonl").read_bytes()


def _engine(directory: Path) -> Engine:
    fleet = parse_fleet((directory / "fleet.json").read_bytes(), "fleet.json")
    return Engine(fleet=fleet, fences=load_fences(directory / "fences.geojson"))


def test_every_split_gives_the_same_alerts(scenario: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = read_positions_csv((scenario / "positions.csv").read_bytes())
    whole = replay_module.replay(rows, _engine(scenario), batch_rows=4096, workers=1)
    balanced = replay_module.partitions
    for seed in range(3):
        rng = np.random.default_rng(seed)

        def random_split(
            vehicle_of_row: np.ndarray, n_vehicles: int, n: int, rng: np.random.Generator = rng
        ) -> list[np.ndarray]:
            side = rng.integers(0, n, n_vehicles)
            return [side == k for k in range(n)]

        monkeypatch.setattr(replay_module, "partitions", random_split)
        split = replay_module.replay(rows, _engine(scenario), batch_rows=4096, workers=3)
        assert split == whole
    monkeypatch.setattr(replay_module, "partitions", balanced)


def test_a_failed_worker_is_an_error_not_a_partial_result(
    scenario: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = read_positions_csv((scenario / "positions.csv").read_bytes())
    parent = os.getpid()
    run = replay_module._run

    def failing(*args: object, **kwargs: object) -> object:
        if os.getpid() != parent:
            raise RuntimeError("boom")
        return run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(replay_module, "_run", failing)
    with pytest.raises(replay_module.ReplayWorkerError, match="boom"):
        replay_module.replay(rows, _engine(scenario), workers=2)


def test_the_command_exits_1_and_writes_nothing_when_a_worker_fails(
    scenario: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lienwatch.commands.replay import run

    parent = os.getpid()
    real = replay_module._run

    def failing(*args: object, **kwargs: object) -> object:
        if os.getpid() != parent:
            raise RuntimeError("boom")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(replay_module, "_run", failing)
    out = tmp_path / "alerts.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        run(
            scenario / "positions.csv",
            scenario / "fences.geojson",
            out,
            fleet=scenario / "fleet.json",
            workers=2,
        )
    assert exit_info.value.code == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert "boom" in err and "no output written" in err
