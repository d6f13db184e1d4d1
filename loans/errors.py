"""Why a loan change was refused: a conflict with the loan's state, or a bad payment."""

from __future__ import annotations

from loans.states import FINAL, LoanState


class LoanConflictError(ValueError):
    """The asked change does not fit the loan's current state (an HTTP 409)."""


class LoanTransitionError(LoanConflictError):
    """The move from the loan's state to the asked one is not allowed."""

    def __init__(self, loan_no: str, current: LoanState, target: LoanState) -> None:
        self.loan_no, self.current, self.target = loan_no, current, target
        super().__init__(_reason(loan_no, current, target))


class LoanClosedError(LoanConflictError):
    """The loan is settled or written off: no payment or collection action applies."""


class NotPastDueError(LoanConflictError):
    """The sweep found the loan no longer due for the move (paid or moved meanwhile)."""


class PaymentError(ValueError):
    """A payment that cannot be applied (a bad request); `field` names the culprit."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        super().__init__(f"{field}: {reason}")


def _reason(loan_no: str, current: LoanState, target: LoanState) -> str:
    head = f"loan {loan_no} cannot go from {current.value} to {target.value}"
    if current in FINAL:
        return f"{head}: {current.value} is final"
    if current is target:
        return f"{head}: it is already {current.value}"
    return head
