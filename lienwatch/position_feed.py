"""Positions for a detector process without a gateway: read from the store in commit order.

The store numbers every stored position (`seq`) in commit order; `positions_since(cursor)`
reads past a cursor. The feed hands each page to the live detector with the terminals mapped
into one device index of its own, and reads the next page only while the detector is not far
behind (the store is the backlog, so nothing is parked or dropped). It saves the cursor in the
store (`detector_cursors`) whenever the detector has processed everything read so far, and a
restarted detector goes on from there: positions stored while it was down are still checked,
and a stretch read twice gives no second alert (incident keys). A detector with no saved cursor
starts at the end of the stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pipeline.live import LiveDetector
from positions import DeviceIndex, PositionBatch
from store import Store

log = logging.getLogger("lienwatch.alerting")
PAGE_ROWS = 50_000
BEHIND_ROWS = 200_000  # the detector's queue above which no more is read for now


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class PositionFeed:
    """Store → detector on a thread of its own; see the module docstring."""

    def __init__(
        self,
        store_factory: Callable[[], Store],
        detector: LiveDetector,
        *,
        name: str = "detector",
        interval_s: float = 0.2,
        save_every_s: float = 1.0,
    ) -> None:
        self.store_factory = store_factory
        self.detector = detector
        self.name = name
        self.interval_s = interval_s
        self.save_every_s = save_every_s
        self.devices = DeviceIndex()
        self.cursor: int | None = None
        self.saved: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="position-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        store: Store | None = None
        failing = False
        last_save = 0.0
        while not self._stop.is_set():
            try:
                if store is None:
                    store = self.store_factory()
                read = self.step(store)
                if time.monotonic() - last_save >= self.save_every_s:
                    self.save(store)
                    last_save = time.monotonic()
            except Exception as exc:  # the store is down: the stream waits there
                if not failing:
                    log.warning("cannot read positions for the detector (retrying): %s", exc)
                failing = True
                if store is not None:
                    store.close()
                    store = None
                self._stop.wait(1.0)
                continue
            if failing:
                log.info("reading positions for the detector again")
            failing = False
            if read < PAGE_ROWS:
                self._stop.wait(self.interval_s)
        if store is not None:
            try:
                if self.detector.wait_idle(1.0):
                    self.save(store)
            finally:
                store.close()

    def step(self, store: Store) -> int:
        """Reads one page past the cursor into the detector; returns how many positions."""
        if self.cursor is None:
            saved = store.detector_cursor(self.name)
            self.cursor = saved if saved is not None else store.last_position_seq()
            self.saved = saved
            log.info("detector %s reads positions after %d", self.name, self.cursor)
        if self.detector.pending_rows > BEHIND_ROWS:
            return 0
        page = store.positions_since(self.cursor, PAGE_ROWS)
        if len(page.batch):
            indexes = self.devices.indexes_of(page.terminals)
            columns = page.batch.columns()
            columns["device"] = indexes[page.batch.device]
            self.detector.on_positions(PositionBatch(**columns), self.devices)
        self.cursor = page.cursor
        return len(page.batch)

    def save(self, store: Store) -> None:
        """Saves the cursor when everything read so far is processed (never ahead of it)."""
        cursor = self.cursor
        if cursor is None or cursor == self.saved or not self.detector.idle:
            return
        store.save_detector_cursor(self.name, cursor, _now_ms())
        self.saved = cursor

    def close(self, wait_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(wait_s)
