"""`lienwatch simulate`: load mode against a running gateway over TCP or MQTT (--target),
scenario files for replay (--scenario-out), or scoring alerts against a scenario's truth
(--score)."""

# typer declares options as argument defaults by design.
# ruff: noqa: B008

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lienwatch.commands import EXIT_RUNTIME, fail

if TYPE_CHECKING:
    from simulators.faults import FaultPlan


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
    gathering_cars: int = typer.Option(
        0,
        "--gathering-cars",
        min=0,
        help="plant one unknown place that this many cars of different borrowers each park at"
        " for hours (ground truth in spots.json; needs --days 2 or more)",
    ),
    score_dir: Path | None = typer.Option(
        None, "--score", help="scenario DIR whose truth to score"
    ),
    alerts: Path | None = typer.Option(None, "--alerts", help="ALERTS.jsonl to score"),
    tolerance_s: float = typer.Option(120.0, "--tolerance-s", min=0.0, help="time tolerance"),
    target: str | None = typer.Option(None, "--target", help="tcp://HOST:PORT or mqtt://HOST:PORT"),
    devices: int = typer.Option(1000, "--devices", min=1, help="simulated trackers (--target)"),
    rate: float = typer.Option(1000.0, "--rate", min=0.001, help="reports/s, whole fleet"),
    duration: float = typer.Option(10.0, "--duration", min=0.001, help="seconds of reporting"),
    edition: int = typer.Option(2013, "--edition", help="JT808 edition: 2013 or 2019"),
    faults: str | None = typer.Option(
        None,
        "--faults",
        help="faulty and hostile trackers: mixed, or a comma list of utc, reset, rollover,"
        " backfill, future, stuck (clocks dealt over the fleet) and impostor, silent, garbage"
        " (connections beside it, --target only)",
    ),
    hostile: int | None = typer.Option(
        None, "--hostile", min=0, help="connections of each hostile kind (default devices/10)"
    ),
    backfill_hours: float = typer.Option(
        48.0, "--backfill-hours", min=0.0, help="how old a backfilling device's fixes are"
    ),
    power_cut: int = typer.Option(
        0,
        "--power-cut",
        min=0,
        help="the first N trackers report their main power cut in every report (--target)",
    ),
) -> None:
    """Simulated trackers: load against a gateway, scenario files, or a score of alerts."""
    names = _faults(faults)
    if target is not None:
        plan = None
        if names is not None:
            from simulators.faults import plan_faults

            plan = plan_faults(names, devices, hostile, backfill_hours)
        if power_cut > devices:
            fail(f"simulate: --power-cut {power_cut} is more than --devices {devices}")
        _load(target, devices, rate, duration, edition, plan, power_cut)
        return
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

    clock_faults: tuple[str, ...] = ()
    if names is not None:
        from simulators.faults import CLOCK_FAULTS

        if names != ("mixed",) and any(n not in CLOCK_FAULTS for n in names):
            fail("simulate: --faults: impostor, silent and garbage need a --target")
        clock_faults = names
    cfg = ScenarioConfig(
        vehicles=vehicles,
        days=days,
        seed=seed,
        start=first_day,
        incidents=not no_incidents,
        faults=clock_faults,
        gathering_cars=gathering_cars,
    )
    if gathering_cars and (days < 2 or gathering_cars > vehicles):
        fail("simulate: --gathering-cars needs --days 2 or more and at most --vehicles cars")
    scenario = build_scenario(cfg)
    if gathering_cars and not scenario.spots:
        fail(
            "simulate: --gathering-cars: no place far enough from the fences and the cars'"
            " homes for that many cars; try fewer or another --seed"
        )
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


def _faults(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    from simulators.faults import FaultError, parse_faults

    try:
        return parse_faults(text)
    except FaultError as exc:
        fail(f"simulate: --faults: {exc}")


def _load(
    target: str,
    devices: int,
    rate: float,
    duration: float,
    edition: int,
    plan: FaultPlan | None = None,
    power_cut: int = 0,
) -> None:
    from urllib.parse import urlsplit

    from ingest.jt808 import Edition
    from simulators.load import LoadConfig, run

    if edition not in (2013, 2019):
        fail(f"simulate: --edition {edition} is not 2013 or 2019")
    parts = urlsplit(target)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "mqtt") or not parts.hostname or port is None:
        fail(f"simulate: --target {target!r} is not tcp://HOST:PORT or mqtt://HOST:PORT")
    cfg = LoadConfig(
        parts.hostname,
        port,
        devices,
        rate,
        duration,
        edition=Edition(edition),
        faults=plan,
        power_cut=power_cut,
    )
    transport = None
    if parts.scheme == "mqtt":
        if plan is not None and plan.hostile:
            fail("simulate: hostile connections (impostor, silent, garbage) need a tcp:// target")
        from simulators.mqtt import MqttTransport

        transport = MqttTransport
    live = sys.stderr.isatty()

    def progress(line: str) -> None:
        print(("\r" + line) if live else line, end="" if live else "\n", file=sys.stderr)
        sys.stderr.flush()

    from lienwatch.services import raise_open_files_limit

    if transport is None and raise_open_files_limit() < devices + 64:
        fail(f"--devices {devices}: the open-files limit is too low for that many connections")
    report = run(cfg, progress, transport)
    if live:
        print(file=sys.stderr)
    print(json.dumps(report.to_json()))
    if report.connected == 0:
        fail(f"simulate: no device could connect to {target}", EXIT_RUNTIME)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
