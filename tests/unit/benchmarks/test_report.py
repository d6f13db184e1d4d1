"""The bench summary's CPU figures: per item, per CPU-second, against the baseline."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.report import summarize


def bench(name: str, median: float, **info: Any) -> dict[str, Any]:
    return {"name": name, "stats": {"median": median}, "extra_info": info}


def test_cpu_per_item_and_the_ratio_per_cpu_second_against_the_baseline() -> None:
    raw = {
        "benchmarks": [
            bench("test_sink", 10.0, items=1000, cpu_s=0.005),
            bench("test_gateway", 10.0, items=1000, cpu_s=0.02, baseline="test_sink", notes=["x"]),
        ]
    }
    out = summarize("ingest", raw)
    gateway = out["results"]["gateway"]
    assert gateway["cpu_us_per_item"] == pytest.approx(20.0)
    assert gateway["per_cpu_s"] == pytest.approx(50_000.0)
    assert gateway["baseline_cpu_us_per_item"] == pytest.approx(5.0)
    assert gateway["cpu_ratio"] == pytest.approx(0.25)
    assert "notes" not in gateway
    assert out["lines"] == [
        "ingest.sink: 100/s; CPU 5.0 µs/item",
        "ingest.gateway: 100/s  (1.0x sink); CPU 20.0 µs/item vs 5.0 µs/item sink"
        " (0.25x per CPU-second)",
        "  x",
    ]


def test_results_without_cpu_figures_read_as_before() -> None:
    out = summarize("decode", {"benchmarks": [bench("test_decode", 0.5, items=10)]})
    assert out["lines"] == ["decode.decode: 20/s"]
    assert "cpu_ratio" not in out["results"]["decode"]
