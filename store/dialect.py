"""The few places where the two databases' SQL differs, so an aggregate's SQL is written once.

Shared SQL uses `?` placeholders and SQLite's column names. The schemas differ in one real way:
PostgreSQL keeps times as `timestamptz` columns (`created_at`, `last_seen`, `time`, ...) where
SQLite keeps epoch-ms integers (`created_ms`, `last_seen_ms`, `time_ms`, ...). A statement names
a time column by its SQLite name through `col` (the column), `ms` (read as epoch ms) and `at`
(a `?` parameter in epoch ms, as the column's type), so times cross as epoch ms in both.
The rest: lists as one parameter (`in_list`/`listed`), the larger of two nullable values
(`greatest`), a date plus a number of days (`add_days`), dates as parameters (`day`), JSON
parameters (`json`) and row locks (`for_update`, `skip_locked`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

# SQLite's epoch-ms column -> PostgreSQL's timestamptz column of the same meaning.
PG_TIME_COLUMNS = {
    "acknowledged_ms": "acknowledged_at",
    "assigned_ms": "assigned_at",
    "at_ms": "at",
    "created_ms": "created_at",
    "expires_ms": "expires_at",
    "last_seen_ms": "last_seen",
    "next_attempt_ms": "next_attempt_at",
    "opened_ms": "opened_at",
    "registered_ms": "registered_at",
    "resolved_ms": "resolved_at",
    "seen_ms": "seen",
    "since_ms": "since",
    "time_ms": "time",
    "updated_ms": "updated_at",
}


@dataclass(frozen=True, slots=True)
class Dialect:
    """One database's spelling of the differences; `SQLITE` and `POSTGRES` below."""

    name: str

    @property
    def timestamps(self) -> bool:
        """Whether time columns are `timestamptz` (PostgreSQL) rather than epoch ms."""
        return self.name == "postgres"

    def col(self, column: str) -> str:
        """The time column named `column` in SQLite (`alias.` prefix kept)."""
        if not self.timestamps:
            return column
        prefix, _, name = column.rpartition(".")
        mapped = PG_TIME_COLUMNS[name]
        return f"{prefix}.{mapped}" if prefix else mapped

    def ms(self, column: str) -> str:
        """The time column read as epoch ms (exact: extract gives numeric)."""
        if not self.timestamps:
            return column
        return f"floor(extract(epoch FROM {self.col(column)}) * 1000)::bigint"

    def at(self, mark: str = "?") -> str:
        """A parameter in epoch ms (None for NULL) as a value of a time column."""
        if not self.timestamps:
            return mark
        # Exact for every ms of years 1-9999: `bigint * interval` multiplies in float8 and is
        # a millisecond off past about year 2255; an interval read from text is integer.
        return f"(timestamptz 'epoch' + ({mark}::bigint || ' milliseconds')::interval)"

    def in_list(self, column: str) -> str:
        """`column` is one of a list given as one parameter (`listed`)."""
        if self.timestamps:
            return f"{column} = ANY(?)"
        return f"{column} IN (SELECT value FROM json_each(?))"

    def listed(self, values: Sequence[Any]) -> Any:
        """The parameter of `in_list`."""
        return list(values) if self.timestamps else json.dumps(list(values))

    def greatest(self, a: str, b: str) -> str:
        """The larger of two nullable values (NULL only when both are); SQLite spells each
        twice, so pass columns, not `?` parameters."""
        if self.timestamps:
            return f"greatest({a}, {b})"
        return f"max(coalesce({a}, {b}), coalesce({b}, {a}))"

    def add_days(self, day: str, days: str) -> str:
        """A date column plus an integer column of days, as a comparable date."""
        if self.timestamps:
            return f"({day} + {days})"
        return f"date({day}, '+' || {days} || ' days')"

    def day(self, value: date) -> Any:
        """A date as a parameter: the date itself, or ISO text in SQLite."""
        return value if self.timestamps else value.isoformat()

    def json(self, mark: str = "?") -> str:
        """A JSON text parameter as a value of a JSON column."""
        return f"{mark}::jsonb" if self.timestamps else mark

    @property
    def skip_locked(self) -> str:
        """Lets several claimers share a queue: each skips rows another has locked."""
        return " FOR UPDATE SKIP LOCKED" if self.timestamps else ""

    @property
    def for_update(self) -> str:
        """Locks the rows a read-modify-write reads (SQLite's write transaction already does)."""
        return " FOR UPDATE" if self.timestamps else ""


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgres")
