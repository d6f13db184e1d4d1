"""Who owes each car's loan, as the live `gathering` rule counts borrowers: a car's open loan's
borrower record (vehicle -> loan -> borrower). SQL written once for both databases
(`store.statements`); the adapters mix it in."""

from __future__ import annotations

from store.loan_rows import OPEN_CONDITION
from store.statements import StatementRunner

BORROWER_KEY = "borrower:"  # + the record's id: how a visit names a borrower record


class LoanBorrowerRecords:
    """Mixin of both adapters."""

    def loan_borrowers(self: StatementRunner) -> dict[str, str]:
        """vehicle_id -> `borrower:{id}` for each car with an open loan naming a borrower
        record (the lowest id when its open loans name several). A car without one is left
        out: the detector counts it as its own borrower."""
        rows = self._run(
            "read loan borrowers",
            f"SELECT vehicle_id, min(borrower_id) FROM loans WHERE {OPEN_CONDITION}"
            " AND borrower_id IS NOT NULL GROUP BY vehicle_id",
        ).rows
        return {str(vehicle): f"{BORROWER_KEY}{int(borrower)}" for vehicle, borrower in rows}
