"""The in-process hub: filters, order, and a slow subscriber dropped without holding others."""

from __future__ import annotations

import asyncio

import pytest

from alerts.delivery.hub import AlertHub, SubscriptionClosed
from alerts.lifecycle import StoredAlert, opened
from alerts.model import Alert, AlertType


def stored(i: int, kind: AlertType = AlertType.POWER_CUT) -> StoredAlert:
    return opened(i, Alert(kind, "013900000001", "V1", 1_709_280_000_000 + i), 0)


async def test_every_subscriber_gets_each_alert_in_order() -> None:
    hub = AlertHub()
    a, b = hub.subscribe(), hub.subscribe()
    hub.publish([stored(1), stored(2)])
    await hub.send([stored(3)])
    for sub in (a, b):
        assert [(await sub.get()).id for _ in range(3)] == [1, 2, 3]


async def test_a_type_filter_passes_only_those_types() -> None:
    hub = AlertHub()
    only = hub.subscribe(["offline", "gps_jump"])
    hub.publish([stored(1), stored(2, AlertType.OFFLINE), stored(3, AlertType.GPS_JUMP)])
    assert [(await only.get()).id for _ in range(2)] == [2, 3]


async def test_a_slow_subscriber_is_dropped_with_a_reason_and_the_others_go_on() -> None:
    hub = AlertHub(max_queue=3)
    slow, fast = hub.subscribe(), hub.subscribe()
    received: list[int] = []
    for i in range(1, 6):
        hub.publish([stored(i)])
        received.append((await fast.get()).id)
    assert received == [1, 2, 3, 4, 5]
    assert len(hub) == 1  # the slow one is gone
    assert [(await slow.get()).id for _ in range(3)] == [1, 2, 3]  # what was queued
    with pytest.raises(SubscriptionClosed, match="too slow: 3 alerts waiting"):
        await slow.get()


async def test_iterating_ends_when_the_hub_closes() -> None:
    hub = AlertHub()
    sub = hub.subscribe()
    hub.publish([stored(1)])
    await hub.aclose()
    assert [a.id async for a in sub] == [1]
    assert sub.closed_reason == "the server is stopping"
    assert len(hub) == 0


async def test_unsubscribed_clients_get_nothing_more() -> None:
    hub = AlertHub()
    sub = hub.subscribe()
    hub.unsubscribe(sub)
    hub.publish([stored(1)])
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(sub.get(), 0.05)


async def test_a_subscriber_on_another_threads_loop_gets_what_this_loop_publishes() -> None:
    """The API serves on its own thread and loop; the detector publishes from the main one."""
    import threading

    hub = AlertHub()
    ready = threading.Event()
    got: list[int] = []

    def other_thread() -> None:
        async def listen() -> None:
            sub = hub.subscribe()
            ready.set()
            got.extend([(await asyncio.wait_for(sub.get(), 5)).id for _ in range(3)])

        asyncio.run(listen())

    thread = threading.Thread(target=other_thread)
    thread.start()
    assert await asyncio.to_thread(ready.wait, 5)
    hub.publish([stored(1), stored(2)])
    hub.publish([stored(3)])
    await asyncio.to_thread(thread.join, 5)
    assert got == [1, 2, 3]
