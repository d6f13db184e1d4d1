"""The loan state table, pair by pair and over random walks: an allowed move lands exactly on
its target and logs from/to; a refused one raises and changes nothing; final states stay."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from loans import (
    ALLOWED,
    FINAL,
    Loan,
    LoanState,
    LoanTransitionError,
    new_loan,
    transition,
)

BASE = new_loan(
    loan_no="L-9",
    borrower_name="b",
    vehicle_id="V9",
    principal=Decimal("1.00"),
    currency="CNY",
    start_date=date(2024, 1, 1),
    due_day=1,
    grace_days=0,
    branch=None,
    paid_through=None,
    now_ms=0,
)
STATES = st.sampled_from(list(LoanState))


def at(state: LoanState) -> Loan:
    return replace(BASE, state=state)


@given(STATES, STATES)
def test_each_pair_is_allowed_exactly_when_the_table_lists_it(
    current: LoanState, target: LoanState
) -> None:
    loan = at(current)
    try:
        moved, action = transition(loan, target, "ops", None, 7)
    except LoanTransitionError as exc:
        assert (current, target) not in ALLOWED
        assert (exc.current, exc.target) == (current, target)
        assert current.value in str(exc) and target.value in str(exc)
        return
    assert (current, target) in ALLOWED
    assert current not in FINAL
    assert moved.state is target and moved.updated_ms == 7
    assert action.details == {"from": current.value, "to": target.value}


@given(st.lists(STATES, max_size=15))
def test_random_walks_never_leave_a_final_state(targets: list[LoanState]) -> None:
    loan = BASE
    for now, target in enumerate(targets, start=1):
        before = loan
        try:
            loan, _ = transition(loan, target, "ops", None, now)
        except LoanTransitionError:
            assert loan == before
            continue
        assert before.state not in FINAL
        assert (before.state, loan.state) in ALLOWED


def test_no_state_moves_to_itself_and_every_state_is_reachable_from_active() -> None:
    assert all(a != b for a, b in ALLOWED)
    reached, frontier = {LoanState.ACTIVE}, [LoanState.ACTIVE]
    while frontier:
        state = frontier.pop()
        for a, b in ALLOWED:
            if a is state and b not in reached:
                reached.add(b)
                frontier.append(b)
    assert reached == set(LoanState)
