"""`lienwatch migrate` through the console app: both databases, idempotent, clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lienwatch.cli import app
from store.migrate import PLAIN, TIMESCALE, load_migrations


def run(env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["migrate"], env=env)
    return result.exit_code, result.output


def test_migrate_creates_the_sqlite_schema_in_the_data_dir_then_finds_it_current(
    tmp_path: Path,
) -> None:
    env = {"LIENWATCH_DATA_DIR": str(tmp_path), "LIENWATCH_DATABASE_URL": ""}
    labels = ", ".join(m.label for m in load_migrations("sqlite"))
    assert run(env) == (0, f"SQLite {tmp_path / 'lienwatch.sqlite3'}: applied {labels}\n")
    code, out = run(env)
    count = len(load_migrations("sqlite"))
    assert (code, out.endswith(f"up to date ({count} migrations)\n")) == (0, True)


@pytest.mark.db
def test_migrate_upgrades_postgresql_once(pg_url: str, tmp_path: Path) -> None:
    env = {"LIENWATCH_DATA_DIR": str(tmp_path), "LIENWATCH_DATABASE_URL": pg_url}
    code, out = run(env)
    assert code == 0
    # The plain layout here; TimescaleDB's where the server loads the extension.
    layout = TIMESCALE if "timescale layout" in out else PLAIN
    assert f"{layout} layout" in out
    migrations = load_migrations("postgres", layout)
    assert all(m.label in out for m in migrations), out
    count = len(migrations)
    assert run(env)[1] == f"PostgreSQL ({layout} layout): up to date ({count} migrations)\n"


def test_migrate_rejects_a_url_that_is_not_postgresql_as_bad_usage(tmp_path: Path) -> None:
    code, _ = run({"LIENWATCH_DATA_DIR": str(tmp_path), "LIENWATCH_DATABASE_URL": "mysql://x"})
    assert code == 2


def test_migrate_reports_an_unreachable_server_as_a_runtime_failure(tmp_path: Path) -> None:
    env = {
        "LIENWATCH_DATA_DIR": str(tmp_path),
        "LIENWATCH_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
    }
    assert run(env)[0] == 1
