"""The dialect's expressions on real SQLite and PostgreSQL: epoch ms survive a time column both
ways, and the other differences mean the same in both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from store import Device, Store, migrate, open_store
from store.statements import StatementRunner

# 0001-01-01 .. 9999-12-31: what an API caller can put in a time field.
MS = st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def runner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store, used both through `Store` and as the `StatementRunner` its modules use."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    migrate(url, tmp_path)
    opened = open_store(url, tmp_path)
    opened.upsert_device(Device("013800000001"))
    yield opened
    opened.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(expires=st.one_of(st.none(), MS), now=MS)
@example(expires=253_402_300_799_999, now=89_854_333_559_809)  # float8 interval math: 1 ms off
def test_epoch_ms_round_trip_through_a_time_column(
    runner: Any, expires: int | None, now: int
) -> None:
    store: Store = runner
    command_id = store.enqueue_command("013800000001", 0x8300, b"x", now, expires)
    found = store.get_command(command_id)
    assert found is not None
    assert (found.created_ms, found.expires_ms, found.updated_ms) == (now, expires, now)


@pytest.mark.parametrize(
    ("a", "b", "larger"), [(None, None, None), (None, 5, 5), (7, None, 7), (3, 9, 9), (9, 3, 9)]
)
def test_greatest_ignores_a_missing_value(
    runner: StatementRunner, a: int | None, b: int | None, larger: int | None
) -> None:
    d = runner._dialect
    sql = (
        f"SELECT {d.greatest('x.a', 'x.b')}"
        " FROM (SELECT CAST(? AS bigint) AS a, CAST(? AS bigint) AS b) x"
    )
    assert runner._run("greatest", sql, (a, b)).rows == [(larger,)]


def test_a_list_parameter_and_date_arithmetic(runner: StatementRunner) -> None:
    d = runner._dialect
    rows = runner._run(
        "in list", f"SELECT terminal FROM devices WHERE {d.in_list('terminal')}",
        (d.listed(["013800000001", "nobody"]),),
    ).rows  # fmt: skip
    assert rows == [("013800000001",)]
    runner._run(
        "days",
        "CREATE TEMP TABLE due (next_due_date date, grace_days integer)"
        if d.timestamps
        else "CREATE TEMP TABLE due (next_due_date TEXT, grace_days INTEGER)",
    )
    runner._run("days", "INSERT INTO due VALUES (?, ?)", (d.day(date(2024, 2, 27)), 3))
    later = runner._run(
        "days",
        f"SELECT count(*) FROM due WHERE {d.add_days('next_due_date', 'grace_days')} = ?",
        (d.day(date(2024, 3, 1)),),
    ).rows
    assert later == [(1,)]
