"""The alert stream of an API process that runs no detector: new alerts read from the store.

The detector stores every alert before it fans it out, so the store is the one place an `api`
process of a split deployment can follow: it reads alerts past the last id it has seen every
`interval_s` and offers them to its own hub (the WebSocket stream). It starts at the newest
alert stored, as a stream client of one process sees only alerts raised after it subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from alerts.delivery.hub import AlertHub
from alerts.lifecycle import StoredAlert
from api.stores import StoreAccess
from store import Store

log = logging.getLogger("lienwatch.alerting")
PAGE = 500


def _page(store: Store, *, after_id: int) -> list[StoredAlert]:
    return store.list_alerts(after_id=after_id, limit=PAGE)


class AlertFeed:
    """Polls the store for new alerts into `hub`; see the module docstring."""

    def __init__(self, stores: StoreAccess, hub: AlertHub, *, interval_s: float = 0.5) -> None:
        self.stores = stores
        self.hub = hub
        self.interval_s = interval_s
        self.last_id: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-feed")

    async def poll(self) -> int:
        """Offers the alerts stored since the last poll; returns how many."""
        if self.last_id is None:
            self.last_id = await self.stores.run(lambda s: s.last_alert_id())
            return 0
        offered = 0
        while True:
            page = await self.stores.run(partial(_page, after_id=self.last_id))
            if page:
                self.last_id = page[-1].id
                self.hub.publish(page)
                offered += len(page)
            if len(page) < PAGE:
                return offered

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.poll()
            except Exception as exc:  # the store is down: try again next interval
                if not failing:
                    log.warning("cannot read new alerts for the stream (retrying): %s", exc)
                failing = True
            else:
                failing = False
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
