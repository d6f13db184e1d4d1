"""`lienwatch bench store`: position writes into PostgreSQL and SQLite, and the journal.

Every round writes 50k new rows (2000 devices x 25 fixes, times moved on each round) into the
daily-partitioned `positions` table of a scratch database created for the run and dropped after:
the shape of one drain of the gateway's journal at 50k reports/s from 2000 trackers. The whole
job of a write, on both sides of the ratio: take the block of store sequence numbers, insert
the rows skipping any already stored, upsert each device's newest valid fix into
`latest_positions`, move each device's `last_seen` on; one transaction, one connection.
- `pg_store_write` (the main figure, baseline `pg_copy_staging`): the adapter's real path forced
  to one connection (`split_writes=False`): optimistic numpy binary COPY straight into
  `positions` in a savepoint (staging table and INSERT ... ON CONFLICT DO NOTHING only when a
  row is already stored), then the latest-position COPY + upsert and the last-seen update.
- `pg_copy_staging`: what a competent engineer writes with psycopg 3 for the same job, the
  way psycopg documents bulk loads: binary COPY with `copy.write_row` per row (times as epoch
  ms) into a temporary staging table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING into
  `positions` (COPY alone cannot skip stored rows), then each device's newest fix upserted and
  its last seen moved on, each one `unnest` statement over array parameters.
- `pg_unnest`: the other competent way, for context (no ratio; slower here): one `INSERT INTO
  positions SELECT ... FROM unnest(%s::bigint[], ...) ON CONFLICT DO NOTHING` with each
  numpy column passed as one array parameter (`tolist()`), then the same upsert and update.
- `pg_store_write_2conn`: the adapter's default path, which splits a write this large by
  device over two connections (two server processes insert at once). Its own figure, with no
  ratio: no baseline here uses two connections.
- `pg_store_replay`: the one-connection store writing a batch it already holds (a journal
  replay: every row skipped). Its own figure: a write of stored rows is not a write of new ones.
- `pg_copy_bare`: bare binary COPY of the rows over one connection, no duplicate handling, no
  per-device bookkeeping: what one server process takes in alone (context).
- `pg_executemany`: the naive way, for context: psycopg executemany INSERT ... ON CONFLICT DO
  NOTHING row by row, then the newest fix and last seen of each device row by row.
- `sqlite_store_write`, `journal_append_commit`: the embedded store and the journal's fsync'd
  append of the same batches, each its own figure (a different store, not a ratio).
Sequence numbers are taken inside the timed part on every side; the baselines get the stored
device keys up front (the store looks them up in its cache).
The admin URL is LIENWATCH_TEST_PG_ADMIN_URL (default postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from ingest.journal import Journal
from positions import DeviceIndex, PositionBatch
from store import pg_copy
from store.migrate import migrate_postgres
from store.postgres import COPY_POSITIONS, RESERVE_SEQ, PostgresStore
from store.selection import last_seen_per_device, newest_valid_per_device
from store.sqlite import SqliteStore

ADMIN_URL = os.environ.get(
    "LIENWATCH_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DEVICES = 2000
FIXES = 25
ROWS = DEVICES * FIXES
ROUNDS = 6
TERMINALS = [f"0139{i:08d}" for i in range(DEVICES)]
_shift = itertools.count(1)


def fresh_batch() -> PositionBatch:
    """ROWS rows no earlier round wrote: fix times move on by FIXES seconds each call."""
    now_ms = int(time.time() * 1000)
    base_ms = now_ms - 3_600_000 + next(_shift) * FIXES * 1000
    device = np.repeat(np.arange(DEVICES, dtype=np.int32), FIXES)
    rng = np.random.default_rng(int(base_ms))
    return PositionBatch.from_columns(
        {
            "device": device,
            "time_ms": base_ms + np.tile(np.arange(FIXES) * 1000, DEVICES),
            "recv_ms": np.full(ROWS, now_ms),
            "lon": 121.0 + rng.random(ROWS),
            "lat": 31.0 + rng.random(ROWS),
            "speed_kmh": rng.random(ROWS) * 120,
            "course": rng.integers(0, 360, ROWS),
            "status": np.full(ROWS, 3),
        }
    )


@pytest.fixture(scope="module")
def pg_bench_url() -> Iterator[str]:
    name = f"lienwatch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        migrate_postgres(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg_store(pg_bench_url: str) -> Iterator[PostgresStore]:
    """The store on one connection: the side of the ratio."""
    store = PostgresStore(pg_bench_url, split_writes=False)
    store.write_positions(fresh_batch(), TERMINALS)  # devices and partitions exist from now on
    yield store
    store.close()


def _device_keys(url: str) -> np.ndarray[Any, np.dtype[np.int32]]:
    with psycopg.connect(url) as conn:
        ids = dict(conn.execute("SELECT terminal, id FROM devices").fetchall())
    return np.array([ids[t] for t in TERMINALS], dtype=np.int32)


def _reserve(cur: psycopg.Cursor[Any], n: int) -> int:
    """The write's block of store sequence numbers, as the store takes it."""
    row = cur.execute(RESERVE_SEQ, (n, n)).fetchone()
    assert row is not None
    return int(row[0])


_COLS = pg_copy.COLUMN_LIST
_ARRAYS = (
    "%s::integer[], %s::bigint[], %s::bigint[], %s::bigint[], %s::float8[], %s::float8[],"
    " %s::real[],"
    " %s::smallint[], %s::integer[], %s::bigint[], %s::bigint[], %s::integer[]"
)
_VALUES = (
    "device_id, to_timestamp(fix_ms / 1000.0), to_timestamp(recv_ms / 1000.0),"
    " to_timestamp(dev_ms / 1000.0), lon, lat, speed_kmh, course, altitude_m, alarm, status, flags"
)
_AS = (
    "(device_id, fix_ms, recv_ms, dev_ms, lon, lat, speed_kmh, course, altitude_m, alarm,"
    " status, flags)"
)
_UNNEST_ROWS = (
    f"INSERT INTO positions (seq, {_COLS}) SELECT %s + ord - 1, {_VALUES}"
    f" FROM unnest({_ARRAYS}) WITH ORDINALITY AS u {_AS[:-1]}, ord) ON CONFLICT DO NOTHING"
)
_UPSERT_SET = (
    " ON CONFLICT (device_id) DO UPDATE SET"
    " fix_time = EXCLUDED.fix_time, recv_time = EXCLUDED.recv_time,"
    " device_time = EXCLUDED.device_time, lon = EXCLUDED.lon,"
    " lat = EXCLUDED.lat, speed_kmh = EXCLUDED.speed_kmh, course = EXCLUDED.course,"
    " altitude_m = EXCLUDED.altitude_m, alarm = EXCLUDED.alarm, status = EXCLUDED.status,"
    " flags = EXCLUDED.flags WHERE l.fix_time < EXCLUDED.fix_time"
)
_UNNEST_LATEST = (
    f"INSERT INTO latest_positions AS l ({_COLS}) SELECT {_VALUES}"
    f" FROM unnest({_ARRAYS}) AS u {_AS}" + _UPSERT_SET
)
_UNNEST_SEEN = (
    "UPDATE devices d SET last_seen = to_timestamp(s.ms / 1000.0)"
    " FROM unnest(%s::integer[], %s::bigint[]) AS s (id, ms)"
    " WHERE d.id = s.id AND (d.last_seen IS NULL OR d.last_seen < to_timestamp(s.ms / 1000.0))"
)


def _arrays(b: PositionBatch, keys: np.ndarray[Any, Any]) -> list[list[Any]]:
    """One list per column, device indexes mapped to stored keys."""
    return [keys[b.device].tolist(), *(getattr(b, c).tolist() for c in list(b.columns())[1:])]


def _bookkeeping(b: PositionBatch, keys: np.ndarray[Any, Any]) -> tuple[PositionBatch, list[Any]]:
    """Each device's newest valid fix and (key, last-seen ms) lists, as the store selects."""
    seen_device, seen_ms = last_seen_per_device(b)
    return b.take(newest_valid_per_device(b)), [keys[seen_device].tolist(), seen_ms.tolist()]


def test_pg_unnest(benchmark: Any, pg_bench_url: str, pg_store: PostgresStore) -> None:
    keys = _device_keys(pg_bench_url)
    with psycopg.connect(pg_bench_url, autocommit=True) as conn:

        def write(b: PositionBatch) -> None:
            newest, seen = _bookkeeping(b, keys)
            with conn.transaction(), conn.cursor() as cur:
                first = _reserve(cur, len(b))
                cur.execute(_UNNEST_ROWS, (first, *_arrays(b, keys)))
                cur.execute(_UNNEST_LATEST, _arrays(newest, keys))
                cur.execute(_UNNEST_SEEN, seen)

        benchmark.pedantic(write, setup=lambda: ((fresh_batch(),), {}), rounds=ROUNDS)
    benchmark.extra_info.update(items=ROWS, connections=1)


_STAGING = (
    "CREATE TEMP TABLE staging (seq bigint, device_id integer, fix_ms bigint, recv_ms bigint,"
    " dev_ms bigint, lon float8, lat float8, speed_kmh real, course smallint, altitude_m integer,"
    " alarm bigint, status bigint, flags integer) ON COMMIT DELETE ROWS"
)
_STAGING_TYPES = [
    "bigint", "integer", "bigint", "bigint", "bigint", "float8", "float8", "real", "smallint",
    "integer", "bigint", "bigint", "integer",
]  # fmt: skip


def test_pg_copy_staging(benchmark: Any, pg_bench_url: str, pg_store: PostgresStore) -> None:
    keys = _device_keys(pg_bench_url)
    with psycopg.connect(pg_bench_url, autocommit=True) as conn:
        conn.execute(_STAGING)

        def write(b: PositionBatch) -> None:
            newest, seen = _bookkeeping(b, keys)
            with conn.transaction(), conn.cursor() as cur:
                first = _reserve(cur, len(b))
                with cur.copy("COPY staging FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(_STAGING_TYPES)
                    for row in _as_rows(b, keys, range(first, first + len(b))):
                        copy.write_row(row)
                cur.execute(
                    f"INSERT INTO positions (seq, {_COLS}) SELECT seq, {_VALUES} FROM staging"
                    " ON CONFLICT DO NOTHING"
                )
                cur.execute(_UNNEST_LATEST, _arrays(newest, keys))
                cur.execute(_UNNEST_SEEN, seen)

        benchmark.pedantic(write, setup=lambda: ((fresh_batch(),), {}), rounds=ROUNDS)
    benchmark.extra_info.update(items=ROWS, connections=1)


def _as_rows(
    b: PositionBatch, keys: np.ndarray[Any, Any], seq: range | None = None
) -> list[tuple[Any, ...]]:
    """Rows as Python tuples; with `seq`, led by their store sequence number."""
    return list(zip(*([seq] if seq is not None else []), *_arrays(b, keys), strict=True))


def test_pg_executemany(benchmark: Any, pg_bench_url: str, pg_store: PostgresStore) -> None:
    """The whole write done row by row: executemany for the rows, the newest fix per device
    and the last seen."""
    keys = _device_keys(pg_bench_url)
    rows_sql = (
        f"INSERT INTO positions (seq, {_COLS})"
        " VALUES (%s, %s, to_timestamp(%s / 1000.0), to_timestamp(%s / 1000.0),"
        " to_timestamp(%s / 1000.0), %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
    )
    latest_sql = (
        f"INSERT INTO latest_positions AS l ({_COLS})"
        " VALUES (%s, to_timestamp(%s / 1000.0), to_timestamp(%s / 1000.0),"
        " to_timestamp(%s / 1000.0), %s, %s, %s, %s, %s, %s, %s, %s)" + _UPSERT_SET
    )
    seen_sql = (
        "UPDATE devices SET last_seen = to_timestamp(%s / 1000.0)"
        " WHERE id = %s AND (last_seen IS NULL OR last_seen < to_timestamp(%s / 1000.0))"
    )

    with psycopg.connect(pg_bench_url, autocommit=True) as conn:

        def write(b: PositionBatch) -> None:
            newest, (seen_key, seen_ms) = _bookkeeping(b, keys)
            with conn.transaction(), conn.cursor() as cur:
                first = _reserve(cur, len(b))
                cur.executemany(rows_sql, _as_rows(b, keys, range(first, first + len(b))))
                cur.executemany(latest_sql, _as_rows(newest, keys))
                cur.executemany(seen_sql, list(zip(seen_ms, seen_key, seen_ms, strict=True)))

        benchmark.pedantic(write, setup=lambda: ((fresh_batch(),), {}), rounds=ROUNDS)
    benchmark.extra_info.update(items=ROWS, connections=1)


def test_pg_store_write(benchmark: Any, pg_store: PostgresStore) -> None:
    benchmark.pedantic(
        pg_store.write_positions,
        setup=lambda: ((fresh_batch(), TERMINALS), {}),
        rounds=ROUNDS,
        iterations=1,
    )
    benchmark.extra_info.update(
        items=ROWS, connections=1, baseline="test_pg_copy_staging", main=True
    )


def test_pg_store_write_2conn(benchmark: Any, pg_bench_url: str, pg_store: PostgresStore) -> None:
    store = PostgresStore(pg_bench_url)  # the default: large writes split over two connections
    try:
        store.write_positions(fresh_batch(), TERMINALS)  # both connections open, ids cached
        benchmark.pedantic(
            store.write_positions,
            setup=lambda: ((fresh_batch(), TERMINALS), {}),
            rounds=ROUNDS,
            iterations=1,
        )
    finally:
        store.close()
    benchmark.extra_info.update(items=ROWS, connections=2)


def test_pg_copy_bare(benchmark: Any, pg_bench_url: str, pg_store: PostgresStore) -> None:
    keys = _device_keys(pg_bench_url)
    with psycopg.connect(pg_bench_url, autocommit=True) as conn:

        def write(batch: PositionBatch) -> None:
            with conn.transaction(), conn.cursor() as cur:
                first = _reserve(cur, len(batch))
                with cur.copy(COPY_POSITIONS) as copy:
                    copy.write(pg_copy.encode(batch, keys, first_seq=first))

        benchmark.pedantic(write, setup=lambda: ((fresh_batch(),), {}), rounds=ROUNDS)
    benchmark.extra_info.update(items=ROWS, connections=1)


def test_pg_store_replay(benchmark: Any, pg_store: PostgresStore) -> None:
    batch = fresh_batch()
    pg_store.write_positions(batch, TERMINALS)
    result = benchmark.pedantic(
        pg_store.write_positions, args=(batch, TERMINALS), rounds=ROUNDS, iterations=1
    )
    assert result.inserted == 0
    benchmark.extra_info.update(items=ROWS, connections=1)


def test_sqlite_store_write(benchmark: Any, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bench.sqlite3")
    store.write_positions(fresh_batch(), TERMINALS)
    benchmark.pedantic(
        store.write_positions,
        setup=lambda: ((fresh_batch(), TERMINALS), {}),
        rounds=ROUNDS,
        iterations=1,
    )
    store.close()
    benchmark.extra_info["items"] = ROWS


def test_journal_append_commit(benchmark: Any, tmp_path: Path) -> None:
    devices = DeviceIndex(TERMINALS)
    journal = Journal(tmp_path / "journal", max_bytes=1 << 30)

    def append_commit(batch: PositionBatch) -> None:
        journal.append(batch, devices)
        journal.commit()

    benchmark.pedantic(append_commit, setup=lambda: ((fresh_batch(),), {}), rounds=ROUNDS * 3)
    journal.close()
    benchmark.extra_info["items"] = ROWS
