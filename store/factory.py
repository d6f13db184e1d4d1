"""Chooses the adapter: PostgreSQL when a database URL is set, SQLite in the data dir otherwise."""

from __future__ import annotations

from pathlib import Path

from store.interface import Store, StoreConfigError
from store.migrate import MigrationReport, migrate_postgres, migrate_sqlite

SQLITE_FILE = "lienwatch.sqlite3"


def sqlite_path(data_dir: Path) -> Path:
    return Path(data_dir) / SQLITE_FILE


def _check_url(database_url: str) -> None:
    if not database_url.startswith(("postgresql://", "postgres://")):
        # The URL itself is not echoed: it may carry a password.
        raise StoreConfigError("database URL must start with postgresql:// or postgres://")


def open_store(database_url: str | None, data_dir: Path, *, migrate: bool = False) -> Store:
    """The configured store; `migrate` first brings its schema up to date."""
    if database_url:
        _check_url(database_url)
        from store.postgres import PostgresStore

        if migrate:
            migrate_postgres(database_url)
        return PostgresStore(database_url)
    from store.sqlite import SqliteStore

    return SqliteStore(sqlite_path(data_dir), migrate=migrate)


def migrate(database_url: str | None, data_dir: Path) -> MigrationReport:
    """Creates or upgrades the configured database's schema; idempotent."""
    if database_url:
        _check_url(database_url)
        return migrate_postgres(database_url)
    return migrate_sqlite(sqlite_path(data_dir))
