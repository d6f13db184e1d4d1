"""`lienwatch simulate --target` against the acknowledging sink in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LIENWATCH = str(Path(sys.executable).parent / "lienwatch")


def test_load_mode_prints_the_contract_report_and_progress_on_stderr() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "simulators.sink", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True
    ) as sink:
        try:
            assert sink.stdout is not None
            port = int(sink.stdout.readline().rsplit(":", 1)[1])
            done = subprocess.run(
                [
                    LIENWATCH,
                    "simulate",
                    "--target",
                    f"tcp://127.0.0.1:{port}",
                    "--devices",
                    "50",
                    "--rate",
                    "500",
                    "--duration",
                    "2",
                    "--edition",
                    "2019",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            sink.terminate()
            sink.wait(10)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["sent"] == 1000
    assert report["acknowledged"] == 1000
    assert report["errors"] == 0
    assert 450 <= report["achieved_rate"] <= 510
    assert set(report["ack_latency_ms"]) >= {"p50", "p95", "p99"}
    assert "sent=" in done.stderr


def test_a_bad_target_exits_2_with_a_reason() -> None:
    done = subprocess.run(
        [LIENWATCH, "simulate", "--target", "udp://nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--target" in done.stderr
