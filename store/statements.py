"""SQL written once for both databases: the one thing an aggregate's module needs of an adapter.

An aggregate module (such as `store.idempotency`) is a mixin whose methods write their SQL once,
with `?` placeholders and types both databases share (integers, text, bytes), and run it through
`_run`. Each adapter implements `_run` in a few lines: SQLite in its own transaction, PostgreSQL
on its autocommit connection with `?` turned into psycopg's `%s`. Where the two schemas differ
(times as `timestamptz` or epoch ms, list parameters, ...) the statement asks the adapter's
`_dialect` (`store.dialect`). Several statements that must commit together run inside
`_atomic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from store.dialect import Dialect


@dataclass(frozen=True, slots=True)
class RunResult:
    """The rows a statement returned (empty for none) and the rows it changed."""

    rows: list[tuple[Any, ...]]
    rowcount: int


class StatementRunner(Protocol):
    _dialect: Dialect

    def _run(self, what: str, sql: str, params: Sequence[Any] = ()) -> RunResult:
        """Runs one statement in its own transaction; raises the store's errors, naming `what`."""
        ...

    def _run_many(self, what: str, steps: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """Runs each statement once per row of its parameters, all in one transaction."""
        ...

    def _run_each(
        self, what: str, sql: str, rows: Sequence[Sequence[Any]]
    ) -> list[list[tuple[Any, ...]]]:
        """Runs the statement once per row of parameters in one transaction (pipelined where the
        database can); returns what each run returned, in order."""
        ...

    def _atomic(self, what: str) -> AbstractContextManager[None]:
        """A transaction every statement and store call inside it joins."""
        ...


@lru_cache(maxsize=256)
def pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (the shared SQL holds no `%` and no `?` in text)."""
    if "%" in sql:
        raise ValueError("shared SQL must not contain '%'")
    return sql.replace("?", "%s")
