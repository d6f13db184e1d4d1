"""`lienwatch bench store`: position writes into PostgreSQL and SQLite, and the journal.

Every round writes 50k new rows (2000 devices x 25 fixes, times moved on each round) into the
daily-partitioned `positions` table of a scratch database created for the run and dropped after:
the shape of one drain of the gateway's journal at 50k reports/s from 2000 trackers.
- `pg_executemany` (the baseline): psycopg executemany INSERT ... ON CONFLICT DO NOTHING, rows
  prepared as Python tuples, with their store sequence numbers, outside the timed part
  (generous to it).
- `pg_executemany_full`: the same whole write done the straightforward way (executemany for the
  rows, then the newest fix and last-seen of each device row by row): the baseline of
  `pg_store_write`.
- `pg_store_write`: the adapter's real path: numpy binary COPY straight into `positions` (into a
  staging table then INSERT ... ON CONFLICT DO NOTHING only when some row is already stored),
  split by device over two connections, latest-position upsert and last-seen update.
- `pg_copy_direct`: bare binary COPY of the rows over one connection, no duplicate handling, no
  per-device bookkeeping: what one server process does alone.
- `pg_store_replay`: the same write when every row is already stored (a journal replay).
- `sqlite_store_write`, `journal_append_commit`: the embedded store and the journal's fsync'd
  append of the same batches.
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
    store = PostgresStore(pg_bench_url)
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


def _as_rows(
    b: PositionBatch, keys: np.ndarray[Any, Any], seq: range | None = None
) -> list[tuple[Any, ...]]:
    """Rows as Python tuples; with `seq`, led by their store sequence number."""
    return list(
        zip(
            *([seq] if seq is not None else []),
            keys[b.device].tolist(),
            *(getattr(b, name).tolist() for name in list(b.columns())[1:]),
            strict=True,
        )
    )


def test_pg_executemany(benchmark: Any, pg_bench_url: str, pg_store: PostgresStore) -> None:
    keys = _device_keys(pg_bench_url)
    sql = (
        f"INSERT INTO positions (seq, {pg_copy.COLUMN_LIST})"
        " VALUES (%s, %s, to_timestamp(%s / 1000.0), to_timestamp(%s / 1000.0),"
        " %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
    )

    with psycopg.connect(pg_bench_url, autocommit=True) as conn:

        def setup() -> tuple[tuple[list[tuple[Any, ...]]], dict[str, Any]]:
            # Sequence numbers taken before the clock starts: generous to the baseline.
            first = _reserve(conn.cursor(), ROWS)
            return (_as_rows(fresh_batch(), keys, range(first, first + ROWS)),), {}

        def write(rows: list[tuple[Any, ...]]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows)

        benchmark.pedantic(write, setup=setup, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["items"] = ROWS


def test_pg_executemany_full(benchmark: Any, pg_bench_url: str, pg_store: PostgresStore) -> None:
    """The whole write done the straightforward way: executemany for the rows, then the same
    per-device bookkeeping as the store (newest fix per device, last seen), row by row."""
    keys = _device_keys(pg_bench_url)
    cols = pg_copy.COLUMN_LIST
    rows_sql = (
        f"INSERT INTO positions (seq, {cols})"
        " VALUES (%s, %s, to_timestamp(%s / 1000.0), to_timestamp(%s / 1000.0),"
        " %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
    )
    latest_sql = (
        f"INSERT INTO latest_positions AS l ({cols})"
        " VALUES (%s, to_timestamp(%s / 1000.0), to_timestamp(%s / 1000.0),"
        " %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (device_id) DO UPDATE SET"
        " fix_time = EXCLUDED.fix_time, recv_time = EXCLUDED.recv_time, lon = EXCLUDED.lon,"
        " lat = EXCLUDED.lat, speed_kmh = EXCLUDED.speed_kmh, course = EXCLUDED.course,"
        " altitude_m = EXCLUDED.altitude_m, alarm = EXCLUDED.alarm, status = EXCLUDED.status,"
        " flags = EXCLUDED.flags WHERE l.fix_time < EXCLUDED.fix_time"
    )
    seen_sql = (
        "UPDATE devices SET last_seen = to_timestamp(%s / 1000.0)"
        " WHERE id = %s AND (last_seen IS NULL OR last_seen < to_timestamp(%s / 1000.0))"
    )

    with psycopg.connect(pg_bench_url, autocommit=True) as conn:

        def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
            b = fresh_batch()
            newest = b.take(newest_valid_per_device(b))
            seen_device, seen_ms = last_seen_per_device(b)
            seen = [
                (ms, int(keys[d]), ms) for d, ms in zip(seen_device, seen_ms.tolist(), strict=True)
            ]
            first = _reserve(conn.cursor(), ROWS)  # before the clock starts, as above
            rows = _as_rows(b, keys, range(first, first + ROWS))
            return (rows, _as_rows(newest, keys), seen), {}

        def write(rows: list[Any], latest: list[Any], seen: list[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(rows_sql, rows)
                cur.executemany(latest_sql, latest)
                cur.executemany(seen_sql, seen)

        benchmark.pedantic(write, setup=setup, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["items"] = ROWS


def test_pg_store_write(benchmark: Any, pg_store: PostgresStore) -> None:
    benchmark.pedantic(
        pg_store.write_positions,
        setup=lambda: ((fresh_batch(), TERMINALS), {}),
        rounds=ROUNDS,
        iterations=1,
    )
    benchmark.extra_info["items"] = ROWS
    benchmark.extra_info["baseline"] = "test_pg_executemany_full"


def test_pg_copy_direct(benchmark: Any, pg_bench_url: str, pg_store: PostgresStore) -> None:
    keys = _device_keys(pg_bench_url)
    with psycopg.connect(pg_bench_url, autocommit=True) as conn:

        def write(batch: PositionBatch) -> None:
            with conn.transaction(), conn.cursor() as cur:
                first = _reserve(cur, len(batch))
                with cur.copy(COPY_POSITIONS) as copy:
                    copy.write(pg_copy.encode(batch, keys, first_seq=first))

        benchmark.pedantic(write, setup=lambda: ((fresh_batch(),), {}), rounds=ROUNDS)
    benchmark.extra_info["items"] = ROWS
    benchmark.extra_info["baseline"] = "test_pg_executemany"


def test_pg_store_replay(benchmark: Any, pg_store: PostgresStore) -> None:
    batch = fresh_batch()
    pg_store.write_positions(batch, TERMINALS)
    result = benchmark.pedantic(
        pg_store.write_positions, args=(batch, TERMINALS), rounds=ROUNDS, iterations=1
    )
    assert result.inserted == 0
    benchmark.extra_info["items"] = ROWS
    benchmark.extra_info["baseline"] = "test_pg_executemany"


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
    benchmark.extra_info["baseline"] = "test_pg_executemany"


def test_journal_append_commit(benchmark: Any, tmp_path: Path) -> None:
    devices = DeviceIndex(TERMINALS)
    journal = Journal(tmp_path / "journal", max_bytes=1 << 30)

    def append_commit(batch: PositionBatch) -> None:
        journal.append(batch, devices)
        journal.commit()

    benchmark.pedantic(append_commit, setup=lambda: ((fresh_batch(),), {}), rounds=ROUNDS * 3)
    journal.close()
    benchmark.extra_info["items"] = ROWS
