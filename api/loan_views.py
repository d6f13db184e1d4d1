"""JSON shapes of loans and their case log. Days past due and the bucket are computed for the
day given (the API's today in the trackers' local time), never stored."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from alerts.model import DEFAULT_UTC_OFFSET
from api.views import iso
from loans import UNMONITORED, CaseAction, Loan


def local_date(now_ms: int) -> date:
    """The calendar day at `now_ms` in the trackers' local time (GMT+8), where loans fall due."""
    return datetime.fromtimestamp(now_ms / 1000, DEFAULT_UTC_OFFSET).date()


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def loan_json(loan: Loan, today: date) -> dict[str, Any]:
    bucket = loan.bucket(today)
    return {
        "id": loan.id,
        "org": loan.org,
        "borrower_id": loan.borrower_id,
        "loan_no": loan.loan_no,
        "borrower_name": loan.borrower_name,
        "vehicle_id": loan.vehicle_id,
        "principal": f"{loan.principal:.2f}",
        "currency": loan.currency,
        "start_date": loan.start_date.isoformat(),
        "due_day": loan.due_day,
        "next_due_date": loan.next_due_date.isoformat(),
        "paid_through": _day(loan.paid_through),
        "grace_days": loan.grace_days,
        "state": loan.state.value,
        "stage": None if loan.stage is None else loan.stage.value,
        "branch": loan.branch,
        "created_at": iso(loan.created_ms),
        "updated_at": iso(loan.updated_ms),
        "as_of": today.isoformat(),
        "dpd": loan.dpd(today),
        "bucket": None if bucket is None else bucket.value,
        "monitored": loan.state not in UNMONITORED,
    }


def action_json(action: CaseAction) -> dict[str, Any]:
    return {
        "id": action.id,
        "loan_no": action.loan_no,
        "kind": action.kind.value,
        "actor": action.actor,
        "at": iso(action.at_ms),
        "stage": None if action.stage is None else action.stage.value,
        "channel": None if action.channel is None else action.channel.value,
        "outcome": None if action.outcome is None else action.outcome.value,
        "note": action.note,
        "details": action.details,
    }
