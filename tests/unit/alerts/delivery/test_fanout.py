"""The fan-out: a failing sink keeps its alerts, retries in order, logs once, and never holds
back the others; an overflowing backlog drops its oldest and says so."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from alerts.delivery.fanout import Fanout
from alerts.delivery.hub import AlertHub
from alerts.lifecycle import StoredAlert, opened
from alerts.model import Alert, AlertType


def stored(i: int) -> StoredAlert:
    return opened(i, Alert(AlertType.POWER_CUT, "013900000001", "V1", i), 0)


class FlakySink:
    """Fails while `down`; records what got through."""

    def __init__(self, name: str = "flaky") -> None:
        self._name = name
        self.down = False
        self.got: list[int] = []
        self.attempts = 0
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    async def send(self, alerts: Sequence[StoredAlert]) -> None:
        self.attempts += 1
        if self.down:
            raise ConnectionError("service down")
        self.got += [a.id for a in alerts]

    async def aclose(self) -> None:
        self.closed = True


async def until(condition: object, timeout_s: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_a_failing_sink_retries_in_order_while_the_others_deliver(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "lienwatch.alerts")
    flaky, steady, hub = FlakySink(), FlakySink("steady"), AlertHub()
    sub = hub.subscribe()
    fanout = Fanout([flaky, steady, hub], retry_min_s=0.01, retry_max_s=0.02)
    fanout.start()
    flaky.down = True
    fanout.publish([stored(1), stored(2)])
    fanout.publish([stored(3)])
    await until(lambda: steady.got == [1, 2, 3] and flaky.attempts >= 4)
    assert [(await sub.get()).id for _ in range(3)] == [1, 2, 3]
    status = {s.name: s for s in fanout.status()}
    assert status["flaky"].failing and status["flaky"].pending == 3
    flaky.down = False
    await until(lambda: flaky.got == [1, 2, 3])
    status = {s.name: s for s in fanout.status()}
    assert (status["flaky"].failing, status["flaky"].delivered, status["flaky"].pending) == (
        False,
        3,
        0,
    )
    messages = [r.getMessage() for r in caplog.records if "flaky" in r.getMessage()]
    assert len(messages) == 2  # one when it starts failing, one when it recovers
    assert "failing" in messages[0] and "delivered again" in messages[1]
    await fanout.aclose()
    assert flaky.closed and steady.closed


async def test_an_overflowing_backlog_drops_its_oldest_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = FlakySink()
    flaky.down = True
    fanout = Fanout([flaky], max_backlog=3, retry_min_s=0.01, retry_max_s=0.01)
    fanout.start()
    for i in range(1, 6):
        fanout.publish([stored(i)])
    (status,) = fanout.status()
    assert (status.pending, status.dropped) == (3, 2)
    assert any("backlog full" in r.getMessage() for r in caplog.records)
    flaky.down = False
    await until(lambda: flaky.got == [3, 4, 5])
    await fanout.aclose()


async def test_publishing_from_another_thread_reaches_the_sinks() -> None:
    sink = FlakySink()
    fanout = Fanout([sink])
    fanout.start()
    await asyncio.to_thread(fanout.publish_threadsafe, [stored(7)])
    await until(lambda: sink.got == [7])
    await fanout.aclose()


async def test_closing_waits_briefly_for_the_backlog_then_stops() -> None:
    sink = FlakySink()
    sink.down = True
    fanout = Fanout([sink], retry_min_s=0.01)
    fanout.start()
    fanout.publish([stored(1)])
    started = asyncio.get_running_loop().time()
    await fanout.aclose(drain_timeout_s=0.1)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert sink.closed


def test_backoff_doubles_up_to_its_ceiling() -> None:
    fanout = Fanout([], retry_min_s=0.5, retry_max_s=3.0)
    assert [fanout.backoff_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
