"""Webhook receivers of organization units: each gets the alerts of its unit's subtree
(`store.alert_records.add_alerts` reads `store.alert_rows.ENDPOINT_URLS`), signed with its own
secret. SQL written once for both databases (`store.statements`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from organizations import Scope
from store.orgs import scope_condition
from store.statements import StatementRunner

_FIELDS = "id, org_id, url, secret, created_by, created_ms"


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    org: int
    url: str
    secret: str = field(repr=False)
    created_by: str
    created_ms: int


def _endpoint(row: tuple[Any, ...] | list[Any]) -> Endpoint:
    i, org, url, secret, by, at = row
    return Endpoint(int(i), int(org), str(url), str(secret), str(by), int(at))


def add(
    runner: StatementRunner, org: int, url: str, secret: str, by: str, now_ms: int
) -> Endpoint | None:
    """None when the unit already has that URL."""
    rows = runner._run(
        "add webhook endpoint",
        "INSERT INTO webhook_endpoints (org_id, url, secret, created_by, created_ms)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (org_id, url) DO NOTHING RETURNING id",
        (org, url, secret, by, now_ms),
    ).rows
    return Endpoint(int(rows[0][0]), org, url, secret, by, now_ms) if rows else None


def find(runner: StatementRunner, scope: Scope, endpoint_id: int | None = None) -> list[Endpoint]:
    where: list[str] = []
    params: list[Any] = []
    within, scope_params = scope_condition(scope)
    if within is not None:
        where.append(within)
        params += scope_params
    if endpoint_id is not None:
        where.append("id = ?")
        params.append(endpoint_id)
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    rows = runner._run(
        "list webhook endpoints",
        f"SELECT {_FIELDS} FROM webhook_endpoints{condition} ORDER BY id",
        params,
    ).rows
    return [_endpoint(r) for r in rows]


def remove(runner: StatementRunner, endpoint_id: int) -> bool:
    return (
        runner._run(
            "remove webhook endpoint", "DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,)
        ).rowcount
        == 1
    )
