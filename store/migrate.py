"""Ordered, idempotent schema migrations for both databases, recorded in `schema_migrations`.

Migrations are SQL files in migrations/<dialect>/ named `NNNN_name.sql`, or
`NNNN_name.<variant>.sql` when a step has alternatives: for PostgreSQL `timescale` (hypertable,
compression, retention, continuous aggregate) or `plain` (native daily partitions). The variant
is chosen once, at the first migration, by whether the `timescaledb` extension can be created,
and recorded beside each version so later runs and the store follow the same layout.
Each file runs in its own transaction with its bookkeeping row.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from store.interface import SchemaError, StoreUnavailableError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)(?:\.(plain|timescale))?\.sql$")
log = logging.getLogger("lienwatch.migrate")
_LOCK_KEY = 0x4C574D47  # pg_advisory_lock key serializing concurrent `migrate` runs
PLAIN = "plain"
TIMESCALE = "timescale"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    variant: str | None
    path: Path

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}" + (f".{self.variant}" if self.variant else "")


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What one run did: versions applied now, versions already there, the layout in use."""

    applied: tuple[str, ...]
    already: int
    layout: str | None


def load_migrations(dialect: str, variant: str | None = None) -> list[Migration]:
    """The migrations of one dialect in order, keeping only `variant` where a step has several."""
    found: dict[int, list[Migration]] = {}
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise SchemaError(f"{path}: migration file name is not NNNN_name[.variant].sql")
        version, name, file_variant = int(match[1]), match[2], match[3]
        found.setdefault(version, []).append(Migration(version, name, file_variant, path))
    chosen: list[Migration] = []
    for version in sorted(found):
        options = found[version]
        if len(options) == 1 and options[0].variant is None:
            chosen.append(options[0])
            continue
        picked = [m for m in options if m.variant == variant]
        if len(picked) != 1:
            raise SchemaError(f"migration {version:04d}: no single {variant!r} variant")
        chosen.append(picked[0])
    return chosen


def latest_version(dialect: str) -> int:
    return max(m.version for m in load_migrations(dialect, PLAIN))


# -- PostgreSQL ------------------------------------------------------------------------------


def timescale_preloaded(shared_preload_libraries: str) -> bool:
    """Whether the server loads TimescaleDB at start, as `CREATE EXTENSION` needs: without it
    that statement is FATAL and ends the connection."""
    return "timescaledb" in {
        name.strip().strip('"') for name in shared_preload_libraries.split(",")
    }


def _timescale_available(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Creates the extension if the server can load it; False (with a warning saying how to
    enable it, when it is installed) when it cannot."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if row is None:
        return False
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    if not timescale_preloaded(str(preload[0] if preload else "")):
        log.warning(
            "TimescaleDB is installed but the server does not load it: using the plain"
            " layout. To use TimescaleDB, add timescaledb to shared_preload_libraries in"
            " postgresql.conf, restart PostgreSQL, and migrate a new database."
        )
        return False
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:  # no rights, say
        log.warning("TimescaleDB cannot be enabled (%s): using the plain layout", exc)
        return False
    return True


def migrate_postgres(
    url: str,
    *,
    today: datetime | None = None,
    target: int | None = None,
    layout: str | None = None,
) -> MigrationReport:
    """Brings a PostgreSQL database up to date (or up to version `target`); safe to run again
    and concurrently. A new schema takes `layout` when given (`plain` on a server with
    TimescaleDB, say), else TimescaleDB when the server can load it."""
    if layout not in (None, PLAIN, TIMESCALE):
        raise ValueError(f"layout must be {PLAIN!r} or {TIMESCALE!r}")
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StoreUnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, variant text,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done: dict[int, str | None] = dict(
            conn.execute("SELECT version, variant FROM schema_migrations").fetchall()
        )
        recorded = {v for v in done.values() if v}
        if len(recorded) > 1:
            raise SchemaError(f"schema_migrations mixes layouts {sorted(recorded)}")
        # The layout of an existing schema wins; a new one takes TimescaleDB when it can.
        if recorded:
            layout = recorded.pop()
        elif layout is None:
            layout = TIMESCALE if _timescale_available(conn) else PLAIN
        elif layout == TIMESCALE and not _timescale_available(conn):
            raise SchemaError("the TimescaleDB layout needs the timescaledb extension loaded")
        applied: list[str] = []
        for migration in load_migrations("postgres", layout):
            if migration.version in done or (target is not None and migration.version > target):
                continue
            try:
                with conn.transaction():
                    conn.execute(migration.path.read_text(encoding="utf-8").encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, variant)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.variant),
                    )
            except psycopg.Error as exc:
                raise SchemaError(f"{migration.path}: {exc}") from exc
            applied.append(migration.label)
        if layout == PLAIN:
            day = (today or datetime.now(UTC)).date()
            for offset in (-1, 0, 1, 2):  # writes of the next days find their partitions ready
                conn.execute(
                    "SELECT lienwatch_ensure_day_partition(%s)", (day + timedelta(days=offset),)
                )
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return MigrationReport(tuple(applied), len(done), layout)


# -- SQLite ----------------------------------------------------------------------------------


def migrate_sqlite(path: Path) -> MigrationReport:
    """Brings the embedded database file up to date (creating it); WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, variant TEXT,"
            " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied: list[str] = []
        for migration in load_migrations("sqlite"):
            if migration.version in done:
                continue
            script = (
                "BEGIN IMMEDIATE;\n"
                + migration.path.read_text(encoding="utf-8")
                + f"\nINSERT INTO schema_migrations (version, name)"
                f" VALUES ({migration.version}, '{migration.name}');\nCOMMIT;\n"
            )
            try:
                conn.executescript(script)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise SchemaError(f"{migration.path}: {exc}") from exc
            applied.append(migration.label)
    finally:
        conn.close()
    return MigrationReport(tuple(applied), len(done), None)
