"""The PostgreSQL/TimescaleDB adapter (psycopg 3, blocking).

Writes, in one transaction: first an optimistic binary COPY straight into `positions` inside a
savepoint; when a row is already stored (a journal replay, a device re-sending a report) COPY
fails on the key and the batch goes the idempotent way instead: COPY into a per-connection
temporary staging table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING (COPY alone cannot
skip rows). `lienwatch bench store` measures both ways; duplicates are rare in steady state.
Each write takes its block of store sequence numbers (`seq`, the cursor of `positions_since`)
from the `position_cursor` row, whose lock it holds until commit: numbers follow commit order.
A large write is split by device over two connections so that two server processes insert at
once: the lead part, on a helper connection, takes the lower numbers and commits just before the
main part (which holds the counter lock), so commit order still follows the numbers; a device's
rows all go to one part, so the two never wait on each other's keys. A failure of either part
fails the write; the part already committed is absorbed by the idempotent retry.
The latest-position upsert and the last-seen update then run from the batch's newest row per
device (numpy, `selection`), a small COPY of its own.
Reads of many rows (tracks, cursor pages) come back as binary COPY too, parsed by numpy
(`pg_copy`).

A lost connection surfaces as `StoreUnavailableError` and the next call reconnects, so the
journal drain simply retries. Blocking: call it from a worker thread, never the event loop.

This class holds only what is this database's own: connection handling and the statement
runner (`store.statements`), the position write and read paths, retention and `notify`. Every
other store method comes from an aggregate module whose SQL is written once for both databases
(the mixins below; docs/architecture.md, "The store's layout").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from positions import PositionBatch, empty_batch
from store import pg_copy
from store.clock_rows import ClockCache
from store.dialect import POSTGRES
from store.interface import (
    PositionPage,
    SchemaError,
    StoreError,
    StoreUnavailableError,
    WriteResult,
)
from store.migrate import PLAIN, latest_version
from store.records import SharedRecords
from store.selection import (
    TRACK_PAGE_ROWS,
    keyset_pages,
    last_seen_per_device,
    newest_valid_per_device,
    read_track,
)
from store.statements import RunResult, pyformat
from trajectory.clock import ClockSettings
from trajectory.clock_rows import clock_rows

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_MS = 86_400_000
# Fixes dated outside [receive day - this, receive day + 1] go to the outliers partition rather
# than each creating a partition of its own (a device with a broken clock could make thousands).
MAX_BACKFILL_DAYS = 400
_COLS = pg_copy.COLUMN_LIST
_SELECT = pg_copy.SELECT_LIST
LATEST_AHEAD_MS = ClockSettings().ahead_ms

_STAGING_COLUMNS = """(
    device_id integer NOT NULL, fix_time timestamptz NOT NULL, recv_time timestamptz NOT NULL,
    device_time timestamptz NOT NULL, lon double precision NOT NULL,
    lat double precision NOT NULL, speed_kmh real NOT NULL,
    course smallint NOT NULL, altitude_m integer NOT NULL, alarm bigint NOT NULL,
    status bigint NOT NULL, flags integer NOT NULL
) ON COMMIT DELETE ROWS"""
_STAGING = [
    f"CREATE TEMP TABLE position_staging {_STAGING_COLUMNS}",
    "ALTER TABLE position_staging ADD COLUMN seq bigint NOT NULL",
    f"CREATE TEMP TABLE latest_staging {_STAGING_COLUMNS}",
]
COPY_POSITIONS = f"COPY positions (seq, {_COLS}) FROM STDIN (FORMAT BINARY)"
_COPY_STAGING = f"COPY position_staging (seq, {_COLS}) FROM STDIN (FORMAT BINARY)"
_COPY_LATEST = f"COPY latest_staging ({_COLS}) FROM STDIN (FORMAT BINARY)"
_INSERT = f"""
INSERT INTO positions (seq, {_COLS}) SELECT seq, {_COLS} FROM position_staging
ON CONFLICT DO NOTHING
"""
# The block [returned, returned + n) of store sequence numbers; the row stays locked until commit.
RESERVE_SEQ = "UPDATE position_cursor SET next_seq = next_seq + %s RETURNING next_seq - %s"
# latest_staging holds at most one row per device: the batch's newest valid fix. It replaces a
# stored one that is older, or one dated ahead of this row's receive time (a future fix stored
# before the clock model flagged such fixes): a fix from the future never stays "latest".
_UPSERT_LATEST = f"""
INSERT INTO latest_positions AS l ({_COLS}) SELECT {_COLS} FROM latest_staging
ON CONFLICT (device_id) DO UPDATE SET
    fix_time = EXCLUDED.fix_time, recv_time = EXCLUDED.recv_time,
    device_time = EXCLUDED.device_time, lon = EXCLUDED.lon,
    lat = EXCLUDED.lat, speed_kmh = EXCLUDED.speed_kmh, course = EXCLUDED.course,
    altitude_m = EXCLUDED.altitude_m, alarm = EXCLUDED.alarm, status = EXCLUDED.status,
    flags = EXCLUDED.flags
WHERE l.fix_time < EXCLUDED.fix_time
   OR l.fix_time > EXCLUDED.recv_time + {LATEST_AHEAD_MS} * interval '1 millisecond'
"""
_LAST_SEEN = """
UPDATE devices d SET last_seen = s.seen
FROM (SELECT device_id, timestamptz 'epoch' + seen_ms * interval '1 millisecond' AS seen
      FROM unnest(%s::integer[], %s::bigint[]) AS u (device_id, seen_ms)) s
WHERE d.id = s.device_id AND (d.last_seen IS NULL OR d.last_seen < s.seen)
"""
_CLOCK_SOURCE = """(SELECT device_id, state, offset_ms, whole,
        timestamptz 'epoch' + since_ms * interval '1 millisecond' AS since,
        timestamptz 'epoch' + seen_ms * interval '1 millisecond' AS seen
    FROM unnest(%s::integer[], %s::smallint[], %s::bigint[], %s::bigint[], %s::bigint[],
                %s::boolean[]) AS u (device_id, state, offset_ms, since_ms, seen_ms, whole)) s"""
# A device's clock row changes only when its state or offset does (store.clock_rows).
_CLOCKS_UPDATE = f"""
UPDATE device_clocks c SET state = s.state, offset_ms = s.offset_ms, seen = s.seen,
    since = CASE WHEN c.state = s.state AND s.whole THEN c.since ELSE s.since END
FROM {_CLOCK_SOURCE}
WHERE c.device_id = s.device_id AND c.seen <= s.seen
  AND (c.state <> s.state OR c.offset_ms <> s.offset_ms)
"""
_CLOCKS_INSERT = f"""
INSERT INTO device_clocks (device_id, state, offset_ms, since, seen)
SELECT device_id, state, offset_ms, since, seen FROM {_CLOCK_SOURCE}
ON CONFLICT (device_id) DO NOTHING
"""


_MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z, the range of datetime and timestamptz
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _dt(ms: int | None) -> datetime | None:
    """Epoch ms → aware datetime; a bound outside the calendar is clamped, not an error."""
    if ms is None:
        return None
    return _EPOCH + timedelta(milliseconds=min(max(ms, _MIN_MS), _MAX_MS))


# Writes of at least this many rows are split over two connections (module docstring): bulk
# loads and a journal drain catching up. A steady drain's smaller writes stay on one connection,
# leaving the other core to the gateway, and skip a second commit.
SPLIT_WRITE_ROWS = 32_768
# How long the main part waits for the lead part before cancelling it. The two never wait on
# each other's rows; this bounds what an unforeseen lock between them (a chunk being created)
# could cost: the write fails, the drain retries it, and the retry goes on one connection.
LEAD_WAIT_S = 30.0


def _copy_rows(
    conn: psycopg.Connection[tuple[Any, ...]],
    cur: psycopg.Cursor[tuple[Any, ...]],
    batch: PositionBatch,
    keys: npt.NDArray[np.int32],
    first_seq: int,
) -> int:
    """Inserts rows numbered from `first_seq` inside the caller's transaction; returns how many
    were new. Optimistic COPY in a savepoint; on a stored key, staging and ON CONFLICT."""
    if not len(batch):
        return 0
    try:
        with conn.transaction(), cur.copy(COPY_POSITIONS) as copy:
            for chunk in pg_copy.encode_chunks(batch, keys, first_seq):
                copy.write(chunk)
        return len(batch)
    except psycopg.errors.UniqueViolation:
        with cur.copy(_COPY_STAGING) as copy:
            copy.write(pg_copy.encode(batch, keys, first_seq))
        cur.execute(_INSERT)
        return cur.rowcount


class PostgresStore(SharedRecords):
    """`store.interface.Store` on PostgreSQL; see the module docstring."""

    def __init__(self, url: str, *, connect_timeout_s: int = 5, split_writes: bool = True) -> None:
        self._url = url
        self._dialect = POSTGRES
        self._connect_timeout_s = connect_timeout_s
        self._split_writes = split_writes
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        # The lead part of split writes: its own connection, used only from its own thread.
        self._lead_pool: ThreadPoolExecutor | None = None
        self._lead_conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._layout = PLAIN
        self._ids: dict[str, int] = {}
        self._terminals: dict[int, str] = {}
        self._days: set[int] = set()
        self._clock_cache = ClockCache()
        self._session()  # fail early on a bad URL or an unmigrated database

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = self._open()
        self._days.clear()  # partitions may have been dropped meanwhile
        return conn

    def _open(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A checked connection with its staging tables."""
        try:
            conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=self._connect_timeout_s
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            row = conn.execute(
                "SELECT max(version), max(variant) FROM schema_migrations"
            ).fetchone()
            if row is None or row[0] is None or row[0] < latest_version("postgres"):
                raise SchemaError("database schema is out of date: run `lienwatch migrate`")
            self._layout = row[1] or PLAIN
            for statement in _STAGING:
                conn.execute(statement)
        except psycopg.errors.UndefinedTable:
            conn.close()
            raise SchemaError("database has no schema: run `lienwatch migrate`") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _session(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def _guard(self, what: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """Maps psycopg failures to store errors; a lost connection is dropped for a reconnect."""
        try:
            yield self._session()
        except psycopg.OperationalError as exc:
            self._drop()
            raise StoreUnavailableError(f"{what}: database unavailable: {exc}") from exc
        except psycopg.Error as exc:
            if self._conn is not None and self._conn.broken:
                self._drop()
            raise StoreError(f"{what}: {exc}") from exc

    @contextmanager
    def _atomic(self, what: str) -> Iterator[None]:
        """Every store call inside it commits together, or none does (the calls' own
        transactions become savepoints of this one)."""
        with self._guard(what) as conn, conn.transaction():
            yield

    def _run(self, what: str, sql: str, params: Sequence[Any] = ()) -> RunResult:
        with self._guard(what) as conn:
            cur = conn.execute(pyformat(sql), params)
            return RunResult(cur.fetchall() if cur.description else [], cur.rowcount)

    def _run_many(self, what: str, steps: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        with self._guard(what) as conn, conn.transaction():
            for sql, rows in steps:
                if rows:
                    with conn.cursor() as cur:
                        cur.executemany(pyformat(sql), rows)

    def _run_each(
        self, what: str, sql: str, rows: Sequence[Sequence[Any]]
    ) -> list[list[tuple[Any, ...]]]:
        if not rows:
            return []
        out: list[list[tuple[Any, ...]]] = []
        with self._guard(what) as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(pyformat(sql), rows, returning=True)
            while True:
                out.append(cur.fetchall() if cur.description else [])
                if not cur.nextset():
                    break
        return out

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._drop()
        if self._lead_pool is not None:
            self._lead_pool.submit(self._drop_lead).result()
            self._lead_pool.shutdown()
            self._lead_pool = None

    # -- devices keys ------------------------------------------------------------------------

    def _device_ids(
        self, conn: psycopg.Connection[tuple[Any, ...]], terminals: Sequence[str], create: bool
    ) -> dict[str, int]:
        """Stored keys of `terminals` (creating missing devices when `create`), cached."""
        missing = [t for t in dict.fromkeys(terminals) if t not in self._ids]
        if missing:
            if create:
                conn.execute(
                    "INSERT INTO devices (terminal) SELECT unnest(%s::text[])"
                    " ON CONFLICT (terminal) DO NOTHING",
                    (missing,),
                )
            rows = conn.execute(
                "SELECT terminal, id FROM devices WHERE terminal = ANY(%s)", (missing,)
            ).fetchall()
            for terminal, device_id in rows:
                self._ids[terminal] = device_id
                self._terminals[device_id] = terminal
        return {t: self._ids[t] for t in terminals if t in self._ids}

    def _terminals_of(
        self, conn: psycopg.Connection[tuple[Any, ...]], device_ids: npt.NDArray[np.int32]
    ) -> tuple[npt.NDArray[np.int32], list[str]]:
        """(local index per row, terminal list) for stored device keys."""
        unique, local = np.unique(device_ids, return_inverse=True)
        unknown = [int(i) for i in unique if int(i) not in self._terminals]
        if unknown:
            for device_id, terminal in conn.execute(
                "SELECT id, terminal FROM devices WHERE id = ANY(%s)", (unknown,)
            ):
                self._ids[terminal] = device_id
                self._terminals[device_id] = terminal
        return local.astype(np.int32), [self._terminals[int(i)] for i in unique]

    def _ensure_partitions(
        self, conn: psycopg.Connection[tuple[Any, ...]], batch: PositionBatch
    ) -> bool:
        """Creates the day partitions the batch needs (plain layout). Returns whether every day
        of the batch already has its partition or chunk. TimescaleDB creates a chunk inside the
        first COPY that needs it and holds its lock on `positions` until commit, so a write into
        a day this connection has not written yet stays on one connection (not split): a split
        write's lead part would wait on that lock while the main part waits for the lead."""
        if not len(batch):
            return True
        if self._layout != PLAIN:
            days = np.unique(batch.time_ms // _DAY_MS)
            return all(day in self._days for day in days.tolist())
        now_day = int(batch.recv_ms.max()) // _DAY_MS
        days = np.unique(batch.time_ms // _DAY_MS)
        days = days[(days >= now_day - MAX_BACKFILL_DAYS) & (days <= now_day + 1)]
        for day in days.tolist():
            if day not in self._days:
                conn.execute(
                    "SELECT lienwatch_ensure_day_partition(%s)",
                    (date(1970, 1, 1) + timedelta(days=day),),
                )
                self._days.add(day)
        return True

    # -- positions ---------------------------------------------------------------------------

    def write_positions(self, batch: PositionBatch, terminals: Sequence[str]) -> WriteResult:
        if not len(batch):
            return WriteResult(0, 0)
        newest = batch.take(newest_valid_per_device(batch))
        seen_device, seen_ms = last_seen_per_device(batch)
        rows = clock_rows(batch)
        with self._guard("write positions") as conn:
            ids = self._device_ids(conn, terminals, create=True)
            keys = np.fromiter((ids[t] for t in terminals), dtype=np.int32, count=len(terminals))
            clocks = self._clock_cache.changed(rows.keyed(keys))
            known_days = self._ensure_partitions(conn, batch)
            lead_rows, main_rows = self._split(batch, keys) if known_days else (None, batch)
            with conn.transaction(), conn.cursor() as cur:
                row = cur.execute(RESERVE_SEQ, (len(batch), len(batch))).fetchone()
                if row is None:
                    raise SchemaError("position_cursor has no row: run `lienwatch migrate`")
                first_seq = int(row[0])
                lead = None
                if lead_rows is not None:
                    if self._lead_pool is None:
                        self._lead_pool = ThreadPoolExecutor(1, thread_name_prefix="pg-lead")
                    lead = self._lead_pool.submit(self._write_lead, lead_rows, keys, first_seq)
                    first_seq += len(lead_rows)
                try:
                    inserted = _copy_rows(conn, cur, main_rows, keys, first_seq)
                    with cur.copy(_COPY_LATEST) as copy:
                        copy.write(pg_copy.encode(newest, keys))
                    cur.execute(_UPSERT_LATEST)
                    cur.execute(_LAST_SEEN, (keys[seen_device].tolist(), seen_ms.tolist()))
                    if len(clocks):
                        cur.execute(_CLOCKS_UPDATE, clocks.lists())
                        cur.execute(_CLOCKS_INSERT, clocks.lists())
                finally:
                    if lead is not None:  # settled (committed or failed) before this commits
                        self._settle(lead)
                if lead is not None:
                    inserted += lead.result()  # its failure rolls this part back
        if not known_days:
            self._days.update(np.unique(batch.time_ms // _DAY_MS).tolist())
        self._clock_cache.remember(clocks)
        return WriteResult(len(batch), inserted)

    def _settle(self, lead: futures.Future[int]) -> None:
        """Waits for the lead part; one stuck past `LEAD_WAIT_S` is cancelled, so it fails."""
        done, _ = futures.wait([lead], timeout=LEAD_WAIT_S)
        if not done and self._lead_conn is not None:
            self._lead_conn.cancel_safe()
            futures.wait([lead])

    def _split(
        self, batch: PositionBatch, keys: npt.NDArray[np.int32]
    ) -> tuple[PositionBatch | None, PositionBatch]:
        """(lead part or None, main part): by device key parity, so no key is in both."""
        if not self._split_writes or len(batch) < SPLIT_WRITE_ROWS:
            return None, batch
        odd = (keys[batch.device] & 1).astype(bool)
        return batch.take(np.flatnonzero(~odd)), batch.take(np.flatnonzero(odd))

    def _write_lead(self, batch: PositionBatch, keys: npt.NDArray[np.int32], first_seq: int) -> int:
        """The lead part of a split write, in its own transaction on the helper connection."""
        try:
            if self._lead_conn is None or self._lead_conn.closed:
                self._lead_conn = self._open()
            conn = self._lead_conn
            with conn.transaction(), conn.cursor() as cur:
                return _copy_rows(conn, cur, batch, keys, first_seq)
        except BaseException:
            if self._lead_conn is not None and self._lead_conn.broken:
                self._drop_lead()
            raise

    def _drop_lead(self) -> None:
        if self._lead_conn is not None:
            self._lead_conn.close()
        self._lead_conn = None

    def _copy_out(
        self, conn: psycopg.Connection[tuple[Any, ...]], query: str, params: Sequence[Any]
    ) -> bytes:
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)", params) as copy,
        ):
            return b"".join(bytes(chunk) for chunk in copy)

    def latest(self, terminals: Sequence[str]) -> PositionBatch:
        with self._guard("latest positions") as conn:
            ids = self._device_ids(conn, terminals, create=False)
            stream = self._copy_out(
                conn,
                f"SELECT {_SELECT} FROM latest_positions WHERE device_id = ANY(%s)",
                (list(ids.values()),),
            )
        batch = pg_copy.decode(stream)
        slot = {ids[t]: i for i, t in enumerate(terminals) if t in ids}
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
        with self._guard("track") as conn:
            ids = self._device_ids(conn, [terminal], create=False)
            if terminal not in ids:
                return empty_batch()
            device_id = ids[terminal]

            def page(start: int, rows: int) -> PositionBatch:
                stream = self._copy_out(
                    conn,
                    f"SELECT {_SELECT} FROM positions WHERE device_id = %s"
                    " AND fix_time >= %s AND fix_time < %s ORDER BY fix_time LIMIT %s",
                    (device_id, _dt(start), _dt(to_ms), rows),
                )
                if not stream:
                    return empty_batch()
                found = pg_copy.decode(stream)
                return PositionBatch(
                    **{**found.columns(), "device": np.zeros(len(found), np.int32)}
                )

            def pages() -> Iterator[PositionBatch]:
                return keyset_pages(from_ms, to_ms, TRACK_PAGE_ROWS, page)

            return read_track(pages, max_points=max_points, interval_ms=interval_ms, limit=limit)

    def last_position_seq(self) -> int:
        # The counter, not max(seq): its row is locked by each write until commit, so every
        # number below its committed value is committed (and seq has only a BRIN index).
        with self._guard("last position seq") as conn:
            row = conn.execute("SELECT next_seq - 1 FROM position_cursor").fetchone()
        if row is None:
            raise SchemaError("position_cursor has no row: run `lienwatch migrate`")
        return int(row[0])

    def positions_since(self, cursor: int, limit: int) -> PositionPage:
        with self._guard("positions since cursor") as conn:
            stream = self._copy_out(
                conn,
                f"SELECT seq, {_SELECT} FROM positions WHERE seq > %s ORDER BY seq LIMIT %s",
                (cursor, limit),
            )
            batch, seq = pg_copy.decode_with_seq(stream)
            local, terminals = self._terminals_of(conn, batch.device)
        batch = PositionBatch(**{**batch.columns(), "device": local})
        return PositionPage(batch, terminals, int(seq[-1]) if len(seq) else cursor, seq)

    def positions_between(self, from_ms: int, to_ms: int) -> PositionPage:
        with self._guard("positions between times") as conn:
            # No ORDER BY: the server scans the window and streams it; grouping by device
            # in time order is a numpy sort here, off the database's CPU.
            stream = self._copy_out(
                conn,
                f"SELECT {_SELECT} FROM positions WHERE fix_time >= %s AND fix_time < %s",
                (_dt(from_ms), _dt(to_ms)),
            )
            batch = pg_copy.decode(stream)
            if len(batch) > 1:
                batch = batch.take(np.lexsort((batch.time_ms, batch.device)))
            local, terminals = self._terminals_of(conn, batch.device)
        return PositionPage(PositionBatch(**{**batch.columns(), "device": local}), terminals, 0)

    def drop_positions_before(self, cutoff_ms: int) -> int:
        cutoff = _dt(cutoff_ms)
        assert cutoff is not None
        with self._guard("drop old positions") as conn, conn.transaction():
            if self._layout == PLAIN:
                row = conn.execute(
                    "SELECT lienwatch_drop_day_partitions_before(%s)", (cutoff.date(),)
                ).fetchone()
                conn.execute("DELETE FROM positions_outside WHERE fix_time < %s", (cutoff,))
                dropped = int(row[0]) if row else 0
            else:  # TimescaleDB: whole chunks
                rows = conn.execute(
                    "SELECT drop_chunks('positions', older_than => %s)", (cutoff,)
                ).fetchall()
                dropped = len(rows)
        self._days.clear()  # dropped partitions are created again if a late fix needs one
        return dropped

    # -- devices -----------------------------------------------------------------------------

    # -- command queue -----------------------------------------------------------------------

    def notify(self, channel: str, payload: str) -> None:
        with self._guard("notify") as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    # -- HTTP API: keys, fences, device pages, command log -------------------------------------

    # -- candidate risk spots (SQL in store/spot_rows.py) -----------------------------------
