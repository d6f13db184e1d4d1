"""An alert's life after it fires: open → acknowledged → resolved (or open → resolved).

Pure: no I/O and no clock. The store keeps `StoredAlert` rows and applies `transition` inside a
transaction, so the table below is the one place that says which moves are allowed; the API
turns `TransitionError` into a 409.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, replace
from datetime import timezone
from typing import Any

from alerts.model import DEFAULT_UTC_OFFSET, Alert, format_time


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# (from, to) pairs a person may ask for; everything else is a TransitionError.
ALLOWED: frozenset[tuple[AlertState, AlertState]] = frozenset(
    {
        (AlertState.OPEN, AlertState.ACKNOWLEDGED),
        (AlertState.OPEN, AlertState.RESOLVED),
        (AlertState.ACKNOWLEDGED, AlertState.RESOLVED),
    }
)


class TransitionError(ValueError):
    """The asked move is not allowed from the alert's current state; the message says why."""

    def __init__(self, alert_id: int, current: AlertState, target: AlertState) -> None:
        self.alert_id, self.current, self.target = alert_id, current, target
        super().__init__(_reason(alert_id, current, target))


def _reason(alert_id: int, current: AlertState, target: AlertState) -> str:
    if current is AlertState.RESOLVED:
        return f"alert {alert_id} is resolved: a resolved alert is final"
    if current is target:
        return f"alert {alert_id} is already {current.value}"
    if target is AlertState.OPEN:
        return f"alert {alert_id} is {current.value}: an alert cannot be reopened"
    return f"alert {alert_id} cannot go from {current.value} to {target.value}"


def can_move(current: AlertState, target: AlertState) -> bool:
    return (current, target) in ALLOWED


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as kept by the store: its id, the fired alert, and its lifecycle so far.

    Times are epoch ms UTC. `note` is the latest note given with a transition.
    """

    id: int
    alert: Alert
    state: AlertState
    opened_ms: int
    updated_ms: int
    acknowledged_by: str | None = None
    acknowledged_ms: int | None = None
    resolved_by: str | None = None
    resolved_ms: int | None = None
    note: str | None = None
    org: int | None = None  # the owning organization unit (its vehicle's, else its device's)
    org_path: str | None = None  # that unit's id path from the platform root (`/1/7/12/`)
    tenant: int | None = None  # the tenant above it (None: the platform's own)
    assignee: str | None = None
    assigned_by: str | None = None
    assigned_ms: int | None = None

    def to_json(self, tz: timezone = DEFAULT_UTC_OFFSET) -> dict[str, Any]:
        """Contracts section 3's alert plus `id`, `state` and the lifecycle fields."""

        def when(ms: int | None) -> str | None:
            return None if ms is None else format_time(ms, tz)

        return {
            "id": self.id,
            **self.alert.to_json(tz),
            "state": self.state.value,
            "opened_at": format_time(self.opened_ms, tz),
            "updated_at": format_time(self.updated_ms, tz),
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": when(self.acknowledged_ms),
            "resolved_by": self.resolved_by,
            "resolved_at": when(self.resolved_ms),
            "note": self.note,
            "org": self.org,
            "assignee": self.assignee,
            "assigned_by": self.assigned_by,
            "assigned_at": when(self.assigned_ms),
        }


def alert_text(stored: StoredAlert) -> str:
    """`to_json` as compact UTF-8 text: what every channel (stream, Redis, MQTT, webhook) sends."""
    return json.dumps(stored.to_json(), ensure_ascii=False, separators=(",", ":"))


def opened(alert_id: int, alert: Alert, now_ms: int) -> StoredAlert:
    """A newly stored alert: open since `now_ms`."""
    return StoredAlert(alert_id, alert, AlertState.OPEN, now_ms, now_ms)


def transition(
    stored: StoredAlert, target: AlertState, actor: str, note: str | None, now_ms: int
) -> StoredAlert:
    """The alert after `actor` moved it to `target` at `now_ms`; a note replaces the last one."""
    if not can_move(stored.state, target):
        raise TransitionError(stored.id, stored.state, target)
    moved = replace(
        stored,
        state=target,
        updated_ms=now_ms,
        note=note if note is not None else stored.note,
    )
    if target is AlertState.ACKNOWLEDGED:
        return replace(moved, acknowledged_by=actor, acknowledged_ms=now_ms)
    return replace(moved, resolved_by=actor, resolved_ms=now_ms)


def assign(
    stored: StoredAlert, assignee: str | None, actor: str, note: str | None, now_ms: int
) -> StoredAlert:
    """The alert after `actor` handed it to `assignee` (None: nobody) at `now_ms`; its state
    stays. A resolved alert is final: assigning it is a TransitionError."""
    if stored.state is AlertState.RESOLVED:
        raise TransitionError(stored.id, stored.state, stored.state)
    return replace(
        stored,
        assignee=assignee,
        assigned_by=actor,
        assigned_ms=now_ms,
        updated_ms=now_ms,
        note=note if note is not None else stored.note,
    )
