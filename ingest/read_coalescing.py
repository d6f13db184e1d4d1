"""Read coalescing: under load the event loop takes its sockets' data in batches.

Idle, the loop sleeps in epoll and wakes for each packet. At tens of thousands of reports a
second that costs a wake-up, a poll and a pass of the loop per report, in the kernel and in the
loop, more than the report's own work. While reports arrive faster than `busy_per_s`, this task
keeps the loop from sleeping in epoll: it pauses the thread for `interval_s`, then yields one
pass, in which epoll (with nothing to wait for) returns every socket that became readable
meanwhile. A report waits at most `interval_s` longer to be read, well within the group commit
it waits for anyway; the loop's timers run late by as much.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

CHECK_S = 0.05  # how often the rate is looked at


class ReadCoalescing:
    """Runs beside the gateway; `taken()` counts the reports the gateway has taken so far."""

    def __init__(
        self, taken: Callable[[], int], *, interval_s: float = 0.0005, busy_per_s: float = 5000.0
    ) -> None:
        self.taken = taken
        self.interval_s = interval_s
        self.busy_per_s = busy_per_s
        self.busy = False

    async def run(self) -> None:
        while True:
            before = self.taken()
            if not self.busy:
                await asyncio.sleep(CHECK_S)
            else:
                until = time.monotonic() + CHECK_S
                while time.monotonic() < until:
                    time.sleep(self.interval_s)
                    await asyncio.sleep(0)
            self.busy = (self.taken() - before) >= self.busy_per_s * CHECK_S
