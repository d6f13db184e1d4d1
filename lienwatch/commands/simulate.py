"""`lienwatch simulate`: scenario files for replay (--scenario-out), or scoring alerts against
a scenario's truth (--score). Load mode over TCP/MQTT (--target) is not built yet."""

# typer declares options as argument defaults by design.
# ruff: noqa: B008

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import typer

from lienwatch.commands import EXIT_RUNTIME, fail


def simulate(
    scenario_out: Path | None = typer.Option(
        None, "--scenario-out", help="write scenario files to DIR"
    ),
    vehicles: int = typer.Option(20, "--vehicles", min=1, help="vehicles in the scenario"),
    days: int = typer.Option(3, "--days", min=1, help="days of data"),
    seed: int = typer.Option(1, "--seed", min=0, help="random seed; same seed, same bytes"),
    start: str = typer.Option("2024-03-04", "--start", help="first day (local date, +08:00)"),
    no_incidents: bool = typer.Option(
        False, "--no-incidents", help="background and confounders only: truth.jsonl is empty"
    ),
    score_dir: Path | None = typer.Option(
        None, "--score", help="scenario DIR whose truth to score"
    ),
    alerts: Path | None = typer.Option(None, "--alerts", help="ALERTS.jsonl to score"),
    tolerance_s: float = typer.Option(120.0, "--tolerance-s", min=0.0, help="time tolerance"),
    target: str | None = typer.Option(None, "--target", help="tcp://HOST:PORT or mqtt://HOST:PORT"),
) -> None:
    """Simulated trackers: scenario files, or a score of alerts against their truth."""
    if target is not None:
        fail("simulate --target: load mode over TCP/MQTT is not available yet", EXIT_RUNTIME)
    if score_dir is not None:
        _score(score_dir, alerts, tolerance_s)
        return
    if scenario_out is None:
        fail("simulate: give --scenario-out DIR, or --score DIR --alerts ALERTS.jsonl")
    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError:
        fail(f"simulate: --start {start!r} is not a date (YYYY-MM-DD)")
    from simulators.config import ScenarioConfig
    from simulators.output import write_scenario
    from simulators.scenario import build_scenario

    cfg = ScenarioConfig(
        vehicles=vehicles, days=days, seed=seed, start=first_day, incidents=not no_incidents
    )
    scenario = build_scenario(cfg)
    figures = write_scenario(scenario, scenario_out)
    print(
        json.dumps({"dir": str(scenario_out), **figures, "doubts": len(scenario.evaluation.doubts)})
    )


def _score(scenario_dir: Path, alerts: Path | None, tolerance_s: float) -> None:
    from simulators.files import InputError
    from simulators.score import score_dir, summary, table

    if alerts is None:
        fail("simulate --score: --alerts ALERTS.jsonl is required")
    try:
        scores = score_dir(scenario_dir, alerts, tolerance_s)
    except InputError as exc:
        fail(str(exc))
    for line in table(scores):
        print(line)
    sys.stdout.flush()
    print(json.dumps(summary(scores, tolerance_s), sort_keys=True))


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
