"""`lienwatch migrate`: creates or upgrades the configured database's schema; idempotent.

PostgreSQL when LIENWATCH_DATABASE_URL is set (TimescaleDB layout if the extension can be
created, native daily partitions otherwise), else the SQLite file in LIENWATCH_DATA_DIR.
"""

from __future__ import annotations

import typer

from lienwatch.commands import EXIT_RUNTIME, fail
from lienwatch.settings import SettingsError, load_settings
from store import StoreConfigError, StoreError, sqlite_path
from store import migrate as migrate_store


def migrate() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        fail(str(exc))
    target = "PostgreSQL" if settings.database_url else f"SQLite {sqlite_path(settings.data_dir)}"
    try:
        report = migrate_store(settings.database_url, settings.data_dir)
    except StoreConfigError as exc:
        fail(f"LIENWATCH_DATABASE_URL: {exc}")
    except StoreError as exc:
        reason = " ".join(str(exc).split())  # driver messages span lines; ours is one
        fail(f"migrate {target}: {reason}", EXIT_RUNTIME)
    layout = f" ({report.layout} layout)" if report.layout else ""
    if report.applied:
        print(f"{target}{layout}: applied {', '.join(report.applied)}")
    else:
        print(f"{target}{layout}: up to date ({report.already} migrations)")


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
