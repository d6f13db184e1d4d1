"""Loans and their case log on SQLite: the SQL behind `SqliteStore`'s loan methods.

Writes run on a connection inside the adapter's `BEGIN IMMEDIATE` transaction, so reading a
loan, applying the pure change and writing it back cannot interleave with another writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date
from typing import Any

from loans import UNMONITORED, CaseAction, Loan, LoanState
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
    worst_states,
)

_SELECT = "SELECT " + ", ".join(LOAN_FIELDS) + " FROM loans"
_SELECT_ACTIONS = (
    "SELECT "
    + ", ".join(f"l.{f}" if f == "loan_no" else f"a.{f}" for f in ACTION_FIELDS)
    + " FROM loan_actions a JOIN loans l ON l.id = a.loan_id"
)
_COUNTS_FROM = "date(next_due_date, '+' || grace_days || ' days')"
_UNMONITORED = ", ".join(f"'{s.value}'" for s in sorted(UNMONITORED))


def _day(value: Any) -> str:
    return str(value.isoformat())


def create_loan(conn: sqlite3.Connection, loan: Loan) -> Loan:
    """Call inside a write transaction."""
    fields = LOAN_FIELDS[1:]
    row = conn.execute(
        f"INSERT INTO loans ({', '.join(fields)}) VALUES ({', '.join('?' for _ in fields)})"
        " ON CONFLICT (loan_no) DO NOTHING RETURNING id",
        loan_values(loan, _day),
    ).fetchone()
    if row is None:
        raise LoanExistsError(f"loan {loan.loan_no} already exists")
    found = get_loan(conn, loan.loan_no)
    assert found is not None
    return found


def get_loan(conn: sqlite3.Connection, loan_no: str) -> Loan | None:
    row = conn.execute(f"{_SELECT} WHERE loan_no = ?", (loan_no,)).fetchone()
    return None if row is None else loan_from_row(row)


def find_loans(
    conn: sqlite3.Connection, where: LoanFilter, after_id: int, limit: int
) -> list[Loan]:
    conditions, params = filter_conditions(where, _COUNTS_FROM, "?", _day)
    rows = conn.execute(
        f"{_SELECT} WHERE {' AND '.join(['id > ?', *conditions])} ORDER BY id LIMIT ?",
        (after_id, *params, limit),
    ).fetchall()
    return [loan_from_row(row) for row in rows]


def update_loan(
    conn: sqlite3.Connection, loan_no: str, change: LoanChange
) -> tuple[Loan, CaseAction]:
    """Call inside a write transaction (BEGIN IMMEDIATE): read, change and write are atomic."""
    current = get_loan(conn, loan_no)
    if current is None:
        raise LoanNotFoundError(f"no loan {loan_no}")
    moved, action = change(current)
    conn.execute(
        f"UPDATE loans SET {', '.join(f'{f} = ?' for f in MUTABLE_FIELDS)} WHERE id = ?",
        (*mutable_values(moved, _day), current.id),
    )
    row = conn.execute(
        "INSERT INTO loan_actions (loan_id, kind, stage, channel, outcome, note, actor, at_ms,"
        " details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (current.id, *action_values(action)),
    ).fetchone()
    stored = conn.execute(f"{_SELECT_ACTIONS} WHERE a.id = ?", (row[0],)).fetchone()
    found = get_loan(conn, loan_no)
    assert found is not None
    return found, action_from_row(stored)


def loan_actions(
    conn: sqlite3.Connection, loan_no: str, after_id: int, limit: int
) -> list[CaseAction]:
    if get_loan(conn, loan_no) is None:
        raise LoanNotFoundError(f"no loan {loan_no}")
    rows = conn.execute(
        f"{_SELECT_ACTIONS} WHERE l.loan_no = ? AND a.id > ? ORDER BY a.id LIMIT ?",
        (loan_no, after_id, limit),
    ).fetchall()
    return [action_from_row(row) for row in rows]


def unmonitored_vehicle_ids(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT vehicle_id FROM loans GROUP BY vehicle_id"
        f" HAVING sum(state NOT IN ({_UNMONITORED})) = 0"
    ).fetchall()
    return {row[0] for row in rows}


# -- the sweep's past-due loans and the cars' loan states ---------------------------------------


def past_due_loans(conn: sqlite3.Connection, today: date, after_id: int, limit: int) -> list[Loan]:
    conditions, params = past_due_conditions(today, _COUNTS_FROM, "?", _day)
    rows = conn.execute(
        f"{_SELECT} WHERE {' AND '.join(['id > ?', *conditions])} ORDER BY id LIMIT ?",
        (after_id, *params, limit),
    ).fetchall()
    return [loan_from_row(row) for row in rows]


def loan_states(
    conn: sqlite3.Connection, vehicle_ids: Sequence[str] | None
) -> dict[str, LoanState]:
    if vehicle_ids is not None and not vehicle_ids:
        return {}
    wanted = list(vehicle_ids or ())
    rows = conn.execute(open_states_sql(len(wanted), "?"), wanted).fetchall()
    return worst_states(rows)
