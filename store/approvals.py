"""Dangerous commands waiting for a second person: requests, approvals, refusals, expiry.

A request is stored with the message exactly as it will be sent. Approving takes two steps so
that `approved` always means "the command exists": `claim` marks a pending, unexpired request
of someone else as being approved by one admin, for a lease, in one conditional UPDATE (two
approvers racing cannot both send it); the command is then sent, and `settle` moves the claimed
request to `approved` with its command id, or `release` drops the claim and keeps the failure's
reason (`last_error`), the request still pending. While claimed it is neither rejected nor
expired; a claim whose process died lapses with its lease. Pending requests past their deadline
become `expired` before any read or decision. SQL written once for both databases
(`store.statements`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from organizations import Scope
from store.orgs import scope_condition
from store.statements import StatementRunner

_FIELDS = (
    "id, terminal, org_id, msg_id, body, request, requested_by, requested_ms, expires_ms,"
    " state, decided_by, decided_ms, command_id, claimed_by, claim_until_ms, last_error"
)
# Not claimed, or claimed by a process that did not finish within its lease.
_UNCLAIMED = "(claim_until_ms IS NULL OR claim_until_ms <= ?)"


@dataclass(frozen=True, slots=True)
class Approval:
    id: int
    terminal: str
    org: int
    msg_id: int
    body: bytes
    request: str  # the request as the API logs it (JSON)
    requested_by: str
    requested_ms: int
    expires_ms: int
    state: str  # pending, approved, rejected, expired
    decided_by: str | None
    decided_ms: int | None
    command_id: int | None
    claimed_by: str | None = None  # the admin whose approval is sending it now
    claim_until_ms: int | None = None
    last_error: str | None = None  # why the last approval's send failed (still pending)

    def claimed(self, now_ms: int) -> bool:
        return self.claim_until_ms is not None and self.claim_until_ms > now_ms


def _approval(row: tuple[object, ...] | list[object]) -> Approval:
    (i, terminal, org, msg_id, body, request, by, at, expires, state, decided_by, decided_ms,
     command_id, claimed_by, claim_until, last_error) = row  # fmt: skip
    return Approval(
        int(i),  # type: ignore[call-overload]
        str(terminal),
        int(org),  # type: ignore[call-overload]
        int(msg_id),  # type: ignore[call-overload]
        bytes(body),  # type: ignore[call-overload]
        str(request),
        str(by),
        int(at),  # type: ignore[call-overload]
        int(expires),  # type: ignore[call-overload]
        str(state),
        None if decided_by is None else str(decided_by),
        None if decided_ms is None else int(decided_ms),  # type: ignore[call-overload]
        None if command_id is None else int(command_id),  # type: ignore[call-overload]
        None if claimed_by is None else str(claimed_by),
        None if claim_until is None else int(claim_until),  # type: ignore[call-overload]
        None if last_error is None else str(last_error),
    )


def expire(runner: StatementRunner, now_ms: int) -> None:
    runner._run(
        "expire approvals",
        "UPDATE command_approvals SET state = 'expired', decided_ms = expires_ms"
        f" WHERE state = 'pending' AND expires_ms <= ? AND {_UNCLAIMED}",
        (now_ms, now_ms),
    )


def add(
    runner: StatementRunner,
    *,
    terminal: str,
    org: int,
    msg_id: int,
    body: bytes,
    request: str,
    requested_by: str,
    now_ms: int,
    expires_ms: int,
) -> Approval:
    row = runner._run(
        "request approval",
        "INSERT INTO command_approvals (terminal, org_id, msg_id, body, request, requested_by,"
        " requested_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (terminal, org, msg_id, body, request, requested_by, now_ms, expires_ms),
    ).rows[0]
    found = get(runner, int(row[0]), None)
    assert found is not None
    return found


def get(runner: StatementRunner, approval_id: int, scope: Scope | None) -> Approval | None:
    where = "id = ?"
    params: list[Any] = [approval_id]

    within, scope_params = scope_condition(scope)
    if within is not None:
        where, params = f"{where} AND {within}", [*params, *scope_params]
    rows = runner._run(
        "read approval", f"SELECT {_FIELDS} FROM command_approvals WHERE {where}", params
    ).rows
    return _approval(rows[0]) if rows else None


def find(
    runner: StatementRunner, scope: Scope, *, state: str | None, after_id: int, limit: int
) -> list[Approval]:
    where = "id > ?"
    params: list[Any] = [after_id]
    if state is not None:
        where, params = f"{where} AND state = ?", [*params, state]
    within, scope_params = scope_condition(scope)
    if within is not None:
        where, params = f"{where} AND {within}", [*params, *scope_params]
    rows = runner._run(
        "list approvals",
        f"SELECT {_FIELDS} FROM command_approvals WHERE {where} ORDER BY id LIMIT ?",
        (*params, limit),
    ).rows
    return [_approval(r) for r in rows]


def decide(runner: StatementRunner, approval_id: int, state: str, actor: str, now_ms: int) -> bool:
    """Moves a pending, unexpired, unclaimed request to `state` unless `actor` asked for it."""
    return (
        runner._run(
            "decide approval",
            "UPDATE command_approvals SET state = ?, decided_by = ?, decided_ms = ?"
            " WHERE id = ? AND state = 'pending' AND expires_ms > ? AND requested_by <> ?"
            f" AND {_UNCLAIMED}",
            (state, actor, now_ms, approval_id, now_ms, actor, now_ms),
        ).rowcount
        == 1
    )


def claim(
    runner: StatementRunner, approval_id: int, actor: str, now_ms: int, until_ms: int
) -> bool:
    """Marks a pending, unexpired, unclaimed request of someone else as being approved by
    `actor` until `until_ms`; False when it is not (any more)."""
    return (
        runner._run(
            "claim approval",
            "UPDATE command_approvals SET claimed_by = ?, claim_until_ms = ?"
            " WHERE id = ? AND state = 'pending' AND expires_ms > ? AND requested_by <> ?"
            f" AND {_UNCLAIMED}",
            (actor, until_ms, approval_id, now_ms, actor, now_ms),
        ).rowcount
        == 1
    )


def settle(
    runner: StatementRunner, approval_id: int, actor: str, now_ms: int, command_id: int
) -> bool:
    """The claimed request approved by `actor`, as command `command_id`; False when `actor`
    no longer holds the claim."""
    return (
        runner._run(
            "approve claimed approval",
            "UPDATE command_approvals SET state = 'approved', decided_by = ?, decided_ms = ?,"
            " command_id = ?, claimed_by = NULL, claim_until_ms = NULL, last_error = NULL"
            " WHERE id = ? AND state = 'pending' AND claimed_by = ?",
            (actor, now_ms, command_id, approval_id, actor),
        ).rowcount
        == 1
    )


def release(runner: StatementRunner, approval_id: int, actor: str, error: str) -> bool:
    """Drops `actor`'s claim, keeping why its send failed; the request stays pending."""
    return (
        runner._run(
            "release approval",
            "UPDATE command_approvals SET claimed_by = NULL, claim_until_ms = NULL,"
            " last_error = ? WHERE id = ? AND state = 'pending' AND claimed_by = ?",
            (error, approval_id, actor),
        ).rowcount
        == 1
    )
