"""What storing alerts hands back: the alerts as stored, and the webhook outbox rows.

Plain records, no I/O: the store fills them and the delivery side reads them, so both depend on
this module and neither on the other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from alerts.lifecycle import StoredAlert


@dataclass(frozen=True, slots=True)
class AlertsAdded:
    """`add_alerts`: every offered alert as stored (same order), and those new in this call."""

    stored: list[StoredAlert]
    new: list[StoredAlert]


class WebhookState(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # given up after the last allowed attempt


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One alert to one webhook URL in the outbox; `body` is the exact JSON that is signed."""

    id: int
    alert_id: int
    url: str
    body: bytes
    state: WebhookState
    attempts: int
    next_attempt_ms: int
    created_ms: int
    updated_ms: int
    last_error: str | None
    secret: str | None = field(default=None, repr=False)  # its receiver's own HMAC key
