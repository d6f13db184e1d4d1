"""Which terminals this gateway holds, told to the store for the other processes of a split
deployment: the API answers `online` from it and sends a command only where a gateway holds
the session.

Logins and closes are batched (the latest change of each terminal wins) and written every
`flush_s` on the gateway's store thread; a heartbeat every `beat_s` keeps the holds valid
(readers ignore a gateway not seen for `PRESENCE_STALE_S`). While the store is down the changes
wait and are written once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from ingest.store_calls import StoreCalls
from store import Store, StoreError

log = logging.getLogger("lienwatch.gateway")

# A gateway not seen this long holds nothing, for readers; forgotten after DEAD_S.
PRESENCE_STALE_S = 10.0
DEAD_S = 300.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_gateway_id() -> str:
    """A name for this gateway process, unique across restarts and hosts."""
    return uuid.uuid4().hex[:16]


class SessionPresence:
    """Batches this gateway's session changes into the store; see the module docstring."""

    def __init__(
        self,
        store: StoreCalls,
        gateway_id: str,
        address: str,
        *,
        flush_s: float = 0.1,
        beat_s: float = 2.0,
    ) -> None:
        self.store = store
        self.gateway_id = gateway_id
        self.address = address
        self.flush_s = flush_s
        self.beat_s = beat_s
        self._changes: dict[str, int | None] = {}  # terminal -> since_ms held, None released
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def held(self, terminal: str) -> None:
        self._changes[terminal] = _now_ms()
        self._wake.set()

    def released(self, terminal: str) -> None:
        self._changes[terminal] = None
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="session-presence")

    async def _run(self) -> None:
        next_beat = 0.0
        while True:
            now = time.monotonic()
            if now >= next_beat and await self._attempt(self._beat):
                next_beat = now + self.beat_s
            self._wake.clear()  # changes made from here on wake the next round
            if self._changes:
                await self._attempt(self._flush)
            if not self._changes:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, next_beat - now))
            await asyncio.sleep(self.flush_s)  # what comes meanwhile goes in the same write

    async def _attempt(self, step: Callable[[], Awaitable[None]]) -> bool:
        try:
            await step()
        except StoreError as exc:
            if not self._failing:
                log.warning("session presence waits for the store: %s", exc)
            self._failing = True
            await asyncio.sleep(1.0)
            return False
        if self._failing:
            log.info("session presence written again")
        self._failing = False
        return True

    async def _beat(self) -> None:
        now = _now_ms()
        dead_before = now - int(DEAD_S * 1000)

        def beat(store: Store) -> None:
            store.gateway_alive(self.gateway_id, self.address, now, dead_before)

        await self.store.call(beat)

    async def _flush(self) -> None:
        changes, self._changes = self._changes, {}
        held = [(t, since) for t, since in changes.items() if since is not None]
        released = [t for t, since in changes.items() if since is None]

        def write(store: Store) -> None:
            store.update_sessions(self.gateway_id, held, released)

        try:
            await self.store.call(write)
        except StoreError:
            for terminal, since in changes.items():  # newer changes made meanwhile win
                self._changes.setdefault(terminal, since)
            raise

    async def close(self) -> None:
        """Stops, and tells the store this gateway holds nothing (best effort: a gateway that
        cannot say so stops holding once its heartbeat is stale)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._changes.clear()

        def drop(store: Store) -> None:
            store.drop_gateway(self.gateway_id)

        with contextlib.suppress(StoreError, TimeoutError):
            await asyncio.wait_for(self.store.call(drop), 1.0)
