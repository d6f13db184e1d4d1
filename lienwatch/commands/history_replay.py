"""`lienwatch replay --from-store`: the engine over stored history (a backtest).

Reads the positions stored between --since and --until (the configured store: PostgreSQL with
LIENWATCH_DATABASE_URL, else SQLite in LIENWATCH_DATA_DIR) in pages of time, runs the engine
set up as the live detector is (the store's fleet, loan states and fences) with --rules (else the
configured rules file, else the defaults), writes its alerts to --out, and compares them per
type with the alerts that fired over the same time: the summary on stderr counts what the new
thresholds add and remove, --report writes every added, removed and moved alert.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from lienwatch.commands import EXIT_OK, EXIT_RUNTIME, fail
from lienwatch.progress import Progress


def parse_instant(value: str, option: str) -> int:
    """ISO 8601 with an offset (or Z), in epoch ms; exit 2 naming the option otherwise."""
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: not an ISO 8601 time: {value!r}")
    if stamp.tzinfo is None:
        fail(f"{option}: {value!r} has no UTC offset (e.g. +08:00 or Z)")
    return int(stamp.timestamp() * 1000)


def run(
    since: str, until: str, out: Path, rules: Path | None, report: Path | None, tolerance_h: float
) -> int:
    from lienwatch.alerting import load_rules
    from lienwatch.settings import SettingsError, load_settings
    from pipeline.backtest import report as report_json
    from pipeline.history import backtest
    from pipeline.replay import write_alerts
    from pipeline.thresholds import RulesError, parse_rules
    from store import StoreConfigError, StoreError, open_store

    since_ms, until_ms = parse_instant(since, "--since"), parse_instant(until, "--until")
    if until_ms <= since_ms:
        fail("--until: must be after --since")
    try:
        settings = load_settings()
    except SettingsError as exc:
        fail(str(exc))
    try:
        if rules is not None:
            try:
                data = rules.read_bytes()
            except OSError as exc:
                fail(f"{rules}: cannot read rules: {exc.strerror or exc}")
            book = parse_rules(data, str(rules))
        else:
            book = load_rules(settings)
    except (RulesError, ValueError) as exc:
        fail(str(exc))
    started = time.perf_counter()
    progress = Progress(sys.stderr, started=started, after_s=2.0)
    try:
        store = open_store(settings.database_url, settings.data_dir)
    except StoreConfigError as exc:
        fail(f"LIENWATCH_DATABASE_URL: {exc}")
    except StoreError as exc:
        fail(f"cannot open the store: {' '.join(str(exc).split())}", EXIT_RUNTIME)
    try:
        result = backtest(
            store, since_ms, until_ms, book, tolerance_ms=int(tolerance_h * 3_600_000),
            progress=lambda done, total: progress.update("backtest", done, total),
        )  # fmt: skip
    except StoreError as exc:
        progress.clear()
        fail(f"reading the store: {' '.join(str(exc).split())}", EXIT_RUNTIME)
    finally:
        store.close()
    progress.clear()
    document = report_json(result.diffs, since_ms, until_ms, result.run.positions)
    try:
        with out.open("w", encoding="utf-8") as fh:
            write_alerts(result.run.alerts, fh)
        if report is not None:
            report.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    except OSError as exc:
        fail(f"cannot write output: {exc.strerror or exc}: {exc.filename}", EXIT_RUNTIME)
    summary = {
        "positions": result.run.positions,
        "alerts": len(result.run.alerts),
        "seconds": round(time.perf_counter() - started, 3),
        "flagged": result.run.flagged,
        "by_type": document["by_type"],
    }
    print(json.dumps(summary), file=sys.stderr)
    return EXIT_OK
