"""Store calls from async routes: a small thread pool, one store object per worker thread.

Stores are synchronous and used by one thread at a time, so they never run on the event loop:
each worker opens its own store on first use and keeps it (a PostgreSQL connection, an SQLite
handle) for the life of the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from organizations import Scope
from store import Store
from store.scoped import ScopedStore

T = TypeVar("T")


class StoreAccess:
    """`await stores.run(lambda s: s.get_device(t))` runs the call on a worker's own store."""

    def __init__(self, factory: Callable[[], Store], *, threads: int = 4) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self._factory = factory
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="api-store")
        self._local = threading.local()
        self._opened: list[Store] = []
        self._lock = threading.Lock()
        self._closed = False

    def open(self) -> Store:
        """A store of the caller's own (a long job off the pool); the caller closes it."""
        return self._factory()

    async def run(self, call: Callable[[Store], T]) -> T:
        if self._closed:
            raise RuntimeError("the API's store access is closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, call)

    async def scoped(
        self,
        scope: Scope,
        actor: str,
        call: Callable[[ScopedStore], T],
        clock_ms: Callable[[], int],
    ) -> T:
        """`call` on a worker's store seen through `scope` (store.scoped) as `actor`."""
        return await self.run(lambda s: call(ScopedStore(s, scope, actor, clock_ms)))

    def _call(self, call: Callable[[Store], T]) -> T:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._factory()  # raises when the database is down: retried next call
            self._local.store = store
            with self._lock:
                self._opened.append(store)
        return call(store)

    def close(self) -> None:
        """Waits for running calls, then closes every store opened; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        with self._lock:
            opened, self._opened = self._opened, []
        for store in opened:
            with contextlib.suppress(Exception):
                store.close()
