"""The car and the borrower behind a loan, as records, and how much of a borrower a role sees.

A borrower's identity number and phone are personal data: shown whole only to the roles whose
work needs them (officers calling, admins), masked for everyone else, and never written to a
log or the audit trail whole.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A financed car. `vehicle_id` is the id devices and loans name it by; `dealer` the
    dealer unit that sold it (None when unknown); `org` the unit owning it."""

    vehicle_id: str
    org: int
    vin: str | None = None
    plate: str | None = None
    make: str | None = None
    model: str | None = None
    colour: str | None = None
    dealer: int | None = None


@dataclass(frozen=True, slots=True)
class Borrower:
    """A borrower as stored; `id` is 0 before the store gives one."""

    id: int
    org: int
    name: str
    id_number: str | None
    phone: str | None
    created_ms: int


def mask_tail(value: str | None, *, keep_start: int, keep_end: int = 4) -> str | None:
    """`value` with every character but the first `keep_start` and the last `keep_end`
    replaced by `*` (wholly masked when it is too short to keep both)."""
    if value is None:
        return None
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    middle = len(value) - keep_start - keep_end
    return value[:keep_start] + "*" * middle + value[len(value) - keep_end :]


def masked(borrower: Borrower) -> Borrower:
    """What a viewer sees: the identity number's last 4 characters, the phone's first 3 and
    last 4 (`138****5678`), the rest as `*`."""
    return Borrower(
        borrower.id,
        borrower.org,
        borrower.name,
        mask_tail(borrower.id_number, keep_start=0),
        mask_tail(borrower.phone, keep_start=3),
        borrower.created_ms,
    )
