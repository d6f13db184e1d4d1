"""The pure side of loans falling overdue: the sweep's change, a car's worst open loan, and
reading a state move off a log entry."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from loans import (
    ActionKind,
    CaseAction,
    Loan,
    LoanState,
    NotPastDueError,
    fall_overdue,
    new_loan,
    state_moved,
    worst_state,
)

T0 = 1_709_280_000_000
S = LoanState


def loan(state: LoanState = S.ACTIVE, grace_days: int = 0) -> Loan:
    """First installment due 2024-02-15."""
    made = new_loan(
        loan_no="L-1",
        borrower_name="x",
        vehicle_id="V1",
        principal=Decimal("1.00"),
        currency="CNY",
        start_date=date(2024, 1, 10),
        due_day=15,
        grace_days=grace_days,
        branch=None,
        paid_through=None,
        now_ms=T0,
    )
    return replace(made, state=state)


@pytest.mark.parametrize("state", [S.ACTIVE, S.RESTRUCTURED])
def test_a_past_due_active_or_restructured_loan_falls_overdue_as_system(state: S) -> None:
    moved, action = fall_overdue(loan(state), date(2024, 2, 18), T0 + 1)
    assert moved.state is S.OVERDUE and moved.updated_ms == T0 + 1
    assert action.actor == "system" and action.kind is ActionKind.TRANSITION
    assert action.details == {"from": state.value, "to": "overdue"}
    assert action.note == "3 days past due on 2024-02-18"


@pytest.mark.parametrize(
    ("state", "grace", "today"),
    [
        (S.ACTIVE, 0, date(2024, 2, 15)),  # due today: not past due yet
        (S.ACTIVE, 5, date(2024, 2, 20)),  # within the grace period
        (S.OVERDUE, 0, date(2024, 3, 1)),
        (S.REPOSSESSED, 0, date(2024, 3, 1)),  # a person's move, never the sweep's
        (S.SETTLED, 0, date(2024, 3, 1)),
    ],
)
def test_the_sweep_leaves_other_loans_alone(state: S, grace: int, today: date) -> None:
    with pytest.raises(NotPastDueError):
        fall_overdue(loan(state, grace), today, T0)


def test_a_car_is_watched_by_its_worst_open_loan() -> None:
    assert worst_state([S.ACTIVE, S.OVERDUE, S.RESTRUCTURED]) is S.OVERDUE
    assert worst_state([S.OVERDUE, S.REPOSSESSED]) is S.REPOSSESSED
    assert worst_state([S.ACTIVE, S.SETTLED, S.WRITTEN_OFF]) is S.ACTIVE
    assert worst_state([S.SETTLED]) is None
    assert worst_state([]) is None


def test_a_state_move_is_read_off_transitions_and_curing_payments_only() -> None:
    def entry(kind: ActionKind, details: dict[str, object]) -> CaseAction:
        return CaseAction(1, "L-1", kind, "bob", T0, details=details)

    moved = entry(ActionKind.TRANSITION, {"from": "active", "to": "overdue"})
    assert state_moved(moved) == (S.ACTIVE, S.OVERDUE)
    cured = entry(ActionKind.PAYMENT, {"state": {"from": "overdue", "to": "active"}})
    assert state_moved(cured) == (S.OVERDUE, S.ACTIVE)
    assert state_moved(entry(ActionKind.PAYMENT, {"paid_through": "2024-02-15"})) is None
    assert state_moved(entry(ActionKind.COLLECTION, {})) is None
