"""The in-process alert hub: WebSocket clients subscribe, each with its own bounded queue.

A subscriber may also ask for lifecycle changes (`changes=True`): an alert acknowledged or
resolved is then offered again, with its new state, so every officer's screen follows.
Publishing never waits on a subscriber. One that lets `max_queue` alerts pile up is dropped
with a reason (it gets what was queued, then `SubscriptionClosed`), so a stalled browser tab
never holds back the others or grows memory without bound.

Publishers and subscribers may live on different event loops (the detector's and the API's,
each on its own thread): a subscription belongs to the loop it was made on, and an offer
from another thread is handed to that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from alerts.lifecycle import StoredAlert

_T = TypeVar("_T")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None  # made outside a loop: offers are put in place

    def wants(self, alert: StoredAlert) -> bool:
        return self.types is None or alert.alert.type.value in self.types

    def offer(self, alert: StoredAlert) -> None:
        self.offer_many([alert])

    def offer_many(self, alerts: Sequence[StoredAlert]) -> None:
        """Queues `alerts` in one step of the subscription's loop, as one publish made them."""
        if alerts:
            self._on_own_loop(self._offer_all, list(alerts))

    def close(self, reason: str) -> None:
        self._on_own_loop(self._close, reason)

    def _on_own_loop(self, call: Callable[[_T], None], arg: _T) -> None:
        loop = self._loop
        if loop is None or _running_loop() is loop:
            call(arg)
        elif not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(call, arg)

    def _offer_all(self, alerts: list[StoredAlert]) -> None:
        for alert in alerts:
            if self.closed_reason is not None:
                return
            if self._queue.qsize() >= self.max_queue:
                self._close(f"too slow: {self.max_queue} alerts waiting")
                return
            self._queue.put_nowait(alert)

    def _close(self, reason: str) -> None:
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
            subscription.offer_many([a for a in alerts if subscription.wants(a)])

    def publish_changes(self, alerts: Sequence[StoredAlert]) -> None:
        """Alerts whose lifecycle moved, to the subscribers that asked for changes."""
        for subscription in list(self._subscribers):
            if subscription.changes:
                subscription.offer_many([a for a in alerts if subscription.wants(a)])

    async def send(self, alerts: Sequence[StoredAlert]) -> None:
        self.publish(alerts)

    async def aclose(self) -> None:
        for subscription in list(self._subscribers):
            subscription.close("the server is stopping")
