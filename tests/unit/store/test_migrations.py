"""Migration files: ordering, variant choice, and the SQLite path end to end."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.interface import SchemaError
from store.migrate import load_migrations, migrate_sqlite


def test_postgres_migrations_come_in_order_with_one_variant_per_step() -> None:
    plain = [m.label for m in load_migrations("postgres", "plain")]
    timescale = [m.label for m in load_migrations("postgres", "timescale")]
    assert plain[:4] == [
        "0001_core",
        "0002_positions.plain",
        "0003_daily_distance",
        "0004_write_path",
    ]
    assert plain == sorted(plain)
    # The layouts differ at the positions step and at those redefining the daily activity view
    # (a plain view on one, a continuous aggregate on the other); every other is shared.
    assert [p.removesuffix(".plain") for p in plain] == [
        t.removesuffix(".timescale") for t in timescale
    ]
    assert {p for p in plain if p.endswith(".plain")} == {
        "0002_positions.plain",
        "0011_valid_flags.plain",
        "0017_daily_realtime.plain",
    }
    assert "0002_positions.timescale" in timescale
    with pytest.raises(SchemaError, match="no single"):
        load_migrations("postgres", None)


def test_sqlite_migration_creates_the_schema_once_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "db.sqlite3"
    assert migrate_sqlite(path).applied == tuple(m.label for m in load_migrations("sqlite"))
    assert migrate_sqlite(path).applied == ()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"devices", "positions", "latest_positions", "command_queue"} <= tables
    conn.close()


def test_timescaledb_counts_as_loaded_only_when_preloaded() -> None:
    """Installed but not preloaded, `CREATE EXTENSION` would end the connection: not tried."""
    from store.migrate import timescale_preloaded

    assert timescale_preloaded("timescaledb")
    assert timescale_preloaded("pg_stat_statements, timescaledb")
    assert timescale_preloaded('"timescaledb",auto_explain')
    assert not timescale_preloaded("")
    assert not timescale_preloaded("pg_stat_statements")
    assert not timescale_preloaded("timescaledb_toolkit")


def test_the_daily_views_reject_the_flags_positions_reject() -> None:
    """The views' "valid" is PositionBatch.valid()'s: on each layout, the last migration that
    defines a daily view uses NOT_VALID; TimescaleDB's aggregate reads real-time."""
    import re

    from positions.batch import NOT_VALID
    from store.migrate import PLAIN, TIMESCALE, load_migrations

    for layout in (PLAIN, TIMESCALE):
        latest: dict[str, str] = {}
        for migration in load_migrations("postgres", layout):
            text = migration.path.read_text(encoding="utf-8")
            for found in re.finditer(r"CREATE (?:OR REPLACE )?(?:MATERIALIZED )?VIEW (\w+)", text):
                latest[found[1]] = text[found.end() :].split(";", 1)[0]
        for name in ("device_daily_activity", "device_daily_distance"):
            assert f"flags & {int(NOT_VALID)} = 0" in latest[name], (layout, name)
        if layout == TIMESCALE:
            assert "timescaledb.materialized_only = false" in latest["device_daily_activity"]
