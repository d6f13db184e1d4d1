"""Alerts and the webhook outbox: storing a burst of alerts with their outbox rows, pages of
alerts, one lifecycle step at a time, and claiming due deliveries.

An alert is stored once per incident (`alerts.model.incident_key`, the table's unique key): a
repeat offer gives back the stored one. The inserts of a burst (thousands of devices going
offline at once) run pipelined where the database can (`_run_each`). SQL written once for both
databases (`store.statements`, `store.dialect`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from alerts.lifecycle import AlertState, StoredAlert, assign, opened, transition
from alerts.model import Alert, AlertType, first_of_each_incident, incident_key
from alerts.outbox import AlertsAdded, WebhookDelivery, WebhookState
from organizations import Scope
from store import spot_rows
from store.alert_rows import (
    ALERT_FIELDS,
    ENDPOINT_URLS,
    ORG_PATH,
    check_page,
    details_text,
    lifecycle_values,
    stored_from_row,
    webhook_body,
    webhook_from_row,
    with_unit,
)
from store.dialect import Dialect
from store.interface import AlertNotFoundError, StoreError
from store.orgs import scope_condition
from store.statements import StatementRunner

_TIMES = {"time_ms", "opened_ms", "updated_ms", "acknowledged_ms", "resolved_ms", "assigned_ms"}
_KEY = ("type", "vehicle_id", "terminal", "fence_id", "time_ms")


def _select(d: Dialect) -> str:
    fields = [d.ms(f"a.{f}") if f in _TIMES else f"a.{f}" for f in ALERT_FIELDS]
    return f"SELECT {', '.join(fields)}, {ORG_PATH.format(table='a')} FROM alerts a"


def _key_where(d: Dialect) -> str:
    return " AND ".join(
        f"{d.col(f'a.{f}')} = {d.at()}" if f in _TIMES else f"a.{f} = ?" for f in _KEY
    )


def _webhook_fields(d: Dialect) -> str:
    return (
        f"id, alert_id, url, body, state, attempts, {d.ms('next_attempt_ms')},"
        f" {d.ms('created_ms')}, {d.ms('updated_ms')}, last_error, secret"
    )


def _get(runner: StatementRunner, alert_id: int, lock: bool = False) -> StoredAlert | None:
    d = runner._dialect
    rows = runner._run(
        "get alert",
        f"{_select(d)} WHERE a.id = ?{d.for_update if lock else ''}",
        (alert_id,),
    ).rows
    return stored_from_row(rows[0]) if rows else None


def _change(
    runner: StatementRunner, what: str, alert_id: int, apply: Callable[[StoredAlert], StoredAlert]
) -> StoredAlert:
    """Reads the alert (locked until commit), applies one lifecycle step (`alerts.lifecycle`),
    writes every lifecycle column back."""
    d = runner._dialect
    with runner._atomic(what):
        current = _get(runner, alert_id, lock=True)
        if current is None:
            raise AlertNotFoundError(f"no alert {alert_id}")
        moved = apply(current)
        runner._run(
            what,
            f"UPDATE alerts SET state = ?, {d.col('updated_ms')} = {d.at()}, acknowledged_by = ?,"
            f" {d.col('acknowledged_ms')} = {d.at()}, resolved_by = ?,"
            f" {d.col('resolved_ms')} = {d.at()}, note = ?, assignee = ?, assigned_by = ?,"
            f" {d.col('assigned_ms')} = {d.at()} WHERE id = ?",
            (*lifecycle_values(moved), alert_id),
        )
    return moved


class AlertRecords:
    """Mixin of both adapters."""

    def add_alerts(
        self: StatementRunner,
        alerts: Sequence[Alert],
        now_ms: int,
        webhook_urls: Sequence[str] = (),
    ) -> AlertsAdded:
        """Stores each incident once; new alerts get their outbox rows (and gathering alerts
        their spot candidates, owned by the tenant of their evidence, the alert itself keeping
        only the visits its unit may see: `store.spot_rows`) in the same transaction."""
        if not alerts:
            return AlertsAdded([], [])
        d = self._dialect
        offered = first_of_each_incident(alerts)
        insert = (
            f"INSERT INTO alerts (type, vehicle_id, terminal, fence_id, {d.col('time_ms')},"
            f" severity, details, {d.col('opened_ms')}, {d.col('updated_ms')})"
            f" VALUES (?, ?, ?, ?, {d.at()}, ?, {d.json()}, {d.at()}, {d.at()})"
            " ON CONFLICT DO NOTHING RETURNING id"
        )
        with self._atomic("add alerts"):
            returned = self._run_each(
                "add alerts",
                insert,
                [(*incident_key(a), a.severity, details_text(a), now_ms, now_ms) for a in offered],
            )
            new_ids = [int(rows[0][0]) for rows in returned if rows]
            units: dict[int, tuple[int, str | None]] = {}
            if new_ids:
                rows = self._run(
                    "read alert units",
                    f"SELECT a.id, a.org_id, {ORG_PATH.format(table='a')} FROM alerts a"
                    f" WHERE {d.in_list('a.id')}",
                    (d.listed(new_ids),),
                ).rows
                units = {int(i): (int(org), path) for i, org, path in rows}
            # Incidents stored before: the stored alert stands (read pipelined too).
            repeats = [
                incident_key(a) for a, rows in zip(offered, returned, strict=True) if not rows
            ]
            stored_before = self._run_each(
                "read alerts", f"{_select(d)} WHERE {_key_where(d)}", repeats
            )
            by_key = {}
            for key, found in zip(repeats, stored_before, strict=True):
                if not found:
                    raise StoreError(f"add alerts: incident {key} neither new nor stored")
                by_key[key] = stored_from_row(found[0])
            new: list[StoredAlert] = []
            receivers: dict[str | None, list[tuple[str, str | None]]] = {}
            outbox: list[tuple[Any, ...]] = []
            gathering: list[StoredAlert] = []  # as offered: a candidate keeps every visit
            owners: dict[int, int] = {}  # gathering alert id -> its candidate's unit
            shown: list[tuple[str, int]] = []  # (details, id) of alerts stored with fewer visits
            for alert, rows in zip(offered, returned, strict=True):
                if not rows:
                    continue
                key = incident_key(alert)
                alert_id = int(rows[0][0])
                org, path = units[alert_id]
                stored = with_unit(opened(alert_id, alert, now_ms), org, path)
                if alert.type is AlertType.GATHERING:
                    visits = list(alert.details.get("visits", []))
                    units_of_visits = self._run_each(
                        "read visit units", spot_rows.VISIT_PATH, spot_rows.visit_keys(visits)
                    )
                    paths = [str(r[0][0]) if r else None for r in units_of_visits]
                    gathering.append(stored)
                    owners[alert_id] = spot_rows.evidence_owner(paths)
                    redacted = spot_rows.redacted(stored, paths)
                    if redacted is not stored:
                        stored = redacted
                        shown.append((details_text(stored.alert), alert_id))
                by_key[key] = stored
                new.append(stored)
                if path not in receivers:
                    receivers[path] = [(url, None) for url in webhook_urls] + [
                        (str(url), secret)
                        for url, secret in self._run("read endpoints", ENDPOINT_URLS, (path,)).rows
                    ]
                body = webhook_body(stored)
                outbox += [
                    (stored.id, url, body, now_ms, now_ms, now_ms, secret)
                    for url, secret in receivers[path]
                ]
            self._run_many(
                "add alerts",
                [
                    (
                        "INSERT INTO webhook_outbox (alert_id, url, body,"
                        f" {d.col('next_attempt_ms')}, {d.col('created_ms')},"
                        f" {d.col('updated_ms')}, secret)"
                        f" VALUES (?, ?, ?, {d.at()}, {d.at()}, {d.at()}, ?)",
                        outbox,
                    ),
                    (f"UPDATE alerts SET details = {d.json()} WHERE id = ?", shown),
                    (
                        spot_rows.INSERT_CANDIDATE,
                        spot_rows.candidate_rows(gathering, now_ms, lambda s, _: owners[s.id]),
                    ),
                ],
            )
        return AlertsAdded([by_key[incident_key(a)] for a in alerts], new)

    def list_alerts(
        self: StatementRunner,
        *,
        alert_type: str | None = None,
        since_ms: int | None = None,
        vehicle_id: str | None = None,
        state: AlertState | None = None,
        after_id: int = 0,
        limit: int = 100,
        scope: Scope | None = None,
    ) -> list[StoredAlert]:
        check_page(after_id, limit)
        d = self._dialect
        where: list[str] = ["a.id > ?"]
        params: list[Any] = [after_id]
        within, scope_params = scope_condition(scope, column="a.org_id")
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
                where.append(f"{column} = ?")
                params.append(value)
        if since_ms is not None:
            where.append(f"{d.col('a.time_ms')} >= {d.at()}")
            params.append(since_ms)
        rows = self._run(
            "list alerts",
            f"{_select(d)} WHERE {' AND '.join(where)} ORDER BY a.id LIMIT ?",
            (*params, limit),
        ).rows
        return [stored_from_row(row) for row in rows]

    def get_alert(self: StatementRunner, alert_id: int) -> StoredAlert | None:
        return _get(self, alert_id)

    def transition_alert(
        self: StatementRunner,
        alert_id: int,
        state: AlertState,
        actor: str,
        note: str | None,
        now_ms: int,
    ) -> StoredAlert:
        return _change(
            self,
            "transition alert",
            alert_id,
            lambda a: transition(a, state, actor, note, now_ms),
        )

    def assign_alert(
        self: StatementRunner,
        alert_id: int,
        assignee: str | None,
        actor: str,
        note: str | None,
        now_ms: int,
    ) -> StoredAlert:
        return _change(
            self, "assign alert", alert_id, lambda a: assign(a, assignee, actor, note, now_ms)
        )

    def due_webhooks(
        self: StatementRunner, now_ms: int, limit: int, lease_ms: int = 60_000
    ) -> list[WebhookDelivery]:
        """Due rows, pushed `lease_ms` ahead so a second deliverer (or a crash) cannot double
        up before the attempt is recorded; claimers share the table (`skip_locked`)."""
        d = self._dialect
        next_at = d.col("next_attempt_ms")
        rows = self._run(
            "claim webhooks",
            f"UPDATE webhook_outbox SET {next_at} = {d.at()} WHERE id IN"
            " (SELECT id FROM webhook_outbox WHERE state = 'pending'"
            f" AND {next_at} <= {d.at()} ORDER BY {next_at}, id LIMIT ?{d.skip_locked})"
            f" RETURNING {_webhook_fields(d)}",
            (now_ms + lease_ms, now_ms, limit),
        ).rows
        return sorted((webhook_from_row(row) for row in rows), key=lambda w: w.id)

    def finish_webhook_attempt(
        self: StatementRunner,
        delivery_id: int,
        now_ms: int,
        *,
        error: str | None,
        retry_at_ms: int | None,
    ) -> None:
        d = self._dialect
        state = (
            WebhookState.DELIVERED
            if error is None
            else WebhookState.PENDING
            if retry_at_ms is not None
            else WebhookState.FAILED
        )
        next_at = d.col("next_attempt_ms")
        changed = self._run(
            "finish webhook attempt",
            f"UPDATE webhook_outbox SET state = ?, attempts = attempts + 1,"
            f" {d.col('updated_ms')} = {d.at()}, last_error = ?,"
            f" {next_at} = coalesce({d.at()}, {next_at}) WHERE id = ?",
            (state.value, now_ms, error, retry_at_ms, delivery_id),
        )
        if changed.rowcount != 1:
            raise StoreError(f"finish webhook attempt: no delivery {delivery_id}")

    def list_webhooks(self: StatementRunner, alert_id: int | None = None) -> list[WebhookDelivery]:
        where, params = ("WHERE alert_id = ?", (alert_id,)) if alert_id is not None else ("", ())
        rows = self._run(
            "list webhooks",
            f"SELECT {_webhook_fields(self._dialect)} FROM webhook_outbox {where} ORDER BY id",
            params,
        ).rows
        return [webhook_from_row(row) for row in rows]
