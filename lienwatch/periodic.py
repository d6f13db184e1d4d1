"""Store work that runs now and then every so often, beside the gateway (sweeps, retention)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("lienwatch.periodic")


class PeriodicTask:
    """Awaits `work()` at start and then every `interval_s` until closed; a failure (the store
    is down) is logged and tried again at the next turn."""

    def __init__(self, name: str, interval_s: float, work: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.interval_s = interval_s
        self._work = work
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            try:
                await self._work()
            except Exception as exc:
                log.warning(
                    "%s failed, trying again in %.0f s: %s", self.name, self.interval_s, exc
                )
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
