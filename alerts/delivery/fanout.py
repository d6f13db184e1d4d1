"""Every new alert to every sink, each sink on its own task with its own bounded backlog.

A sink that fails (its service is down) keeps its alerts and retries them in order with
exponential backoff; the others go on unaffected. An outage is logged once when it starts and
once when the sink delivers again; a backlog that overflows drops its oldest alerts and says how
many (the alerts themselves are safe in the store either way). Delivery is at least once: a
batch that failed part-way is sent again whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.delivery.sink import AlertSink
from alerts.lifecycle import StoredAlert

log = logging.getLogger("lienwatch.alerts")


@dataclass(frozen=True, slots=True)
class SinkStatus:
    """A sink's counters: for /metrics and for tests."""

    name: str
    delivered: int
    pending: int
    dropped: int
    failing: bool
    failures: int


class _Runner:
    """One sink's backlog and the task that drains it."""

    def __init__(self, sink: AlertSink, fanout: Fanout) -> None:
        self.sink = sink
        self.fanout = fanout
        self.backlog: deque[tuple[int, StoredAlert]] = deque()
        self.wake = asyncio.Event()
        self.next_seq = 0
        self.delivered = 0
        self.dropped = 0
        self.failing = False
        self.failures = 0  # consecutive, in the current outage
        self.dropped_in_outage = 0
        self.task: asyncio.Task[None] | None = None

    def offer(self, alerts: Sequence[StoredAlert]) -> None:
        for alert in alerts:
            self.backlog.append((self.next_seq, alert))
            self.next_seq += 1
        overflow = len(self.backlog) - self.fanout.max_backlog
        if overflow > 0:
            for _ in range(overflow):
                self.backlog.popleft()
            self.dropped += overflow
            if not self.dropped_in_outage:
                log.error(
                    "alerts to %s: backlog full (%d): dropping the oldest (stored alerts are"
                    " kept; read them from the API)",
                    self.sink.name,
                    self.fanout.max_backlog,
                )
            self.dropped_in_outage += overflow
        self.wake.set()

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.backlog:
                batch = [a for _, a in list(self.backlog)[: self.fanout.batch_size]]
                last_seq = self.backlog[len(batch) - 1][0]
                try:
                    await self.sink.send(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # any failure of the service: keep and retry
                    self._failed(exc)
                    await asyncio.sleep(self.fanout.backoff_s(self.failures))
                    continue
                while self.backlog and self.backlog[0][0] <= last_seq:
                    self.backlog.popleft()
                self.delivered += len(batch)
                self._recovered()

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if not self.failing:
            self.failing = True
            log.warning(
                "alerts to %s failing (%s: %s): keeping them and retrying",
                self.sink.name,
                type(exc).__name__,
                exc,
            )

    def _recovered(self) -> None:
        if self.failing:
            log.warning(
                "alerts to %s delivered again after %d failed attempts%s",
                self.sink.name,
                self.failures,
                f"; {self.dropped_in_outage} dropped meanwhile" if self.dropped_in_outage else "",
            )
        self.failing = False
        self.failures = 0
        self.dropped_in_outage = 0

    def status(self) -> SinkStatus:
        return SinkStatus(
            self.sink.name,
            self.delivered,
            len(self.backlog),
            self.dropped,
            self.failing,
            self.failures,
        )


class Fanout:
    """Publishes to every sink. `start` and `publish` run on the event loop; the detector's
    worker thread uses `publish_threadsafe`."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        max_backlog: int = 10_000,
        batch_size: int = 500,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self.max_backlog = max_backlog
        self.batch_size = batch_size
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self._runners = [_Runner(sink, self) for sink in sinks]
        self._loop: asyncio.AbstractEventLoop | None = None

    def backoff_s(self, failures: int) -> float:
        """0.5 s, 1 s, 2 s, ... up to the ceiling."""
        return float(min(self.retry_max_s, self.retry_min_s * 2 ** max(0, failures - 1)))

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for runner in self._runners:
            runner.task = asyncio.create_task(runner.run(), name=f"alerts-{runner.sink.name}")

    def publish(self, alerts: Sequence[StoredAlert]) -> None:
        if alerts:
            for runner in self._runners:
                runner.offer(alerts)

    def publish_threadsafe(self, alerts: Sequence[StoredAlert]) -> None:
        if self._loop is None:
            raise RuntimeError("Fanout.start() has not run")
        if alerts:
            self._loop.call_soon_threadsafe(self.publish, list(alerts))

    def status(self) -> list[SinkStatus]:
        return [runner.status() for runner in self._runners]

    async def drain(self, timeout_s: float) -> bool:
        """Waits until every backlog is empty (True) or the timeout passes (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while any(r.backlog for r in self._runners):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def aclose(self, drain_timeout_s: float = 2.0) -> None:
        """Gives the backlogs a moment to go out, then stops the tasks and closes the sinks."""
        await self.drain(drain_timeout_s)
        for runner in self._runners:
            if runner.task is not None:
                runner.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner.task
        for runner in self._runners:
            try:
                await runner.sink.aclose()
            except Exception as exc:  # closing a broken client must not stop the others
                log.warning("closing alert sink %s: %s", runner.sink.name, exc)
