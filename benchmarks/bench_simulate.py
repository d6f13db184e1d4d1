"""`lienwatch bench simulate`: the load generator against the acknowledging sink.

5,000 TCP connections offered 100,000 reports/s for a few seconds, the sink in its own process.
The baseline is the same generator encoding each report with the scalar `encode_frame`; the
vectorized one is compared with it. Each round's extra figures tell whether the rate was held
(achieved_rate over the sending window, send lag) and how the answers came back (ack latency).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from simulators.load import LoadConfig, LoadReport, run

DEVICES = 5_000
RATE = 100_000.0
DURATION_S = 5.0


@pytest.fixture(scope="module")
def sink_port() -> Iterator[int]:
    with subprocess.Popen(
        [sys.executable, "-m", "simulators.sink", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            yield int(line.rsplit(":", 1)[1])
        finally:
            proc.terminate()
            proc.wait(10)


def _measure(benchmark: Any, port: int, encoder: str) -> LoadReport:
    cfg = LoadConfig("127.0.0.1", port, DEVICES, RATE, DURATION_S, encoder=encoder)
    reports: list[LoadReport] = []

    def once() -> None:
        reports.append(run(cfg))

    benchmark.pedantic(once, rounds=1, iterations=1)
    report = reports[-1]
    benchmark.extra_info["items"] = report.sent
    benchmark.extra_info["offered_rate"] = RATE
    benchmark.extra_info["achieved_rate"] = round(report.achieved_rate, 1)
    benchmark.extra_info["acknowledged"] = report.acknowledged
    benchmark.extra_info["errors"] = report.errors
    benchmark.extra_info["ack_latency_ms"] = report.ack_latency_ms
    benchmark.extra_info["send_lag_ms"] = report.send_lag_ms
    benchmark.extra_info["cpu_s"] = round(report.cpu_s, 2)
    benchmark.extra_info["reports_per_cpu_s"] = round(report.sent / report.cpu_s, 0)
    print(f"\n{encoder}: {report.to_json()}")
    return report


def test_scalar_encode_load(benchmark: Any, sink_port: int) -> None:
    report = _measure(benchmark, sink_port, "scalar")
    assert report.connected == DEVICES


def test_vectorized_load(benchmark: Any, sink_port: int) -> None:
    report = _measure(benchmark, sink_port, "vector")
    benchmark.extra_info["baseline"] = "test_scalar_encode_load"
    assert report.connected == DEVICES
    assert report.acknowledged == report.sent
