"""`lienwatch replay` end to end: files in, JSON lines out, summary and errors on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.pipeline.tracks import HOME, circle, csv_bytes, east, stay

PAWN = east(HOME, 5_000)


def _lienwatch(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from lienwatch.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def _files(tmp_path: Path, positions: bytes) -> list[str]:
    (tmp_path / "positions.csv").write_bytes(positions)
    fences = {"type": "FeatureCollection", "features": [circle("pawn-17", "hotspot", PAWN, 100)]}
    (tmp_path / "fences.geojson").write_text(json.dumps(fences))
    fleet = {"vehicles": [{"vehicle_id": "V1", "devices": ["W", "L"], "allowed_area": None}]}
    (tmp_path / "fleet.json").write_text(json.dumps(fleet))
    (tmp_path / "rules.toml").write_text("[hotspot_dwell]\nafter_s = 2400\n")
    return [
        "replay",
        "--positions", str(tmp_path / "positions.csv"),
        "--fences", str(tmp_path / "fences.geojson"),
        "--fleet", str(tmp_path / "fleet.json"),
        "--out", str(tmp_path / "alerts.jsonl"),
    ]  # fmt: skip


def test_replay_writes_one_json_line_per_alert_and_a_summary_on_stderr(tmp_path: Path) -> None:
    args = _files(tmp_path, csv_bytes(stay("W", PAWN, range(0, 60, 5)) + stay("L", PAWN, [0])))
    done = _lienwatch(*args)
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert alerts == [
        {
            "type": "hotspot_dwell",
            "device_id": "W",
            "vehicle_id": "V1",
            "time": "2024-03-01T16:30:00+08:00",
            "fence_id": "pawn-17",
            "severity": "high",
            "details": {"entered": "2024-03-01T16:00:00+08:00", "dwell_s": 1800},
        }
    ]
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert (summary["positions"], summary["alerts"]) == (13, len(alerts))
    assert summary["seconds"] >= 0


def test_rules_file_overrides_a_threshold(tmp_path: Path) -> None:
    args = _files(tmp_path, csv_bytes(stay("W", PAWN, range(0, 60, 5))))
    done = _lienwatch(*args, "--rules", str(tmp_path / "rules.toml"))
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [a["time"] for a in alerts if a["type"] == "hotspot_dwell"] == [
        "2024-03-01T16:40:00+08:00"
    ]


def test_a_bad_row_is_reported_by_file_line_and_field_and_the_rest_still_runs(
    tmp_path: Path,
) -> None:
    good = csv_bytes(stay("W", PAWN, range(0, 60, 5)))
    lines = good.decode().splitlines()
    lines.insert(3, "W,2024-03-01T08:07:00+08:00,not-a-lat,121.4,0,0,0,3")
    args = _files(tmp_path, ("\n".join(lines) + "\n").encode())
    done = _lienwatch(*args)
    assert done.returncode == 2
    assert "positions.csv:4: field lat:" in done.stderr
    alerts = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(x)["type"] for x in alerts] == ["hotspot_dwell"]
    assert json.loads(done.stderr.strip().splitlines()[-1])["positions"] == 12


def test_a_missing_column_or_a_bad_fence_file_exits_2_with_a_one_line_reason(
    tmp_path: Path,
) -> None:
    args = _files(tmp_path, b"device_id,time,lat\nW,2024-03-01T08:00:00+08:00,31\n")
    done = _lienwatch(*args)
    assert done.returncode == 2
    assert "positions.csv:1: field lon: required column missing" in done.stderr
    (tmp_path / "fences.geojson").write_text('{"type": "FeatureCollection", "features": [1]}')
    done = _lienwatch(*args)
    assert done.returncode == 2
    assert "fences.geojson" in done.stderr
    assert not (tmp_path / "alerts.jsonl").exists()
