"""Retention: positions older than `LIENWATCH_RETENTION_DAYS` leave the store.

The store does the deleting (`Store.drop_positions_before`: whole day partitions on PostgreSQL,
chunks on TimescaleDB, rows on SQLite); this runs it every few hours in a worker thread. Latest
positions, devices, alerts and loans are kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from lienwatch.periodic import PeriodicTask
from store import Store

log = logging.getLogger("lienwatch.retention")

DAY_MS = 86_400_000
INTERVAL_S = 6 * 3600.0


def drop_expired(store: Store, keep_days: int, now_ms: int) -> int:
    """One pass; returns what the store says it dropped."""
    dropped = store.drop_positions_before(now_ms - keep_days * DAY_MS)
    if dropped:
        log.info("retention: dropped %d (positions older than %d days)", dropped, keep_days)
    return dropped


def retention_task(
    store_factory: Callable[[], Store],
    keep_days: int,
    clock_ms: Callable[[], int],
    interval_s: float = INTERVAL_S,
) -> PeriodicTask:
    def run() -> int:
        store = store_factory()
        try:
            return drop_expired(store, keep_days, clock_ms())
        finally:
            store.close()

    async def work() -> int:
        return await asyncio.to_thread(run)

    return PeriodicTask("retention", interval_s, work)
