"""`lienwatch replay` (contracts section 3): recorded positions in, alerts as JSON lines out."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from lienwatch.commands import EXIT_BAD_INPUT, fail

MAX_ROW_ERRORS_SHOWN = 20


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read {what}: {exc.strerror or exc}")


def replay(
    positions: Annotated[Path, typer.Option("--positions", help="POSITIONS.csv")],
    fences: Annotated[Path, typer.Option("--fences", help="FENCES.geojson")],
    out: Annotated[Path, typer.Option("--out", help="ALERTS.jsonl to write")],
    fleet: Annotated[Path | None, typer.Option("--fleet", help="FLEET.json")] = None,
    rules: Annotated[Path | None, typer.Option("--rules", help="RULES.toml overrides")] = None,
    scores: Annotated[
        Path | None, typer.Option("--scores", help="also write vehicles' risk scores (JSON)")
    ] = None,
) -> None:
    """Run the detection engine over recorded positions, on the data's own clock."""
    from geofence import FenceError, load_fences
    from pipeline.csv_positions import CsvFormatError, read_positions_csv
    from pipeline.engine import Engine
    from pipeline.fleet import Fleet, FleetError, parse_fleet
    from pipeline.replay import replay as run
    from pipeline.thresholds import RuleBook, RulesError, parse_rules

    started = time.perf_counter()
    try:
        fleet_spec = parse_fleet(_read(fleet, "fleet"), str(fleet)) if fleet else Fleet()
        rule_book = parse_rules(_read(rules, "rules"), str(rules)) if rules else RuleBook()
        fence_list = load_fences(fences)
        engine = Engine(fleet=fleet_spec, rules=rule_book, fences=fence_list)
        rows = read_positions_csv(_read(positions, "positions"), str(positions))
    except (FleetError, RulesError, FenceError, CsvFormatError) as exc:
        fail(str(exc))
    result = run(rows, engine)
    try:
        with out.open("w", encoding="utf-8") as fh:
            for alert in result.alerts:
                fh.write(json.dumps(alert.to_json(), ensure_ascii=False) + "\n")
        if scores is not None:
            from alerts.model import format_time
            from alerts.risk import score_vehicles

            ranked = score_vehicles(result.alerts, result.latest_ms)
            document = {
                "time": format_time(result.latest_ms),
                "vehicles": [r.to_json() for r in ranked],
            }
            scores.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    except OSError as exc:
        fail(f"cannot write output: {exc.strerror or exc}: {exc.filename}", 1)
    for error in result.errors[:MAX_ROW_ERRORS_SHOWN]:
        print(f"lienwatch: {error.describe(str(positions))}", file=sys.stderr)
    if len(result.errors) > MAX_ROW_ERRORS_SHOWN:
        more = len(result.errors) - MAX_ROW_ERRORS_SHOWN
        print(f"lienwatch: {positions}: {more} more bad rows skipped", file=sys.stderr)
    summary = {
        "positions": result.positions,
        "alerts": len(result.alerts),
        "seconds": round(time.perf_counter() - started, 3),
        "rejected_rows": len(result.errors),
        "flagged": result.flagged,
    }
    print(json.dumps(summary), file=sys.stderr)
    if result.errors:
        raise typer.Exit(EXIT_BAD_INPUT)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
