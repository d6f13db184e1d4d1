"""Loans and their post-loan work, pure: states and their allowed moves, days past due and the
delinquency bucket, collection stages, and the case actions logged against a loan.

No database, no web framework and no clock: whatever depends on the day takes `today`,
whatever is stamped takes `now_ms`. The store applies these functions inside its own
transaction and the API maps the errors (a refused move is a conflict, a bad payment a bad
request), so `loans.states.ALLOWED` is the one place that says what may happen to a loan.

One module per job: `states` (which state may follow which), `schedule` (due dates, days past
due, buckets), `collection` (case stages, channels, outcomes), `records` (the loan and its log
entry), `changes` (every change as a pure function), `errors` (why a change was refused),
`parties` (the car and the borrower as records, and what a role sees of a borrower).
Everything public is importable from `loans` itself.
"""

from loans.changes import (
    SYSTEM_ACTOR,
    apply_payment,
    fall_overdue,
    log_collection,
    new_loan,
    paid_through_after,
    state_moved,
    transition,
)
from loans.collection import STAGE_OF_STATE, STAGE_ORDER, Channel, Outcome, Stage, advance_stage
from loans.errors import (
    LoanClosedError,
    LoanConflictError,
    LoanTransitionError,
    NotPastDueError,
    PaymentError,
)
from loans.parties import Borrower, Vehicle, mask_tail, masked
from loans.records import ActionKind, CaseAction, Loan
from loans.schedule import (
    BUCKET_DPD,
    Bucket,
    add_months,
    bucket_of,
    counts_from_bounds,
    days_past_due,
    first_due_date,
    next_due_date,
    past_due_before,
)
from loans.states import (
    ALLOWED,
    CLOSED,
    FINAL,
    SWEPT,
    UNMONITORED,
    WITHOUT_DPD,
    WORST_FIRST,
    LoanState,
    can_move,
    worst_state,
    worst_state_per_car,
)

__all__ = [
    "ALLOWED",
    "BUCKET_DPD",
    "CLOSED",
    "FINAL",
    "STAGE_OF_STATE",
    "STAGE_ORDER",
    "SWEPT",
    "SYSTEM_ACTOR",
    "UNMONITORED",
    "WITHOUT_DPD",
    "WORST_FIRST",
    "ActionKind",
    "Borrower",
    "Bucket",
    "CaseAction",
    "Channel",
    "Loan",
    "LoanClosedError",
    "LoanConflictError",
    "LoanState",
    "LoanTransitionError",
    "NotPastDueError",
    "Outcome",
    "PaymentError",
    "Stage",
    "Vehicle",
    "add_months",
    "advance_stage",
    "apply_payment",
    "bucket_of",
    "can_move",
    "counts_from_bounds",
    "days_past_due",
    "fall_overdue",
    "first_due_date",
    "log_collection",
    "mask_tail",
    "masked",
    "new_loan",
    "next_due_date",
    "paid_through_after",
    "past_due_before",
    "state_moved",
    "transition",
    "worst_state",
    "worst_state_per_car",
]
