"""Alert rows: row ↔ `StoredAlert`, the columns every read selects, and the webhook body.
Pure (no database); the SQL is `store.alert_records`, the incident key `alerts.model`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from alerts.lifecycle import AlertState, StoredAlert, alert_text
from alerts.model import Alert, AlertType
from alerts.outbox import WebhookDelivery, WebhookState
from organizations import tenant_of

# Columns every read selects, in this order (times as epoch ms in both adapters' queries).
ALERT_FIELDS = (
    "id",
    "type",
    "terminal",
    "vehicle_id",
    "fence_id",
    "time_ms",
    "severity",
    "details",
    "state",
    "opened_ms",
    "updated_ms",
    "acknowledged_by",
    "acknowledged_ms",
    "resolved_by",
    "resolved_ms",
    "note",
    "org_id",
    "assignee",
    "assigned_by",
    "assigned_ms",
)


def details_text(alert: Alert) -> str:
    return json.dumps(alert.details, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# Read after `ALERT_FIELDS`: the path of the alert's unit (`{table}`: the alerts table's name
# or alias in the query).
ORG_PATH = "(SELECT path FROM orgs WHERE orgs.id = {table}.org_id)"
# Webhook endpoints an alert of unit path `?` goes to: those of that unit and the units above.
ENDPOINT_URLS = (
    "SELECT w.url, w.secret FROM webhook_endpoints w JOIN orgs o ON o.id = w.org_id"
    " WHERE substr(?, 1, length(o.path)) = o.path ORDER BY w.id"
)


def with_unit(stored: StoredAlert, org: int, path: str | None) -> StoredAlert:
    """A newly stored alert with the unit the database gave it."""
    return replace(stored, org=org, org_path=path, tenant=None if path is None else tenant_of(path))


def stored_from_row(row: Sequence[Any]) -> StoredAlert:
    """A row in `ALERT_FIELDS` order then `ORG_PATH`; details as a JSON string or an already
    parsed dict."""
    (
        alert_id, kind, terminal, vehicle_id, fence_id, time_ms, severity, details, state,
        opened_ms, updated_ms, ack_by, ack_ms, resolved_by, resolved_ms, note, org,
        assignee, assigned_by, assigned_ms, path,
    ) = row  # fmt: skip
    alert = Alert(
        AlertType(kind),
        terminal,
        vehicle_id,
        int(time_ms),
        fence_id or None,
        severity,
        json.loads(details) if isinstance(details, str | bytes) else dict(details),
    )
    return StoredAlert(
        id=int(alert_id),
        alert=alert,
        state=AlertState(state),
        opened_ms=int(opened_ms),
        updated_ms=int(updated_ms),
        acknowledged_by=ack_by,
        acknowledged_ms=None if ack_ms is None else int(ack_ms),
        resolved_by=resolved_by,
        resolved_ms=None if resolved_ms is None else int(resolved_ms),
        note=note,
        org=int(org),
        org_path=path,
        tenant=None if path is None else tenant_of(path),
        assignee=assignee,
        assigned_by=assigned_by,
        assigned_ms=None if assigned_ms is None else int(assigned_ms),
    )


def lifecycle_values(moved: StoredAlert) -> tuple[object, ...]:
    """The lifecycle columns both adapters write back after a step, in this order: state,
    updated, acknowledged by and at, resolved by and at, note, assignee, assigned by and at."""
    return (
        moved.state.value,
        moved.updated_ms,
        moved.acknowledged_by,
        moved.acknowledged_ms,
        moved.resolved_by,
        moved.resolved_ms,
        moved.note,
        moved.assignee,
        moved.assigned_by,
        moved.assigned_ms,
    )


def webhook_body(stored: StoredAlert) -> bytes:
    """The bytes a webhook receiver gets (and whose HMAC it checks): the alert's API JSON."""
    return alert_text(stored).encode()


def check_page(after_id: int, limit: int) -> None:
    if after_id < 0:
        raise ValueError("after_id must be >= 0")
    if limit < 1:
        raise ValueError("limit must be >= 1")


def webhook_from_row(row: Sequence[Any]) -> WebhookDelivery:
    """An outbox row in `_WEBHOOK_FIELDS` order (both adapters select the same columns)."""
    did, alert_id, url, body, state, attempts, next_ms, created, updated, error, secret = row
    return WebhookDelivery(
        id=int(did),
        alert_id=int(alert_id),
        url=url,
        body=bytes(body),
        state=WebhookState(state),
        attempts=int(attempts),
        next_attempt_ms=int(next_ms),
        created_ms=int(created),
        updated_ms=int(updated),
        last_error=error,
        secret=secret,
    )
