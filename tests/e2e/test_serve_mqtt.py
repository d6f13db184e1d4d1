"""`lienwatch serve` with LIENWATCH_MQTT_URL: trackers behind the real Mosquitto broker
(contracts section 5) register, report and are acknowledged only once their positions are
durable, exactly as over TCP."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.processes import LIENWATCH, start_serve, stop

pytestmark = pytest.mark.mqtt


@pytest.mark.parametrize("edition", ["2013", "2019"])
def test_the_simulated_fleet_over_mqtt_is_acknowledged_and_stored_once(
    tmp_path: Path, mqtt_url: str, edition: str
) -> None:
    data = tmp_path / "data"
    env = {
        "LIENWATCH_DATA_DIR": str(data),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
        "LIENWATCH_MQTT_URL": mqtt_url,
        # A shared-subscription group of its own: the broker is shared with other test runs.
        "LIENWATCH_MQTT_SHARE_GROUP": f"t{uuid.uuid4().hex[:8]}",
    }
    proc, _ = start_serve(env)
    try:
        done = subprocess.run(
            [
                LIENWATCH,
                "simulate",
                "--target",
                mqtt_url,
                "--devices",
                "40",
                "--rate",
                "400",
                "--duration",
                "2",
                "--edition",
                edition,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["connected"] == 40
        assert report["sent"] == report["acknowledged"] == 800
        assert report["errors"] == 0
        deadline = time.monotonic() + 15
        stored = 0
        while time.monotonic() < deadline:
            with sqlite3.connect(data / "lienwatch.sqlite3") as db:
                stored = db.execute("SELECT count(*) FROM positions").fetchone()[0]
            if stored >= 800:
                break
            time.sleep(0.2)
        assert stored == 800
    finally:
        assert stop(proc, signal.SIGTERM) == 0
