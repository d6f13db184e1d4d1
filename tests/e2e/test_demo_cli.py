"""`lienwatch demo` as a real process: the whole system on embedded defaults with its live fleet.

It prints the API URL and an admin key, the API answers with that key, alerts of several types
fire within the first minute, and it stops cleanly (exit 0) by itself, on SIGINT and on SIGTERM.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import LIENWATCH

pytestmark = pytest.mark.slow

RUN_S = 60  # power_cut, gps_jump, geofence_enter, leave_allowed_area, overspeed all by ~+45 s
# Settings of the test environment the demo must not inherit: it runs on embedded defaults.
ISOLATED = {
    "LIENWATCH_CONFIG", "LIENWATCH_DATA_DIR", "LIENWATCH_DATABASE_URL", "LIENWATCH_REDIS_URL",
    "LIENWATCH_MQTT_URL", "LIENWATCH_WEBHOOK_URLS", "LIENWATCH_LOG_LEVEL",
}  # fmt: skip


class Demo:
    """A `lienwatch demo` process whose stdout lines are collected by a thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [LIENWATCH, "demo", *args],
            env={**{k: v for k, v in os.environ.items() if k not in ISOLATED}, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout_s: float = 60.0) -> re.Match[str]:
        """The first line (seen so far or coming) that matches `pattern`."""
        deadline = time.monotonic() + timeout_s
        for seen in self.lines:
            if found := re.search(pattern, seen):
                return found
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r} in {self.lines!r}")

    def finish(self, timeout_s: float = 60.0) -> tuple[int, str]:
        """Waits for the exit; the exit code and the whole output."""
        code = self.proc.wait(timeout_s)
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        assert self.proc.stderr is not None
        errors = self.proc.stderr.read()
        self.proc.stderr.close()
        assert code == 0, errors
        return code, "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self.proc.stderr.close()


def _loopback_env(**extra: str) -> dict[str, str]:
    return {
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_API_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "false",  # the demo turns it on whatever the environment says
        **extra,
    }


def _started(demo: Demo) -> tuple[str, str]:
    base = demo.wait_for(r"API on (http://\S+)").group(1)
    key = demo.wait_for(r"admin API key: (\S+)").group(1)
    return base, key


def test_the_demo_serves_the_api_and_fires_alerts_of_several_types(tmp_path: Path) -> None:
    data = tmp_path / "data"
    demo = Demo(
        ["--duration", str(RUN_S), "--seed", "3"], _loopback_env(LIENWATCH_DATA_DIR=str(data))
    )
    try:
        assert demo.wait_for(r"data in (\S+)").group(1) == str(data)
        base, key = _started(demo)
        demo.wait_for(r"map on \S+/map")
        types: set[str] = set()
        with httpx.Client(base_url=base, timeout=5) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            assert http.get("/api/v1/alerts").status_code == 401
            assert http.get("/map").status_code == 200
            deadline = time.monotonic() + RUN_S + 5
            while len(types) < 4 and time.monotonic() < deadline:
                answer = http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {key}"})
                assert answer.status_code == 200
                types = {alert["type"] for alert in answer.json()}
                time.sleep(2)
            listed = http.get("/api/v1/devices", headers={"Authorization": f"Bearer {key}"})
            devices = listed.json()["devices"]
            assert len(devices) >= 25  # 20 cars, most with one tracker, several with two
            assert all(d["vehicle_id"].startswith("VIN-") for d in devices)
        assert len(types) >= 4, types
        _, output = demo.finish(RUN_S + 30)
    finally:
        demo.kill()
    printed = re.findall(r"^\S+ \S+\s+([a-z_]+)\s+(?:low|medium|high|critical)\s", output, re.M)
    assert len(set(printed)) >= 4, output
    assert re.search(
        r"ran \d+ s: \d+ trackers sent [1-9]\d* reports, [1-9]\d* acknowledged", output
    )
    assert re.search(r"alerts: [1-9]\d* \(", output)
    assert data.is_dir()  # LIENWATCH_DATA_DIR is kept


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_demo_cleanly_and_removes_its_temporary_data(
    sig: signal.Signals,
) -> None:
    demo = Demo([], _loopback_env())
    try:
        data = Path(demo.wait_for(r"data in (\S+) \(temporary").group(1))
        base, _ = _started(demo)
        assert data.is_dir()
        with httpx.Client(base_url=base, timeout=5) as http:
            assert http.get("/healthz").status_code == 200
        demo.proc.send_signal(sig)
        code, output = demo.finish(30)
    finally:
        demo.kill()
    assert code == 0
    assert "stopping" in output
    assert re.search(r"ran \d+ s: \d+ trackers sent", output)
    assert not data.exists()
