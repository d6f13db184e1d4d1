"""The detection engine on the wall clock, fed by the gateway.

The gateway calls `on_positions(batch, devices)` on its event loop after each journal commit;
that call only queues the batch (O(1), never blocks the loop). One worker thread owns the
engine, so no locks touch engine state: it takes everything queued at once (consecutive batches
merged into one `Engine.process` call, which is how it catches up when behind), calls
`Engine.advance(now)` about every second for the timers (offline, dwell, lateness), and hands
the alerts to the recorder (store first, then the sinks). A failed store write keeps the alerts
and retries them on the next cycle; the incident key makes the retry idempotent. With a spool
(`pipeline.alert_spool`), alerts the store refused are on local disk before the cycle ends, so a
restart during a database outage loses none: the first cycle that reaches the store stores them.

Fleet and fence changes (`set_fleet`, `set_fences`) are queued as well, so they apply between
batches in arrival order. The clock is injectable and `run_once` runs one cycle on the caller's
thread, so tests need neither the thread nor sleeps.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from alerts.lifecycle import StoredAlert
from alerts.model import Alert
from geofence import Fence
from pipeline.alert_spool import AlertSpool
from pipeline.engine import Engine
from pipeline.fleet import Fleet, FleetError, Vehicle
from pipeline.spill import BatchSpill
from pipeline.thresholds import RuleBook
from positions import DeviceIndex, PositionBatch
from store.interface import Device, StoreError

log = logging.getLogger("lienwatch.live")
SPOOL_CHUNK = 10_000  # spooled alerts stored per store call after an outage


class AlertSaver(Protocol):
    """Where alerts go: `alerts.delivery.recorder.AlertRecorder` (store, then sinks)."""

    def record(self, alerts: Sequence[Alert], now_ms: int) -> Sequence[StoredAlert]: ...

    def close(self) -> None: ...


def fleet_from_devices(
    devices: Iterable[Device],
    loan_states: Mapping[str, str] | None = None,
    unit_rules: Mapping[str, tuple[tuple[str, float], ...]] | None = None,
    borrowers: Mapping[str, str] | None = None,
) -> Fleet:
    """The fleet the store knows: devices grouped by their `vehicle_id` (a device without one
    is its own vehicle, as the engine treats an unlisted device), each car with the state of
    its open loan from `loan_states` (vehicle_id -> state; `Store.loan_states`) and its
    units' threshold overrides from `unit_rules` (vehicle_id -> merged overrides) and whom its
    loan names from `borrowers` (vehicle_id -> borrower key, `Store.loan_borrowers`: the
    `gathering` rule counts borrowers; a car left out is its own)."""
    by_vehicle: dict[str, list[str]] = {}
    for device in devices:
        if device.vehicle_id:
            by_vehicle.setdefault(device.vehicle_id, []).append(device.terminal)
    states = loan_states or {}
    rules = unit_rules or {}
    owes = borrowers or {}
    return Fleet(
        tuple(
            Vehicle(
                v,
                tuple(sorted(t)),
                loan_state=_state_name(states.get(v)),
                unit_rules=rules.get(v, ()),
                borrower=owes.get(v),
            )
            for v, t in sorted(by_vehicle.items())
        )
    )


def _state_name(state: str | None) -> str | None:
    """The plain value of a state (a `LoanState` is a str enum)."""
    return None if state is None else str(state)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class LiveStats:
    batches: int = 0  # batches handed in by the gateway
    positions: int = 0
    engine_calls: int = 0  # Engine.process calls (fewer than batches when merged)
    alerts: int = 0  # alerts the engine raised
    stored: int = 0  # alerts new in the store (the rest were already there)
    unsaved: int = 0  # alerts waiting for the store to come back
    dropped_positions: int = 0  # refused: the queue over its row bound and no spill room
    spilled_positions: int = 0  # parked on disk because the queue was over its row bound
    errors: int = 0  # batches or changes the engine failed on (logged)
    by_type: dict[str, int] = field(default_factory=dict)


# A spilled batch (the index its device column refers to, its rows) or a change made meanwhile.
_Parked = tuple[DeviceIndex, int] | Callable[[], None]


@dataclass(slots=True)
class _Batches:
    """Consecutive batches indexed by the same DeviceIndex: processed as one."""

    devices: DeviceIndex
    parts: list[PositionBatch]


@dataclass(frozen=True, slots=True)
class _Raised:
    """Alerts raised outside the engine (the gateway's `device_conflict`)."""

    alerts: tuple[Alert, ...]


_Item = _Batches | _Raised | Callable[[], None]


class LiveDetector:
    """Runs `Engine` for the gateway; see the module docstring."""

    def __init__(
        self,
        recorder: AlertSaver,
        *,
        fleet: Fleet | None = None,
        fences: Sequence[Fence] = (),
        rules: RuleBook | None = None,
        lateness_ms: int = 10 * 60_000,
        clock_ms: Callable[[], int] = wall_clock_ms,
        tick_s: float = 1.0,
        max_pending_rows: int = 5_000_000,
        max_unsaved: int = 100_000,
        batch_window_s: float = 0.5,
        spool: AlertSpool | None = None,
        spill: BatchSpill | None = None,
    ) -> None:
        self.engine = Engine(fleet=fleet, rules=rules, fences=fences, lateness_ms=lateness_ms)
        self.recorder = recorder
        self.clock_ms = clock_ms
        self.tick_ms = int(tick_s * 1000)
        self.max_pending_rows = max_pending_rows
        self.max_unsaved = max_unsaved
        # Least time between two cycles: the gateway hands over a small batch per journal
        # commit, and the engine's per-call cost is paid once per window instead (the engine
        # is vectorized; alerts wait at most this long).
        self.batch_window_s = batch_window_s
        self.stats = LiveStats()
        # Alerts the store refused, on local disk across restarts (pipeline.alert_spool).
        self.spool = spool
        # Batches beyond `max_pending_rows`, on local disk in arrival order (pipeline.spill);
        # `_spilled` keeps their order with fleet and fence changes made meanwhile.
        self.spill = spill
        self._spilled: deque[_Parked] = deque()
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._pending_rows = 0
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next_tick_ms: int | None = None
        self._unsaved: list[Alert] = []
        self._store_down = False
        self._full = False
        self._held_since: int | None = None  # when the gateway stopped reading, while it has
        self._map_source: DeviceIndex | None = None
        self._map = np.zeros(0, np.int32)

    # -- the gateway's side (event loop): queue only -----------------------------------------
    def on_positions(self, batch: PositionBatch, devices: DeviceIndex) -> None:
        """Queues a durable batch (rows in arrival order, device indexes into `devices`)."""
        if not len(batch):
            return
        with self._cond:
            if self._spilled or self._pending_rows + len(batch) > self.max_pending_rows:
                if not self._to_spill(batch, devices):
                    return
            else:
                last = self._queue[-1] if self._queue else None
                if isinstance(last, _Batches) and last.devices is devices:
                    last.parts.append(batch)
                else:
                    self._queue.append(_Batches(devices, [batch]))
                self._pending_rows += len(batch)
            self.stats.batches += 1
            self.stats.positions += len(batch)
            self._cond.notify_all()

    def _to_spill(self, batch: PositionBatch, devices: DeviceIndex) -> bool:
        """Parks a batch the queue has no room for; False when it had to be dropped."""
        if self.spill is not None:
            try:
                self.spill.put(batch)
            except OSError as exc:
                log.error("live detector: spill %s refused a batch: %s", self.spill.path, exc)
            else:
                if not self._spilled:
                    log.warning(
                        "live detector %d positions behind: parking new batches on disk until"
                        " it catches up",
                        self._pending_rows,
                    )
                self._spilled.append((devices, len(batch)))
                self.stats.spilled_positions += len(batch)
                return True
        self.stats.dropped_positions += len(batch)
        if not self._full:
            self._full = True
            log.error(
                "live detector %d positions behind: dropping new batches from"
                " detection until it catches up (they are stored all the same)",
                self._pending_rows,
            )
        return False

    def add_alerts(self, alerts: Sequence[Alert]) -> None:
        """Alerts raised elsewhere (the gateway): stored and sent in the next cycle like the
        engine's own, with the same retries and counts. Queues only."""
        if not alerts:
            return
        with self._cond:
            self._queue.append(_Raised(tuple(alerts)))
            self._cond.notify_all()

    def hold_silences(self, held: bool) -> None:
        """The gateway stopped reading (`held`: its journal is full or out of space) or started
        again. Meanwhile no device can be heard, so the timers stand still (the engine's clock
        stays at the hold's start), and on release the held time is taken out of every running
        silence: a pause of the platform's own is never a tracker's silence. Queues only."""
        now = self.clock_ms()
        with self._cond:
            if held and self._held_since is None:
                self._held_since = now
                log.warning("live detector: silence timers held (the gateway is not reading)")
            elif not held and self._held_since is not None:
                since, self._held_since = self._held_since, None
                release = functools.partial(self._release, since, now)
                (self._spilled if self._spilled else self._queue).append(release)
                self._cond.notify_all()

    def _release(self, since_ms: int, until_ms: int) -> None:
        self.engine.hold_silences(since_ms, until_ms)
        log.warning(
            "live detector: silence timers released after %.1f s held", (until_ms - since_ms) / 1e3
        )

    def set_fleet(self, fleet: Fleet) -> None:
        """Applies a new fleet between batches, keeping every device's state."""
        self._enqueue(lambda: self.engine.set_fleet(fleet), "fleet")

    def set_fences(self, fences: Sequence[Fence]) -> None:
        """Applies a new fence set between batches; state follows fences by id."""
        fence_list = tuple(fences)
        self._enqueue(lambda: self.engine.set_fences(fence_list), "fences")

    def _enqueue(self, change: Callable[[], None], what: str) -> None:
        def apply() -> None:
            try:
                change()
            except FleetError as exc:
                self.stats.errors += 1
                log.error("live detector: new %s refused, keeping the old: %s", what, exc)

        with self._cond:
            (self._spilled if self._spilled else self._queue).append(apply)
            self._cond.notify_all()

    # -- the worker ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="live-detector", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Processes what is queued, stops the thread and closes the recorder."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.recorder.close()
        if self.spill is not None:
            self.spill.close()

    @property
    def pending_rows(self) -> int:
        """Positions handed in and not yet taken by a cycle (parked ones not counted)."""
        return self._pending_rows

    @property
    def idle(self) -> bool:
        """Nothing queued, parked or being processed: everything handed in so far is done."""
        with self._cond:
            return not self._queue and not self._spilled and not self._busy

    def wait_idle(self, timeout_s: float) -> bool:
        """True once everything queued so far has been processed (for tests and shutdown)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and not self._spilled and not self._busy, timeout_s
            )

    def _run(self) -> None:
        started = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: bool(self._queue or self._spilled) or self._stopping,
                    self.tick_ms / 1000.0,
                )
                stopping = self._stopping
            rest = started + self.batch_window_s - time.monotonic()
            if rest > 0 and not stopping:
                with self._cond:  # more batches gather meanwhile; a stop cuts the wait short
                    self._cond.wait_for(lambda: self._stopping, rest)
                    stopping = self._stopping
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:  # a bug in a sink or the recorder must not stop detection
                self.stats.errors += 1
                log.exception("live detector: cycle failed; going on")
            if stopping:
                with self._cond:
                    if not self._queue and not self._spilled:
                        return

    def run_once(self) -> list[StoredAlert]:
        """One cycle: everything queued, the timers if a tick is due, then the store and sinks.
        Returns the alerts new in the store."""
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            self._pending_rows = 0
            self._full = False
            self._busy = True
            parked = self._unpark()
        try:
            items += self._read_parked(parked)
            alerts = self._process(items)
            wall = now = self.clock_ms()
            held_since = self._held_since
            if held_since is not None:  # nobody can be heard: the timers' clock stands still
                now = min(now, held_since)
            if self._next_tick_ms is None or now >= self._next_tick_ms:
                alerts += self._guarded(functools.partial(self.engine.advance, now), "timers")
                self._next_tick_ms = now + self.tick_ms
            self._count(alerts)
            return self._save(alerts, wall)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _unpark(self) -> list[_Parked]:
        """Spilled entries for this cycle, up to about `max_pending_rows` rows (under the lock;
        the batches themselves are read after it, `_read_parked`)."""
        taken: list[_Parked] = []
        rows = 0
        while self._spilled and rows < self.max_pending_rows:
            entry = self._spilled.popleft()
            taken.append(entry)
            if isinstance(entry, tuple):
                rows += entry[1]
        return taken

    def _read_parked(self, parked: list[_Parked]) -> list[_Item]:
        items: list[_Item] = []
        for entry in parked:
            if not isinstance(entry, tuple):
                items.append(entry)
                continue
            assert self.spill is not None
            devices, _ = entry
            batch = self.spill.take()
            last = items[-1] if items else None
            if isinstance(last, _Batches) and last.devices is devices:
                last.parts.append(batch)
            else:
                items.append(_Batches(devices, [batch]))
        return items

    def _process(self, items: list[_Item]) -> list[Alert]:
        alerts: list[Alert] = []
        for item in items:
            if isinstance(item, _Batches):
                batch = self._engine_batch(item)
                self.stats.engine_calls += 1
                alerts += self._guarded(functools.partial(self.engine.process, batch), "batch")
            elif isinstance(item, _Raised):
                alerts += item.alerts
            else:
                item()
        return alerts

    def _guarded(self, step: Callable[[], list[Alert]], what: str) -> list[Alert]:
        """An engine failure (a bug, never bad data) costs that step only, not the thread."""
        try:
            return step()
        except Exception:
            self.stats.errors += 1
            log.exception("live detector: engine failed on a %s; going on", what)
            return []

    def _engine_batch(self, item: _Batches) -> PositionBatch:
        """The parts as one batch whose device column indexes the engine's own DeviceIndex."""
        batch = item.parts[0] if len(item.parts) == 1 else PositionBatch.concat(item.parts)
        mapping = self._device_map(item.devices, int(batch.device.max()) + 1)
        return PositionBatch(**{**batch.columns(), "device": mapping[batch.device]})

    def _device_map(self, devices: DeviceIndex, size: int) -> npt.NDArray[np.int32]:
        """Gateway index → engine index, extended for indexes not seen yet (the gateway's
        index only grows; reading it from this thread is safe under the GIL)."""
        if devices is not self._map_source:
            self._map_source, self._map = devices, np.zeros(0, np.int32)
        start = len(self._map)
        if size > start:
            extra = [self.engine.devices.index_of(devices.terminal(i)) for i in range(start, size)]
            self._map = np.concatenate([self._map, np.asarray(extra, np.int32)])
        return self._map

    def _count(self, alerts: list[Alert]) -> None:
        self.stats.alerts += len(alerts)
        for a in alerts:
            self.stats.by_type[a.type.value] = self.stats.by_type.get(a.type.value, 0) + 1

    def _save(self, alerts: list[Alert], now_ms: int) -> list[StoredAlert]:
        waiting = self._unsaved + alerts
        spooled = self.spool is not None and self.spool.count > 0
        if not waiting and not spooled:
            return []
        try:
            new = list(self.recorder.record(waiting, now_ms)) if waiting else []
            self._unsaved = []
            if spooled:
                new += self._store_spool(now_ms)
        except StoreError as exc:
            self._keep(waiting)
            if not self._store_down:
                self._store_down = True
                log.warning("live detector: alerts not stored (%s): keeping them, retrying", exc)
            return []
        if self._store_down:
            self._store_down = False
            log.warning("live detector: store back, waiting alerts stored")
        self.stats.unsaved = 0
        self.stats.stored += len(new)
        return new

    def _keep(self, waiting: list[Alert]) -> None:
        """Unsaved alerts go to the spool (disk) when there is one, else stay in memory."""
        if self.spool is not None:
            try:
                self.spool.add(waiting)
                waiting = []
            except OSError as exc:
                log.error("live detector: alert spool %s refused a write: %s", self.spool.path, exc)
        if len(waiting) > self.max_unsaved:
            log.error("live detector: %d unsaved alerts dropped", len(waiting) - self.max_unsaved)
            waiting = waiting[-self.max_unsaved :]
        self._unsaved = waiting
        self.stats.unsaved = len(waiting) + (self.spool.count if self.spool is not None else 0)

    def _store_spool(self, now_ms: int) -> list[StoredAlert]:
        """Stores what the spool holds, a chunk at a time; cleared once all of it is stored."""
        assert self.spool is not None
        new: list[StoredAlert] = []
        chunk: list[Alert] = []
        for alert in self.spool.load():
            chunk.append(alert)
            if len(chunk) == SPOOL_CHUNK:
                new += self.recorder.record(chunk, now_ms)
                chunk = []
        if chunk:
            new += self.recorder.record(chunk, now_ms)
        self.spool.clear()
        return new
