"""Device records the gateway writes (codes issued, identities recorded, deregistrations): one
store write at a time, the latest record of each terminal only, so registrations never queue
store work without bound; while the store is down they wait and are written once it is back."""

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
        self._saving = False

    def save(self, device: Device) -> None:
        self._unsaved[device.terminal] = device
        if not self._saving:
            self._saving = True
            self.store.spawn(self._save_all())

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

                try:
                    await self.store.call(save)
                except StoreError as exc:
                    for device in devices:  # newer records that came meanwhile win
                        self._unsaved.setdefault(device.terminal, device)
                    if wait_s == 0.5:
                        log.warning("device records wait for the store (%d): %s", len(devices), exc)
                    until = time.monotonic() + wait_s
                    while not self.stopped and time.monotonic() < until:
                        await asyncio.sleep(0.1)  # a stop does not wait out the pause
                    wait_s = min(wait_s * 2, 10.0)
                else:
                    wait_s = 0.5
        finally:
            self._saving = False
