"""Loan states and which may follow which: the one table that says what may happen to a loan."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class LoanState(enum.StrEnum):
    ACTIVE = "active"
    OVERDUE = "overdue"
    RESTRUCTURED = "restructured"
    SETTLED = "settled"
    REPOSSESSED = "repossessed"
    DISPOSED = "disposed"
    WRITTEN_OFF = "written_off"


_S = LoanState
# (from, to) moves a person may ask for; everything else is a LoanTransitionError.
ALLOWED: frozenset[tuple[LoanState, LoanState]] = frozenset(
    {
        (_S.ACTIVE, _S.OVERDUE),
        (_S.ACTIVE, _S.RESTRUCTURED),
        (_S.ACTIVE, _S.SETTLED),  # paid off, early or on time
        (_S.OVERDUE, _S.ACTIVE),  # cured: the arrears were paid
        (_S.OVERDUE, _S.RESTRUCTURED),  # extended or rescheduled
        (_S.OVERDUE, _S.SETTLED),
        (_S.OVERDUE, _S.REPOSSESSED),
        (_S.OVERDUE, _S.WRITTEN_OFF),  # car never found
        (_S.RESTRUCTURED, _S.ACTIVE),
        (_S.RESTRUCTURED, _S.OVERDUE),
        (_S.RESTRUCTURED, _S.SETTLED),
        (_S.REPOSSESSED, _S.OVERDUE),  # redeemed: the car goes back to the borrower
        (_S.REPOSSESSED, _S.SETTLED),  # redeemed by paying everything
        (_S.REPOSSESSED, _S.DISPOSED),  # auctioned or sold wholesale
        (_S.DISPOSED, _S.SETTLED),  # the proceeds covered the debt
        (_S.DISPOSED, _S.WRITTEN_OFF),  # the rest is written off
    }
)
# Final: nothing follows.
FINAL: frozenset[LoanState] = frozenset({_S.SETTLED, _S.WRITTEN_OFF})
# The car is no longer collateral to watch: its trackers' alerts stop.
UNMONITORED: frozenset[LoanState] = frozenset({_S.SETTLED, _S.DISPOSED, _S.WRITTEN_OFF})
# Nothing is owed by schedule any more: no days past due.
WITHOUT_DPD: frozenset[LoanState] = frozenset({_S.SETTLED, _S.WRITTEN_OFF})
# Payments are refused in these (nothing to pay) and so are collection actions.
CLOSED: frozenset[LoanState] = FINAL
# States the daily sweep moves to overdue once days past due pass 0.
SWEPT: frozenset[LoanState] = frozenset({_S.ACTIVE, _S.RESTRUCTURED})
# A car's open loans (not final), worst first: the car is watched by its worst loan.
WORST_FIRST: tuple[LoanState, ...] = (
    _S.REPOSSESSED,
    _S.DISPOSED,
    _S.OVERDUE,
    _S.RESTRUCTURED,
    _S.ACTIVE,
)


def can_move(current: LoanState, target: LoanState) -> bool:
    return (current, target) in ALLOWED


def worst_state(states: Iterable[LoanState]) -> LoanState | None:
    """The worst of a car's open loan states (final ones are ignored); None when none is open."""
    open_states = set(states) - FINAL
    return next((s for s in WORST_FIRST if s in open_states), None)


def worst_state_per_car(loans: Iterable[tuple[str, LoanState]]) -> dict[str, LoanState]:
    """Car id -> the worst state of its open loans, from (car id, state) pairs; cars with no
    open loan are left out."""
    by_car: dict[str, list[LoanState]] = {}
    for vehicle_id, state in loans:
        by_car.setdefault(vehicle_id, []).append(state)
    out: dict[str, LoanState] = {}
    for vehicle_id, states in by_car.items():
        worst = worst_state(states)
        if worst is not None:
            out[vehicle_id] = worst
    return out
