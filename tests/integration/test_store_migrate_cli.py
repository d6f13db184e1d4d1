"""`lienwatch migrate` through the console app: both databases, idempotent, clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lienwatch.cli import app


def run(env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["migrate"], env=env)
    return result.exit_code, result.output


def test_migrate_creates_the_sqlite_schema_in_the_data_dir_then_finds_it_current(
    tmp_path: Path,
) -> None:
    env = {"LIENWATCH_DATA_DIR": str(tmp_path), "LIENWATCH_DATABASE_URL": ""}
    assert run(env) == (0, f"SQLite {tmp_path / 'lienwatch.sqlite3'}: applied 0001_core\n")
    code, out = run(env)
    assert (code, out.endswith("up to date (1 migrations)\n")) == (0, True)


@pytest.mark.db
def test_migrate_upgrades_postgresql_once(pg_url: str, tmp_path: Path) -> None:
    env = {"LIENWATCH_DATA_DIR": str(tmp_path), "LIENWATCH_DATABASE_URL": pg_url}
    code, out = run(env)
    assert code == 0
    assert "plain layout" in out
    assert "0003_daily_distance" in out
    assert run(env)[1] == "PostgreSQL (plain layout): up to date (3 migrations)\n"


def test_migrate_rejects_a_url_that_is_not_postgresql_as_bad_usage(tmp_path: Path) -> None:
    code, _ = run({"LIENWATCH_DATA_DIR": str(tmp_path), "LIENWATCH_DATABASE_URL": "mysql://x"})
    assert code == 2


def test_migrate_reports_an_unreachable_server_as_a_runtime_failure(tmp_path: Path) -> None:
    env = {
        "LIENWATCH_DATA_DIR": str(tmp_path),
        "LIENWATCH_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
    }
    assert run(env)[0] == 1
