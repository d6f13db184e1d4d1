"""The deliverer against its outbox port: an outage error handed in by the composition root is
warned about once and retried; any other error is logged as a failed round."""

from __future__ import annotations

import logging
import threading

import pytest

from alerts.delivery.webhooks import WebhookDeliverer, WebhookPolicy
from alerts.outbox import WebhookDelivery


class OutageError(RuntimeError):
    pass


class FlakyOutbox:
    """Raises `error` on the first `failures` claims, then has nothing due; `done` is set then."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error, self.failures = error, failures
        self.claims = 0
        self.done = threading.Event()

    def due_webhooks(
        self, now_ms: int, limit: int, lease_ms: int = 60_000
    ) -> list[WebhookDelivery]:
        self.claims += 1
        if self.claims <= self.failures:
            raise self.error
        self.done.set()
        return []

    def finish_webhook_attempt(
        self, delivery_id: int, now_ms: int, *, error: str | None, retry_at_ms: int | None
    ) -> None:
        raise AssertionError("nothing was due")

    def close(self) -> None:
        pass


def run_until_drained(outbox: FlakyOutbox, outage: tuple[type[Exception], ...]) -> None:
    worker = WebhookDeliverer(lambda: outbox, WebhookPolicy(poll_s=0.01), outage_errors=outage)
    worker.start()
    try:
        assert outbox.done.wait(10), "the deliverer stopped retrying"
    finally:
        worker.stop()


def test_an_outage_is_warned_once_and_its_end_told(caplog: pytest.LogCaptureFixture) -> None:
    outbox = FlakyOutbox(OutageError("connection refused"), failures=3)
    with caplog.at_level(logging.WARNING, logger="lienwatch.alerts"):
        run_until_drained(outbox, (OutageError,))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "webhook outbox unreachable (connection refused): retrying",
        "webhook outbox reachable again",
    ]


def test_other_errors_are_failed_rounds(caplog: pytest.LogCaptureFixture) -> None:
    outbox = FlakyOutbox(OutageError("a bug"), failures=2)
    with caplog.at_level(logging.WARNING, logger="lienwatch.alerts"):
        run_until_drained(outbox, ())
    assert [r.getMessage() for r in caplog.records] == [
        "webhook delivery round failed; going on"
    ] * 2
