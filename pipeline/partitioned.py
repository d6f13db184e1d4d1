"""The engines of the partitions one detector process owns (docs/deploy.md "Detectors").

Each owned partition has a `LiveDetector` of its own (its engine, its vehicles only), run on
the caller's thread (`run_once`, no worker thread): the feed that reads the positions stream
hands each partition its rows and runs every partition's cycle, so after a cycle a partition's
engine state reflects exactly what it was handed, and its alerts are stored (or still held,
`unsaved`). The alerts go to one shared recorder. Fleet and fence changes reach every
partition, as a single detector's do; a partition opened later starts from the latest ones.

The public side matches what `lienwatch.alerting` uses of a `LiveDetector` (`set_fleet`,
`set_fences`, `stats`, `stop`, ...), so the alert side runs either one.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from alerts.lifecycle import StoredAlert
from alerts.model import Alert
from geofence import Fence
from pipeline.engine import Engine
from pipeline.fleet import Fleet
from pipeline.live import AlertSaver, LiveDetector, LiveStats, wall_clock_ms
from pipeline.partitions import PartitionMap, fleet_part
from pipeline.thresholds import RuleBook
from positions import DeviceIndex, PositionBatch


class _OwnAlerts:
    """A partition's recorder: the shared one, for the alerts of devices that are the
    partition's now. A device bound to a car of another partition is detected there from then
    on; the state it left here only ages, and must not raise (an `offline` it never had)."""

    def __init__(self, owner: PartitionedDetector, part: int) -> None:
        self.owner = owner
        self.part = part

    def record(self, alerts: Sequence[Alert], now_ms: int) -> Sequence[StoredAlert]:
        parts = self.owner.map
        kept = [a for a in alerts if parts.of(a.device_id) == self.part]
        return self.owner.recorder.record(kept, now_ms) if kept else []

    def close(self) -> None:
        """The shared recorder is closed by its owner (`PartitionedDetector.stop`)."""


@dataclass(slots=True)
class _Part:
    detector: LiveDetector
    devices: DeviceIndex  # the partition's own terminals (the rows handed to it index these)


class PartitionedDetector:
    """See the module docstring. `feed`, `cycle`, `open` and `close` are the feed thread's;
    the rest may be called from any thread."""

    def __init__(
        self,
        recorder: AlertSaver,
        *,
        partitions: int,
        fleet: Fleet | None = None,
        fences: Sequence[Fence] = (),
        rules: RuleBook | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.recorder = recorder
        self.partitions = partitions
        self.fleet = fleet or Fleet()
        self.fences = tuple(fences)
        self.rules = rules
        self.clock_ms = clock_ms
        self.map = PartitionMap(partitions, self.fleet)
        self._parts: dict[int, _Part] = {}
        self._lock = threading.Lock()
        self._raised: list[Alert] = []
        self._retired = LiveStats()  # counts of partitions this process no longer owns

    # -- the alert side's (any thread) ----------------------------------------------------
    def set_fleet(self, fleet: Fleet) -> None:
        with self._lock:
            self.fleet = fleet
            self.map = PartitionMap(self.partitions, fleet)
            for part, owned in self._parts.items():
                owned.detector.set_fleet(fleet_part(fleet, self.partitions, part))

    def set_fences(self, fences: Sequence[Fence]) -> None:
        with self._lock:
            self.fences = tuple(fences)
            for owned in self._parts.values():
                owned.detector.set_fences(self.fences)

    def hold_silences(self, held: bool) -> None:
        with self._lock:
            for owned in self._parts.values():
                owned.detector.hold_silences(held)

    def add_alerts(self, alerts: Sequence[Alert]) -> None:
        """Alerts raised outside the engines: stored with the next cycle (retried until the
        store takes them)."""
        with self._lock:
            self._raised += alerts

    @property
    def stats(self) -> LiveStats:
        """Every owned partition's counts and those of partitions handed over, summed."""
        with self._lock:
            parts = [p.detector.stats for p in self._parts.values()]
        total = dataclasses.replace(self._retired, by_type=dict(self._retired.by_type))
        for stats in parts:
            _add(total, stats)
            total.unsaved += stats.unsaved
        return total

    @property
    def fences_by_id(self) -> dict[str, Fence]:
        """The current fences by id: what a checkpoint's fence references resolve to."""
        return {fence.id: fence for fence in self.fences}

    @property
    def owned(self) -> list[int]:
        with self._lock:
            return sorted(self._parts)

    def stop(self, timeout_s: float = 10.0) -> None:
        """The feed has stopped (and checkpointed): closes the recorder."""
        self.recorder.close()

    # -- the feed's (one thread) ----------------------------------------------------------
    def open(self, part: int, engine: Engine | None = None) -> None:
        """Starts owning `part`: with the checkpoint's engine when there is one (brought up to
        the current fleet and fences), else a fresh one."""
        with self._lock:
            fleet = fleet_part(self.fleet, self.partitions, part)
            detector = LiveDetector(
                _OwnAlerts(self, part), fleet=fleet, fences=self.fences, rules=self.rules,
                clock_ms=self.clock_ms,
            )  # fmt: skip
            if engine is not None:
                detector.engine = engine
                detector.set_fleet(fleet)
                detector.set_fences(self.fences)
            self._parts[part] = _Part(detector, DeviceIndex())

    def close(self, part: int) -> None:
        """Stops owning `part` (its state is dropped: checkpoint it first)."""
        with self._lock:
            owned = self._parts.pop(part, None)
            if owned is not None:
                _add(self._retired, owned.detector.stats)

    def engine(self, part: int) -> Engine:
        return self._parts[part].detector.engine

    def unsaved(self, part: int) -> int:
        """Alerts of `part` raised and not stored yet (a checkpoint must wait for them)."""
        return self._parts[part].detector.stats.unsaved

    def feed(self, part: int, batch: PositionBatch, terminals: Sequence[str]) -> None:
        """Hands `part` rows whose device column indexes `terminals` (all of them the
        partition's)."""
        owned = self._parts[part]
        used, local = np.unique(batch.device, return_inverse=True)
        indexes = owned.devices.indexes_of([terminals[int(u)] for u in used])
        rows = PositionBatch(**{**batch.columns(), "device": indexes[local].astype(np.int32)})
        owned.detector.on_positions(rows, owned.devices)

    def cycle(self) -> None:
        """Runs every owned partition's cycle: what it was handed, its timers, its alerts."""
        with self._lock:
            raised, self._raised = self._raised, []
            parts = list(self._parts.values())
        if raised:
            try:
                self.recorder.record(raised, self.clock_ms())
            except Exception:  # the store refused them: kept for the next cycle
                with self._lock:
                    self._raised[:0] = raised
        for owned in parts:
            owned.detector.run_once()


def _add(total: LiveStats, stats: LiveStats) -> None:
    for name in ("batches", "positions", "engine_calls", "alerts", "stored", "errors"):
        setattr(total, name, getattr(total, name) + getattr(stats, name))
    total.dropped_positions += stats.dropped_positions
    for kind, count in stats.by_type.items():
        total.by_type[kind] = total.by_type.get(kind, 0) + count
