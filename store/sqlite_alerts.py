"""Alerts and the webhook outbox on SQLite: the SQL behind `SqliteStore`'s alert methods.

Each function runs on a connection the adapter holds inside its transaction (writes) or as a
plain read, so the adapter keeps one place for error mapping.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from alerts.lifecycle import AlertState, StoredAlert, assign, opened, transition
from alerts.model import Alert
from alerts.outbox import AlertsAdded, WebhookDelivery, WebhookState
from organizations import Scope
from store.alert_rows import (
    ALERT_FIELDS,
    ENDPOINT_URLS,
    ORG_PATH,
    details_text,
    first_of_each_incident,
    incident_key,
    lifecycle_values,
    stored_from_row,
    webhook_body,
    webhook_from_row,
    with_unit,
)
from store.interface import (
    AlertNotFoundError,
)
from store.orgs import scope_condition

_SELECT = (
    "SELECT " + ", ".join(ALERT_FIELDS) + ", " + ORG_PATH.format(table="alerts") + " FROM alerts"
)
_KEY_WHERE = "type = ? AND vehicle_id = ? AND terminal = ? AND fence_id = ? AND time_ms = ?"
_WEBHOOK_FIELDS = (
    "id, alert_id, url, body, state, attempts, next_attempt_ms, created_ms, updated_ms,"
    " last_error, secret"
)


def add_alerts(
    conn: sqlite3.Connection, alerts: Sequence[Alert], now_ms: int, webhook_urls: Sequence[str]
) -> AlertsAdded:
    by_key: dict[tuple[Any, ...], StoredAlert] = {}
    new: list[StoredAlert] = []
    for alert in first_of_each_incident(alerts):
        key = incident_key(alert)
        row = conn.execute(
            "INSERT INTO alerts (type, vehicle_id, terminal, fence_id, time_ms, severity,"
            " details, opened_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING id",
            (*key, alert.severity, details_text(alert), now_ms, now_ms),
        ).fetchone()
        if row is None:
            found = conn.execute(f"{_SELECT} WHERE {_KEY_WHERE}", key).fetchone()
            by_key[key] = stored_from_row(found)
            continue
        org, path = conn.execute(
            f"SELECT org_id, {ORG_PATH.format(table='alerts')} FROM alerts WHERE id = ?",
            (row[0],),
        ).fetchone()
        stored = with_unit(opened(int(row[0]), alert, now_ms), int(org), path)
        by_key[key] = stored
        receivers = [(url, None) for url in webhook_urls]
        receivers += conn.execute(ENDPOINT_URLS, (path,)).fetchall()
        new.append(stored)
        conn.executemany(
            "INSERT INTO webhook_outbox (alert_id, url, body, next_attempt_ms, created_ms,"
            " updated_ms, secret) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (stored.id, url, webhook_body(stored), now_ms, now_ms, now_ms, secret)
                for url, secret in receivers
            ],
        )
    return AlertsAdded([by_key[incident_key(a)] for a in alerts], new)


def list_alerts(
    conn: sqlite3.Connection,
    alert_type: str | None,
    since_ms: int | None,
    vehicle_id: str | None,
    state: AlertState | None,
    after_id: int,
    limit: int,
    scope: Scope | None = None,
) -> list[StoredAlert]:
    where: list[str] = ["id > ?"]
    params: list[Any] = [after_id]
    within, scope_params = scope_condition(scope)
    if within is not None:
        where.append(within)
        params += scope_params
    filters = (
        ("type", alert_type),
        ("vehicle_id", vehicle_id),
        ("state", None if state is None else state.value),
    )
    for column, value in filters:
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since_ms is not None:
        where.append("time_ms >= ?")
        params.append(since_ms)
    rows = conn.execute(
        f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", (*params, limit)
    ).fetchall()
    return [stored_from_row(row) for row in rows]


def get_alert(conn: sqlite3.Connection, alert_id: int) -> StoredAlert | None:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (alert_id,)).fetchone()
    return None if row is None else stored_from_row(row)


def transition_alert(
    conn: sqlite3.Connection,
    alert_id: int,
    state: AlertState,
    actor: str,
    note: str | None,
    now_ms: int,
) -> StoredAlert:
    """Call inside a write transaction (BEGIN IMMEDIATE): the read and the update are atomic."""
    return _change(conn, alert_id, lambda a: transition(a, state, actor, note, now_ms))


def assign_alert(
    conn: sqlite3.Connection,
    alert_id: int,
    assignee: str | None,
    actor: str,
    note: str | None,
    now_ms: int,
) -> StoredAlert:
    """Call inside a write transaction (BEGIN IMMEDIATE): the read and the update are atomic."""
    return _change(conn, alert_id, lambda a: assign(a, assignee, actor, note, now_ms))


def _change(
    conn: sqlite3.Connection, alert_id: int, apply: Callable[[StoredAlert], StoredAlert]
) -> StoredAlert:
    """Reads the alert, applies one lifecycle step (`alerts.lifecycle`), writes every lifecycle
    column back."""
    current = get_alert(conn, alert_id)
    if current is None:
        raise AlertNotFoundError(f"no alert {alert_id}")
    moved = apply(current)
    conn.execute(
        "UPDATE alerts SET state = ?, updated_ms = ?, acknowledged_by = ?, acknowledged_ms = ?,"
        " resolved_by = ?, resolved_ms = ?, note = ?, assignee = ?, assigned_by = ?,"
        " assigned_ms = ? WHERE id = ?",
        (*lifecycle_values(moved), alert_id),
    )
    return moved


def claim_webhooks(
    conn: sqlite3.Connection, now_ms: int, limit: int, lease_ms: int
) -> list[WebhookDelivery]:
    """Due rows, pushed `lease_ms` ahead so a second deliverer (or a crash) cannot double up
    before the attempt is recorded. Call inside a write transaction."""
    rows = conn.execute(
        f"SELECT {_WEBHOOK_FIELDS} FROM webhook_outbox WHERE state = 'pending'"
        " AND next_attempt_ms <= ? ORDER BY next_attempt_ms, id LIMIT ?",
        (now_ms, limit),
    ).fetchall()
    lease_until = now_ms + lease_ms
    conn.executemany(
        "UPDATE webhook_outbox SET next_attempt_ms = ? WHERE id = ?",
        [(lease_until, row[0]) for row in rows],
    )
    return sorted(
        (webhook_from_row((*row[:6], lease_until, *row[7:])) for row in rows), key=lambda d: d.id
    )


def finish_webhook_attempt(
    conn: sqlite3.Connection,
    delivery_id: int,
    now_ms: int,
    error: str | None,
    retry_at_ms: int | None,
) -> bool:
    """Records one attempt; False when there is no such row."""
    state = (
        WebhookState.DELIVERED
        if error is None
        else WebhookState.PENDING
        if retry_at_ms is not None
        else WebhookState.FAILED
    )
    cur = conn.execute(
        "UPDATE webhook_outbox SET state = ?, attempts = attempts + 1, updated_ms = ?,"
        " last_error = ?, next_attempt_ms = coalesce(?, next_attempt_ms) WHERE id = ?",
        (state.value, now_ms, error, retry_at_ms, delivery_id),
    )
    return cur.rowcount == 1


def list_webhooks(conn: sqlite3.Connection, alert_id: int | None) -> list[WebhookDelivery]:
    where, params = ("WHERE alert_id = ?", (alert_id,)) if alert_id is not None else ("", ())
    rows = conn.execute(
        f"SELECT {_WEBHOOK_FIELDS} FROM webhook_outbox {where} ORDER BY id", params
    ).fetchall()
    return [webhook_from_row(row) for row in rows]
