"""The embedded SQLite adapter: one file in the data directory, WAL mode, PostgreSQL's meanings.

`synchronous=FULL`: the journal deletes what it drained once a write returns, so a committed
write must survive power loss, not only a process crash. INSERT OR IGNORE on the
(device, fix time) key makes rewrites no-ops. Blocking: call it from a worker thread; the
connection may be created on one thread and used on another, one at a time.

This class holds only what is this database's own: connection handling and the statement
runner (`store.statements`), the position write and read paths, retention and `notify`. Every
other store method comes from an aggregate module whose SQL is written once for both databases
(the mixins below; docs/architecture.md, "The store's layout").
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from positions import COLUMNS, PositionBatch, empty_batch
from store.clock_rows import ClockCache
from store.dialect import SQLITE
from store.interface import (
    PositionPage,
    SchemaError,
    StoreError,
    WriteResult,
)
from store.migrate import latest_version, migrate_sqlite
from store.records import SharedRecords
from store.selection import (
    TRACK_PAGE_ROWS,
    keyset_pages,
    last_seen_per_device,
    newest_valid_per_device,
    read_track,
)
from store.statements import RunResult
from trajectory.clock import ClockSettings
from trajectory.clock_rows import ClockRows, clock_rows

LATEST_AHEAD_MS = ClockSettings().ahead_ms

_POSITION_COLS = tuple(name if name != "device" else "device_id" for name in COLUMNS)
_COLS = ", ".join(_POSITION_COLS)
# Rows stored before device_time_ms existed hold NULL there, meaning the fix time.
_SELECT = _COLS.replace("device_time_ms", "coalesce(device_time_ms, time_ms)")
_MARKS = ", ".join("?" for _ in _POSITION_COLS)
_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in _POSITION_COLS if c != "device_id")


class SqliteStore(SharedRecords):
    """`store.interface.Store` on an SQLite file; see the module docstring."""

    def __init__(self, path: Path, *, migrate: bool = True) -> None:
        self.path = Path(path)
        self._dialect = SQLITE
        if migrate:
            migrate_sqlite(self.path)
        elif not self.path.exists():
            raise SchemaError(f"{self.path}: no database: run `lienwatch migrate`")
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        try:
            row = self._conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is None or row[0] is None or row[0] < latest_version("sqlite"):
            self._conn.close()
            raise SchemaError(f"{self.path}: schema missing or old: run `lienwatch migrate`")
        self._ids: dict[str, int] = {}
        self._terminals: dict[int, str] = {}
        self._clock_cache = ClockCache()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """A write transaction; inside another one (`_atomic`), a savepoint of it."""
        conn = self._conn
        nested = conn.in_transaction
        begin, commit, undo = (
            ("SAVEPOINT inner", "RELEASE inner", ("ROLLBACK TO inner", "RELEASE inner"))
            if nested
            else ("BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",))
        )
        try:
            conn.execute(begin)
            try:
                yield conn
            except BaseException:
                for statement in undo:
                    conn.execute(statement)
                raise
            conn.execute(commit)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {what}: {exc}") from exc

    @contextmanager
    def _atomic(self, what: str) -> Iterator[None]:
        """Every store call inside it commits together, or none does."""
        with self._transaction(what):
            yield

    def _run(self, what: str, sql: str, params: Sequence[Any] = ()) -> RunResult:
        if not self._conn.in_transaction and sql.lstrip().startswith("SELECT"):
            rows = self._read(what, sql, params)  # a read needs no write lock
            return RunResult(rows, -1)
        with self._transaction(what) as conn:
            cur = conn.execute(sql, params)
            return RunResult(cur.fetchall(), cur.rowcount)

    def _run_many(self, what: str, steps: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        with self._transaction(what) as conn:
            for sql, rows in steps:
                if rows:
                    conn.executemany(sql, rows)

    def _run_each(
        self, what: str, sql: str, rows: Sequence[Sequence[Any]]
    ) -> list[list[tuple[Any, ...]]]:
        with self._transaction(what) as conn:
            return [conn.execute(sql, row).fetchall() for row in rows]

    def _read(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {what}: {exc}") from exc

    # -- device keys -------------------------------------------------------------------------

    def _device_ids(self, terminals: Sequence[str], create: bool) -> dict[str, int]:
        missing = [t for t in dict.fromkeys(terminals) if t not in self._ids]
        if missing:
            if create:
                with self._transaction("create devices") as conn:
                    conn.executemany(
                        "INSERT OR IGNORE INTO devices (terminal) VALUES (?)",
                        [(t,) for t in missing],
                    )
            rows = self._read(
                "read devices",
                "SELECT terminal, id FROM devices"
                " WHERE terminal IN (SELECT value FROM json_each(?))",
                (json.dumps(missing),),
            )
            for terminal, device_id in rows:
                self._ids[terminal] = device_id
                self._terminals[device_id] = terminal
        return {t: self._ids[t] for t in terminals if t in self._ids}

    def _terminal_of(self, device_id: int) -> str:
        if device_id not in self._terminals:
            rows = self._read(
                "read device", "SELECT terminal FROM devices WHERE id = ?", (device_id,)
            )
            self._terminals[device_id] = rows[0][0]
            self._ids[rows[0][0]] = device_id
        return self._terminals[device_id]

    # -- positions ---------------------------------------------------------------------------

    def write_positions(self, batch: PositionBatch, terminals: Sequence[str]) -> WriteResult:
        if not len(batch):
            return WriteResult(0, 0)
        ids = self._device_ids(terminals, create=True)
        keys = np.fromiter((ids[t] for t in terminals), dtype=np.int64, count=len(terminals))
        columns = batch.columns()
        columns["device"] = keys[batch.device]
        newest = newest_valid_per_device(batch)
        seen_device, seen_ms = last_seen_per_device(batch)
        clocks = self._clock_cache.changed(clock_rows(batch).keyed(keys))
        with self._transaction("write positions") as conn:
            before = conn.total_changes
            conn.executemany(
                f"INSERT OR IGNORE INTO positions ({_COLS}) VALUES ({_MARKS})",
                _rows(columns),
            )
            inserted = conn.total_changes - before
            conn.executemany(
                f"INSERT INTO latest_positions ({_COLS}) VALUES ({_MARKS})"
                f" ON CONFLICT (device_id) DO UPDATE SET {_UPDATES}"
                " WHERE excluded.time_ms > latest_positions.time_ms"
                f" OR latest_positions.time_ms > excluded.recv_ms + {LATEST_AHEAD_MS}",
                _rows({name: column[newest] for name, column in columns.items()}),
            )
            conn.executemany(
                "UPDATE devices SET last_seen_ms = ? WHERE id = ?"
                " AND (last_seen_ms IS NULL OR last_seen_ms < ?)",
                [
                    (ms, int(keys[d]), ms)
                    for d, ms in zip(seen_device.tolist(), seen_ms.tolist(), strict=True)
                ],
            )
            self._write_clocks(conn, clocks)
        self._clock_cache.remember(clocks)
        return WriteResult(len(batch), inserted)

    @staticmethod
    def _write_clocks(conn: sqlite3.Connection, clocks: ClockRows) -> None:
        rows = list(zip(*clocks.lists(), strict=True))
        conn.executemany(
            "UPDATE device_clocks SET state = ?2, offset_ms = ?3, seen_ms = ?5,"
            " since_ms = CASE WHEN state = ?2 AND ?6 THEN since_ms ELSE ?4 END"
            " WHERE device_id = ?1 AND seen_ms <= ?5 AND (state <> ?2 OR offset_ms <> ?3)",
            rows,
        )
        conn.executemany(
            "INSERT INTO device_clocks (device_id, state, offset_ms, since_ms, seen_ms)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id) DO NOTHING",
            [row[:5] for row in rows],
        )

    def latest(self, terminals: Sequence[str]) -> PositionBatch:
        ids = self._device_ids(terminals, create=False)
        rows = self._read(
            "latest positions",
            f"SELECT {_SELECT} FROM latest_positions"
            " WHERE device_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids.values())),),
        )
        slot = {ids[t]: i for i, t in enumerate(terminals) if t in ids}
        batch = _batch(rows)
        device = np.fromiter((slot[int(d)] for d in batch.device), np.int32, count=len(batch))
        return PositionBatch(**{**batch.columns(), "device": device}).sorted()

    def track(
        self,
        terminal: str,
        from_ms: int,
        to_ms: int,
        *,
        max_points: int | None = None,
        interval_ms: int | None = None,
        limit: int | None = None,
    ) -> PositionBatch:
        ids = self._device_ids([terminal], create=False)
        if terminal not in ids:
            return empty_batch()
        device_id = ids[terminal]

        def page(start: int, rows: int) -> PositionBatch:
            return _batch(
                self._read(
                    "track",
                    f"SELECT 0, {_SELECT.removeprefix('device_id, ')} FROM positions"
                    " WHERE device_id = ? AND time_ms >= ? AND time_ms < ? ORDER BY time_ms"
                    " LIMIT ?",
                    (device_id, start, to_ms, rows),
                )
            )

        def pages() -> Iterator[PositionBatch]:
            return keyset_pages(from_ms, to_ms, TRACK_PAGE_ROWS, page)

        return read_track(pages, max_points=max_points, interval_ms=interval_ms, limit=limit)

    def last_position_seq(self) -> int:
        rows = self._read("last position seq", "SELECT coalesce(max(seq), 0) FROM positions")
        return int(rows[0][0])

    def positions_since(self, cursor: int, limit: int) -> PositionPage:
        rows = self._read(
            "positions since cursor",
            f"SELECT seq, {_SELECT} FROM positions WHERE seq > ? ORDER BY seq LIMIT ?",
            (cursor, limit),
        )
        if not rows:
            return PositionPage(empty_batch(), [], cursor)
        batch = _batch([row[1:] for row in rows])
        unique, local = np.unique(batch.device, return_inverse=True)
        terminals = [self._terminal_of(int(d)) for d in unique]
        batch = PositionBatch(**{**batch.columns(), "device": local.astype(np.int32)})
        seq = np.fromiter((row[0] for row in rows), np.int64, len(rows))
        return PositionPage(batch, terminals, int(rows[-1][0]), seq)

    def positions_between(self, from_ms: int, to_ms: int) -> PositionPage:
        # Through the (device_id, time_ms) index: one range per device, already grouped.
        rows = self._read(
            "positions between times",
            f"SELECT {_SELECT} FROM positions WHERE device_id IN (SELECT id FROM devices)"
            " AND time_ms >= ? AND time_ms < ? ORDER BY device_id, time_ms",
            (from_ms, to_ms),
        )
        if not rows:
            return PositionPage(empty_batch(), [], 0)
        batch = _batch(rows)
        unique, local = np.unique(batch.device, return_inverse=True)
        terminals = [self._terminal_of(int(d)) for d in unique]
        return PositionPage(
            PositionBatch(**{**batch.columns(), "device": local.astype(np.int32)}), terminals, 0
        )

    # -- devices -----------------------------------------------------------------------------

    def drop_positions_before(self, cutoff_ms: int) -> int:
        with self._transaction("drop old positions") as conn:
            return conn.execute("DELETE FROM positions WHERE time_ms < ?", (cutoff_ms,)).rowcount

    # -- command queue -----------------------------------------------------------------------

    def notify(self, channel: str, payload: str) -> None:
        """No one else to tell: an SQLite database has one process."""

    # -- HTTP API: keys, fences, device pages, command log -------------------------------------

    # -- candidate risk spots (SQL in store/spot_rows.py) -----------------------------------


def _rows(columns: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Rows as plain Python values (`tolist` converts a whole column at C speed)."""
    return zip(*(columns[name].tolist() for name in COLUMNS), strict=True)


def _batch(rows: list[Any]) -> PositionBatch:
    """A batch from rows in `COLUMNS` order."""
    if not rows:
        return empty_batch()
    return PositionBatch.from_columns(dict(zip(COLUMNS, zip(*rows, strict=True), strict=True)))
