"""The dialect's spelling of the two databases' differences (the SQL text; the integration test
`test_store_dialect.py` runs it)."""

from __future__ import annotations

import json
from datetime import date

from store.dialect import POSTGRES, SQLITE
from store.statements import pyformat


def test_sqlite_keeps_epoch_ms_columns_and_plain_parameters() -> None:
    assert SQLITE.col("c.created_ms") == "c.created_ms"
    assert SQLITE.ms("last_seen_ms") == "last_seen_ms"
    assert SQLITE.at() == "?"
    assert SQLITE.day(date(2024, 3, 1)) == "2024-03-01"
    assert SQLITE.listed(["a", "b"]) == json.dumps(["a", "b"])
    assert SQLITE.for_update == SQLITE.skip_locked == ""


def test_postgres_names_its_timestamptz_columns_and_converts_epoch_ms() -> None:
    assert POSTGRES.col("c.created_ms") == "c.created_at"
    assert POSTGRES.col("last_seen_ms") == "last_seen"
    assert POSTGRES.col("a.time_ms") == "a.time"
    assert "extract(epoch FROM a.time)" in POSTGRES.ms("a.time_ms")
    assert pyformat(POSTGRES.at()).count("%s") == 1
    assert POSTGRES.day(date(2024, 3, 1)) == date(2024, 3, 1)
    assert POSTGRES.listed(("a", "b")) == ["a", "b"]
    assert POSTGRES.for_update == " FOR UPDATE"


def test_every_dialect_expression_is_valid_shared_sql() -> None:
    """Shared SQL holds no '%' (psycopg's placeholder is made from '?')."""
    for d in (SQLITE, POSTGRES):
        text = " ".join(
            [
                d.col("updated_ms"),
                d.ms("updated_ms"),
                d.at(),
                d.in_list("terminal"),
                d.greatest("a", "b"),
                d.add_days("next_due_date", "grace_days"),
                d.json(),
            ]
        )
        assert pyformat(text)
