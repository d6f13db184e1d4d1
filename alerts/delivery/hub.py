"""The in-process alert hub: WebSocket clients subscribe, each with its own bounded queue.

A subscriber may also ask for lifecycle changes (`changes=True`): an alert acknowledged or
resolved is then offered again, with its new state, so every officer's screen follows.
Publishing never waits on a subscriber. One that lets `max_queue` alerts pile up is dropped
with a reason (it gets what was queued, then `SubscriptionClosed`), so a stalled browser tab
never holds back the others or grows memory without bound. Runs on one event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from alerts.lifecycle import StoredAlert


class SubscriptionClosed(Exception):
    """The hub dropped this subscriber (too slow) or closed; `reason` says which."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Subscription:
    """Alerts for one subscriber, optionally only some types; iterate it or `await get()`."""

    def __init__(
        self, hub: AlertHub, types: frozenset[str] | None, max_queue: int, changes: bool = False
    ) -> None:
        self._hub = hub
        self.types = types
        self.changes = changes
        self.max_queue = max_queue
        self._queue: asyncio.Queue[StoredAlert | None] = asyncio.Queue()
        self.closed_reason: str | None = None

    def wants(self, alert: StoredAlert) -> bool:
        return self.types is None or alert.alert.type.value in self.types

    def offer(self, alert: StoredAlert) -> None:
        if self.closed_reason is not None:
            return
        if self._queue.qsize() >= self.max_queue:
            self.close(f"too slow: {self.max_queue} alerts waiting")
            return
        self._queue.put_nowait(alert)

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._queue.put_nowait(None)
            self._hub.unsubscribe(self)

    async def get(self) -> StoredAlert:
        item = await self._queue.get()
        if item is None:
            raise SubscriptionClosed(self.closed_reason or "closed")
        return item

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StoredAlert:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None


class AlertHub:
    """An `AlertSink` that hands alerts to in-process subscribers."""

    def __init__(self, max_queue: int = 1000) -> None:
        self.max_queue = max_queue
        self._subscribers: set[Subscription] = set()

    @property
    def name(self) -> str:
        return "stream"

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self, types: Iterable[str] | None = None, *, changes: bool = False
    ) -> Subscription:
        wanted = frozenset(types) if types is not None else None
        subscription = Subscription(self, wanted, self.max_queue, changes)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, alerts: Sequence[StoredAlert]) -> None:
        for subscription in list(self._subscribers):
            for alert in alerts:
                if subscription.wants(alert):
                    subscription.offer(alert)

    def publish_changes(self, alerts: Sequence[StoredAlert]) -> None:
        """Alerts whose lifecycle moved, to the subscribers that asked for changes."""
        for subscription in list(self._subscribers):
            if subscription.changes:
                for alert in alerts:
                    if subscription.wants(alert):
                        subscription.offer(alert)

    async def send(self, alerts: Sequence[StoredAlert]) -> None:
        self.publish(alerts)

    async def aclose(self) -> None:
        for subscription in list(self._subscribers):
            subscription.close("the server is stopping")
