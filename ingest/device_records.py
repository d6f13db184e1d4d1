"""Device records the gateway writes (codes issued, identities recorded, deregistrations): one
store write at a time, the latest record of each terminal only, so registrations never queue
store work without bound; while the store is down they wait and are written once it is back.

`save` answers a future a caller may wait on: True when that record (or a newer one of the same
terminal) is stored, False when the write it was part of failed (the record itself stays
waiting and is written later). A gateway sharing its database with others answers a
registration only once its record is stored, so the gateway the terminal authenticates at next
finds the code."""

from __future__ import annotations

import asyncio
import logging
import time

from ingest.store_calls import StoreCalls
from store import Device, Store, StoreError

log = logging.getLogger("lienwatch.gateway")


class DeviceRecords:
    """Waiting device records and the one task writing them."""

    def __init__(self, store: StoreCalls) -> None:
        self.store = store
        self.stopped = False  # set when the gateway stops: no more retries
        self._unsaved: dict[str, Device] = {}
        self._waiting: dict[str, list[asyncio.Future[bool]]] = {}
        self._saving = False

    def save(self, device: Device) -> asyncio.Future[bool]:
        """Queues the record; the future says when it is stored (see the module docstring)."""
        self._unsaved[device.terminal] = device
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(device.terminal, []).append(stored)
        if not self._saving:
            self._saving = True
            self.store.spawn(self._save_all())
        return stored

    def _settle(self, terminals: list[str], stored: bool) -> None:
        """Tells the waiters of a write's records how it went (a terminal with a newer record
        still unsaved keeps its waiters: they wait for that one)."""
        for terminal in terminals:
            if terminal in self._unsaved and stored:
                continue
            for waiter in self._waiting.pop(terminal, []):
                if not waiter.done():
                    waiter.set_result(stored)

    async def _save_all(self) -> None:
        """Writes waiting device records; while the store is down they wait (a newer record
        of a terminal replacing an older one) and are tried again with a growing pause, so a
        code issued during an outage is stored once the database is back."""
        wait_s = 0.5
        try:
            while self._unsaved and not self.stopped:
                devices, self._unsaved = list(self._unsaved.values()), {}

                def save(store: Store, devices: list[Device] = devices) -> None:
                    for device in devices:
                        store.upsert_device(device)

                terminals = [device.terminal for device in devices]
                try:
                    await self.store.call(save)
                except StoreError as exc:
                    self._settle(terminals, False)
                    for device in devices:  # newer records that came meanwhile win
                        self._unsaved.setdefault(device.terminal, device)
                    if wait_s == 0.5:
                        log.warning("device records wait for the store (%d): %s", len(devices), exc)
                    until = time.monotonic() + wait_s
                    while not self.stopped and time.monotonic() < until:
                        await asyncio.sleep(0.1)  # a stop does not wait out the pause
                    wait_s = min(wait_s * 2, 10.0)
                else:
                    self._settle(terminals, True)
                    wait_s = 0.5
        finally:
            self._saving = False
