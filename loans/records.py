"""A loan as stored and one entry of its append-only case log."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from loans.collection import Channel, Outcome, Stage
from loans.schedule import Bucket, bucket_of, days_past_due
from loans.states import WITHOUT_DPD, LoanState


class ActionKind(enum.StrEnum):
    COLLECTION = "collection"  # a collection step: stage, channel, outcome
    PAYMENT = "payment"  # paid-through moved
    TRANSITION = "transition"  # the loan changed state


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
    org: int = 1  # the owning organization unit (the platform root until given)
    borrower_id: int | None = None  # the borrower's record (`loans.parties.Borrower`)

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
