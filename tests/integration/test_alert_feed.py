"""The alert stream of an API process without a detector follows the store (SQLite here; the
split deployment's e2e test runs it on PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alerts.delivery.hub import AlertHub
from alerts.model import Alert, AlertType
from api.stores import StoreAccess
from lienwatch.alert_feed import PAGE, AlertFeed
from store import migrate, open_store

T0 = 1_709_280_000_000


def power_cut(n: int) -> Alert:
    return Alert(AlertType.POWER_CUT, f"0139{n:08d}", f"VIN-{n}", T0 + n)


async def test_the_feed_offers_alerts_stored_after_it_started_in_id_order(tmp_path: Path) -> None:
    migrate(None, tmp_path)
    writer = open_store(None, tmp_path)
    writer.add_alerts([power_cut(0)], T0)  # before the feed: not streamed
    stores = StoreAccess(lambda: open_store(None, tmp_path), threads=1)
    hub = AlertHub()
    subscription = hub.subscribe()
    feed = AlertFeed(stores, hub, interval_s=0.01)
    try:
        assert await feed.poll() == 0  # starts at the newest alert stored
        writer.add_alerts([power_cut(n) for n in range(1, PAGE + 3)], T0)
        assert await feed.poll() == PAGE + 2  # more than a page: read to the end
        assert await feed.poll() == 0
        got = [await asyncio.wait_for(subscription.get(), 1) for _ in range(PAGE + 2)]
        assert [a.alert.vehicle_id for a in got] == [f"VIN-{n}" for n in range(1, PAGE + 3)]
    finally:
        writer.close()
        stores.close()
