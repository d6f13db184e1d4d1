"""`lienwatch replay --from-store` (a backtest) on each store: stored positions through the
engine, compared per type with the alerts that fired."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerts.model import Alert, format_time
from pipeline.engine import Engine
from pipeline.fleet import Fleet, Vehicle
from positions import PositionBatch
from store import Device, Store, migrate, open_store

T0 = 1_709_280_000_000  # 2024-03-01T08:00:00Z
MIN = 60_000
W1, W2 = "013900000001", "013900000002"


def _track() -> tuple[PositionBatch, list[str]]:
    """W1: parked, then 3 min at 130 km/h, parked, its power cut, then 3 h silent and back.
    W2 (another car): parked all along, reporting every 5 min."""
    rows: list[tuple[int, int, float, float, float, int]] = []  # device, t, lon, lat, kmh, alarm
    lon = 121.40
    for m in range(60):
        speed = 130.0 if 10 <= m < 13 else 0.0
        lon += speed / 3.6 * 60 / 95_000 if speed else 0.0
        alarm = 1 << 8 if m >= 40 else 0
        rows.append((0, T0 + m * MIN, lon, 31.2, speed, alarm))
    rows.append((0, T0 + 240 * MIN, lon, 31.2, 0.0, 1 << 8))
    rows += [(1, T0 + m * MIN, 121.5, 31.3, 0.0, 0) for m in range(0, 250, 5)]
    rows.sort(key=lambda r: (r[0], r[1]))
    cols = np.array(rows, dtype=np.float64)
    n = len(rows)
    batch = PositionBatch.from_columns(
        {
            "device": cols[:, 0].astype(np.int32),
            "time_ms": cols[:, 1].astype(np.int64),
            "recv_ms": cols[:, 1].astype(np.int64) + 800,
            "lon": cols[:, 2],
            "lat": cols[:, 3],
            "speed_kmh": cols[:, 4].astype(np.float32),
            "alarm": cols[:, 5].astype(np.uint32),
            "status": np.full(n, 3, np.uint32),
        }
    )
    return batch, [W1, W2]


def _fired(batch: PositionBatch, terminals: list[str]) -> list[Alert]:
    """What the live engine raised over the same data (default thresholds)."""
    engine = Engine(fleet=Fleet((Vehicle("V1", (W1,)), Vehicle("V2", (W2,)))))
    mapping = np.array([engine.devices.index_of(t) for t in terminals], np.int32)
    b = PositionBatch(**{**batch.columns(), "device": mapping[batch.device]})
    return engine.process(b) + engine.finish(int(batch.recv_ms.max()))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    migrate(url, tmp_path)
    store: Store = open_store(url, tmp_path)
    try:
        batch, terminals = _track()
        store.write_positions(batch, terminals)
        store.upsert_device(Device(W1, vehicle_id="V1"))
        store.upsert_device(Device(W2, vehicle_id="V2"))
        store.add_alerts(_fired(batch, terminals), T0 + 300 * MIN)
    finally:
        store.close()
    out = {"LIENWATCH_DATA_DIR": str(tmp_path)}
    if url:
        out["LIENWATCH_DATABASE_URL"] = url
    return out


def _backtest(env: dict[str, str], tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    args = ["replay", "--from-store", "--since", format_time(T0), "--until",
            format_time(T0 + 300 * MIN), "--out", str(tmp_path / "a.jsonl"),
            "--report", str(tmp_path / "r.json"), *extra]  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIENWATCH_")}
    done = subprocess.run(
        [sys.executable, "-c", "from lienwatch.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120, env={**clean, **env},
    )  # fmt: skip
    report = json.loads((tmp_path / "r.json").read_text()) if done.returncode == 0 else {}
    return done.returncode, report, done.stderr


def test_the_same_thresholds_keep_every_alert_that_fired(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, report, stderr = _backtest(env, tmp_path)
    assert code == 0, stderr
    assert report["positions"] == 111
    counts = report["by_type"]
    assert {"overspeed", "power_cut", "offline"} <= set(counts)
    for kind, c in counts.items():
        assert c["fired"] == c["new"] == c["kept"] >= 1, kind
    assert report["added"] == report["removed"] == report["moved"] == []
    fired = [a.to_json() for a in _fired(*_track())]
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert sorted(lines, key=json.dumps) == sorted(fired, key=json.dumps)
    assert json.loads(stderr.strip().splitlines()[-1])["by_type"] == counts


def test_new_thresholds_show_what_they_add_remove_and_move(
    env: dict[str, str], tmp_path: Path
) -> None:
    rules = tmp_path / "new.toml"
    rules.write_text("[overspeed]\nspeed_kmh = 140\n[offline]\nafter_s = 3600\n")
    code, report, stderr = _backtest(env, tmp_path, "--rules", str(rules))
    assert code == 0, stderr
    counts = report["by_type"]
    assert counts["overspeed"] == {
        "fired": 1,
        "new": 0,
        "kept": 0,
        "moved": 0,
        "added": 0,
        "removed": 1,
    }
    assert counts["offline"]["moved"] == 1
    [moved] = report["moved"]
    assert moved["shift_s"] == -3600 and moved["new"]["type"] == "offline"
    assert [a["type"] for a in report["removed"]] == ["overspeed"]


def test_bad_times_and_mixed_options_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIENWATCH_")}
    for args, reason in (
        (["--since", "yesterday", "--until", "2024-03-02T00:00:00Z"], "--since: not an ISO"),
        (["--since", "2024-03-01T00:00:00", "--until", "2024-03-02T00:00:00Z"], "no UTC offset"),
        (["--since", "2024-03-02T00:00:00Z", "--until", "2024-03-01T00:00:00Z"], "after --since"),
        (
            [
                "--since",
                "2024-03-01T00:00:00Z",
                "--until",
                "2024-03-02T00:00:00Z",
                "--positions",
                "p.csv",
            ],
            "--positions: not with --from-store",
        ),
    ):
        done = subprocess.run(
            [sys.executable, "-c", "from lienwatch.cli import main; main()", "replay",
             "--from-store", "--out", str(tmp_path / "x.jsonl"), *args],
            capture_output=True, text=True, timeout=60, env={**clean, **env},
        )  # fmt: skip
        assert done.returncode == 2 and reason in done.stderr, done.stderr
