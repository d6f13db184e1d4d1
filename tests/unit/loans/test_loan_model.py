"""The pure loan model: the schedule, days past due with grace, buckets, payments, stages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from loans import (
    ActionKind,
    Bucket,
    Channel,
    Loan,
    LoanClosedError,
    LoanState,
    LoanTransitionError,
    Outcome,
    PaymentError,
    Stage,
    advance_stage,
    apply_payment,
    bucket_of,
    counts_from_bounds,
    days_past_due,
    first_due_date,
    log_collection,
    new_loan,
    next_due_date,
    paid_through_after,
    past_due_before,
    transition,
)

START = date(2024, 1, 10)


def loan(paid_through: date | None = None, grace_days: int = 0) -> Loan:
    return new_loan(
        loan_no="L-1",
        borrower_name="张三",
        vehicle_id="V1",
        principal=Decimal("120000.00"),
        currency="CNY",
        start_date=START,
        due_day=15,
        grace_days=grace_days,
        branch="sh",
        paid_through=paid_through,
        now_ms=1,
    )


def test_the_first_installment_falls_due_in_the_month_after_the_start() -> None:
    assert first_due_date(START, 15) == date(2024, 2, 15)
    assert first_due_date(date(2024, 12, 31), 28) == date(2025, 1, 28)


def test_next_due_is_the_oldest_due_date_after_paid_through() -> None:
    assert next_due_date(START, 15, None) == date(2024, 2, 15)
    assert next_due_date(START, 15, date(2024, 2, 15)) == date(2024, 3, 15)
    assert next_due_date(START, 15, date(2024, 2, 20)) == date(2024, 3, 15)
    assert next_due_date(START, 15, date(2024, 3, 14)) == date(2024, 3, 15)
    assert next_due_date(START, 15, date(2024, 12, 15)) == date(2025, 1, 15)
    assert next_due_date(START, 15, date(2024, 1, 12)) == date(2024, 2, 15)


def test_days_past_due_count_after_the_grace_period_shifted_by_it() -> None:
    due = date(2024, 2, 15)
    assert days_past_due(due, 0, date(2024, 2, 15)) == 0
    assert days_past_due(due, 0, date(2024, 2, 16)) == 1
    assert days_past_due(due, 0, date(2024, 2, 1)) == 0
    assert days_past_due(due, 5, date(2024, 2, 20)) == 0
    assert days_past_due(due, 5, date(2024, 2, 21)) == 1


@pytest.mark.parametrize(
    ("dpd", "bucket"),
    [(0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"),
     (91, "M4+"), (4000, "M4+")],
)  # fmt: skip
def test_buckets_follow_the_dpd_bands(dpd: int, bucket: str) -> None:
    assert bucket_of(dpd) == Bucket(bucket)


def test_negative_days_past_due_have_no_bucket() -> None:
    with pytest.raises(ValueError, match="negative"):
        bucket_of(-1)


def test_bucket_bounds_select_exactly_the_bucket_s_loans() -> None:
    today = date(2024, 6, 30)
    for grace in (0, 3):
        for offset in range(-40, 200):
            due = date.fromordinal(today.toordinal() - offset)
            bucket = bucket_of(days_past_due(due, grace, today))
            for candidate in Bucket:
                earliest, latest = counts_from_bounds(candidate, today)
                counts_from = date.fromordinal(due.toordinal() + grace)
                inside = (earliest is None or counts_from >= earliest) and (
                    latest is None or counts_from <= latest
                )
                assert inside == (candidate is bucket), (offset, grace, candidate)


def test_a_loan_s_dpd_and_bucket_are_computed_for_the_day_given() -> None:
    fresh = loan(grace_days=3)
    assert fresh.dpd(date(2024, 2, 18)) == 0
    assert fresh.dpd(date(2024, 3, 20)) == 31
    assert fresh.bucket(date(2024, 3, 20)) is Bucket.M2
    settled, _ = transition(fresh, LoanState.SETTLED, "ops", None, 2)
    assert settled.dpd(date(2025, 1, 1)) is None
    assert settled.bucket(date(2025, 1, 1)) is None


def test_a_payment_moves_paid_through_and_cures_an_overdue_loan() -> None:
    overdue, _ = transition(loan(), LoanState.OVERDUE, "ops", None, 2)
    today = date(2024, 3, 20)
    partly, action = apply_payment(overdue, date(2024, 2, 15), "alice", "cash", today, 3)
    assert partly.paid_through == date(2024, 2, 15)
    assert partly.next_due_date == date(2024, 3, 15)
    assert partly.state is LoanState.OVERDUE  # still 5 days late
    assert action.kind is ActionKind.PAYMENT and action.actor == "alice"
    assert "state" not in action.details
    cured, action = apply_payment(partly, date(2024, 3, 15), "alice", None, today, 4)
    assert cured.state is LoanState.ACTIVE
    assert cured.updated_ms == 4
    assert action.details["state"] == {"from": "overdue", "to": "active"}
    assert action.details["paid_through_before"] == "2024-02-15"


def test_installments_count_from_the_oldest_unpaid_due_date() -> None:
    assert paid_through_after(loan(), 1) == date(2024, 2, 15)
    assert paid_through_after(loan(), 3) == date(2024, 4, 15)
    assert paid_through_after(loan(date(2024, 11, 15)), 2) == date(2025, 1, 15)
    with pytest.raises(PaymentError, match="installments"):
        paid_through_after(loan(), 0)


def test_a_payment_never_moves_paid_through_back_nor_applies_to_a_closed_loan() -> None:
    paid = loan(date(2024, 4, 15))
    with pytest.raises(PaymentError) as caught:
        apply_payment(paid, date(2024, 3, 15), "a", None, date(2024, 5, 1), 2)
    assert caught.value.field == "paid_through"
    settled, _ = transition(paid, LoanState.SETTLED, "a", None, 2)
    with pytest.raises(LoanClosedError, match="settled"):
        apply_payment(settled, date(2024, 5, 15), "a", None, date(2024, 5, 1), 3)


def test_collection_actions_move_the_stage_forward_only() -> None:
    case, action = log_collection(
        loan(), Stage.PHONE, Channel.PHONE, Outcome.NO_ANSWER, "bob", "voicemail", 5
    )
    assert case.stage is Stage.PHONE
    assert (action.stage, action.channel, action.outcome) == (
        Stage.PHONE,
        Channel.PHONE,
        Outcome.NO_ANSWER,
    )
    assert (action.actor, action.at_ms, action.note) == ("bob", 5, "voicemail")
    again, _ = log_collection(case, Stage.REMINDER, Channel.SMS, Outcome.CONTACTED, "bob", None, 6)
    assert again.stage is Stage.PHONE
    assert advance_stage(None, Stage.LEGAL) is Stage.LEGAL
    assert advance_stage(Stage.LEGAL, Stage.VISIT) is Stage.LEGAL


def test_repossession_disposal_and_write_off_carry_the_case_stage_with_them() -> None:
    current = loan()
    for state, stage in (
        (LoanState.OVERDUE, None),
        (LoanState.REPOSSESSED, Stage.REPOSSESSION),
        (LoanState.DISPOSED, Stage.DISPOSAL),
        (LoanState.WRITTEN_OFF, Stage.WRITE_OFF),
    ):
        current, action = transition(current, state, "ops", None, 9)
        assert current.stage is stage
        assert action.kind is ActionKind.TRANSITION
    with pytest.raises(LoanClosedError):
        log_collection(current, Stage.WRITE_OFF, Channel.OTHER, Outcome.OTHER, "ops", None, 10)


def test_a_refused_move_names_from_and_to() -> None:
    with pytest.raises(LoanTransitionError, match="from active to disposed"):
        transition(loan(), LoanState.DISPOSED, "ops", None, 2)
    settled, _ = transition(loan(), LoanState.SETTLED, "ops", None, 2)
    with pytest.raises(LoanTransitionError, match="settled is final"):
        transition(settled, LoanState.ACTIVE, "ops", None, 3)


def test_a_new_loan_refuses_a_due_day_some_month_lacks() -> None:
    with pytest.raises(PaymentError, match="due_day"):
        new_loan(
            loan_no="L",
            borrower_name="x",
            vehicle_id="V",
            principal=Decimal(1),
            currency="CNY",
            start_date=START,
            due_day=31,
            grace_days=0,
            branch=None,
            paid_through=None,
            now_ms=0,
        )


def test_a_loan_is_past_due_exactly_when_its_grace_ends_before_the_bound() -> None:
    today = date(2024, 3, 20)
    for offset in range(-5, 6):
        for grace in (0, 3):
            due = date.fromordinal(today.toordinal() - offset)
            counts_from = date.fromordinal(due.toordinal() + grace)
            past_due = days_past_due(due, grace, today) > 0
            assert past_due == (counts_from < past_due_before(today)), (offset, grace)
