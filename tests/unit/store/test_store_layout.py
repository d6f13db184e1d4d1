"""The store's layout bar: no store method is written twice, once per database.

Every public method of `Store` lives in one aggregate module whose SQL is written once
(`store.statements`, `store.dialect`); the two adapter classes keep only what is truly one
database's own, listed below with the reason. A method added to both adapters' own modules
fails here until it moves to an aggregate module (or is listed, with its reason).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from store.interface import Store
from store.postgres import PostgresStore
from store.sqlite import SqliteStore

STORE_DIR = Path(__file__).resolve().parents[3] / "store"

# Public methods each adapter defines itself, and why they cannot be written once.
DATABASE_OWN = {
    "close": "connection handling: one SQLite connection; PostgreSQL's plus a split write's",
    "notify": "LISTEN/NOTIFY to other processes exists only in PostgreSQL (SQLite: a no-op)",
    "write_positions": "the gateway's hot path: binary COPY, partitions and a split write on "
    "PostgreSQL, one executemany transaction on SQLite",
    "latest": "position read path: binary COPY parsed by numpy on PostgreSQL",
    "track": "position read path: binary COPY pages on PostgreSQL",
    "positions_since": "position read path: binary COPY of the seq cursor on PostgreSQL",
    "positions_between": "position read path: binary COPY of a time window on PostgreSQL",
    "last_position_seq": "PostgreSQL reads the commit-ordered counter row, SQLite max(seq)",
    "drop_positions_before": "retention: PostgreSQL drops day partitions or chunks, SQLite "
    "deletes rows",
}
# The only store modules that may speak to a database driver: the adapters (and what they use
# alone), the migrations, PostgreSQL's notice listener and its advisory locks (the detectors'
# partition ownership: a session-held lock has no SQLite counterpart, one process runs there).
DRIVER_MODULES = {"postgres.py", "sqlite.py", "migrate.py", "notices.py", "partition_locks.py"}


def own_public_methods(cls: type) -> set[str]:
    """Public callables defined in the class body itself (not inherited from a mixin)."""
    return {
        name for name, value in vars(cls).items() if not name.startswith("_") and callable(value)
    }


def written_twice(a: type, b: type) -> set[str]:
    return own_public_methods(a) & own_public_methods(b)


def test_no_store_method_is_written_once_per_database() -> None:
    twice = written_twice(PostgresStore, SqliteStore) - DATABASE_OWN.keys()
    assert not twice, f"move these to an aggregate module with SQL written once: {sorted(twice)}"


def test_every_listed_exception_is_still_defined_by_both_adapters() -> None:
    """The list shrinks when an entry moves out, so it never excuses more than it says."""
    assert set(DATABASE_OWN) <= written_twice(PostgresStore, SqliteStore)


def test_the_check_catches_a_method_written_in_both() -> None:
    class A:
        def get_thing(self) -> int:
            return 1

        def _helper(self) -> None: ...

    class B:
        def get_thing(self) -> int:
            return 2

        def _helper(self) -> None: ...

    assert written_twice(A, B) == {"get_thing"}


@pytest.mark.parametrize("adapter", [PostgresStore, SqliteStore])
def test_each_store_method_comes_from_one_aggregate_module_or_the_list(adapter: type) -> None:
    protocol = {name for name in vars(Store) if not name.startswith("_")}
    for name in sorted(protocol):
        assert hasattr(adapter, name), f"{adapter.__name__} lacks {name}"
        owner = next(k for k in adapter.__mro__ if name in vars(k))
        if owner is adapter:
            assert name in DATABASE_OWN, f"{adapter.__name__}.{name} is not in DATABASE_OWN"
        else:
            assert owner.__module__.startswith("store."), (name, owner)
            assert inspect.getmodule(owner) is not inspect.getmodule(adapter)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_aggregate_modules_do_not_speak_to_a_driver() -> None:
    """SQL written once runs through the adapter's `_run`: a module of its own that imports
    psycopg or sqlite3 would be SQL written for one database."""
    offenders = [
        path.relative_to(STORE_DIR).as_posix()
        for path in sorted(STORE_DIR.rglob("*.py"))
        if path.name not in DRIVER_MODULES and _imports(path) & {"psycopg", "sqlite3"}
    ]
    assert not offenders
