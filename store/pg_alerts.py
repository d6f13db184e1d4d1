"""Alerts and the webhook outbox on PostgreSQL: the SQL behind `PostgresStore`'s alert methods.

Set-based where a burst can be large (thousands of devices going offline at once make as many
alerts): one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING per call, then one read
of every offered incident by key. Times cross as epoch ms and are converted in SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from alerts.lifecycle import AlertState, StoredAlert, assign, opened, transition
from alerts.model import Alert
from alerts.outbox import AlertsAdded, WebhookDelivery, WebhookState
from organizations import Scope
from store.alert_rows import (
    ENDPOINT_URLS,
    ORG_PATH,
    IncidentKey,
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
from store.statements import pyformat

Conn = psycopg.Connection[tuple[Any, ...]]


def _ts(column: str) -> str:
    """A timestamptz column as epoch ms (exact: extract gives numeric)."""
    return f"floor(extract(epoch FROM {column}) * 1000)::bigint"


_MS = "timestamptz 'epoch' + %s * interval '1 millisecond'"
_SELECT = (
    "SELECT a.id, a.type, a.terminal, a.vehicle_id, a.fence_id, "
    + ", ".join(
        [
            _ts("a.time"),
            "a.severity",
            "a.details",
            "a.state",
            _ts("a.opened_at"),
            _ts("a.updated_at"),
            "a.acknowledged_by",
            _ts("a.acknowledged_at"),
            "a.resolved_by",
            _ts("a.resolved_at"),
            "a.note",
            "a.org_id",
            "a.assignee",
            "a.assigned_by",
            _ts("a.assigned_at"),
            ORG_PATH.format(table="a"),
        ]
    )
    + " FROM alerts a"
)
_UNNEST = (
    "unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[],"
    " %s::text[]) WITH ORDINALITY AS u (type, vehicle_id, terminal, fence_id, time_ms,"
    " severity, details, ord)"
)
_INSERT = f"""
INSERT INTO alerts (type, vehicle_id, terminal, fence_id, time, severity, details,
                    opened_at, updated_at)
SELECT type, vehicle_id, terminal, fence_id,
       timestamptz 'epoch' + time_ms * interval '1 millisecond', severity, details::jsonb,
       {_MS}, {_MS}
FROM {_UNNEST}
ORDER BY ord
ON CONFLICT (type, vehicle_id, terminal, fence_id, time) DO NOTHING
RETURNING id
"""
_BY_KEYS = f"""
{_SELECT}
JOIN unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[])
    AS k (type, vehicle_id, terminal, fence_id, time_ms)
  ON a.type = k.type AND a.vehicle_id = k.vehicle_id AND a.terminal = k.terminal
 AND a.fence_id = k.fence_id
 AND a.time = timestamptz 'epoch' + k.time_ms * interval '1 millisecond'
"""
_WEBHOOK_FIELDS = "id, alert_id, url, body, state, attempts, " + ", ".join(
    [_ts("next_attempt_at"), _ts("created_at"), _ts("updated_at"), "last_error", "secret"]
)


def _columns(alerts: Sequence[Alert]) -> list[list[Any]]:
    keys = [incident_key(a) for a in alerts]
    return [list(column) for column in zip(*keys, strict=True)] if keys else [[]] * 5


def add_alerts(
    conn: Conn, alerts: Sequence[Alert], now_ms: int, webhook_urls: Sequence[str]
) -> AlertsAdded:
    """Call inside a transaction: the alerts and their outbox rows commit together."""
    offered = first_of_each_incident(alerts)
    key_columns = _columns(offered)
    inserted = conn.execute(
        _INSERT,
        (
            now_ms,
            now_ms,
            *key_columns,
            [a.severity for a in offered],
            [details_text(a) for a in offered],
        ),
    ).fetchall()
    new_ids = {int(row[0]) for row in inserted}
    rows = conn.execute(_BY_KEYS, key_columns).fetchall()
    by_key: dict[IncidentKey, StoredAlert] = {}
    for row in rows:
        stored = stored_from_row(row)
        by_key[incident_key(stored.alert)] = stored
    new: list[StoredAlert] = []
    outbox: list[tuple[int, str, bytes, str | None]] = []
    for alert in offered:
        found = by_key[incident_key(alert)]
        if found.id in new_ids:
            # The caller's alert (details exactly as given), open since now.
            stored = with_unit(opened(found.id, alert, now_ms), found.org or 1, found.org_path)
            by_key[incident_key(alert)] = stored
            new.append(stored)
            receivers = [(url, None) for url in webhook_urls]
            receivers += conn.execute(pyformat(ENDPOINT_URLS), (found.org_path,)).fetchall()
            outbox += [(stored.id, url, webhook_body(stored), key) for url, key in receivers]
    if outbox:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO webhook_outbox (alert_id, url, body, next_attempt_at, created_at,"
                f" updated_at, secret) VALUES (%s, %s, %s, {_MS}, {_MS}, {_MS}, %s)",
                [(aid, url, body, now_ms, now_ms, now_ms, key) for aid, url, body, key in outbox],
            )
    return AlertsAdded([by_key[incident_key(a)] for a in alerts], new)


def list_alerts(
    conn: Conn,
    alert_type: str | None,
    since_ms: int | None,
    vehicle_id: str | None,
    state: AlertState | None,
    after_id: int,
    limit: int,
    scope: Scope | None = None,
) -> list[StoredAlert]:
    where: list[str] = ["a.id > %s"]
    params: list[Any] = [after_id]
    within, scope_params = scope_condition(scope, "%s", "a.org_id")
    if within is not None:
        where.append(within)
        params += scope_params
    filters = (
        ("a.type", alert_type),
        ("a.vehicle_id", vehicle_id),
        ("a.state", None if state is None else state.value),
    )
    for column, value in filters:
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if since_ms is not None:
        where.append(f"a.time >= {_MS}")
        params.append(since_ms)
    rows = conn.execute(
        f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY a.id LIMIT %s", (*params, limit)
    ).fetchall()
    return [stored_from_row(row) for row in rows]


def get_alert(conn: Conn, alert_id: int, *, for_update: bool = False) -> StoredAlert | None:
    lock = " FOR UPDATE" if for_update else ""
    row = conn.execute(f"{_SELECT} WHERE a.id = %s{lock}", (alert_id,)).fetchone()
    return None if row is None else stored_from_row(row)


def transition_alert(
    conn: Conn, alert_id: int, state: AlertState, actor: str, note: str | None, now_ms: int
) -> StoredAlert:
    """Call inside a transaction: the row stays locked from the read to the update."""
    return _change(conn, alert_id, lambda a: transition(a, state, actor, note, now_ms))


def assign_alert(
    conn: Conn, alert_id: int, assignee: str | None, actor: str, note: str | None, now_ms: int
) -> StoredAlert:
    """Call inside a transaction: the row stays locked from the read to the update."""
    return _change(conn, alert_id, lambda a: assign(a, assignee, actor, note, now_ms))


def _change(conn: Conn, alert_id: int, apply: Callable[[StoredAlert], StoredAlert]) -> StoredAlert:
    """Reads the alert locked, applies one lifecycle step (`alerts.lifecycle`), writes every
    lifecycle column back."""
    current = get_alert(conn, alert_id, for_update=True)
    if current is None:
        raise AlertNotFoundError(f"no alert {alert_id}")
    moved = apply(current)
    conn.execute(
        f"UPDATE alerts SET state = %s, updated_at = {_MS}, acknowledged_by = %s,"
        f" acknowledged_at = {_MS}, resolved_by = %s, resolved_at = {_MS}, note = %s,"
        f" assignee = %s, assigned_by = %s, assigned_at = {_MS} WHERE id = %s",
        (*lifecycle_values(moved), alert_id),
    )
    return moved


def claim_webhooks(conn: Conn, now_ms: int, limit: int, lease_ms: int) -> list[WebhookDelivery]:
    """Due rows, pushed `lease_ms` ahead; SKIP LOCKED lets several deliverers share the table."""
    rows = conn.execute(
        f"""
        UPDATE webhook_outbox w SET next_attempt_at = {_MS}
        FROM (SELECT id FROM webhook_outbox
              WHERE state = 'pending' AND next_attempt_at <= {_MS}
              ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED) due
        WHERE w.id = due.id
        RETURNING w.id, w.alert_id, w.url, w.body, w.state, w.attempts,
                  {_ts("w.next_attempt_at")}, {_ts("w.created_at")}, {_ts("w.updated_at")},
                  w.last_error, w.secret
        """,
        (now_ms + lease_ms, now_ms, limit),
    ).fetchall()
    return sorted((webhook_from_row(row) for row in rows), key=lambda d: d.id)


def finish_webhook_attempt(
    conn: Conn, delivery_id: int, now_ms: int, error: str | None, retry_at_ms: int | None
) -> bool:
    state = (
        WebhookState.DELIVERED
        if error is None
        else WebhookState.PENDING
        if retry_at_ms is not None
        else WebhookState.FAILED
    )
    retry = f"{_MS}" if retry_at_ms is not None else "next_attempt_at"
    params: list[Any] = [state.value, now_ms, error]
    if retry_at_ms is not None:
        params.append(retry_at_ms)
    cur = conn.execute(
        f"UPDATE webhook_outbox SET state = %s, attempts = attempts + 1, updated_at = {_MS},"
        f" last_error = %s, next_attempt_at = {retry} WHERE id = %s",
        (*params, delivery_id),
    )
    return cur.rowcount == 1


def list_webhooks(conn: Conn, alert_id: int | None) -> list[WebhookDelivery]:
    where, params = ("WHERE alert_id = %s", (alert_id,)) if alert_id is not None else ("", ())
    rows = conn.execute(
        f"SELECT {_WEBHOOK_FIELDS} FROM webhook_outbox {where} ORDER BY id", params
    ).fetchall()
    return [webhook_from_row(row) for row in rows]
