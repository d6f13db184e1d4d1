"""`gathering` through `lienwatch replay` on simulator scenarios with ground truth (spots.json):
a place 8 cars of 8 borrowers park at is proposed; the 300 x 7 scenario has none, and nothing
is proposed there."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from simulators.config import ScenarioConfig
from simulators.output import write_scenario
from simulators.scenario import build_scenario
from tests.e2e.test_replay_scenarios import _replay


def _gatherings(out: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    return [a for a in lines if a["type"] == "gathering"]


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dx = (a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1]))
    return math.hypot(dx, (a[1] - b[1]) * 111_320)


@pytest.mark.parametrize("seed", [3, 8])
def test_an_unknown_spot_visited_by_8_borrowers_is_proposed(tmp_path: Path, seed: int) -> None:
    config = ScenarioConfig(vehicles=40, days=5, seed=seed, gathering_cars=8)
    write_scenario(build_scenario(config), tmp_path)
    [truth] = json.loads((tmp_path / "spots.json").read_text())["spots"]
    assert len({v["vehicle_id"] for v in truth["visits"]}) == 8
    [found] = _gatherings(_replay(tmp_path))
    details = found["details"]
    assert isinstance(details, dict)
    assert _metres((details["lon"], details["lat"]), (truth["lon"], truth["lat"])) < 150
    planted = {v["vehicle_id"] for v in truth["visits"]}
    evidence = {v["vehicle_id"] for v in details["visits"]}
    assert details["borrowers"] >= 5 and evidence <= planted


def test_the_300_by_7_scenario_without_a_spot_proposes_nothing(tmp_path: Path) -> None:
    write_scenario(build_scenario(ScenarioConfig(300, 7, seed=11)), tmp_path)
    assert json.loads((tmp_path / "spots.json").read_text()) == {"spots": []}
    assert _gatherings(_replay(tmp_path)) == []
