"""Loans fall overdue by themselves, on SQLite and real PostgreSQL: the store lists the active
and restructured loans past due on a day, and the sweep moves them to overdue as `system`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from lienwatch.loan_sweep import LoanSweeper, sweep_overdue
from loans import (
    ActionKind,
    CaseAction,
    Loan,
    LoanState,
    apply_payment,
    new_loan,
    transition,
)
from store import Store, migrate, open_store

T0 = 1_709_280_000_000
T1 = T0 + 86_400_000


@pytest.fixture
def backend(store_url: str | None, tmp_path: Path) -> tuple[str | None, Path]:
    migrate(store_url, tmp_path)
    return store_url, tmp_path


@pytest.fixture
def store(backend: tuple[str | None, Path]) -> Iterator[Store]:
    opened = open_store(*backend)
    yield opened
    opened.close()


def make(loan_no: str, vehicle: str = "V1", *, grace_days: int = 0) -> Loan:
    """First installment due 2024-02-15."""
    return new_loan(
        loan_no=loan_no,
        borrower_name="王五",
        vehicle_id=vehicle,
        principal=Decimal("50000.00"),
        currency="CNY",
        start_date=date(2024, 1, 10),
        due_day=15,
        grace_days=grace_days,
        branch=None,
        paid_through=None,
        now_ms=T0,
    )


def numbers(loans: Sequence[Loan | tuple[Loan, CaseAction]]) -> list[str]:
    return [(item if isinstance(item, Loan) else item[0]).loan_no for item in loans]


def test_past_due_loans_are_exactly_those_the_model_counts_past_due(store: Store) -> None:
    store.create_loan(make("L-due"))
    store.create_loan(make("L-grace", grace_days=3))
    for day in (date(2024, 2, 14), date(2024, 2, 15), date(2024, 2, 16), date(2024, 2, 19)):
        listed = numbers(store.past_due_loans(day))
        expected = [no for no in ("L-due", "L-grace") if (store.get_loan(no) or make(no)).dpd(day)]
        assert listed == expected, day
    assert numbers(store.past_due_loans(date(2024, 2, 16))) == ["L-due"]
    assert numbers(store.past_due_loans(date(2024, 2, 19))) == ["L-due", "L-grace"]


def test_only_active_and_restructured_loans_are_listed(store: Store) -> None:
    for no in ("L-a", "L-r", "L-o", "L-s"):
        store.create_loan(make(no))
    store.update_loan("L-r", lambda x: transition(x, LoanState.RESTRUCTURED, "x", None, T1))
    store.update_loan("L-o", lambda x: transition(x, LoanState.OVERDUE, "x", None, T1))
    store.update_loan("L-s", lambda x: transition(x, LoanState.SETTLED, "x", None, T1))
    assert numbers(store.past_due_loans(date(2024, 3, 1))) == ["L-a", "L-r"]


def test_past_due_loans_page_by_id(store: Store) -> None:
    for i in range(5):
        store.create_loan(make(f"L-{i}"))
    first = store.past_due_loans(date(2024, 3, 1), limit=2)
    rest = store.past_due_loans(date(2024, 3, 1), after_id=first[-1].id, limit=10)
    assert numbers(first) + numbers(rest) == [f"L-{i}" for i in range(5)]


def test_the_sweep_moves_past_due_loans_to_overdue_as_system(store: Store) -> None:
    store.create_loan(make("L-due", "V1"))
    store.create_loan(make("L-grace", "V2", grace_days=30))
    moved = sweep_overdue(store, date(2024, 2, 20), T1)
    assert numbers(moved) == ["L-due"]
    loan = store.get_loan("L-due")
    assert loan is not None and loan.state is LoanState.OVERDUE and loan.updated_ms == T1
    last = store.loan_actions("L-due")[-1]
    assert last.kind is ActionKind.TRANSITION and last.actor == "system"
    assert last.details == {"from": "active", "to": "overdue"}
    assert last.note == "5 days past due on 2024-02-20"
    grace = store.get_loan("L-grace")
    assert grace is not None and grace.state is LoanState.ACTIVE
    # Nothing left to move: a second pass changes and logs nothing.
    assert sweep_overdue(store, date(2024, 2, 20), T1) == []
    assert len(store.loan_actions("L-due")) == 1


def test_a_payment_made_meanwhile_wins_over_the_sweep(store: Store) -> None:
    """The sweep checks again under the lock: a loan paid after it was listed stays active."""
    store.create_loan(make("L-1"))
    day = date(2024, 2, 20)
    listed = store.past_due_loans(day)
    assert numbers(listed) == ["L-1"]
    store.update_loan("L-1", lambda x: apply_payment(x, date(2024, 2, 15), "x", None, day, T1))
    assert sweep_overdue(store, day, T1) == []
    loan = store.get_loan("L-1")
    assert loan is not None and loan.state is LoanState.ACTIVE


def test_loan_states_give_each_car_its_worst_open_loan(store: Store) -> None:
    store.create_loan(make("L-1", "V1"))
    store.create_loan(make("L-2", "V1"))
    store.create_loan(make("L-3", "V2"))
    store.create_loan(make("L-4", "V3"))
    assert store.loan_states() == {
        "V1": LoanState.ACTIVE,
        "V2": LoanState.ACTIVE,
        "V3": LoanState.ACTIVE,
    }
    store.update_loan("L-2", lambda x: transition(x, LoanState.OVERDUE, "x", None, T1))
    store.update_loan("L-4", lambda x: transition(x, LoanState.SETTLED, "x", None, T1))
    assert store.loan_states() == {"V1": LoanState.OVERDUE, "V2": LoanState.ACTIVE}
    assert store.loan_states(["V1", "V3", "nope"]) == {"V1": LoanState.OVERDUE}
    assert store.loan_states([]) == {}


def test_the_sweeper_runs_in_a_thread_and_tells_what_it_moved(
    backend: tuple[str | None, Path],
) -> None:
    setup = open_store(*backend)
    try:
        setup.create_loan(make("L-1"))
    finally:
        setup.close()
    told: list[list[str]] = []

    async def run() -> None:
        sweeper = LoanSweeper(
            lambda: open_store(*backend),
            interval_s=3600,
            today=lambda: date(2024, 3, 1),
            clock_ms=lambda: T1,
            on_moved=lambda loans: told.append(numbers(loans)),
        )
        sweeper.start()
        for _ in range(200):
            if told:
                break
            await asyncio.sleep(0.02)
        await sweeper.close()

    asyncio.run(run())
    assert told == [["L-1"]]
    check = open_store(*backend)
    try:
        loan = check.get_loan("L-1")
        assert loan is not None and loan.state is LoanState.OVERDUE
    finally:
        check.close()
