"""What delivery needs from storage, and nothing more.

The store implements both protocols structurally and the composition root hands a factory of
it in, so delivery never imports the store (which itself imports the alert domain).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from alerts.model import Alert
from alerts.outbox import AlertsAdded, WebhookDelivery


class AlertLog(Protocol):
    """Where the recorder writes alerts first: idempotent on the incident key."""

    def add_alerts(
        self, alerts: Sequence[Alert], now_ms: int, webhook_urls: Sequence[str] = ()
    ) -> AlertsAdded: ...

    def close(self) -> None: ...


class WebhookOutbox(Protocol):
    """The durable webhook outbox the deliverer drains: claim due rows, record each attempt."""

    def due_webhooks(
        self, now_ms: int, limit: int, lease_ms: int = 60_000
    ) -> list[WebhookDelivery]: ...

    def finish_webhook_attempt(
        self, delivery_id: int, now_ms: int, *, error: str | None, retry_at_ms: int | None
    ) -> None: ...

    def close(self) -> None: ...
