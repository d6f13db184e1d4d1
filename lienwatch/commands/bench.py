"""`lienwatch bench NAME`: runs benchmarks/bench_NAME.py under pytest-benchmark.

Prints human-readable lines, then one last line of JSON: every throughput next to the baseline
measured in the same run and their ratio (see benchmarks/report.py). pytest and pytest-benchmark
come with the `bench` extra only; without them the command says so and exits 2. This module and
benchmarks/ are the only runtime code that imports them, and only when a suite runs.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

import benchmarks
from benchmarks.report import summarize
from lienwatch.commands import EXIT_BAD_INPUT, EXIT_RUNTIME, fail

BENCH_DIR = Path(benchmarks.__file__).resolve().parent
NEEDS_EXTRA = "lienwatch bench needs the bench extra: pip install 'lienwatch[bench]'"


def _require_bench_extra() -> None:
    """Exits 2 with one line when pytest or pytest-benchmark cannot be imported."""
    for module in ("pytest", "pytest_benchmark"):
        try:
            importlib.import_module(module)
        except ImportError:
            print(NEEDS_EXTRA, file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT) from None


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def bench(
    name: Annotated[str, typer.Argument(help="suite name: decode, ingest, geofence, replay, ...")],
    quick: Annotated[bool, typer.Option("--quick", help="fewer rounds, for a smoke run")] = False,
) -> None:
    """Run one benchmark suite; the last line of output is JSON with the figures."""
    _require_bench_extra()
    import pytest

    suites = available()
    if name not in suites:
        fail(f"unknown benchmark suite {name!r}; available: {', '.join(suites)}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        args = [
            str(BENCH_DIR / f"bench_{name}.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--benchmark-only",
            f"--benchmark-json={out}",
            "--benchmark-columns=min,median,max,rounds",
            "-o",
            "timeout=0",
            f"--rootdir={BENCH_DIR.parent}",
        ]
        if quick:
            args += ["--benchmark-min-rounds=1", "--benchmark-max-time=0.2"]
        code = int(pytest.main(args))
        raw = json.loads(out.read_text()) if out.exists() else None
    if raw is None:
        fail(f"benchmark suite {name} failed (pytest exit {code})", EXIT_RUNTIME)
    # A failed check in one benchmark still leaves the others' figures worth reading: they are
    # printed, marked as coming from a failed run, and the exit code says it failed.
    summary = summarize(name, raw)
    if code != 0:
        summary["failed"] = True
    for line in summary.pop("lines"):
        print(line)
    sys.stdout.flush()
    print(json.dumps(summary, sort_keys=True))
    if code != 0:
        fail(
            f"benchmark suite {name} failed (pytest exit {code}); figures above are partial",
            EXIT_RUNTIME,
        )


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
