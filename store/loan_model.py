"""Loans and their post-loan work, pure: states and their allowed moves, days past due and the
delinquency bucket, collection stages, and the case actions logged against a loan.

No database, no FastAPI and no clock: whatever depends on the day takes `today`, whatever is
stamped takes `now_ms`. The store applies these functions inside its own transaction and the API
maps the errors (a refused move is a conflict, a bad payment a bad request), so the tables
below are the one place that says what may happen to a loan.

Schedule: one installment a month on `due_day` (1-28, so every month has it), the first in the
month after the start date. `paid_through` is the last due date the payments cover; the oldest
due date after it is `next_due_date`. Days past due count from `next_due_date` once the grace
period has run: DPD = max(0, today - next_due_date - grace_days), so a grace period shifts the
day count rather than only delaying its start.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any


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


class Bucket(enum.StrEnum):
    """Delinquency buckets by days past due."""

    M0 = "M0"  # current
    M1 = "M1"  # 1-30
    M2 = "M2"  # 31-60
    M3 = "M3"  # 61-90
    M4_PLUS = "M4+"  # beyond 90: non-performing


# Inclusive DPD bounds of each bucket (None: no upper bound).
BUCKET_DPD: dict[Bucket, tuple[int, int | None]] = {
    Bucket.M0: (0, 0),
    Bucket.M1: (1, 30),
    Bucket.M2: (31, 60),
    Bucket.M3: (61, 90),
    Bucket.M4_PLUS: (91, None),
}


class Stage(enum.StrEnum):
    """Collection stages, in the order a case moves through them."""

    REMINDER = "reminder"
    PHONE = "phone"
    VISIT = "visit"
    OUTSOURCED = "outsourced"
    LEGAL = "legal"
    REPOSSESSION = "repossession"
    STORAGE = "storage"
    DISPOSAL = "disposal"
    WRITE_OFF = "write_off"


STAGE_ORDER: dict[Stage, int] = {stage: i for i, stage in enumerate(Stage)}


class Channel(enum.StrEnum):
    SMS = "sms"
    PHONE = "phone"
    VISIT = "visit"
    LETTER = "letter"
    EMAIL = "email"
    AGENCY = "agency"
    COURT = "court"
    GPS = "gps"  # located or recovered by the trackers' positions
    OTHER = "other"


class Outcome(enum.StrEnum):
    CONTACTED = "contacted"
    NO_ANSWER = "no_answer"
    PROMISED_TO_PAY = "promised_to_pay"
    PAID = "paid"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    VEHICLE_LOCATED = "vehicle_located"
    VEHICLE_RECOVERED = "vehicle_recovered"
    ESCALATED = "escalated"
    OTHER = "other"


class ActionKind(enum.StrEnum):
    COLLECTION = "collection"  # a collection step: stage, channel, outcome
    PAYMENT = "payment"  # paid-through moved
    TRANSITION = "transition"  # the loan changed state


# A transition into these states takes the case at least to this stage.
_STAGE_OF_STATE: dict[LoanState, Stage] = {
    _S.REPOSSESSED: Stage.REPOSSESSION,
    _S.DISPOSED: Stage.DISPOSAL,
    _S.WRITTEN_OFF: Stage.WRITE_OFF,
}


class LoanConflictError(ValueError):
    """The asked change does not fit the loan's current state (an HTTP 409)."""


class LoanTransitionError(LoanConflictError):
    """The move from the loan's state to the asked one is not allowed."""

    def __init__(self, loan_no: str, current: LoanState, target: LoanState) -> None:
        self.loan_no, self.current, self.target = loan_no, current, target
        super().__init__(_reason(loan_no, current, target))


class LoanClosedError(LoanConflictError):
    """The loan is settled or written off: no payment or collection action applies."""


class PaymentError(ValueError):
    """A payment that cannot be applied (a bad request); `field` names the culprit."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        super().__init__(f"{field}: {reason}")


def _reason(loan_no: str, current: LoanState, target: LoanState) -> str:
    head = f"loan {loan_no} cannot go from {current.value} to {target.value}"
    if current in FINAL:
        return f"{head}: {current.value} is final"
    if current is target:
        return f"{head}: it is already {current.value}"
    return head


def can_move(current: LoanState, target: LoanState) -> bool:
    return (current, target) in ALLOWED


# -- the schedule and days past due -----------------------------------------------------------


def add_months(day: date, months: int, due_day: int) -> date:
    """The `due_day` of the month `months` after `day`'s month (due_day <= 28 always exists)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, due_day)


def first_due_date(start: date, due_day: int) -> date:
    return add_months(start, 1, due_day)


def next_due_date(start: date, due_day: int, paid_through: date | None) -> date:
    """The oldest due date the payments do not cover."""
    first = first_due_date(start, due_day)
    if paid_through is None or paid_through < first:
        return first
    # The first due date strictly after paid_through.
    candidate = add_months(paid_through, 0, due_day)
    return candidate if candidate > paid_through else add_months(paid_through, 1, due_day)


def days_past_due(next_due: date, grace_days: int, today: date) -> int:
    return max(0, (today - next_due).days - grace_days)


def bucket_of(dpd: int) -> Bucket:
    for bucket, (low, high) in BUCKET_DPD.items():
        if dpd >= low and (high is None or dpd <= high):
            return bucket
    raise ValueError(f"days past due cannot be negative: {dpd}")


def counts_from_bounds(bucket: Bucket, today: date) -> tuple[date | None, date | None]:
    """Inclusive bounds on `next_due_date + grace_days` of the loans in `bucket` on `today`
    (None: unbounded), so a store can filter buckets in SQL."""
    low, high = BUCKET_DPD[bucket]
    earliest = None if high is None else today - timedelta(days=high)
    latest = None if low == 0 else today - timedelta(days=low)
    return earliest, latest


# -- loans and their case log -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loan:
    """A loan as stored. `id` is 0 before the store gives one; times are epoch ms UTC."""

    id: int
    loan_no: str
    borrower_name: str
    vehicle_id: str
    principal: Decimal
    currency: str
    start_date: date
    due_day: int
    next_due_date: date
    paid_through: date | None
    grace_days: int
    state: LoanState
    stage: Stage | None
    branch: str | None
    created_ms: int
    updated_ms: int

    def dpd(self, today: date) -> int | None:
        """Days past due on `today`; None once nothing is owed by schedule."""
        if self.state in WITHOUT_DPD:
            return None
        return days_past_due(self.next_due_date, self.grace_days, today)

    def bucket(self, today: date) -> Bucket | None:
        dpd = self.dpd(today)
        return None if dpd is None else bucket_of(dpd)


@dataclass(frozen=True, slots=True)
class CaseAction:
    """One entry of a loan's append-only log: who did what, when, how and with what result.

    `id` is 0 before the store gives one. `details` holds what the kind needs beyond the
    columns (a transition's from/to, a payment's old and new paid-through)."""

    id: int
    loan_no: str
    kind: ActionKind
    actor: str
    at_ms: int
    stage: Stage | None = None
    channel: Channel | None = None
    outcome: Outcome | None = None
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


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


def advance_stage(current: Stage | None, reached: Stage) -> Stage:
    """A case only moves forward: an earlier step again (one more reminder) keeps the stage."""
    if current is None or STAGE_ORDER[reached] > STAGE_ORDER[current]:
        return reached
    return current


def transition(
    loan: Loan, target: LoanState, actor: str, note: str | None, now_ms: int
) -> tuple[Loan, CaseAction]:
    """The loan moved to `target`, and the log entry saying so."""
    if not can_move(loan.state, target):
        raise LoanTransitionError(loan.loan_no, loan.state, target)
    stage = loan.stage
    if target in _STAGE_OF_STATE:
        stage = advance_stage(stage, _STAGE_OF_STATE[target])
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


# -- loans falling overdue by themselves, and what the live side reads --------------------------

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
SYSTEM_ACTOR = "system"


class NotPastDueError(LoanConflictError):
    """The sweep found the loan no longer due for the move (paid or moved meanwhile)."""


def worst_state(states: Iterable[LoanState]) -> LoanState | None:
    """The worst of a car's open loan states (final ones are ignored); None when none is open."""
    open_states = set(states) - FINAL
    return next((s for s in WORST_FIRST if s in open_states), None)


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
    return transition(loan, _S.OVERDUE, SYSTEM_ACTOR, note, now_ms)


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
