"""Loans and their case log in the store, on SQLite and real PostgreSQL, with one meaning:
create once per number, filters and paging, atomic changes with their log entry, an
append-only log, and the cars whose alerts are to be muted."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from loans import (
    ActionKind,
    Bucket,
    CaseAction,
    Channel,
    Loan,
    LoanState,
    LoanTransitionError,
    Outcome,
    Stage,
    apply_payment,
    log_collection,
    new_loan,
    paid_through_after,
    transition,
)
from store import Store, migrate, open_store, sqlite_path
from store.interface import LoanExistsError, LoanFilter, LoanNotFoundError

T0 = 1_709_280_000_000
TODAY = date(2024, 6, 30)


@pytest.fixture
def backend(store_url: str | None, tmp_path: Path) -> tuple[str | None, Path]:
    migrate(store_url, tmp_path)
    return store_url, tmp_path


@pytest.fixture
def store(backend: tuple[str | None, Path]) -> Iterator[Store]:
    opened = open_store(*backend)
    yield opened
    opened.close()


def make(
    loan_no: str,
    vehicle: str = "V1",
    *,
    paid_through: date | None = None,
    grace_days: int = 0,
    branch: str | None = "sh",
) -> Loan:
    return new_loan(
        loan_no=loan_no,
        borrower_name="李四",
        vehicle_id=vehicle,
        principal=Decimal("98765.43"),
        currency="CNY",
        start_date=date(2024, 1, 10),
        due_day=15,
        grace_days=grace_days,
        branch=branch,
        paid_through=paid_through,
        now_ms=T0,
    )


def test_a_loan_is_stored_once_per_number_and_read_back_exactly(store: Store) -> None:
    stored = store.create_loan(make("L-1", paid_through=date(2024, 3, 15)))
    assert stored.id > 0
    assert stored == replace(make("L-1", paid_through=date(2024, 3, 15)), id=stored.id)
    assert store.get_loan("L-1") == stored
    assert store.get_loan("L-404") is None
    with pytest.raises(LoanExistsError):
        store.create_loan(make("L-1", "V2"))
    assert store.get_loan("L-1") == stored


def test_loans_are_found_by_every_filter_and_paged_by_id(store: Store) -> None:
    # next due dates: L-a 2024-06-15 (15 dpd on TODAY: M1), L-b 2024-02-15 (136: M4+),
    # L-c 2024-07-15 (current: M0), L-d 2024-06-15 with 20 grace days (M0).
    store.create_loan(make("L-a", "V1", paid_through=date(2024, 5, 15)))
    store.create_loan(make("L-b", "V2", branch="bj"))
    store.create_loan(make("L-c", "V3", paid_through=date(2024, 6, 15)))
    store.create_loan(make("L-d", "V1", paid_through=date(2024, 5, 15), grace_days=20))

    def numbers(where: LoanFilter, **page: int) -> list[str]:
        return [loan.loan_no for loan in store.find_loans(where, **page)]

    assert numbers(LoanFilter()) == ["L-a", "L-b", "L-c", "L-d"]
    assert numbers(LoanFilter(vehicle_id="V1")) == ["L-a", "L-d"]
    assert numbers(LoanFilter(branch="bj")) == ["L-b"]
    assert numbers(LoanFilter(bucket=Bucket.M0, today=TODAY)) == ["L-c", "L-d"]
    assert numbers(LoanFilter(bucket=Bucket.M1, today=TODAY)) == ["L-a"]
    assert numbers(LoanFilter(bucket=Bucket.M2, today=TODAY)) == []
    assert numbers(LoanFilter(bucket=Bucket.M4_PLUS, today=TODAY)) == ["L-b"]
    first = store.find_loans(LoanFilter(), limit=2)
    assert [x.loan_no for x in first] == ["L-a", "L-b"]
    assert numbers(LoanFilter(), after_id=first[-1].id, limit=2) == ["L-c", "L-d"]
    store.update_loan("L-b", lambda x: transition(x, LoanState.OVERDUE, "ops", None, T0 + 1))
    store.update_loan(
        "L-b",
        lambda x: log_collection(x, Stage.VISIT, Channel.VISIT, Outcome.REFUSED, "ops", None, T0),
    )
    assert numbers(LoanFilter(state=LoanState.OVERDUE)) == ["L-b"]
    assert numbers(LoanFilter(stage=Stage.VISIT, branch="bj")) == ["L-b"]
    assert numbers(LoanFilter(stage=Stage.VISIT, branch="sh")) == []
    # A settled loan has no days past due, so no bucket holds it.
    store.update_loan("L-b", lambda x: transition(x, LoanState.SETTLED, "ops", None, T0 + 2))
    assert numbers(LoanFilter(bucket=Bucket.M4_PLUS, today=TODAY)) == []


def test_a_change_writes_the_loan_and_its_log_entry_together(store: Store) -> None:
    store.create_loan(make("L-1"))
    loan, action = store.update_loan(
        "L-1",
        lambda x: apply_payment(x, date(2024, 2, 15), "alice", "bank transfer", TODAY, T0 + 5),
    )
    assert loan.paid_through == date(2024, 2, 15)
    assert loan.next_due_date == date(2024, 3, 15)
    assert loan.updated_ms == T0 + 5 and loan.created_ms == T0
    assert store.get_loan("L-1") == loan
    assert action.id > 0 and action.loan_no == "L-1"
    assert (action.kind, action.actor, action.at_ms, action.note) == (
        ActionKind.PAYMENT,
        "alice",
        T0 + 5,
        "bank transfer",
    )
    assert action.details["paid_through"] == "2024-02-15"
    _, logged = store.update_loan(
        "L-1",
        lambda x: log_collection(x, Stage.PHONE, Channel.PHONE, Outcome.PROMISED_TO_PAY, "bob",
                                 "pays friday", T0 + 6),
    )  # fmt: skip
    assert store.loan_actions("L-1") == [action, logged]
    assert store.loan_actions("L-1", after_id=action.id) == [logged]
    assert store.loan_actions("L-1", limit=1) == [action]
    got = store.get_loan("L-1")
    assert got is not None and got.stage is Stage.PHONE


def test_a_refused_change_writes_nothing(store: Store) -> None:
    before = store.create_loan(make("L-1"))
    with pytest.raises(LoanTransitionError, match="from active to disposed"):
        store.update_loan("L-1", lambda x: transition(x, LoanState.DISPOSED, "ops", None, T0))
    assert store.get_loan("L-1") == before
    assert store.loan_actions("L-1") == []
    with pytest.raises(LoanNotFoundError):
        store.update_loan("L-404", lambda x: transition(x, LoanState.SETTLED, "ops", None, T0))
    with pytest.raises(LoanNotFoundError):
        store.loan_actions("L-404")


def test_concurrent_changes_to_one_loan_serialize(backend: tuple[str | None, Path]) -> None:
    """Each payment pays one more installment from what it reads: a lost update would show
    as fewer months paid than payments logged."""
    setup = open_store(*backend)
    setup.create_loan(make("L-1"))
    setup.close()
    errors: list[BaseException] = []

    def pay_one(loan: Loan, actor: str) -> tuple[Loan, CaseAction]:
        return apply_payment(loan, paid_through_after(loan, 1), actor, None, TODAY, T0)

    def pay_many(actor: str) -> None:
        mine = open_store(*backend)
        try:
            for _ in range(10):
                mine.update_loan("L-1", lambda x: pay_one(x, actor))
        except BaseException as exc:
            errors.append(exc)
        finally:
            mine.close()

    threads = [threading.Thread(target=pay_many, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check = open_store(*backend)
    try:
        assert len(check.loan_actions("L-1")) == 30
        got = check.get_loan("L-1")
        assert got is not None
        assert got.paid_through == date(2026, 7, 15)  # 30 installments from 2024-02-15
    finally:
        check.close()


def test_the_case_log_is_append_only_in_the_database(backend: tuple[str | None, Path]) -> None:
    url, data_dir = backend
    store = open_store(url, data_dir)
    store.create_loan(make("L-1"))
    store.update_loan("L-1", lambda x: transition(x, LoanState.OVERDUE, "ops", None, T0))
    store.close()
    for statement in ("UPDATE loan_actions SET actor = 'x'", "DELETE FROM loan_actions"):
        if url is None:
            with (
                sqlite3.connect(sqlite_path(data_dir)) as conn,
                pytest.raises(sqlite3.DatabaseError, match="append-only"),
            ):
                conn.execute(statement)
        else:
            with psycopg.connect(url) as conn, pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(statement)


def test_cars_whose_loans_are_all_closed_are_unmonitored(store: Store) -> None:
    assert store.unmonitored_vehicle_ids() == set()
    store.create_loan(make("L-1", "V1"))
    store.create_loan(make("L-2", "V2"))
    store.create_loan(make("L-3", "V2"))
    store.update_loan("L-1", lambda x: transition(x, LoanState.SETTLED, "ops", None, T0))
    store.update_loan("L-2", lambda x: transition(x, LoanState.SETTLED, "ops", None, T0))
    assert store.unmonitored_vehicle_ids() == {"V1"}  # V2 still has L-3 running
    store.update_loan("L-3", lambda x: transition(x, LoanState.OVERDUE, "ops", None, T0))
    store.update_loan("L-3", lambda x: transition(x, LoanState.REPOSSESSED, "ops", None, T0))
    assert store.unmonitored_vehicle_ids() == {"V1"}
    store.update_loan("L-3", lambda x: transition(x, LoanState.DISPOSED, "ops", None, T0))
    assert store.unmonitored_vehicle_ids() == {"V1", "V2"}
