"""Loans and borrowers, as one caller sees them (a borrower's numbers masked in the log)."""

from __future__ import annotations

from dataclasses import replace

from loans import Borrower, CaseAction, Loan, masked
from store import parties
from store.interface import LoanChange, LoanExistsError, LoanFilter, LoanNotFoundError
from store.scoped.base import NotInScopeError, ScopeBase


class LendingRecords(ScopeBase):
    def borrower(self, borrower_id: int) -> Borrower | None:
        found = parties.get_borrower(self._s, borrower_id)
        return found if found is not None and self.visible(found.org) else None

    def borrowers(self, *, after_id: int = 0, limit: int = 100) -> list[Borrower]:
        return parties.find_borrowers(self._s, self.scope, after_id, limit)

    def create_borrower(
        self, name: str, id_number: str | None, phone: str | None, org: int | None
    ) -> Borrower:
        with self.transaction("create borrower"):
            target = self.target_org(org)
            given = Borrower(0, target, name, id_number, phone, self._clock_ms())
            stored = parties.add_borrower(self._s, given)
            # The log keeps what a viewer would see: personal numbers stay out of it.
            self._audit("borrower.create", f"borrower:{stored.id}", target, None, masked(stored))
        return stored

    def loans(self, where: LoanFilter, *, after_id: int = 0, limit: int = 100) -> list[Loan]:
        return self._s.find_loans(replace(where, scope=self.scope), after_id=after_id, limit=limit)

    def loan(self, loan_no: str) -> Loan | None:
        found = self._s.get_loan(loan_no)
        return found if found is not None and self.visible(found.org) else None

    def create_loan(self, loan: Loan, org: int | None) -> Loan:
        """LoanExistsError when the number is taken in the subtree; NotInScopeError when it
        (or the car) is another unit's."""
        with self.transaction("create loan"):
            known = self._s.get_loan(loan.loan_no)
            if known is not None:
                if not self.visible(known.org):
                    raise NotInScopeError(f"no loan {loan.loan_no}")
                raise LoanExistsError(f"loan {loan.loan_no} already exists")
            if loan.borrower_id is not None and self.borrower(loan.borrower_id) is None:
                raise NotInScopeError(f"borrower_id: no borrower {loan.borrower_id}")
            target = self.target_org(org, self._vehicle_org(loan.vehicle_id))
            self._claim_vehicle(loan.vehicle_id, target)
            stored = self._s.create_loan(replace(loan, org=target))
            self._audit("loan.create", f"loan:{loan.loan_no}", target, None, stored)
        return stored

    def update_loan(self, loan_no: str, change: LoanChange) -> tuple[Loan, CaseAction]:
        with self.transaction("update loan"):
            known = self.loan(loan_no)
            if known is None:
                raise LoanNotFoundError(f"no loan {loan_no}")
            loan, action = self._s.update_loan(loan_no, change)
            self._audit(f"loan.{action.kind.value}", f"loan:{loan_no}", known.org, known, loan)
        return loan, action

    def loan_actions(
        self, loan_no: str, *, after_id: int = 0, limit: int = 100
    ) -> list[CaseAction]:
        if self.loan(loan_no) is None:
            raise LoanNotFoundError(f"no loan {loan_no}")
        return self._s.loan_actions(loan_no, after_id=after_id, limit=limit)
