"""Loans and their case log on PostgreSQL: the SQL behind `PostgresStore`'s loan methods.

`update_loan` reads the loan `FOR UPDATE` inside the adapter's transaction, so of two changes
to one loan the second sees the first's result. Times cross as epoch ms, converted in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import psycopg

from loans import UNMONITORED, CaseAction, Loan, LoanState
from store.interface import LoanChange, LoanExistsError, LoanFilter, LoanNotFoundError
from store.loan_rows import (
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

Conn = psycopg.Connection[tuple[Any, ...]]

_MS = "timestamptz 'epoch' + %s * interval '1 millisecond'"
_TIME_COLUMNS = {"created_ms": "created_at", "updated_ms": "updated_at"}


def _ts(column: str) -> str:
    """A timestamptz column as epoch ms (exact: extract gives numeric)."""
    return f"floor(extract(epoch FROM {column}) * 1000)::bigint"


_SELECT = (
    "SELECT "
    + ", ".join(_ts(_TIME_COLUMNS[f]) if f in _TIME_COLUMNS else f for f in LOAN_FIELDS)
    + " FROM loans"
)
_SELECT_ACTIONS = (
    "SELECT a.id, l.loan_no, a.kind, a.actor, "
    + _ts("a.at")
    + ", a.stage, a.channel, a.outcome, a.note, a.details"
    " FROM loan_actions a JOIN loans l ON l.id = a.loan_id"
)
_INSERT_COLUMNS = [_TIME_COLUMNS.get(f, f) for f in LOAN_FIELDS[1:]]
_INSERT_MARKS = [_MS if f in _TIME_COLUMNS else "%s" for f in LOAN_FIELDS[1:]]
_UPDATE_SET = ", ".join(
    f"{_TIME_COLUMNS[f]} = {_MS}" if f in _TIME_COLUMNS else f"{f} = %s" for f in MUTABLE_FIELDS
)
_UNMONITORED = [s.value for s in sorted(UNMONITORED)]


def _day(value: date) -> date:
    return value


def create_loan(conn: Conn, loan: Loan) -> Loan:
    row = conn.execute(
        f"INSERT INTO loans ({', '.join(_INSERT_COLUMNS)}) VALUES ({', '.join(_INSERT_MARKS)})"
        " ON CONFLICT (loan_no) DO NOTHING RETURNING id",
        loan_values(loan, _day),
    ).fetchone()
    if row is None:
        raise LoanExistsError(f"loan {loan.loan_no} already exists")
    found = get_loan(conn, loan.loan_no)
    assert found is not None
    return found


def get_loan(conn: Conn, loan_no: str, *, lock: bool = False) -> Loan | None:
    row = conn.execute(
        f"{_SELECT} WHERE loan_no = %s{' FOR UPDATE' if lock else ''}", (loan_no,)
    ).fetchone()
    return None if row is None else loan_from_row(row)


def find_loans(conn: Conn, where: LoanFilter, after_id: int, limit: int) -> list[Loan]:
    conditions, params = filter_conditions(where, "(next_due_date + grace_days)", "%s", _day)
    rows = conn.execute(
        f"{_SELECT} WHERE {' AND '.join(['id > %s', *conditions])} ORDER BY id LIMIT %s",
        (after_id, *params, limit),
    ).fetchall()
    return [loan_from_row(row) for row in rows]


def update_loan(conn: Conn, loan_no: str, change: LoanChange) -> tuple[Loan, CaseAction]:
    """Call inside a transaction: the row lock is held until it commits."""
    current = get_loan(conn, loan_no, lock=True)
    if current is None:
        raise LoanNotFoundError(f"no loan {loan_no}")
    moved, action = change(current)
    conn.execute(
        f"UPDATE loans SET {_UPDATE_SET} WHERE id = %s",
        (*mutable_values(moved, _day), current.id),
    )
    row = conn.execute(
        "INSERT INTO loan_actions (loan_id, kind, stage, channel, outcome, note, actor, at,"
        f" details) VALUES (%s, %s, %s, %s, %s, %s, %s, {_MS}, %s::jsonb) RETURNING id",
        (current.id, *action_values(action)),
    ).fetchone()
    assert row is not None
    stored = conn.execute(f"{_SELECT_ACTIONS} WHERE a.id = %s", (row[0],)).fetchone()
    found = get_loan(conn, loan_no)
    assert found is not None
    assert stored is not None
    return found, action_from_row(stored)


def loan_actions(conn: Conn, loan_no: str, after_id: int, limit: int) -> list[CaseAction]:
    if get_loan(conn, loan_no) is None:
        raise LoanNotFoundError(f"no loan {loan_no}")
    rows = conn.execute(
        f"{_SELECT_ACTIONS} WHERE l.loan_no = %s AND a.id > %s ORDER BY a.id LIMIT %s",
        (loan_no, after_id, limit),
    ).fetchall()
    return [action_from_row(row) for row in rows]


def unmonitored_vehicle_ids(conn: Conn) -> set[str]:
    rows = conn.execute(
        "SELECT vehicle_id FROM loans GROUP BY vehicle_id HAVING bool_and(state = ANY(%s))",
        (_UNMONITORED,),
    ).fetchall()
    return {row[0] for row in rows}


# -- the sweep's past-due loans and the cars' loan states ---------------------------------------


def past_due_loans(conn: Conn, today: date, after_id: int, limit: int) -> list[Loan]:
    conditions, params = past_due_conditions(today, "(next_due_date + grace_days)", "%s", _day)
    rows = conn.execute(
        f"{_SELECT} WHERE {' AND '.join(['id > %s', *conditions])} ORDER BY id LIMIT %s",
        (after_id, *params, limit),
    ).fetchall()
    return [loan_from_row(row) for row in rows]


def loan_states(conn: Conn, vehicle_ids: Sequence[str] | None) -> dict[str, LoanState]:
    if vehicle_ids is not None and not vehicle_ids:
        return {}
    wanted = list(vehicle_ids or ())
    rows = conn.execute(open_states_sql(len(wanted), "%s"), wanted).fetchall()
    return worst_states(rows)
