"""What only the PostgreSQL adapter has: migrations, daily partitions, outliers, views."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest

from positions import Flag, PositionBatch
from store import SchemaError, migrate
from store.migrate import migrate_postgres
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
    first = migrate_postgres(pg_url, today=datetime(2024, 3, 1, tzinfo=UTC))
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
    migrate(pg_url, tmp_path)
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
    migrate(pg_url, tmp_path)
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
    # Three fixes 0.01 degree of latitude apart (about 1112 m each), and a flagged jump.
    batch = PositionBatch.from_columns(
        {
            "device": [0, 0, 0, 0],
            "time_ms": T0 + np.array([0, 60_000, 120_000, 90_000]),
            "recv_ms": np.full(4, T0 + 200_000),
            "lon": [121.0, 121.0, 121.0, 125.0],
            "lat": [31.00, 31.01, 31.02, 40.0],
            "speed_kmh": [10, 80, 20, 900],
            "flags": [0, 0, 0, int(Flag.IMPLAUSIBLE)],
        }
    )
    store.write_positions(batch, [A])
    [(distance_m, fixes)] = query(pg_url, "SELECT distance_m, fixes FROM device_daily_distance")
    assert fixes == 3
    assert float(str(distance_m)) == pytest.approx(2 * 1111.95, rel=1e-3)
    [(reports, valid, max_speed)] = query(
        pg_url, "SELECT reports, valid_reports, max_speed_kmh FROM device_daily_activity"
    )
    assert (reports, valid, max_speed) == (4, 3, 900.0)
    store.close()
