"""What detectors side by side share through the store: partition checkpoints written only by
their owner, heartbeats, the rows' sequence numbers of a page (SQLite and PostgreSQL), and the
partition locks (PostgreSQL advisory locks, freed with the session that held them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from positions import PositionBatch
from store import Store, migrate, open_store
from store.partition_locks import PartitionLocks

T0 = 1_709_280_000_000


@pytest.fixture
def url(store_url: str | None, tmp_path: Path) -> str | None:
    """Each store (`store_url`: SQLite, then PostgreSQL), migrated."""
    migrate(store_url, tmp_path)
    return store_url


@pytest.fixture
def store(url: str | None, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(url, tmp_path)
    yield opened
    opened.close()


def test_only_the_owner_named_last_writes_a_partition_checkpoint(store: Store) -> None:
    assert store.partition_checkpoint(16, 3) is None
    store.claim_partition(16, 3, "a", 100, T0)
    first = store.partition_checkpoint(16, 3)
    assert first is not None and (first.seq, first.state, first.owner) == (100, None, "a")
    assert store.save_partition_checkpoint(16, 3, "a", 150, b"state-a", T0 + 1)
    # b takes it over: the state and cursor stay a's until b saves; a late write of a's fails.
    store.claim_partition(16, 3, "b", 999, T0 + 2)
    taken = store.partition_checkpoint(16, 3)
    assert taken is not None and (taken.seq, taken.state, taken.owner) == (150, b"state-a", "b")
    assert not store.save_partition_checkpoint(16, 3, "a", 160, b"late", T0 + 3)
    assert store.save_partition_checkpoint(16, 3, "b", 170, b"state-b", T0 + 4)
    saved = store.partition_checkpoint(16, 3)
    assert saved is not None and (saved.seq, saved.state) == (170, b"state-b")
    assert store.partition_checkpoint(8, 3) is None  # another count is another partition
    assert store.lowest_partition_cursor(16) == 170 and store.lowest_partition_cursor(8) is None
    store.claim_partition(16, 4, "b", 120, T0 + 5)
    assert store.lowest_partition_cursor(16) == 120


def test_detector_heartbeats_are_kept_until_forgotten(store: Store) -> None:
    store.detector_heartbeat("a", "host pid 1", 3, T0)
    store.detector_heartbeat("a", "host pid 1", 8, T0 + 1000)
    store.detector_heartbeat("b", "host pid 2", 8, T0 + 500)
    found = store.detector_member("a")
    assert found is not None and (found.seen_ms, found.owned) == (T0 + 1000, 8)
    assert store.forget_detector_members(T0 + 600) == 1
    assert store.detector_member("b") is None and store.detector_member("a") is not None


def test_a_page_of_the_positions_stream_carries_each_rows_sequence_number(store: Store) -> None:
    n = 5
    t = T0 + np.arange(n, dtype=np.int64) * 1000
    batch = PositionBatch(
        device=np.array([0, 1, 0, 1, 0], np.int32), time_ms=t, recv_ms=t, device_time_ms=t,
        lon=np.full(n, 121.5), lat=np.full(n, 31.3), speed_kmh=np.zeros(n, np.float32),
        course=np.zeros(n, np.int16), altitude_m=np.zeros(n, np.int32),
        alarm=np.zeros(n, np.uint32), status=np.zeros(n, np.uint32), flags=np.zeros(n, np.uint16),
    )  # fmt: skip
    start = store.last_position_seq()
    store.write_positions(batch, ["t0", "t1"])
    page = store.positions_since(start, 100)
    assert page.seq is not None and len(page.seq) == len(page.batch) == n
    assert bool(np.all(np.diff(page.seq) > 0)) and int(page.seq[-1]) == page.cursor
    rest = store.positions_since(int(page.seq[1]), 100)
    assert rest.seq is not None and rest.seq.tolist() == page.seq[2:].tolist()


@pytest.mark.db
def test_partition_locks_are_held_once_and_freed_with_their_session(
    pg_url: str, tmp_path: Path
) -> None:
    migrate(pg_url, tmp_path)
    a, b = PartitionLocks(pg_url, 4), PartitionLocks(pg_url, 4)
    other_count = PartitionLocks(pg_url, 8)
    try:
        a.join()
        assert a.members() == 1
        b.join()
        other_count.join()
        assert a.members() == b.members() == 3
        assert a.try_take(0) and a.try_take(1)
        assert not b.try_take(0)
        assert b.try_take(2)
        assert other_count.try_take(0)  # count 8's partition 0 is not count 4's
        assert a.taken() == ({0, 1}, {2})
        assert b.taken() == ({2}, {0, 1})
        a.release(1)
        assert b.try_take(1)
        # a's session ends (as a killed process's does): its locks and membership go.
        a.close()
        assert b.members() == 2
        assert b.taken() == ({1, 2}, set())
        assert b.try_take(0)
    finally:
        for locks in (a, b, other_count):
            locks.close()
