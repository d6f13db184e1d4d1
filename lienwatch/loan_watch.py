"""Monitoring tightens while a car's loan is overdue: its trackers report more often.

When a loan enters or leaves `overdue` (a transition through the API, a payment that cures it,
or the overdue sweep), every tracker of its car gets 0x8103 with the default reporting interval
(parameter 0x0029): the overdue interval while the car's worst open loan is overdue, the normal
one otherwise. The gateway queues the command for a tracker that is offline. `loan_changed`
runs on the event loop and only schedules the work; the store is read in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ingest.commands import CommandOutcome
from ingest.jt808 import ParamId
from ingest.jt808.messages import Message, SetParameters
from loans import CaseAction, Loan, LoanState, state_moved
from store import Store

log = logging.getLogger("lienwatch.loan_watch")

_MAX_DEVICES = 1000  # trackers of one car

CommandSender = Callable[[str, Message], Awaitable[CommandOutcome]]


def interval_message(seconds: int) -> SetParameters:
    return SetParameters.of({ParamId.DEFAULT_INTERVAL_S: seconds})


def touches_overdue(action: CaseAction) -> bool:
    """Whether the logged change moved the loan into or out of overdue."""
    moved = state_moved(action)
    return moved is not None and LoanState.OVERDUE in moved and moved[0] is not moved[1]


@dataclass(slots=True)
class ReportIntervals:
    """Sets the trackers' default reporting interval to follow their car's loan state."""

    store_factory: Callable[[], Store]
    send_command: CommandSender
    overdue_interval_s: int
    normal_interval_s: int
    on_change: Callable[[], None] | None = None  # the fleet's thresholds follow too
    _tasks: set[asyncio.Task[dict[str, CommandOutcome]]] = field(default_factory=set)

    def loan_changed(self, loan: Loan, action: CaseAction) -> None:
        """Told after a loan changed (on the event loop): schedules the trackers' update when
        the loan entered or left overdue."""
        if state_moved(action) is not None and self.on_change is not None:
            self.on_change()
        if not touches_overdue(action):
            return
        task = asyncio.get_running_loop().create_task(self.apply(loan.vehicle_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def apply(self, vehicle_id: str) -> dict[str, CommandOutcome]:
        """Sends the interval the car's loans call for to each of its trackers."""
        terminals, state = await asyncio.to_thread(self._read, vehicle_id)
        seconds = self.overdue_interval_s if state is LoanState.OVERDUE else self.normal_interval_s
        message = interval_message(seconds)
        outcomes: dict[str, CommandOutcome] = {}
        for terminal in terminals:
            try:
                outcomes[terminal] = await self.send_command(terminal, message)
            except Exception as exc:  # one tracker failing leaves the others to do
                log.warning("reporting interval for %s not sent: %s", terminal, exc)
        log.info(
            "car %s (%s): reporting interval %d s to %s",
            vehicle_id,
            "overdue" if state is LoanState.OVERDUE else "not overdue",
            seconds,
            ", ".join(f"{t} {o.state.value}" for t, o in outcomes.items()) or "no trackers",
        )
        return outcomes

    def _read(self, vehicle_id: str) -> tuple[list[str], LoanState | None]:
        store = self.store_factory()
        try:
            devices = store.find_devices(vehicle_id=vehicle_id, limit=_MAX_DEVICES)
            state = store.loan_states([vehicle_id]).get(vehicle_id)
        finally:
            store.close()
        return [d.terminal for d in devices], state

    async def wait_idle(self) -> None:
        """Until every scheduled update is done (tests; the shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
