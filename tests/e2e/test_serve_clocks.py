"""Device clocks against `lienwatch serve` over real TCP (contracts section 3): trackers whose
clock is wrong or who send stored fixes are not silent while they talk, and neither a backfill
nor a future fix moves a device's latest position."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.jt808.messages import BatchLocationReport, LocationReport
from tests.support.device import TestDevice
from tests.support.processes import api_url, start_serve, stop

LIENWATCH = str(Path(sys.executable).parent / "lienwatch")
KEY = "e2e-clock-admin-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
SILENCES = ("offline", "all_devices_offline", "partial_offline")
DAY_MS = 86_400_000
FLEET = 30


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[int, str]]:
    env = {
        "LIENWATCH_DATA_DIR": str(tmp_path / "data"),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
        "LIENWATCH_ADMIN_API_KEY": KEY,
    }
    proc, port = start_serve(env)
    try:
        yield port, api_url(proc)
    finally:
        assert stop(proc, signal.SIGTERM) == 0


def simulate(port: int, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [LIENWATCH, "simulate", "--target", f"tcp://127.0.0.1:{port}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def get(base: str, path: str) -> Any:
    answer = httpx.get(base + path, headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def silences(base: str) -> list[dict[str, Any]]:
    time.sleep(2.5)  # the live detector's batch window and timer tick
    return [a for kind in SILENCES for a in get(base, f"/api/v1/alerts?type={kind}")]


def terminal(i: int) -> str:
    return f"0{13_900_000_000 + i}"


def test_a_utc_clock_fleet_talking_every_second_is_never_silent(serve: tuple[int, str]) -> None:
    port, base = serve
    report = simulate(port, "--devices", str(FLEET), "--rate", str(FLEET), "--duration", "25",
                      "--faults", "utc")  # fmt: skip
    assert report["faults"]["clock"] == {"utc": FLEET}
    assert report["sent"] == report["acknowledged"] > 0
    assert report["errors"] == 0
    assert silences(base) == []
    device = get(base, f"/api/v1/devices/{terminal(7)}")
    # Learned after 20 s of agreeing reports: 8 hours ahead is the fix time the rules use.
    assert device["clock"]["state"] == "corrected_hours"
    assert device["clock"]["offset_s"] == 8 * 3600
    latest = device["latest"]
    assert "clock_corrected" in latest["flags"]
    assert abs(_ms(latest["time"]) - time.time() * 1000) < 60_000


def test_two_day_old_fixes_open_no_silence_and_move_no_latest_back(
    serve: tuple[int, str],
) -> None:
    port, base = serve
    live = simulate(port, "--devices", str(FLEET), "--rate", str(FLEET), "--duration", "3")
    assert live["sent"] == live["acknowledged"] > 0
    before = {t: get(base, f"/api/v1/devices/{t}/latest")["time"] for t in map(terminal, (0, 9))}
    late = simulate(port, "--devices", str(FLEET), "--rate", str(FLEET), "--duration", "8",
                    "--faults", "backfill", "--backfill-hours", "48")  # fmt: skip
    assert late["sent"] == late["acknowledged"] > 0 and late["errors"] == 0
    assert silences(base) == []
    for t, was in before.items():
        assert get(base, f"/api/v1/devices/{t}/latest")["time"] == was
    # The two-day-old fixes are stored all the same, at their own time.
    track = get(base, f"/api/v1/devices/{terminal(0)}/track?from=" + _iso(-3 * DAY_MS)
                + "&to=" + _iso(-DAY_MS))  # fmt: skip
    assert len(track) >= 5


async def test_a_future_fix_never_moves_latest_and_a_blind_area_batch_opens_no_silence(
    serve: tuple[int, str],
) -> None:
    port, base = serve
    device = TestDevice(terminal(100))
    await device.connect("127.0.0.1", port)
    try:
        assert await device.login()
        now = int(time.time() * 1000)
        sent = [await device.report(121.40, 31.20, now - 1_000)]
        sent.append(await device.report(122.90, 33.00, now + 3 * DAY_MS))  # far future
        items = tuple(
            LocationReport.at(lon=121.3, lat=31.1, time_ms=now - 2 * DAY_MS + i * 30_000)
            for i in range(5)
        )
        sent.append(await device.send(BatchLocationReport(1, items)))  # two days old
        await device.wait_acks(sent)
        time.sleep(1.0)  # the journal drain
        latest = get(base, f"/api/v1/devices/{terminal(100)}/latest")
        assert (latest["lon"], latest["lat"]) == (121.40, 31.20)
        clock = get(base, f"/api/v1/devices/{terminal(100)}")["clock"]
        assert clock["state"] in ("ok", "future")  # the state of its latest report's row
        track = get(base, f"/api/v1/devices/{terminal(100)}/track?from={_iso(-3 * DAY_MS)}")
        future = [p for p in track if "future" in p["flags"]]
        assert len(future) == 1 and abs(_ms(future[0]["time"]) - now) < 60_000
        assert _ms(future[0]["device_time"]) == now // 1000 * 1000 + 3 * DAY_MS
        assert len([p for p in track if "backfill" in p["flags"]]) == 5
    finally:
        await device.close()
    assert silences(base) == []


def _ms(iso: str) -> int:
    import numpy as np

    from pipeline.timeparse import parse_times_ms

    times, ok = parse_times_ms(np.array([iso.encode()]))
    assert ok[0]
    return int(times[0])


def _iso(offset_ms: int) -> str:
    from alerts.model import format_time

    return format_time(int(time.time() * 1000) + offset_ms).replace("+", "%2B")


def test_hostile_connections_beside_a_fleet_are_reported(serve: tuple[int, str]) -> None:
    """The simulator's impostors, silent connections and garbage senders run and are counted
    (what the server does to them is the gateway's policy: only the accounting is checked)."""
    port, _ = serve
    report = simulate(port, "--devices", "10", "--rate", "10", "--duration", "3",
                      "--faults", "impostor,silent,garbage", "--hostile", "2")  # fmt: skip
    faults = report["faults"]
    assert faults["clock"] == {"ok": 10}
    for kind in ("impostor", "silent", "garbage"):
        entry = faults[kind]
        assert entry["opened"] == 2 and entry["failed"] == 0
        assert entry["closed_by_server"] + entry["still_open"] == 2
    assert faults["garbage"]["bytes_sent"] >= 2 * 64
    impostors = faults["impostor"]
    assert impostors["refused"] + impostors["given_a_code"] <= 2  # or closed unanswered
