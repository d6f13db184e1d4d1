"""The gateway's own store calls (registry lookups, device writes, the command queue) on one
worker thread, so a slow database never stalls the event loop; how many wait is known, so the
callers can bound what unauthenticated connections may ask for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from store import Store, StoreUnavailableError

log = logging.getLogger("lienwatch.gateway")
T = TypeVar("T")


class StoreCalls:
    """One store adapter, opened on first use, used from one thread only."""

    def __init__(self, factory: Callable[[], Store]) -> None:
        self._factory = factory
        self._store: Store | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gateway-store")
        self._tasks: set[asyncio.Future[Any]] = set()
        self.waiting = 0  # calls queued or running

    async def call(self, fn: Callable[[Store], T]) -> T:
        """Runs `fn(store)` on the store thread and returns what it returns."""

        def run() -> T:
            if self._store is None:
                self._store = self._factory()
            return fn(self._store)

        self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, run)
        finally:
            self.waiting -= 1

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs `coro` in the background; a failure is logged, never lost."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if isinstance(exc, StoreUnavailableError):  # an outage: one line, not a traceback each
            log.warning("background store call not done, database unavailable: %s", exc)
        else:
            log.error("background task failed", exc_info=exc)

    async def close(self, wait_s: float = 5.0) -> None:
        """Lets background calls finish (for at most `wait_s`), then closes the store."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=wait_s)
        if self._store is not None:
            store, self._store = self._store, None
            await asyncio.get_running_loop().run_in_executor(self._pool, store.close)
        self._pool.shutdown(wait=True)
