"""The append-only audit log: who, in which unit, did what to what, when, before and after.

Rows are written by `store.scoped` in the transaction of the change they record (both commit
or neither does); the database refuses UPDATE and DELETE on them, as on the loan log. Before
and after are JSON snapshots of the record without its secrets. SQL written once for both
databases (`store.statements`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any

from organizations import Scope
from store.orgs import scope_condition
from store.statements import StatementRunner

# Fields never copied into the log: a key's hash and a tracker's auth code are secrets.
_SECRET_FIELDS = frozenset({"key_hash", "auth_code", "body", "secret"})
_FIELDS = "id, at_ms, actor, actor_org, org_id, action, target, before, after"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at_ms: int
    actor: str
    actor_org: int
    org: int
    action: str
    target: str
    before: Any
    after: Any


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def snapshot(record: object | None) -> str | None:
    """A record (a dataclass, or already a dict) as JSON text without its secrets."""
    if record is None:
        return None
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    elif isinstance(record, dict):
        fields = dict(record)
    else:
        raise TypeError(f"cannot snapshot {type(record).__name__}")
    kept = {k: v for k, v in fields.items() if k not in _SECRET_FIELDS}
    if "alert" in kept and dataclasses.is_dataclass(kept["alert"]):
        kept["alert"] = json.loads(snapshot(kept["alert"]) or "null")
    return json.dumps(kept, default=_plain, ensure_ascii=False, sort_keys=True)


def write_entry(
    runner: StatementRunner,
    *,
    at_ms: int,
    actor: str,
    actor_org: int,
    org: int,
    action: str,
    target: str,
    before: object | None,
    after: object | None,
) -> None:
    """Appends one row; call inside the transaction of the change (`_atomic`)."""
    runner._run(
        "write audit log",
        "INSERT INTO audit_log (at_ms, actor, actor_org, org_id, action, target, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (at_ms, actor, actor_org, org, action, target, snapshot(before), snapshot(after)),
    )


def read_entries(
    runner: StatementRunner, scope: Scope, *, after_id: int, limit: int
) -> list[AuditEntry]:
    """Entries of the subtree's units with id > after_id, oldest first."""
    where = "id > ?"
    params: list[Any] = [after_id]
    within, scope_params = scope_condition(scope)
    if within is not None:
        where, params = f"{where} AND {within}", [*params, *scope_params]
    rows = runner._run(
        "read audit log",
        f"SELECT {_FIELDS} FROM audit_log WHERE {where} ORDER BY id LIMIT ?",
        (*params, limit),
    ).rows
    return [
        AuditEntry(
            int(i),
            int(at),
            actor,
            int(actor_org),
            int(org),
            action,
            target,
            None if before is None else json.loads(before),
            None if after is None else json.loads(after),
        )
        for i, at, actor, actor_org, org, action, target, before, after in rows
    ]
