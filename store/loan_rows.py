"""Loan rows: the column order, row ↔ `Loan`/`CaseAction`, and the filter's conditions. Pure
(no database); the SQL is `store.loan_records`.

Both databases select times as epoch ms; dates come back as `date` (PostgreSQL) or ISO text
(SQLite), money as `Decimal` or decimal text, details as a parsed dict or JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from loans import (
    FINAL,
    SWEPT,
    WITHOUT_DPD,
    ActionKind,
    CaseAction,
    Channel,
    Loan,
    LoanState,
    Outcome,
    Stage,
    counts_from_bounds,
    past_due_before,
)
from store.interface import LoanFilter
from store.orgs import scope_condition

# Columns every loan read selects, in this order (times as epoch ms).
LOAN_FIELDS = (
    "id",
    "loan_no",
    "borrower_name",
    "vehicle_id",
    "principal",
    "currency",
    "start_date",
    "due_day",
    "next_due_date",
    "paid_through",
    "grace_days",
    "state",
    "stage",
    "branch",
    "created_ms",
    "updated_ms",
    "org_id",
    "borrower_id",
)
# Columns every action read selects (the loan number comes from the joined loan).
ACTION_FIELDS = (
    "id",
    "loan_no",
    "kind",
    "actor",
    "at_ms",
    "stage",
    "channel",
    "outcome",
    "note",
    "details",
)
# Only loans that still have days past due are in a bucket.
_HAS_DPD = "state NOT IN (" + ", ".join(f"'{s.value}'" for s in sorted(WITHOUT_DPD)) + ")"
# The columns `update_loan` writes back: what a change may move.
MUTABLE_FIELDS = ("next_due_date", "paid_through", "state", "stage", "updated_ms")


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def loan_from_row(row: Sequence[Any]) -> Loan:
    (
        loan_id, loan_no, borrower, vehicle_id, principal, currency, start, due_day, next_due,
        paid_through, grace_days, state, stage, branch, created_ms, updated_ms, org, borrower_id,
    ) = row  # fmt: skip
    return Loan(
        id=int(loan_id),
        loan_no=loan_no,
        borrower_name=borrower,
        vehicle_id=vehicle_id,
        principal=Decimal(str(principal)),
        currency=currency,
        start_date=_day(start),
        due_day=int(due_day),
        next_due_date=_day(next_due),
        paid_through=None if paid_through is None else _day(paid_through),
        grace_days=int(grace_days),
        state=LoanState(state),
        stage=None if stage is None else Stage(stage),
        branch=branch,
        created_ms=int(created_ms),
        updated_ms=int(updated_ms),
        org=int(org),
        borrower_id=None if borrower_id is None else int(borrower_id),
    )


def action_from_row(row: Sequence[Any]) -> CaseAction:
    action_id, loan_no, kind, actor, at_ms, stage, channel, outcome, note, details = row
    return CaseAction(
        id=int(action_id),
        loan_no=loan_no,
        kind=ActionKind(kind),
        actor=actor,
        at_ms=int(at_ms),
        stage=None if stage is None else Stage(stage),
        channel=None if channel is None else Channel(channel),
        outcome=None if outcome is None else Outcome(outcome),
        note=note,
        details=json.loads(details) if isinstance(details, str | bytes) else dict(details),
    )


def loan_values(loan: Loan, day: Callable[[date], Any]) -> tuple[Any, ...]:
    """The insert values in `LOAN_FIELDS` order without `id`; `day` formats a date for the
    adapter (the date itself, or ISO text)."""
    return (
        loan.loan_no,
        loan.borrower_name,
        loan.vehicle_id,
        str(loan.principal),
        loan.currency,
        day(loan.start_date),
        loan.due_day,
        day(loan.next_due_date),
        None if loan.paid_through is None else day(loan.paid_through),
        loan.grace_days,
        loan.state.value,
        None if loan.stage is None else loan.stage.value,
        loan.branch,
        loan.created_ms,
        loan.updated_ms,
        loan.org,
        loan.borrower_id,
    )


def mutable_values(loan: Loan, day: Callable[[date], Any]) -> tuple[Any, ...]:
    """The values of `MUTABLE_FIELDS`, in order."""
    return (
        day(loan.next_due_date),
        None if loan.paid_through is None else day(loan.paid_through),
        loan.state.value,
        None if loan.stage is None else loan.stage.value,
        loan.updated_ms,
    )


def action_values(action: CaseAction) -> tuple[Any, ...]:
    """kind, stage, channel, outcome, note, actor, at_ms, details (JSON text)."""
    return (
        action.kind.value,
        None if action.stage is None else action.stage.value,
        None if action.channel is None else action.channel.value,
        None if action.outcome is None else action.outcome.value,
        action.note,
        action.actor,
        action.at_ms,
        json.dumps(action.details, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
    )


def filter_conditions(
    where: LoanFilter, counts_from: str, day: Callable[[date], Any]
) -> tuple[list[str], list[Any]]:
    """SQL conditions (joined with AND by the caller) and their parameters. `counts_from` is
    the dialect's expression for `next_due_date + grace_days`, `day` its date parameter."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("state", None if where.state is None else where.state.value),
        ("stage", None if where.stage is None else where.stage.value),
        ("vehicle_id", where.vehicle_id),
        ("branch", where.branch),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    within, scope_params = scope_condition(where.scope)
    if within is not None:
        conditions.append(within)
        params += scope_params
    if where.bucket is not None:
        if where.today is None:
            raise ValueError("a bucket filter needs today")
        conditions.append(_HAS_DPD)
        earliest, latest = counts_from_bounds(where.bucket, where.today)
        if earliest is not None:
            conditions.append(f"{counts_from} >= ?")
            params.append(day(earliest))
        if latest is not None:
            conditions.append(f"{counts_from} <= ?")
            params.append(day(latest))
    return conditions, params


# -- the sweep's past-due loans and the cars' loan states ---------------------------------------

_SWEPT = "state IN (" + ", ".join(f"'{s.value}'" for s in sorted(SWEPT)) + ")"
OPEN_CONDITION = _OPEN = "state NOT IN (" + ", ".join(f"'{s.value}'" for s in sorted(FINAL)) + ")"


def past_due_conditions(
    today: date, counts_from: str, day: Callable[[date], Any]
) -> tuple[list[str], list[Any]]:
    """Swept loans (`loans.SWEPT`) with days past due on `today` (`loans.past_due_before`)."""
    return [_SWEPT, f"{counts_from} < ?"], [day(past_due_before(today))]


def open_states_sql(vehicles: int) -> str:
    """vehicle_id, state of every open (not final) loan, of `vehicles` cars (0: all cars)."""
    sql = f"SELECT vehicle_id, state FROM loans WHERE {_OPEN}"
    if vehicles:
        sql += f" AND vehicle_id IN ({', '.join('?' for _ in range(vehicles))})"
    return sql
