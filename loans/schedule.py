"""The repayment schedule, days past due and the delinquency bucket.

One installment a month on `due_day` (1-28, so every month has it), the first in the month
after the start date. `paid_through` is the last due date the payments cover; the oldest due
date after it is `next_due_date`. Days past due count from `next_due_date` once the grace
period has run: DPD = max(0, today - next_due_date - grace_days), so a grace period shifts the
day count rather than only delaying its start.
"""

from __future__ import annotations

import enum
from datetime import date, timedelta


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


def past_due_before(today: date) -> date:
    """Loans whose `next_due_date + grace_days` is before this day have days past due on
    `today` (`days_past_due` > 0), so a store can find them in SQL."""
    return today
