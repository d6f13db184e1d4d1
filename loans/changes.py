"""Every change a loan can go through, as pure functions: (loan, ...) -> (moved loan, log entry).

The store applies them inside its own transaction, under the row's lock; whatever depends on
the day takes `today`, whatever is stamped takes `now_ms`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from loans.collection import STAGE_OF_STATE, Channel, Outcome, Stage, advance_stage
from loans.errors import LoanClosedError, LoanTransitionError, NotPastDueError, PaymentError
from loans.records import ActionKind, CaseAction, Loan
from loans.schedule import add_months, days_past_due, next_due_date
from loans.states import CLOSED, SWEPT, LoanState, can_move

SYSTEM_ACTOR = "system"


def new_loan(
    *,
    loan_no: str,
    borrower_name: str,
    vehicle_id: str,
    principal: Decimal,
    currency: str,
    start_date: date,
    due_day: int,
    grace_days: int,
    branch: str | None,
    paid_through: date | None,
    now_ms: int,
) -> Loan:
    """A loan as first recorded: active, no collection case yet."""
    if not 1 <= due_day <= 28:
        raise PaymentError("due_day", f"{due_day} is not between 1 and 28")
    if grace_days < 0:
        raise PaymentError("grace_days", "cannot be negative")
    return Loan(
        id=0,
        loan_no=loan_no,
        borrower_name=borrower_name,
        vehicle_id=vehicle_id,
        principal=principal,
        currency=currency,
        start_date=start_date,
        due_day=due_day,
        next_due_date=next_due_date(start_date, due_day, paid_through),
        paid_through=paid_through,
        grace_days=grace_days,
        state=LoanState.ACTIVE,
        stage=None,
        branch=branch,
        created_ms=now_ms,
        updated_ms=now_ms,
    )


def transition(
    loan: Loan, target: LoanState, actor: str, note: str | None, now_ms: int
) -> tuple[Loan, CaseAction]:
    """The loan moved to `target`, and the log entry saying so."""
    if not can_move(loan.state, target):
        raise LoanTransitionError(loan.loan_no, loan.state, target)
    stage = loan.stage
    if target in STAGE_OF_STATE:
        stage = advance_stage(stage, STAGE_OF_STATE[target])
    moved = replace(loan, state=target, stage=stage, updated_ms=now_ms)
    action = CaseAction(
        0,
        loan.loan_no,
        ActionKind.TRANSITION,
        actor,
        now_ms,
        stage=stage,
        note=note,
        details={"from": loan.state.value, "to": target.value},
    )
    return moved, action


def paid_through_after(loan: Loan, installments: int) -> date:
    """Paid-through once `installments` more installments are paid from the oldest unpaid."""
    if installments < 1:
        raise PaymentError("installments", "must be at least 1")
    return add_months(loan.next_due_date, installments - 1, loan.due_day)


def apply_payment(
    loan: Loan, paid_through: date, actor: str, note: str | None, today: date, now_ms: int
) -> tuple[Loan, CaseAction]:
    """Moves paid-through forward. An overdue loan that is no longer past due on `today`
    becomes active again (the log says so in `details.state`)."""
    if loan.state in CLOSED:
        raise LoanClosedError(f"loan {loan.loan_no} is {loan.state.value}: it takes no payments")
    if loan.paid_through is not None and paid_through < loan.paid_through:
        raise PaymentError(
            "paid_through",
            f"{paid_through.isoformat()} is before the current {loan.paid_through.isoformat()}",
        )
    if paid_through < loan.start_date:
        raise PaymentError("paid_through", "is before the loan's start date")
    next_due = next_due_date(loan.start_date, loan.due_day, paid_through)
    state = loan.state
    if state is LoanState.OVERDUE and days_past_due(next_due, loan.grace_days, today) == 0:
        state = LoanState.ACTIVE
    moved = replace(
        loan, paid_through=paid_through, next_due_date=next_due, state=state, updated_ms=now_ms
    )
    details: dict[str, Any] = {
        "paid_through_before": None if loan.paid_through is None else loan.paid_through.isoformat(),
        "paid_through": paid_through.isoformat(),
        "next_due_date": next_due.isoformat(),
    }
    if state is not loan.state:
        details["state"] = {"from": loan.state.value, "to": state.value}
    action = CaseAction(
        0, loan.loan_no, ActionKind.PAYMENT, actor, now_ms, note=note, details=details
    )
    return moved, action


def log_collection(
    loan: Loan,
    stage: Stage,
    channel: Channel,
    outcome: Outcome,
    actor: str,
    note: str | None,
    now_ms: int,
) -> tuple[Loan, CaseAction]:
    """A collection step taken on the case; the case stage moves forward to it."""
    if loan.state in CLOSED:
        raise LoanClosedError(
            f"loan {loan.loan_no} is {loan.state.value}: no collection actions apply"
        )
    moved = replace(loan, stage=advance_stage(loan.stage, stage), updated_ms=now_ms)
    action = CaseAction(
        0,
        loan.loan_no,
        ActionKind.COLLECTION,
        actor,
        now_ms,
        stage=stage,
        channel=channel,
        outcome=outcome,
        note=note,
    )
    return moved, action


def fall_overdue(loan: Loan, today: date, now_ms: int) -> tuple[Loan, CaseAction]:
    """The sweep's change: an active or restructured loan past due on `today` becomes overdue,
    logged by `system`. Checked again under the store's lock: NotPastDueError when it no longer
    applies."""
    dpd = loan.dpd(today)
    if loan.state not in SWEPT or not dpd:
        raise NotPastDueError(
            f"loan {loan.loan_no} is {loan.state.value}, {dpd or 0} days past due"
        )
    note = f"{dpd} days past due on {today.isoformat()}"
    return transition(loan, LoanState.OVERDUE, SYSTEM_ACTOR, note, now_ms)


def state_moved(action: CaseAction) -> tuple[LoanState, LoanState] | None:
    """(from, to) when the logged change moved the loan's state (a transition, or a payment
    that cured an overdue loan); None otherwise."""
    if action.kind is ActionKind.TRANSITION:
        moved = action.details
    elif action.kind is ActionKind.PAYMENT and isinstance(action.details.get("state"), dict):
        moved = action.details["state"]
    else:
        return None
    return LoanState(moved["from"]), LoanState(moved["to"])
