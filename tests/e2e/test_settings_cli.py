"""A bad setting stops the installed command before it starts anything: exit 2, one line.

`LIENWATCH_ROLES=gateway` used to be dropped in silence and start every part; a misspelt
variable left its default in force. Both now refuse to start, and so does a split of the roles
on SQLite (the processes of a split deployment share a PostgreSQL database).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LIENWATCH = Path(sys.executable).with_name("lienwatch")


def run(command: str, tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LIENWATCH_")}
    env.update(LIENWATCH_DATA_DIR=str(tmp_path / "data"), **variables)
    return subprocess.run(
        [str(LIENWATCH), command], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_misspelt_variable_exits_2_naming_it_and_the_right_one(
    command: str, tmp_path: Path
) -> None:
    done = run(command, tmp_path, LIENWATCH_AUTO_REGISTR="true")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "lienwatch: unknown environment variable: LIENWATCH_AUTO_REGISTR"
        " (did you mean LIENWATCH_AUTO_REGISTER?)"
    ]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("roles", ["gateway", "api", "gateway,detector"])
def test_serve_refuses_a_split_on_sqlite(tmp_path: Path, roles: str) -> None:
    done = run("serve", tmp_path, LIENWATCH_ROLES=roles)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"lienwatch: roles {roles}: running only some roles needs a shared PostgreSQL"
        " database (set LIENWATCH_DATABASE_URL); with SQLite run all three in one process"
    ]
    assert not (tmp_path / "data").exists()


def test_an_unknown_key_in_the_config_file_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "lienwatch.toml"
    config.write_text("jt808_idle_timeout = 60\n")
    done = run("migrate", tmp_path, LIENWATCH_CONFIG=str(config))
    assert done.returncode == 2
    assert "unknown setting: jt808_idle_timeout (did you mean jt808_idle_timeout_s?)" in done.stderr


def test_reserved_variables_do_not_stop_a_command(tmp_path: Path) -> None:
    done = run("migrate", tmp_path, LIENWATCH_TEST_ANYTHING="1", LIENWATCH_BENCH_ANYTHING="2")
    assert done.returncode == 0, done.stderr
    assert "applied" in done.stdout
