"""The embedded SQLite adapter: one file in the data directory, WAL mode, PostgreSQL's meanings.

`synchronous=FULL`: the journal deletes what it drained once a write returns, so a committed
write must survive power loss, not only a process crash. INSERT OR IGNORE on the
(device, fix time) key makes rewrites no-ops. Blocking: call it from a worker thread; the
connection may be created on one thread and used on another, one at a time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from alerts.lifecycle import AlertState, StoredAlert
from alerts.model import Alert
from alerts.outbox import AlertsAdded, WebhookDelivery
from loans import CaseAction, Loan, LoanState
from organizations import Scope
from positions import COLUMNS, PositionBatch, empty_batch
from store import spot_rows, sqlite_alerts, sqlite_loans
from store.alert_rows import check_page
from store.backtest_jobs import BacktestJobRecords
from store.clock_rows import ClockCache, ClockRows, clock_rows
from store.device_identity import DeviceIdentityRecords
from store.idempotency import IdempotencyRecords
from store.interface import (
    ApiKey,
    CommandLog,
    CommandState,
    Device,
    DeviceClock,
    FenceFeature,
    LoanChange,
    LoanFilter,
    PositionPage,
    QueuedCommand,
    SchemaError,
    SpotCandidate,
    StoredFence,
    StoreError,
    WriteResult,
)
from store.loan_borrowers import LoanBorrowerRecords
from store.migrate import latest_version, migrate_sqlite
from store.orgs import OrgRecords, scope_condition
from store.presence import SessionPresenceRecords
from store.selection import (
    TRACK_PAGE_ROWS,
    keyset_pages,
    last_seen_per_device,
    newest_valid_per_device,
    read_track,
)
from store.spot_library import SpotLibraryRecords
from store.statements import RunResult
from trajectory.clock import ClockSettings, ClockState

LATEST_AHEAD_MS = ClockSettings().ahead_ms

_DEVICE_COLS = (
    "terminal, edition, auth_code, registered_ms, last_seen_ms, vehicle_id,"
    " maker_id, model, terminal_id, imei, org_id"
)
_POSITION_COLS = tuple(name if name != "device" else "device_id" for name in COLUMNS)
_COLS = ", ".join(_POSITION_COLS)
# Rows stored before device_time_ms existed hold NULL there, meaning the fix time.
_SELECT = _COLS.replace("device_time_ms", "coalesce(device_time_ms, time_ms)")
_MARKS = ", ".join("?" for _ in _POSITION_COLS)
_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in _POSITION_COLS if c != "device_id")
_COMMAND_COLS = (
    "c.id, d.terminal, c.msg_id, c.body, c.state, c.created_ms, c.expires_ms, c.attempts,"
    " c.serial, c.updated_ms, c.reply"
)


class SqliteStore(
    IdempotencyRecords,
    DeviceIdentityRecords,
    SessionPresenceRecords,
    OrgRecords,
    SpotLibraryRecords,
    BacktestJobRecords,
    LoanBorrowerRecords,
):
    """`store.interface.Store` on an SQLite file; see the module docstring."""

    def __init__(self, path: Path, *, migrate: bool = True) -> None:
        self.path = Path(path)
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
        with self._transaction(what) as conn:
            cur = conn.execute(sql, params)
            return RunResult(cur.fetchall(), cur.rowcount)

    def _run_many(self, what: str, steps: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        with self._transaction(what) as conn:
            for sql, rows in steps:
                if rows:
                    conn.executemany(sql, rows)

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

    def device_clocks(self, terminals: Sequence[str]) -> dict[str, DeviceClock]:
        ids = self._device_ids(terminals, create=False)
        rows = self._read(
            "device clocks",
            "SELECT device_id, state, offset_ms, since_ms, seen_ms FROM device_clocks"
            " WHERE device_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids.values())),),
        )
        by_id = {ids[t]: t for t in ids}
        return {
            by_id[d]: DeviceClock(ClockState(state).label, offset, since, seen)
            for d, state, offset, since, seen in rows
        }

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
        return PositionPage(batch, terminals, int(rows[-1][0]))

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

    def upsert_device(self, device: Device) -> None:
        with self._transaction("upsert device") as conn:
            conn.execute(
                "INSERT INTO devices (terminal, edition, auth_code, registered_ms, last_seen_ms,"
                " vehicle_id, maker_id, model, terminal_id, imei)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (terminal) DO UPDATE SET"
                " edition = coalesce(excluded.edition, edition),"
                " auth_code = coalesce(excluded.auth_code, auth_code),"
                " registered_ms = coalesce(excluded.registered_ms, registered_ms),"
                " last_seen_ms = max(coalesce(excluded.last_seen_ms, last_seen_ms),"
                "                    coalesce(last_seen_ms, excluded.last_seen_ms)),"
                " vehicle_id = coalesce(excluded.vehicle_id, vehicle_id),"
                # A recorded identity is kept: only reprovision_device replaces it.
                " maker_id = coalesce(maker_id, excluded.maker_id),"
                " model = coalesce(model, excluded.model),"
                " terminal_id = coalesce(terminal_id, excluded.terminal_id),"
                " imei = coalesce(imei, excluded.imei)",
                (
                    device.terminal,
                    device.edition,
                    device.auth_code,
                    device.registered_ms,
                    device.last_seen_ms,
                    device.vehicle_id,
                    device.maker_id,
                    device.model,
                    device.terminal_id,
                    device.imei,
                ),
            )

    def drop_positions_before(self, cutoff_ms: int) -> int:
        with self._transaction("drop old positions") as conn:
            return conn.execute("DELETE FROM positions WHERE time_ms < ?", (cutoff_ms,)).rowcount

    def unbind_device(self, terminal: str) -> bool:
        with self._transaction("unbind device") as conn:
            cur = conn.execute(
                "UPDATE devices SET vehicle_id = NULL WHERE terminal = ?", (terminal,)
            )
            return cur.rowcount == 1

    def _devices(self, where: str, params: Sequence[Any]) -> list[Device]:
        rows = self._read(
            "read devices",
            f"SELECT {_DEVICE_COLS} FROM devices {where} ORDER BY terminal",
            params,
        )
        return [Device(*row) for row in rows]

    def get_device(self, terminal: str) -> Device | None:
        found = self._devices("WHERE terminal = ?", (terminal,))
        return found[0] if found else None

    def list_devices(self) -> list[Device]:
        return self._devices("", ())

    def touch_devices(self, terminals: Sequence[str], seen_ms: int) -> None:
        with self._transaction("touch devices") as conn:
            conn.executemany(
                "UPDATE devices SET last_seen_ms = ? WHERE terminal = ?"
                " AND (last_seen_ms IS NULL OR last_seen_ms < ?)",
                [(seen_ms, t, seen_ms) for t in terminals],
            )

    # -- command queue -----------------------------------------------------------------------

    def enqueue_command(
        self, terminal: str, msg_id: int, body: bytes, now_ms: int, expires_ms: int | None = None
    ) -> int:
        ids = self._device_ids([terminal], create=False)
        if terminal not in ids:
            raise StoreError(f"enqueue command: unknown terminal {terminal}")
        with self._transaction("enqueue command") as conn:
            cur = conn.execute(
                "INSERT INTO command_queue (device_id, msg_id, body, created_ms, expires_ms,"
                " updated_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (ids[terminal], msg_id, body, now_ms, expires_ms, now_ms),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def commands_to_send(self, terminal: str, now_ms: int) -> list[QueuedCommand]:
        with self._transaction("commands to send") as conn:
            conn.execute(
                "UPDATE command_queue SET state = 'expired', updated_ms = ?"
                " WHERE device_id = (SELECT id FROM devices WHERE terminal = ?)"
                " AND state = 'queued' AND expires_ms <= ?",
                (now_ms, terminal, now_ms),
            )
            rows = conn.execute(
                f"SELECT {_COMMAND_COLS} FROM command_queue c JOIN devices d ON d.id = c.device_id"
                " WHERE d.terminal = ? AND c.state = 'queued' ORDER BY c.id",
                (terminal,),
            ).fetchall()
        return [_command(row) for row in rows]

    def mark_command(
        self,
        command_id: int,
        state: CommandState,
        now_ms: int,
        serial: int | None = None,
        reply: str | None = None,
    ) -> None:
        with self._transaction("mark command") as conn:
            cur = conn.execute(
                "UPDATE command_queue SET state = ?, updated_ms = ?, attempts = attempts + ?,"
                " serial = coalesce(?, serial), reply = coalesce(?, reply) WHERE id = ?",
                (
                    state.value,
                    now_ms,
                    1 if state is CommandState.SENT else 0,
                    serial,
                    reply,
                    command_id,
                ),
            )
            if cur.rowcount != 1:
                raise StoreError(f"mark command: no command {command_id}")

    def claim_command(self, command_id: int, now_ms: int) -> bool:
        with self._transaction("claim command") as conn:
            cur = conn.execute(
                "UPDATE command_queue SET state = 'sent', attempts = attempts + 1,"
                " updated_ms = ? WHERE id = ? AND state = 'queued'",
                (now_ms, command_id),
            )
            return cur.rowcount == 1

    def notify(self, channel: str, payload: str) -> None:
        """No one else to tell: an SQLite database has one process."""

    def get_command(self, command_id: int) -> QueuedCommand | None:
        rows = self._read(
            "get command",
            f"SELECT {_COMMAND_COLS} FROM command_queue c JOIN devices d ON d.id = c.device_id"
            " WHERE c.id = ?",
            (command_id,),
        )
        return _command(rows[0]) if rows else None

    # -- HTTP API: keys, fences, device pages, command log -------------------------------------

    def create_api_key(self, key: ApiKey, *, replace: bool = False) -> bool:
        # ON CONFLICT, not INSERT OR IGNORE: that would silently skip a failed CHECK too.
        on_conflict = (
            "DO UPDATE SET role = excluded.role, key_hash = excluded.key_hash,"
            " prefix = excluded.prefix, created_ms = excluded.created_ms, org_id = excluded.org_id"
            if replace
            else "DO NOTHING"
        )
        with self._transaction("create api key") as conn:
            cur = conn.execute(
                "INSERT INTO api_keys (name, role, key_hash, prefix, created_ms, org_id)"
                f" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) {on_conflict}",
                (key.name, key.role, key.key_hash, key.prefix, key.created_ms, key.org),
            )
        return cur.rowcount == 1

    def _api_keys(self, where: str, params: Sequence[Any]) -> list[ApiKey]:
        rows = self._read(
            "read api keys",
            f"SELECT name, role, key_hash, prefix, created_ms, org_id FROM api_keys {where}"
            " ORDER BY name",
            params,
        )
        return [ApiKey(*row) for row in rows]

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        found = self._api_keys("WHERE key_hash = ?", (key_hash,))
        return found[0] if found else None

    def list_api_keys(self, scope: Scope | None = None) -> list[ApiKey]:
        within, params = scope_condition(scope, "?")
        return self._api_keys("" if within is None else f"WHERE {within}", params)

    def delete_api_key(self, name: str) -> bool:
        with self._transaction("delete api key") as conn:
            cur = conn.execute("DELETE FROM api_keys WHERE name = ?", (name,))
        return cur.rowcount == 1

    @staticmethod
    def _bump_fence_version(conn: sqlite3.Connection, now_ms: int) -> int:
        conn.execute(
            "UPDATE fence_set SET version = version + 1, updated_ms = ? WHERE singleton = 1",
            (now_ms,),
        )
        return int(conn.execute("SELECT version FROM fence_set").fetchone()[0])

    def put_fences(self, fences: Sequence[FenceFeature], now_ms: int) -> int:
        with self._transaction("put fences") as conn:
            version = self._bump_fence_version(conn, now_ms)
            conn.executemany(
                "INSERT INTO fences (id, kind, feature, updated_ms, version, org_id)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind,"
                " feature = excluded.feature, updated_ms = excluded.updated_ms,"
                " version = excluded.version, org_id = excluded.org_id",
                [(f.id, f.kind, f.feature, now_ms, version, f.org) for f in fences],
            )
        return version

    def _fences(self, where: str, params: Sequence[Any]) -> list[StoredFence]:
        rows = self._read(
            "read fences",
            "SELECT id, kind, feature, updated_ms, version, org_id FROM fences"
            f" {where} ORDER BY id",
            params,
        )
        return [StoredFence(*row) for row in rows]

    def list_fences(self, scope: Scope | None = None) -> list[StoredFence]:
        within, params = scope_condition(scope, "?")
        return self._fences("" if within is None else f"WHERE {within}", params)

    def get_fence(self, fence_id: str) -> StoredFence | None:
        found = self._fences("WHERE id = ?", (fence_id,))
        return found[0] if found else None

    def delete_fence(self, fence_id: str, now_ms: int) -> int | None:
        with self._transaction("delete fence") as conn:
            if conn.execute("DELETE FROM fences WHERE id = ?", (fence_id,)).rowcount != 1:
                return None
            return self._bump_fence_version(conn, now_ms)

    def fences_version(self) -> int:
        return int(self._read("fence version", "SELECT version FROM fence_set")[0][0])

    # -- candidate risk spots (SQL in store/spot_rows.py) -----------------------------------

    def list_spot_candidates(
        self, *, status: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[SpotCandidate]:
        rows = self._read(
            "list spot candidates", *spot_rows.list_query(status, after_id, limit, "?")
        )
        return [spot_rows.candidate(row) for row in rows]

    def get_spot_candidate(self, candidate_id: int) -> SpotCandidate | None:
        rows = self._read("read spot candidate", *spot_rows.get_query(candidate_id, "?"))
        return spot_rows.candidate(rows[0]) if rows else None

    def decide_spot_candidate(
        self,
        candidate_id: int,
        *,
        accept: FenceFeature | None,
        by: str,
        note: str | None,
        now_ms: int,
    ) -> SpotCandidate:
        status = "dismissed" if accept is None else "accepted"
        fence_id = None if accept is None else accept.id
        with self._transaction("decide spot candidate") as conn:
            done = spot_rows.decide(conn, candidate_id, status, fence_id, by, note, now_ms, "?")
            if done is None:
                found = spot_rows.get_candidate(conn, candidate_id, "?")
                raise spot_rows.undecidable(candidate_id, found)
            if accept is not None:
                version = self._bump_fence_version(conn, now_ms)
                conn.execute(
                    "INSERT INTO fences (id, kind, feature, updated_ms, version)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (accept.id, accept.kind, accept.feature, now_ms, version),
                )
        return done

    def find_devices(
        self,
        *,
        vehicle_id: str | None = None,
        after: str = "",
        limit: int = 100,
        scope: Scope | None = None,
    ) -> list[Device]:
        where, params = "terminal > ?", [after]
        if vehicle_id is not None:  # its own condition so the vehicle index serves it
            where, params = "vehicle_id = ? AND terminal > ?", [vehicle_id, after]
        within, scope_params = scope_condition(scope, "?")
        if within is not None:
            where, params = f"{where} AND {within}", [*params, *scope_params]
        rows = self._read(
            "find devices",
            f"SELECT {_DEVICE_COLS} FROM devices WHERE {where} ORDER BY terminal LIMIT ?",
            [*params, limit],
        )
        return [Device(*row) for row in rows]

    def record_command(
        self, terminal: str, msg_id: int, body: bytes, state: CommandState, now_ms: int
    ) -> int:
        ids = self._device_ids([terminal], create=False)
        if terminal not in ids:
            raise StoreError(f"record command: unknown terminal {terminal}")
        with self._transaction("record command") as conn:
            cur = conn.execute(
                "INSERT INTO command_queue (device_id, msg_id, body, state, created_ms,"
                " attempts, updated_ms) VALUES (?, ?, ?, ?, ?, 1, ?)",
                (ids[terminal], msg_id, body, state.value, now_ms, now_ms),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def log_command(self, log: CommandLog) -> None:
        with self._transaction("log command") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO command_log (command_id, issued_by, request, reply, org_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (log.command_id, log.issued_by, log.request, log.reply, log.org),
            )

    def command_log(self, command_id: int) -> CommandLog | None:
        rows = self._read(
            "read command log",
            "SELECT command_id, issued_by, request, reply, org_id FROM command_log"
            " WHERE command_id = ?",
            (command_id,),
        )
        return CommandLog(*rows[0]) if rows else None

    def list_commands(self, terminal: str, limit: int) -> list[QueuedCommand]:
        rows = self._read(
            "list commands",
            f"SELECT {_COMMAND_COLS} FROM command_queue c JOIN devices d ON d.id = c.device_id"
            " WHERE d.terminal = ? ORDER BY c.id DESC LIMIT ?",
            (terminal, limit),
        )
        return [_command(row) for row in rows]

    # -- alerts and the webhook outbox (SQL in store/sqlite_alerts.py) -----------------------

    def add_alerts(
        self, alerts: Sequence[Alert], now_ms: int, webhook_urls: Sequence[str] = ()
    ) -> AlertsAdded:
        if not alerts:
            return AlertsAdded([], [])
        with self._transaction("add alerts") as conn:
            added = sqlite_alerts.add_alerts(conn, alerts, now_ms, webhook_urls)
            return spot_rows.add_candidates(conn, added, now_ms, "?")

    def list_alerts(
        self,
        *,
        alert_type: str | None = None,
        since_ms: int | None = None,
        vehicle_id: str | None = None,
        state: AlertState | None = None,
        after_id: int = 0,
        limit: int = 100,
        scope: Scope | None = None,
    ) -> list[StoredAlert]:
        check_page(after_id, limit)
        try:
            return sqlite_alerts.list_alerts(
                self._conn, alert_type, since_ms, vehicle_id, state, after_id, limit, scope
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: list alerts: {exc}") from exc

    def get_alert(self, alert_id: int) -> StoredAlert | None:
        try:
            return sqlite_alerts.get_alert(self._conn, alert_id)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: get alert: {exc}") from exc

    def transition_alert(
        self, alert_id: int, state: AlertState, actor: str, note: str | None, now_ms: int
    ) -> StoredAlert:
        with self._transaction("transition alert") as conn:
            return sqlite_alerts.transition_alert(conn, alert_id, state, actor, note, now_ms)

    def assign_alert(
        self, alert_id: int, assignee: str | None, actor: str, note: str | None, now_ms: int
    ) -> StoredAlert:
        with self._transaction("assign alert") as conn:
            return sqlite_alerts.assign_alert(conn, alert_id, assignee, actor, note, now_ms)

    def due_webhooks(
        self, now_ms: int, limit: int, lease_ms: int = 60_000
    ) -> list[WebhookDelivery]:
        with self._transaction("claim webhooks") as conn:
            return sqlite_alerts.claim_webhooks(conn, now_ms, limit, lease_ms)

    def finish_webhook_attempt(
        self, delivery_id: int, now_ms: int, *, error: str | None, retry_at_ms: int | None
    ) -> None:
        with self._transaction("finish webhook attempt") as conn:
            found = sqlite_alerts.finish_webhook_attempt(
                conn, delivery_id, now_ms, error, retry_at_ms
            )
        if not found:
            raise StoreError(f"finish webhook attempt: no delivery {delivery_id}")

    def list_webhooks(self, alert_id: int | None = None) -> list[WebhookDelivery]:
        try:
            return sqlite_alerts.list_webhooks(self._conn, alert_id)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: list webhooks: {exc}") from exc

    # -- loans and their case log (SQL in store/sqlite_loans.py) -----------------------------

    def create_loan(self, loan: Loan) -> Loan:
        with self._transaction("create loan") as conn:
            return sqlite_loans.create_loan(conn, loan)

    def get_loan(self, loan_no: str) -> Loan | None:
        try:
            return sqlite_loans.get_loan(self._conn, loan_no)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: get loan: {exc}") from exc

    def find_loans(self, where: LoanFilter, *, after_id: int = 0, limit: int = 100) -> list[Loan]:
        check_page(after_id, limit)
        try:
            return sqlite_loans.find_loans(self._conn, where, after_id, limit)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: find loans: {exc}") from exc

    def update_loan(self, loan_no: str, change: LoanChange) -> tuple[Loan, CaseAction]:
        with self._transaction("update loan") as conn:
            return sqlite_loans.update_loan(conn, loan_no, change)

    def loan_actions(
        self, loan_no: str, *, after_id: int = 0, limit: int = 100
    ) -> list[CaseAction]:
        check_page(after_id, limit)
        try:
            return sqlite_loans.loan_actions(self._conn, loan_no, after_id, limit)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: loan actions: {exc}") from exc

    def unmonitored_vehicle_ids(self) -> set[str]:
        try:
            return sqlite_loans.unmonitored_vehicle_ids(self._conn)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: unmonitored vehicles: {exc}") from exc

    # -- the sweep's past-due loans and the cars' loan states --------------------------------

    def past_due_loans(self, today: date, *, after_id: int = 0, limit: int = 100) -> list[Loan]:
        check_page(after_id, limit)
        try:
            return sqlite_loans.past_due_loans(self._conn, today, after_id, limit)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: past-due loans: {exc}") from exc

    def loan_states(self, vehicle_ids: Sequence[str] | None = None) -> dict[str, LoanState]:
        try:
            return sqlite_loans.loan_states(self._conn, vehicle_ids)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: loan states: {exc}") from exc


def _rows(columns: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Rows as plain Python values (`tolist` converts a whole column at C speed)."""
    return zip(*(columns[name].tolist() for name in COLUMNS), strict=True)


def _batch(rows: list[Any]) -> PositionBatch:
    """A batch from rows in `COLUMNS` order."""
    if not rows:
        return empty_batch()
    return PositionBatch.from_columns(dict(zip(COLUMNS, zip(*rows, strict=True), strict=True)))


def _command(row: tuple[Any, ...]) -> QueuedCommand:
    cid, terminal, msg_id, body, state, created, expires, attempts, serial, updated, reply = row
    return QueuedCommand(
        id=cid,
        terminal=terminal,
        msg_id=msg_id,
        body=bytes(body),
        state=CommandState(state),
        created_ms=created,
        expires_ms=expires,
        attempts=attempts,
        serial=serial,
        updated_ms=updated,
        reply=reply,
    )
