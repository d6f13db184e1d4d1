"""Loans fall overdue by themselves: a periodic sweep moves every active or restructured loan
whose days past due passed 0 to `overdue`, logged with the actor `system`.

`sweep_overdue` is the store work of one pass (run it in a thread); `LoanSweeper` runs it on
the event loop every `loan_sweep_interval_s` and tells `on_moved` of each loan it moved, with
its log entry (the trackers' reporting interval, the fleet's thresholds). The day is the
trackers' local day, as the API counts days past due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from lienwatch.periodic import PeriodicTask
from loans import CaseAction, Loan, NotPastDueError, fall_overdue
from store import Store
from store.interface import LoanNotFoundError

log = logging.getLogger("lienwatch.loan_sweep")

_PAGE = 500


Moved = tuple[Loan, CaseAction]


def sweep_overdue(store: Store, today: date, now_ms: int) -> list[Moved]:
    """Moves the loans past due on `today` to overdue; returns them and their log entries as
    stored. Each move is checked again under the store's lock, so a payment or a move made
    meanwhile wins."""
    moved: list[Moved] = []
    after_id = 0
    while True:
        page = store.past_due_loans(today, after_id=after_id, limit=_PAGE)
        for loan in page:
            try:
                stored, action = store.update_loan(
                    loan.loan_no, lambda current: fall_overdue(current, today, now_ms)
                )
            except (NotPastDueError, LoanNotFoundError):
                continue
            log.info("loan %s is overdue (%s)", stored.loan_no, stored.vehicle_id)
            moved.append((stored, action))
        if len(page) < _PAGE:
            return moved
        after_id = page[-1].id


@dataclass(slots=True)
class LoanSweeper:
    """Runs `sweep_overdue` now and then every `interval_s` until closed."""

    store_factory: Callable[[], Store]
    interval_s: float
    today: Callable[[], date]
    clock_ms: Callable[[], int]
    on_moved: Callable[[list[Moved]], None] | None = None
    _periodic: PeriodicTask | None = field(default=None, init=False)

    def start(self) -> None:
        self._periodic = PeriodicTask("loan sweep", self.interval_s, self.run_once)
        self._periodic.start()

    async def run_once(self) -> list[Moved]:
        moved = await asyncio.to_thread(self._sweep)
        if moved and self.on_moved is not None:
            self.on_moved(moved)
        return moved

    def _sweep(self) -> list[Moved]:
        store = self.store_factory()
        try:
            return sweep_overdue(store, self.today(), self.clock_ms())
        finally:
            store.close()

    async def close(self) -> None:
        if self._periodic is not None:
            await self._periodic.close()
            self._periodic = None
