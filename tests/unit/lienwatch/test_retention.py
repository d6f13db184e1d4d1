"""The retention task: runs at start, then every interval, through the real embedded store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lienwatch.retention import DAY_MS, retention_task
from positions import PositionBatch
from store import Store, migrate, open_store

NOW = 1_709_280_000_000


def store_with_ages(path: Path, ages_days: list[int]) -> None:
    migrate(None, path)
    store = open_store(None, path)
    times = [NOW - age * DAY_MS for age in ages_days]
    store.write_positions(
        PositionBatch.from_columns(
            {
                "device": [0] * len(times),
                "time_ms": times,
                "recv_ms": times,
                "lon": [121.0] * len(times),
            }
        ),
        ["013900000001"],
    )
    store.close()


def stored(path: Path) -> list[int]:
    store: Store = open_store(None, path)
    try:
        return store.track("013900000001", 0, NOW + 1).time_ms.tolist()
    finally:
        store.close()


async def test_positions_older_than_the_kept_days_go_at_start(tmp_path: Path) -> None:
    store_with_ages(tmp_path, [40, 31, 29, 1])
    task = retention_task(lambda: open_store(None, tmp_path), 30, lambda: NOW, interval_s=3600)
    task.start()
    for _ in range(100):
        if len(stored(tmp_path)) == 2:
            break
        await asyncio.sleep(0.02)
    await task.close()
    assert stored(tmp_path) == [NOW - 29 * DAY_MS, NOW - 1 * DAY_MS]


async def test_a_failing_store_is_tried_again_without_stopping_the_task(tmp_path: Path) -> None:
    calls = 0

    def broken() -> Store:
        nonlocal calls
        calls += 1
        raise OSError("database unavailable")

    task = retention_task(broken, 30, lambda: NOW, interval_s=0.01)
    task.start()
    for _ in range(100):
        if calls >= 3:
            break
        await asyncio.sleep(0.01)
    await task.close()
    assert calls >= 3
