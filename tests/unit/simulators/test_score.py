"""The scorer: one-to-one matching on type, key, fence and time, on hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lienwatch.cli import app
from simulators.files import InputError, read_records
from simulators.score import score_dir

TRUTH = [
    {"type": "hotspot_dwell", "device_id": "D1", "vehicle_id": "V1", "fence_id": "hot-1",
     "time": "2024-03-04T10:30:00+08:00"},
    {"type": "offline", "device_id": "D2", "vehicle_id": "V2", "fence_id": None,
     "time": "2024-03-04T03:00:00+08:00"},
]  # fmt: skip
FLEET = {"vehicles": [{"vehicle_id": "V1", "devices": ["D1", "D3"], "allowed_area": None},
                      {"vehicle_id": "V2", "devices": ["D2"], "allowed_area": None}]}  # fmt: skip


def write(tmp_path: Path, alerts: list[dict[str, object]]) -> Path:
    (tmp_path / "truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TRUTH))
    (tmp_path / "fleet.json").write_text(json.dumps(FLEET))
    path = tmp_path / "alerts.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in alerts))
    return path


def by_type(tmp_path: Path, alerts: list[dict[str, object]]) -> dict[str, tuple[int, int, int]]:
    scores = score_dir(tmp_path, write(tmp_path, alerts), 120.0)
    return {s.type: (s.truth, s.alerts, s.matched) for s in scores}


def dwell(**changes: object) -> dict[str, object]:
    return {**TRUTH[0], **changes}


def test_an_exact_alert_matches_with_zero_delay(tmp_path: Path) -> None:
    scores = score_dir(tmp_path, write(tmp_path, [TRUTH[0], TRUTH[1]]), 120.0)
    found = {s.type: s for s in scores if s.truth}
    assert set(found) == {"hotspot_dwell", "offline"}
    for s in found.values():
        assert (s.matched, s.precision, s.recall, s.delays_s) == (1, 1.0, 1.0, (0.0,))


def test_an_alert_from_another_unit_of_the_car_matches_a_vehicle_rule(tmp_path: Path) -> None:
    alert = dwell(device_id="D3", vehicle_id=None, time="2024-03-04T10:31:00+08:00")
    assert by_type(tmp_path, [alert])["hotspot_dwell"] == (1, 1, 1)


def test_a_late_alert_beyond_the_tolerance_does_not_match(tmp_path: Path) -> None:
    late = dwell(time="2024-03-04T10:32:01+08:00")
    assert by_type(tmp_path, [late])["hotspot_dwell"] == (1, 1, 0)


def test_an_alert_for_the_wrong_fence_does_not_match(tmp_path: Path) -> None:
    assert by_type(tmp_path, [dwell(fence_id="hot-2")])["hotspot_dwell"] == (1, 1, 0)


def test_a_duplicate_alert_is_a_false_positive(tmp_path: Path) -> None:
    scores = score_dir(tmp_path, write(tmp_path, [TRUTH[0], TRUTH[0]]), 120.0)
    found = next(s for s in scores if s.type == "hotspot_dwell")
    assert (found.matched, found.alerts, found.precision) == (1, 2, 0.5)


def test_a_missing_alert_lowers_recall(tmp_path: Path) -> None:
    scores = score_dir(tmp_path, write(tmp_path, [TRUTH[0]]), 120.0)
    found = next(s for s in scores if s.type == "offline")
    assert (found.recall, found.precision) == (0.0, 1.0)


def test_device_rules_match_on_the_device(tmp_path: Path) -> None:
    other_device = {**TRUTH[1], "device_id": "D9"}
    assert by_type(tmp_path, [other_device])["offline"] == (1, 1, 0)


def test_a_bad_alert_line_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, [TRUTH[0]])
    path.write_text(path.read_text() + json.dumps({**TRUTH[0], "time": "yesterday"}) + "\n")
    with pytest.raises(InputError, match=r"alerts.jsonl:2: field time"):
        read_records(path, strict_types=False)


def test_the_cli_prints_a_table_and_a_json_line(tmp_path: Path) -> None:
    path = write(tmp_path, [TRUTH[0]])
    result = CliRunner().invoke(app, ["simulate", "--score", str(tmp_path), "--alerts", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("type")
    summary = json.loads(lines[-1])
    assert summary["types"]["hotspot_dwell"]["recall"] == 1.0
    assert summary["types"]["offline"]["recall"] == 0.0


def test_the_cli_exits_2_on_a_bad_file(tmp_path: Path) -> None:
    path = write(tmp_path, [TRUTH[0]])
    path.write_text("{not json\n")
    result = CliRunner().invoke(app, ["simulate", "--score", str(tmp_path), "--alerts", str(path)])
    assert result.exit_code == 2
    assert "alerts.jsonl:1" in result.stderr


def test_the_cli_writes_a_scenario_directory(tmp_path: Path) -> None:
    out = tmp_path / "s"
    args = ["simulate", "--scenario-out", str(out), "--vehicles", "3", "--days", "1", "--seed", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["positions"] > 0
    assert (out / "truth.jsonl").exists() and (out / "positions.csv").exists()
