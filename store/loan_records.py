"""Loans and their case log: create, read, page, change (read, apply the pure change, write
back and log, in one transaction with the loan's row locked), and the sweep's reads.

SQL written once for both databases (`store.statements`, `store.dialect`): dates cross as the
dialect's day parameter, times as epoch ms. What a change does is `loans.changes`, which loans
are past due or unmonitored is `loans.states`; the store only maps rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from loans import UNMONITORED, CaseAction, Loan, LoanState, worst_state_per_car
from store.alert_rows import check_page
from store.dialect import Dialect
from store.interface import LoanChange, LoanExistsError, LoanFilter, LoanNotFoundError
from store.loan_rows import (
    ACTION_FIELDS,
    LOAN_FIELDS,
    MUTABLE_FIELDS,
    action_from_row,
    action_values,
    filter_conditions,
    loan_from_row,
    loan_values,
    mutable_values,
    open_states_sql,
    past_due_conditions,
)
from store.statements import StatementRunner

_TIMES = {"created_ms", "updated_ms", "at_ms"}
_UNMONITORED = ", ".join(f"'{s.value}'" for s in sorted(UNMONITORED))


def _select(d: Dialect) -> str:
    fields = [d.ms(f) if f in _TIMES else f for f in LOAN_FIELDS]
    return f"SELECT {', '.join(fields)} FROM loans"


def _select_actions(d: Dialect) -> str:
    fields = [
        "l.loan_no" if f == "loan_no" else d.ms(f"a.{f}") if f in _TIMES else f"a.{f}"
        for f in ACTION_FIELDS
    ]
    return f"SELECT {', '.join(fields)} FROM loan_actions a JOIN loans l ON l.id = a.loan_id"


def _counts_from(d: Dialect) -> str:
    """The first day that counts past due: the due date plus the grace days."""
    return d.add_days("next_due_date", "grace_days")


def _get(runner: StatementRunner, loan_no: str, lock: bool = False) -> Loan | None:
    d = runner._dialect
    rows = runner._run(
        "get loan", f"{_select(d)} WHERE loan_no = ?{d.for_update if lock else ''}", (loan_no,)
    ).rows
    return loan_from_row(rows[0]) if rows else None


def _page(
    runner: StatementRunner,
    what: str,
    conditions: Sequence[str],
    params: Sequence[object],
    after_id: int,
    limit: int,
) -> list[Loan]:
    check_page(after_id, limit)
    rows = runner._run(
        what,
        f"{_select(runner._dialect)} WHERE {' AND '.join(['id > ?', *conditions])}"
        " ORDER BY id LIMIT ?",
        (after_id, *params, limit),
    ).rows
    return [loan_from_row(row) for row in rows]


class LoanRecords:
    """Mixin of both adapters."""

    def create_loan(self: StatementRunner, loan: Loan) -> Loan:
        d = self._dialect
        fields = LOAN_FIELDS[1:]
        columns = ", ".join(d.col(f) if f in _TIMES else f for f in fields)
        marks = ", ".join(d.at() if f in _TIMES else "?" for f in fields)
        with self._atomic("create loan"):
            created = self._run(
                "create loan",
                f"INSERT INTO loans ({columns}) VALUES ({marks})"
                " ON CONFLICT (loan_no) DO NOTHING RETURNING id",
                loan_values(loan, d.day),
            ).rows
            if not created:
                raise LoanExistsError(f"loan {loan.loan_no} already exists")
            found = _get(self, loan.loan_no)
        assert found is not None
        return found

    def get_loan(self: StatementRunner, loan_no: str) -> Loan | None:
        return _get(self, loan_no)

    def find_loans(
        self: StatementRunner, where: LoanFilter, *, after_id: int = 0, limit: int = 100
    ) -> list[Loan]:
        d = self._dialect
        conditions, params = filter_conditions(where, _counts_from(d), d.day)
        return _page(self, "find loans", conditions, params, after_id, limit)

    def update_loan(
        self: StatementRunner, loan_no: str, change: LoanChange
    ) -> tuple[Loan, CaseAction]:
        """Reads the loan locked, applies `change` (pure), writes it back and logs the action,
        all in one transaction: of two changes to one loan the second sees the first's result."""
        d = self._dialect
        setters = ", ".join(
            f"{d.col(f)} = {d.at()}" if f in _TIMES else f"{f} = ?" for f in MUTABLE_FIELDS
        )
        with self._atomic("update loan"):
            current = _get(self, loan_no, lock=True)
            if current is None:
                raise LoanNotFoundError(f"no loan {loan_no}")
            moved, action = change(current)
            self._run(
                "update loan",
                f"UPDATE loans SET {setters} WHERE id = ?",
                (*mutable_values(moved, d.day), current.id),
            )
            logged = self._run(
                "log loan action",
                "INSERT INTO loan_actions (loan_id, kind, stage, channel, outcome, note, actor,"
                f" {d.col('at_ms')}, details) VALUES (?, ?, ?, ?, ?, ?, ?, {d.at()}, {d.json()})"
                " RETURNING id",
                (current.id, *action_values(action)),
            ).rows
            stored = self._run(
                "read loan action", f"{_select_actions(d)} WHERE a.id = ?", (logged[0][0],)
            ).rows
            found = _get(self, loan_no)
        assert found is not None
        return found, action_from_row(stored[0])

    def loan_actions(
        self: StatementRunner, loan_no: str, *, after_id: int = 0, limit: int = 100
    ) -> list[CaseAction]:
        check_page(after_id, limit)
        if _get(self, loan_no) is None:
            raise LoanNotFoundError(f"no loan {loan_no}")
        rows = self._run(
            "loan actions",
            f"{_select_actions(self._dialect)} WHERE l.loan_no = ? AND a.id > ?"
            " ORDER BY a.id LIMIT ?",
            (loan_no, after_id, limit),
        ).rows
        return [action_from_row(row) for row in rows]

    def unmonitored_vehicle_ids(self: StatementRunner) -> set[str]:
        """Cars all of whose loans are in an unmonitored state."""
        rows = self._run(
            "unmonitored vehicles",
            "SELECT vehicle_id FROM loans GROUP BY vehicle_id"
            f" HAVING sum(CASE WHEN state IN ({_UNMONITORED}) THEN 0 ELSE 1 END) = 0",
        ).rows
        return {str(row[0]) for row in rows}

    def past_due_loans(
        self: StatementRunner, today: date, *, after_id: int = 0, limit: int = 100
    ) -> list[Loan]:
        d = self._dialect
        conditions, params = past_due_conditions(today, _counts_from(d), d.day)
        return _page(self, "past-due loans", conditions, params, after_id, limit)

    def loan_states(
        self: StatementRunner, vehicle_ids: Sequence[str] | None = None
    ) -> dict[str, LoanState]:
        if vehicle_ids is not None and not vehicle_ids:
            return {}
        wanted = list(vehicle_ids or ())
        rows = self._run("loan states", open_states_sql(len(wanted)), wanted).rows
        return worst_state_per_car((str(v), LoanState(s)) for v, s in rows)
