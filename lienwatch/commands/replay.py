"""`lienwatch replay` (contracts section 3): recorded positions in, alerts as JSON lines out.

Replay is run on files of hundreds of thousands of rows, where the process's own start and exit
are a large share of the time: `fast_main` runs a plain invocation without importing typer and
leaves with `os._exit` once every output is flushed and closed; anything else (`--help`, an
unknown or missing option) goes through typer as every other command does.
"""

# typer declares options as argument defaults by design.
# ruff: noqa: B008

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lienwatch.commands import EXIT_BAD_INPUT, EXIT_OK, fail
from lienwatch.progress import Progress

if TYPE_CHECKING:
    import typer

    from pipeline.csv_positions import CsvPositions
    from pipeline.engine import Engine

MAX_ROW_ERRORS_SHOWN = 20
# --option -> parameter of `run`; all take exactly one value.
OPTIONS = {
    "--positions": "positions",
    "--fences": "fences",
    "--out": "out",
    "--fleet": "fleet",
    "--rules": "rules",
    "--scores": "scores",
    "--workers": "workers",
}
REQUIRED = ("positions", "fences", "out")


def _progress_after_s() -> float:
    """Seconds before the progress bar shows: 2, or LIENWATCH_TEST_PROGRESS_AFTER_S (0: at once)."""
    try:
        return float(os.environ.get("LIENWATCH_TEST_PROGRESS_AFTER_S", "2"))
    except ValueError:
        return 2.0


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read {what}: {exc.strerror or exc}")


def run(
    positions: Path,
    fences: Path,
    out: Path,
    fleet: Path | None = None,
    rules: Path | None = None,
    scores: Path | None = None,
    workers: int | None = None,
) -> int:
    """The command itself; returns the exit code (2 when rows were rejected), or raises
    SystemExit through `fail` for input that cannot be read at all (or, exit 1, when a replay
    process failed: nothing is written then). `workers`: processes (None: automatic)."""
    from geofence.errors import FenceError
    from pipeline.fleet import FleetError
    from pipeline.thresholds import RulesError

    started = time.perf_counter()
    progress = Progress(sys.stderr, started=started, after_s=_progress_after_s())

    def setup() -> Engine:
        from geofence.geojson import load_fences
        from pipeline.engine import Engine
        from pipeline.fleet import Fleet, parse_fleet
        from pipeline.thresholds import RuleBook, parse_rules

        fleet_spec = parse_fleet(_read(fleet, "fleet"), str(fleet)) if fleet else Fleet()
        rule_book = parse_rules(_read(rules, "rules"), str(rules)) if rules else RuleBook()
        return Engine(fleet=fleet_spec, rules=rule_book, fences=load_fences(fences))

    # The engine's modules load and its fence index is built while Arrow parses the CSV (it
    # releases the GIL); errors are still reported in the order they were before: fleet, rules,
    # fences, then positions. The reader's modules load first, alone: imports on two threads
    # only take turns on the GIL, and the parse, which does not hold it, starts sooner.
    from pipeline.csv_positions import CsvFormatError

    engine_setup = _Background(setup)

    try:
        rows: CsvPositions | BaseException = _read_positions(positions, progress)
    except BaseException as exc:
        rows = exc
    try:
        engine = engine_setup.result()
        if isinstance(rows, BaseException):
            raise rows
    except (FleetError, RulesError, FenceError, CsvFormatError) as exc:
        progress.clear()
        fail(str(exc))
    from pipeline.replay import ReplayWorkerError, write_alerts
    from pipeline.replay import replay as replay_rows

    try:
        result = replay_rows(rows, engine, workers=workers, progress=lambda done, total: (
            progress.update("detecting", done, total)
        ))  # fmt: skip
    except ReplayWorkerError as exc:
        progress.clear()
        fail(f"{exc}; no output written", 1)
    progress.clear()
    try:
        with out.open("w", encoding="utf-8") as fh:
            write_alerts(result.alerts, fh)
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
    return EXIT_BAD_INPUT if result.errors else EXIT_OK


def _read_positions(path: Path, progress: Progress) -> CsvPositions:
    from pipeline.csv_positions import read_positions_file

    progress.update("reading", 0, 1)
    try:
        return read_positions_file(path)
    except OSError as exc:
        fail(f"{path}: cannot read positions: {exc.strerror or exc}")


class _Background:
    """One call on a thread of its own; `result` waits for it and raises what it raised."""

    def __init__(self, call: Callable[[], Engine]) -> None:
        self._value: Engine | None = None
        self._error: BaseException | None = None
        self._call = call
        self._thread = threading.Thread(target=self._run, name="replay-setup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # handed to the caller, SystemExit from `fail` included
            self._error = exc

    def result(self) -> Engine:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def parse_plain(args: Sequence[str]) -> dict[str, Path | int] | None:
    """The options of a plain invocation (`--name value` or `--name=value`, each known option
    at most once, the required ones present, no value that looks like an option, --workers a
    positive number); None for anything else, which typer then parses and reports exactly as
    it does for every command."""
    found: dict[str, Path | int] = {}
    i = 0
    while i < len(args):
        token = args[i]
        name, eq, value = token.partition("=")
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        i += 1
        param = OPTIONS.get(name)
        if param is None or param in found or not value or value.startswith("-"):
            return None
        if param == "workers":
            if not value.isdigit() or int(value) < 1:
                return None
            found[param] = int(value)
        else:
            found[param] = Path(value)
    if any(name not in found for name in REQUIRED):
        return None
    return found


def fast_main(args: Sequence[str]) -> None:
    """Runs a plain invocation and ends the process; returns (doing nothing) otherwise.

    The process is set up for one short run first (`lienwatch.oneshot`: single-threaded BLAS,
    freed memory kept). The run allocates millions of small objects that live until the end:
    the cyclic collector would only walk them again and again, so it is off, and at exit
    nothing is freed one by one (`os._exit` after stdout and stderr are flushed; every file
    written is closed)."""
    options = parse_plain(args)
    if options is None:
        return
    from lienwatch.oneshot import prepare_batch_process

    prepare_batch_process()
    gc.disable()
    try:
        code = run(**options)  # type: ignore[arg-type]
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def register(app: typer.Typer) -> None:
    import typer

    def replay(
        positions: Path | None = typer.Option(None, "--positions", help="POSITIONS.csv"),
        fences: Path | None = typer.Option(None, "--fences", help="FENCES.geojson"),
        out: Path = typer.Option(..., "--out", help="ALERTS.jsonl to write"),
        fleet: Path | None = typer.Option(None, "--fleet", help="FLEET.json"),
        rules: Path | None = typer.Option(None, "--rules", help="RULES.toml overrides"),
        scores: Path | None = typer.Option(
            None, "--scores", help="also write vehicles' risk scores (JSON)"
        ),
        workers: int | None = typer.Option(
            None,
            "--workers",
            min=1,
            help="processes to split the vehicles over (default: 2 for more than 100,000"
            " rows on a machine with more than one CPU, else 1; always 1 outside Linux);"
            " the output is the same for any number",
        ),
        from_store: bool = typer.Option(
            False,
            "--from-store",
            help="backtest: the stored positions between --since and --until instead of files,"
            " compared with the alerts that fired",
        ),
        since: str | None = typer.Option(None, "--since", help="ISO 8601 with offset"),
        until: str | None = typer.Option(None, "--until", help="ISO 8601 with offset"),
        report: Path | None = typer.Option(
            None, "--report", help="with --from-store: the comparison report (JSON) to write"
        ),
        tolerance_h: float = typer.Option(
            6.0,
            "--tolerance-h",
            min=0.0,
            help="with --from-store: an alert within this many hours of a fired one of the"
            " same type, vehicle and fence is the same incident (moved)",
        ),
    ) -> None:
        """Run the detection engine over recorded positions, on the data's own clock."""
        if from_store:
            given = {"--positions": positions, "--fences": fences, "--fleet": fleet,
                     "--scores": scores, "--workers": workers}  # fmt: skip
            for name in (n for n, v in given.items() if v is not None):
                fail(f"{name}: not with --from-store (the store gives positions and fences)")
            if since is None or until is None:
                fail("--from-store needs --since and --until")
            from lienwatch.commands.history_replay import run as run_history

            code = run_history(since, until, out, rules, report, tolerance_h)
        else:
            if positions is None or fences is None:
                fail("replay needs --positions and --fences (or --from-store)")
            only = {"--since": since, "--until": until, "--report": report}
            for name in (n for n, v in only.items() if v is not None):
                fail(f"{name}: only with --from-store")
            code = run(positions, fences, out, fleet, rules, scores, workers)
        if code:
            raise typer.Exit(code)

    app.command("replay")(replay)
