"""`lienwatch bench simulate`: the load generator against the acknowledging sink.

5,000 TCP connections offered 100,000 reports/s for a few seconds, the sink in its own process.
The baseline is the same generator encoding each report with the scalar `encode_frame`; the
vectorized one is compared with it, with the same load, rounds and sink. The capacity figure is
reports per CPU-second of the generator's process (`per_cpu_s`, from its CPU over the window from
the first scheduled report to the last answer, connecting left out) and `cpu_ratio` against the
scalar baseline: an offered rate that is met only says the generator kept up. The extra figures
tell whether the rate was held (achieved_rate over the sending window, send lag), how the answers
came back (ack latency) and the sink's own CPU, which shares the same cores.

Environment (smaller runs while developing): LIENWATCH_BENCH_SIMULATE_DEVICES (default 5000),
LIENWATCH_BENCH_SIMULATE_RATE (100000), LIENWATCH_BENCH_SIMULATE_S (5).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from simulators.load import LoadConfig, LoadReport, process_cpu_s, run

DEVICES = int(os.environ.get("LIENWATCH_BENCH_SIMULATE_DEVICES", "5000"))
RATE = float(os.environ.get("LIENWATCH_BENCH_SIMULATE_RATE", "100000"))
DURATION_S = float(os.environ.get("LIENWATCH_BENCH_SIMULATE_S", "5"))


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[int, int]]:
    """The sink's (port, pid)."""
    with subprocess.Popen(
        [sys.executable, "-m", "simulators.sink", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            yield int(line.rsplit(":", 1)[1]), proc.pid
        finally:
            proc.terminate()
            proc.wait(10)


def _measure(benchmark: Any, sink: tuple[int, int], encoder: str) -> LoadReport:
    port, sink_pid = sink
    cfg = LoadConfig("127.0.0.1", port, DEVICES, RATE, DURATION_S, encoder=encoder)
    reports: list[LoadReport] = []
    sink_cpu: dict[str, float] = {}

    def mark(name: str) -> None:
        sink_cpu[name] = process_cpu_s(sink_pid)

    def once() -> None:
        reports.append(run(cfg, mark=mark))

    benchmark.pedantic(once, rounds=1, iterations=1)
    report = reports[-1]
    sink_s = sink_cpu["end"] - sink_cpu["start"]
    per_cpu_s = report.sent / report.window_cpu_s if report.window_cpu_s else float("nan")
    benchmark.extra_info["items"] = report.sent
    benchmark.extra_info["cpu_s"] = report.window_cpu_s  # gives per_cpu_s and cpu_ratio
    benchmark.extra_info["cpu_of"] = (
        "the load generator (this process), first scheduled report to last answer"
    )
    benchmark.extra_info["window_s"] = round(report.window_s, 3)
    benchmark.extra_info["run_cpu_s"] = round(report.cpu_s, 2)  # connecting included
    benchmark.extra_info["sink_cpu_s"] = round(sink_s, 3)
    benchmark.extra_info["notes"] = [
        f"capacity: {per_cpu_s:,.0f} reports per CPU-second of the generator "
        f"({report.window_cpu_s:.2f} CPU-s over {report.window_s:.1f} s); "
        f"{report.achieved_rate:,.0f}/s achieved of {RATE:,.0f}/s offered",
        f"sink CPU over the same window: {sink_s:.2f} s ({sink_s / report.window_s:.2f} cores); "
        "it shares the machine's cores with the generator",
    ]
    benchmark.extra_info["offered_rate"] = RATE
    benchmark.extra_info["achieved_rate"] = round(report.achieved_rate, 1)
    benchmark.extra_info["acknowledged"] = report.acknowledged
    benchmark.extra_info["errors"] = report.errors
    benchmark.extra_info["ack_latency_ms"] = report.ack_latency_ms
    benchmark.extra_info["send_lag_ms"] = report.send_lag_ms
    print(f"\n{encoder}: {report.to_json()}")
    return report


def test_scalar_encode_load(benchmark: Any, sink: tuple[int, int]) -> None:
    report = _measure(benchmark, sink, "scalar")
    assert report.connected == DEVICES


def test_vectorized_load(benchmark: Any, sink: tuple[int, int]) -> None:
    report = _measure(benchmark, sink, "vector")
    benchmark.extra_info["baseline"] = "test_scalar_encode_load"
    assert report.connected == DEVICES
    assert report.acknowledged == report.sent
