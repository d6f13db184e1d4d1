"""What only the PostgreSQL adapter has: migrations, daily partitions, outliers, views."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest

from positions import Flag, PositionBatch
from store import SchemaError, StoreUnavailableError, migrate, postgres
from store.migrate import PLAIN, TIMESCALE, migrate_postgres
from store.postgres import PostgresStore

pytestmark = pytest.mark.db
DAY_MS = 86_400_000
T0 = 1_709_251_200_000  # 2024-03-01T00:00:00Z
A = "013900000001"


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def partitions(url: str) -> list[str]:
    return [
        str(r[0])
        for r in query(
            url,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'positions'::regclass ORDER BY 1",
        )
    ]


def one_fix(time_ms: int, recv_ms: int, lon: float = 121.0, lat: float = 31.0) -> PositionBatch:
    return PositionBatch.from_columns(
        {"device": [0], "time_ms": [time_ms], "recv_ms": [recv_ms], "lon": [lon], "lat": [lat]}
    )


def test_migrate_is_idempotent_and_records_the_plain_layout(pg_url: str) -> None:
    first = migrate_postgres(pg_url, today=datetime(2024, 3, 1, tzinfo=UTC), layout=PLAIN)
    second = migrate_postgres(pg_url, today=datetime(2024, 3, 1, tzinfo=UTC))
    assert first.applied[0] == "0001_core"
    assert "0002_positions.plain" in first.applied
    assert (second.applied, second.already, second.layout) == ((), len(first.applied), "plain")
    assert query(pg_url, "SELECT variant FROM schema_migrations WHERE version = 2") == [("plain",)]
    assert partitions(pg_url) == [
        "positions_outside",
        "positions_p20240229",
        "positions_p20240301",
        "positions_p20240302",
        "positions_p20240303",
    ]


def test_the_store_refuses_a_database_that_was_never_migrated(pg_url: str) -> None:
    with pytest.raises(SchemaError, match="lienwatch migrate"):
        PostgresStore(pg_url)


def test_writes_create_their_days_partitions_and_park_absurd_dates_aside(
    pg_url: str, tmp_path: Path
) -> None:
    migrate_postgres(pg_url, layout=PLAIN)  # day partitions are the plain layout's
    store = PostgresStore(pg_url)
    far_future = T0 + 3650 * DAY_MS
    store.write_positions(one_fix(T0 - 20 * DAY_MS, T0), [A])  # blind-area backfill
    store.write_positions(one_fix(far_future, T0 + 1000), [A])  # a device clock gone wrong
    assert "positions_p20240210" in partitions(pg_url)
    assert query(pg_url, "SELECT count(*) FROM positions_outside") == [(1,)]
    # The day comes: its partition takes the parked row along.
    query(pg_url, "SELECT lienwatch_ensure_day_partition('2034-02-27')")
    assert query(pg_url, "SELECT count(*) FROM positions_outside") == [(0,)]
    assert query(pg_url, "SELECT count(*) FROM positions_p20340227") == [(1,)]
    assert len(store.track(A, far_future, far_future + 1)) == 1
    store.close()


def test_retention_drops_whole_days_before_the_cutoff(pg_url: str, tmp_path: Path) -> None:
    migrate_postgres(pg_url, layout=PLAIN)  # day partitions are the plain layout's
    store = PostgresStore(pg_url)
    for day in range(3):
        store.write_positions(one_fix(T0 + day * DAY_MS, T0 + 3 * DAY_MS), [A])
    assert query(pg_url, "SELECT lienwatch_drop_day_partitions_before('2024-03-02')") == [(1,)]
    assert len(store.track(A, T0, T0 + 3 * DAY_MS)) == 2
    store.close()


def test_daily_views_count_reports_and_distance_from_valid_fixes(
    pg_url: str, tmp_path: Path
) -> None:
    migrate(pg_url, tmp_path)
    store = PostgresStore(pg_url)
    # Three fixes 0.01 degree of latitude apart (about 1112 m each), a flagged jump, and rows
    # of a reset and a stuck device clock (no usable time or place).
    batch = PositionBatch.from_columns(
        {
            "device": [0, 0, 0, 0, 0, 0],
            "time_ms": T0 + np.array([0, 60_000, 120_000, 90_000, 30_000, 100_000]),
            "recv_ms": np.full(6, T0 + 200_000),
            "lon": [121.0, 121.0, 121.0, 125.0, 100.0, 110.0],
            "lat": [31.00, 31.01, 31.02, 40.0, 20.0, 25.0],
            "speed_kmh": [10, 80, 20, 900, 5, 5],
            "flags": [0, 0, 0, int(Flag.IMPLAUSIBLE), int(Flag.CLOCK_RESET), int(Flag.CLOCK_STUCK)],
        }
    )
    store.write_positions(batch, [A])
    [(distance_m, fixes)] = query(pg_url, "SELECT distance_m, fixes FROM device_daily_distance")
    assert fixes == 3
    assert float(str(distance_m)) == pytest.approx(2 * 1111.95, rel=1e-3)
    [(reports, valid, max_speed)] = query(
        pg_url, "SELECT reports, valid_reports, max_speed_kmh FROM device_daily_activity"
    )
    assert (reports, valid, max_speed) == (6, 3, 900.0)
    store.close()


def test_sequence_numbers_follow_commit_order_so_cursor_readers_miss_nothing(
    pg_url: str,
) -> None:
    """A write waits for the earlier writer's commit before taking its numbers: a cursor reader
    that saw the later write can never have passed over rows of the earlier one."""
    migrate(pg_url, Path("."))
    store = PostgresStore(pg_url)
    store.write_positions(one_fix(T0, T0), [A])
    cursor = store.positions_since(0, 10).cursor
    with psycopg.connect(pg_url) as other:  # a writer holding its block, not yet committed
        held = other.execute(
            "UPDATE position_cursor SET next_seq = next_seq + 5 RETURNING next_seq - 5"
        ).fetchone()
        assert held is not None
        done = threading.Event()
        writer = threading.Thread(
            target=lambda: (store.write_positions(one_fix(T0 + 1000, T0), [A]), done.set())
        )
        writer.start()
        assert not done.wait(0.5)  # blocked behind the uncommitted block
        other.commit()
    writer.join(10)
    assert done.is_set()
    reader = PostgresStore(pg_url)
    page = reader.positions_since(cursor, 10)
    reader.close()
    assert page.batch.time_ms.tolist() == [T0 + 1000]
    assert page.cursor >= int(held[0]) + 5  # numbered after the block committed before it
    store.close()


def test_the_cursor_migration_numbers_on_after_rows_already_stored(pg_url: str) -> None:
    """A database written before the counter existed keeps its numbers; new rows follow them."""
    migrate_postgres(pg_url, target=3, layout=PLAIN)  # rows inserted into a day partition
    with psycopg.connect(pg_url) as conn:
        conn.execute("SELECT lienwatch_ensure_day_partition(%s::date)", ("2024-03-01",))
        conn.execute("INSERT INTO devices (terminal) VALUES (%s)", (A,))
        for second in range(3):
            conn.execute(
                "INSERT INTO positions (device_id, fix_time, recv_time, lon, lat, speed_kmh,"
                " course, altitude_m, alarm, status, flags) SELECT id, to_timestamp(%s),"
                " to_timestamp(%s), 121, 31, 0, 0, 0, 0, 3, 0 FROM devices",
                (T0 / 1000 + second, T0 / 1000),
            )
    migrate_postgres(pg_url)
    store = PostgresStore(pg_url)
    store.write_positions(one_fix(T0 + 10_000, T0), [A])
    page = store.positions_since(0, 10)
    assert len(page.batch) == 4
    assert page.batch.time_ms.tolist()[-1] == T0 + 10_000
    assert page.cursor == 4
    # Rows from before the device-time column read back with their fix time there.
    assert page.batch.device_time_ms.tolist() == page.batch.time_ms.tolist()
    store.close()


def test_positions_and_latest_stored_before_the_clock_migration_read_their_fix_time(
    pg_url: str,
) -> None:
    migrate_postgres(pg_url, target=8)
    with psycopg.connect(pg_url) as conn:
        conn.execute("SELECT lienwatch_ensure_day_partition(%s::date)", ("2024-03-01",))
        conn.execute("INSERT INTO devices (terminal) VALUES (%s)", (A,))
        for table in ("positions (seq, ", "latest_positions ("):
            conn.execute(
                f"INSERT INTO {table}device_id, fix_time, recv_time, lon, lat, speed_kmh,"
                f" course, altitude_m, alarm, status, flags) SELECT"
                f" {'1, ' if table.startswith('positions') else ''}id, to_timestamp(%s),"
                " to_timestamp(%s), 121, 31, 0, 0, 0, 0, 3, 0 FROM devices",
                (T0 / 1000, T0 / 1000 + 1),
            )
    migrate_postgres(pg_url)
    store = PostgresStore(pg_url)
    for batch in (store.track(A, T0, T0 + 1), store.latest([A])):
        assert batch.time_ms.tolist() == batch.device_time_ms.tolist() == [T0]
    assert store.device_clocks([A]) == {}
    store.close()


def many_fixes(devices: int, fixes: int, t0: int = T0) -> PositionBatch:
    """Rows in arrival order: every device's first fix, then every device's second, ..."""
    return PositionBatch.from_columns(
        {
            "device": np.tile(np.arange(devices), fixes),
            "time_ms": t0 + np.repeat(np.arange(fixes), devices) * 1000,
            "recv_ms": np.full(devices * fixes, t0),
            "lon": np.full(devices * fixes, 121.0),
            "lat": np.full(devices * fixes, 31.0),
        }
    )


TERMINALS = [f"0139{i:08d}" for i in range(8)]


@pytest.fixture
def split_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Splits every write of 10 rows or more, so small batches take the two-connection path."""
    monkeypatch.setattr(postgres, "SPLIT_WRITE_ROWS", 10)


@pytest.mark.usefixtures("split_small")
def test_a_split_write_stores_every_row_once_numbered_within_its_block(pg_url: str) -> None:
    migrate(pg_url, Path("."))
    store = PostgresStore(pg_url)
    batch = many_fixes(8, 5)
    assert store.write_positions(batch, TERMINALS).inserted == 40
    page = store.positions_since(0, 100)
    assert len(page.batch) == 40
    assert query(pg_url, "SELECT count(DISTINCT seq), min(seq), max(seq) FROM positions") == [
        (40, 1, 40)
    ]
    # A replay: both parts find their keys stored and go through staging.
    assert store.write_positions(batch, TERMINALS).inserted == 0
    # Half new, half replayed, and a key twice within the batch.
    more = PositionBatch.concat([batch, many_fixes(8, 5, T0 + 5000), many_fixes(8, 1, T0 + 9000)])
    assert store.write_positions(more, TERMINALS).inserted == 40
    assert query(
        pg_url, "SELECT count(*), count(DISTINCT (device_id, fix_time)) FROM positions"
    ) == [(80, 80)]
    latest = store.latest(TERMINALS)
    assert latest.time_ms.tolist() == [T0 + 9000] * 8
    store.close()


@pytest.mark.usefixtures("split_small")
def test_a_failed_lead_part_fails_the_write_and_the_retry_stores_it_once(pg_url: str) -> None:
    migrate(pg_url, Path("."))
    store = PostgresStore(pg_url)
    store.write_positions(many_fixes(8, 2), TERMINALS)  # opens the lead connection
    assert store._lead_conn is not None
    lead_pid = store._lead_conn.info.backend_pid
    query(pg_url, f"SELECT pg_terminate_backend({lead_pid})")
    batch = many_fixes(8, 3, T0 + 60_000)
    with pytest.raises(StoreUnavailableError):
        store.write_positions(batch, TERMINALS)
    # The main part rolled back with it: nothing of the failed write is stored.
    assert query(pg_url, "SELECT count(*) FROM positions") == [(16,)]
    assert store.write_positions(batch, TERMINALS).inserted == 24
    assert query(pg_url, "SELECT count(*), count(DISTINCT seq) FROM positions") == [(40, 40)]
    store.close()


@pytest.mark.usefixtures("split_small")
def test_a_lead_part_stuck_on_a_lock_is_cancelled_and_the_retry_stores_it_once(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock the two parts of a split write could wait on in a cycle (TimescaleDB's new chunk)
    costs a failed write and a retry, never a hang: the main part waits a bounded time."""
    monkeypatch.setattr(postgres, "LEAD_WAIT_S", 0.5)
    migrate(pg_url, Path("."))
    store = PostgresStore(pg_url)
    store.write_positions(many_fixes(8, 2), TERMINALS)
    batch = many_fixes(8, 3, T0 + 60_000)
    even = [i for t, i in query(pg_url, "SELECT terminal, id FROM devices") if int(i) % 2 == 0]
    blocker = psycopg.connect(pg_url)  # holds one of the lead part's keys, uncommitted
    blocker.execute(
        "INSERT INTO positions (seq, device_id, fix_time, recv_time, lon, lat, speed_kmh,"
        " course, altitude_m, alarm, status, flags) VALUES (0, %s, to_timestamp(%s / 1000.0),"
        " now(), 121, 31, 0, 0, 0, 0, 0, 0)",
        (even[0], T0 + 60_000),
    )
    with pytest.raises(StoreUnavailableError):
        store.write_positions(batch, TERMINALS)
    blocker.rollback()
    blocker.close()
    assert query(pg_url, "SELECT count(*) FROM positions") == [(16,)]
    assert store.write_positions(batch, TERMINALS).inserted == 24
    assert query(pg_url, "SELECT count(*), count(DISTINCT seq) FROM positions") == [(40, 40)]
    store.close()


@pytest.mark.usefixtures("split_small")
def test_on_timescaledb_a_write_into_a_day_not_yet_written_stays_on_one_connection(
    pg_url: str,
) -> None:
    """The first COPY into a day creates its chunk and holds that lock until commit."""
    migrate(pg_url, Path("."))
    store = PostgresStore(pg_url)
    store._layout = TIMESCALE
    batch = many_fixes(8, 3)
    assert store.write_positions(batch, TERMINALS).inserted == 24
    assert store._lead_conn is None  # the first write of the day was not split
    store.write_positions(many_fixes(8, 3, T0 + 60_000), TERMINALS)
    assert store._lead_conn is not None  # the day is known now: later writes split again
    store.close()
