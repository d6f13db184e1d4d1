"""The detection engine: pre-processing, trajectory rules, fence rules and incident dedupe over
position batches, with every piece of state carried per device between batches.

The same object runs replay (the clock is the data's time, advanced to the latest time at the
end) and the live pipeline (the shell calls `advance(now)` on wall time). It never reads a
clock itself, so a file in one batch or in a thousand batches gives the same alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.incidents import IncidentMerger, IncidentStart
from alerts.model import Alert, AlertType
from geofence import Fence
from pipeline.fence_rules import VISIT, FenceRules
from pipeline.fleet import Fleet
from pipeline.rules.base import FleetView, Hits, Rule, Step
from pipeline.rules.catalogue import RULE_CLASSES
from pipeline.rules.device import GpsJump
from pipeline.rules.fences import Fences
from pipeline.rules.gathering import Gathering
from pipeline.rules.places import LongStay
from pipeline.thresholds import RuleBook, Thresholds
from positions import DeviceIndex, PositionBatch
from trajectory.clock import DeviceClocks
from trajectory.heard import Heard
from trajectory.preprocess import NOT_A_FIX, NOT_A_REPORT, Preprocessor
from trajectory.segments import Ints
from trajectory.stops import StopDetector

_INF = float("inf")


@dataclass
class EngineStats:
    positions: int = 0
    alerts: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class Engine:
    """Feeds batches (rows in arrival order) through every rule; returns alerts as they fire."""

    def __init__(
        self,
        devices: DeviceIndex | None = None,
        fleet: Fleet | None = None,
        rules: RuleBook | None = None,
        fences: Sequence[Fence] = (),
        lateness_ms: int = 10 * 60_000,
        clocks: DeviceClocks | None = None,
    ) -> None:
        self.devices = devices if devices is not None else DeviceIndex()
        self.fleet = fleet or Fleet()
        self.rules = rules or RuleBook()
        d = self.rules.defaults
        self.stats = EngineStats()
        self.lateness_ms = lateness_ms
        # Replay of a file with receive times corrects device clocks here, as the gateway does
        # live before the journal (the live detector gets batches already corrected).
        self.clocks = clocks
        # Silences run on receive times (trajectory.heard). A replay without them (fix time
        # standing in) turns this off: talk is then exactly the reports, at no cost.
        self.receive_times = True
        self.heard = Heard()
        self.pre = Preprocessor(GpsJump.gate(d))
        self.stops = StopDetector()
        self.merger = IncidentMerger()
        self.vehicle_ids: list[str] = []
        self.vehicle_of = np.zeros(0, np.int32)
        self.devices_of: dict[int, list[int]] = {}
        self.thresholds: list[Thresholds] = []
        self.view = FleetView(
            self.vehicle_of, self.devices_of, self.vehicle_ids, self.stops, self.devices
        )
        # Every rule, in the order it runs (pipeline.rules.catalogue); fences are one of them.
        self.rule_list: list[Rule] = [cls(d, self.view) for cls in RULE_CLASSES]
        self.fences = next(r for r in self.rule_list if isinstance(r, Fences))
        self.fences.start(fences, self.fleet)
        self.gathering = next((r for r in self.rule_list if isinstance(r, Gathering)), None)
        if self.gathering is not None:
            self.gathering.know_spots(self.fences.near_hotspot)
            long_stay = next(r for r in self.rule_list if isinstance(r, LongStay))
            settings = self.gathering.gathering
            long_stay.report_away(settings.stop_ms, settings.usual_radius_m)
        self._vehicle_index: dict[str, int] = {}
        self._by_device = self.fleet.by_device()
        for vehicle in self.fleet.vehicles:
            for device in vehicle.devices:
                self.devices.index_of(device)
        self._register(len(self.devices))

    @property
    def fence_rules(self) -> FenceRules | None:
        return self.fences.rules

    def rule(self, name: str) -> Rule:
        """The engine's rule called `name` (pipeline.rules)."""
        return next(r for r in self.rule_list if r.name == name)

    # -- devices and vehicles -------------------------------------------------------------
    def register_devices(self) -> Ints:
        """Gives every known device its vehicle now (as the next batch would); returns the
        vehicle index of each device index."""
        self._register(len(self.devices))
        return self.vehicle_of

    def _vehicle_for(self, terminal: str) -> int:
        """The vehicle index the fleet gives `terminal` (its own vehicle if not listed)."""
        spec = self._by_device.get(terminal)
        vehicle_id = spec.vehicle_id if spec else terminal
        vehicle = self._vehicle_index.get(vehicle_id)
        if vehicle is None:
            vehicle = len(self.vehicle_ids)
            self._vehicle_index[vehicle_id] = vehicle
            self.vehicle_ids.append(vehicle_id)
            self.thresholds.append(self.rules.for_spec(spec))
            borrower = spec.borrower if spec is not None and spec.borrower else vehicle_id
            self.view.borrower_of.append(borrower)
        return vehicle

    def _register(self, n_devices: int) -> None:
        """Gives new device indexes a vehicle and their thresholds."""
        start = len(self.vehicle_of)
        if n_devices <= start:
            return
        vehicle_of = np.zeros(n_devices, np.int32)
        vehicle_of[:start] = self.vehicle_of
        for index in range(start, n_devices):
            vehicle = self._vehicle_for(self.devices.terminal(index))
            vehicle_of[index] = vehicle
            self.devices_of.setdefault(vehicle, []).append(index)
        self.vehicle_of = self.view.vehicle_of = vehicle_of
        self.pre.ensure(n_devices)
        self.heard.ensure(n_devices)
        self.stops.ensure(n_devices)
        for rule in self.rule_list:
            rule.grow(n_devices)
        self._device_thresholds(slice(start, n_devices))
        self.fences.bind()

    def _device_thresholds(self, devices: slice) -> None:
        """Per-device copies of each device's vehicle thresholds."""
        per_device: list[Any] = [self.thresholds[v] for v in self.vehicle_of[devices].tolist()]
        for rule in self.rule_list:
            rule.per_vehicle(devices, per_device)

    # -- live changes: fleet and fences swapped between batches ------------------------------
    def set_fleet(self, fleet: Fleet) -> None:
        """Swaps the fleet (live: a device bound to a vehicle, thresholds by tenant changed).

        New devices are registered. A known device whose vehicle changed moves with its own
        state (offline timer, alarm bits, glitch gate, stops, fence membership, open episodes);
        the vehicle-level runs of the vehicles it left and joined (device separation, vehicle
        rows still waiting for the watermark) restart from the next reports. Raises FleetError,
        changing nothing, when an allowed area names no fence.
        """
        self.fences.set_fleet(fleet)
        self.fleet = fleet
        self._by_device = fleet.by_device()
        for vehicle in fleet.vehicles:
            for device in vehicle.devices:
                self.devices.index_of(device)
        by_id = {v.vehicle_id: v for v in fleet.vehicles}
        for index, vehicle_id in enumerate(self.vehicle_ids):
            spec = by_id.get(vehicle_id)
            self.thresholds[index] = self.rules.for_spec(spec)
            self.view.borrower_of[index] = (
                spec.borrower if spec is not None and spec.borrower else vehicle_id
            )
        known = len(self.vehicle_of)
        moved: list[int] = []
        touched: set[int] = set()
        for index in range(known):
            old = int(self.vehicle_of[index])
            new = self._vehicle_for(self.devices.terminal(index))
            if new == old:
                continue
            self.devices_of[old].remove(index)
            self.devices_of.setdefault(new, []).append(index)
            self.vehicle_of[index] = new
            self.merger.move_device(index, old, new)
            moved.append(index)
            touched |= {old, new}
        self._device_thresholds(slice(0, known))
        for rule in self.rule_list:
            rule.fleet_changed(moved, sorted(touched))
        self._register(len(self.devices))
        self.fences.bind()

    def set_fences(self, fences: Sequence[Fence]) -> None:
        """Swaps the fence set (a new version) between batches. State follows fences by id:
        membership, confirmations and hotspot stays of a kept fence carry over; a removed
        fence's state is dropped and its open episodes end at the device's latest fix.
        Raises FleetError, changing nothing, when an allowed area names no fence."""
        self.fences.set_fences(fences, self.merger)

    # -- the batch path ---------------------------------------------------------------------
    def process(self, batch: PositionBatch) -> list[Alert]:
        """Runs one batch; rows of one device must be in arrival order (the file's order)."""
        self.stats.positions += len(batch)
        if len(batch) == 0:
            return []
        self._register(max(len(self.devices), int(batch.device.max()) + 1))
        device = batch.device
        grouped = len(device) < 2 or bool((device[1:] >= device[:-1]).all())
        b = batch if grouped else batch.take(device_order(device))
        if self.clocks is not None:
            time_ms, clock_flags = self.clocks.apply_grouped(
                b.device, b.device_time_ms, b.recv_ms, b.flags
            )
            b = PositionBatch(**{**b.columns(), "time_ms": time_ms, "flags": clock_flags})
        # Device indexes as intp from here on: every rule gathers its per-device state with
        # them, and numpy gathers with a native index several times faster than with int32.
        dev = b.device.astype(np.intp)
        pre = self.pre.apply(dev, b.time_ms, b.recv_ms, b.lon, b.lat, b.status, b.flags)
        flags = pre.flags
        is_report = (flags & NOT_A_REPORT) == 0
        report = np.flatnonzero(is_report)
        r_dev = dev[report]
        # Silence rules run on receive times (trajectory.heard).
        if self.receive_times:
            talk, talk_ms = self.heard.talk(dev, b.recv_ms, is_report)
            t_dev = dev[talk]
        else:
            talk, talk_ms, t_dev = report, b.time_ms[report], r_dev
        fix = np.flatnonzero((flags & NOT_A_FIX) == 0)
        # The valid fixes' columns, gathered once for every rule.
        f_dev, f_ms, f_lon, f_lat = dev[fix], b.time_ms[fix], b.lon[fix], b.lat[fix]
        f_speed = b.speed_kmh[fix]
        step = Step(
            batch=b, dev=dev, pre=pre, report=report, r_dev=r_dev,
            talk_dev=t_dev, talk_ms=talk_ms, talk=talk,
            f_dev=f_dev, f_veh=self.vehicle_of[f_dev].astype(np.intp), f_ms=f_ms,
            f_lon=f_lon, f_lat=f_lat, f_speed=f_speed, f_status=b.status[fix],
            stops=self.stops.fixes(f_dev, f_ms, f_lon, f_lat, f_speed),
            watermark=self._vehicle_watermark(-_INF), heard=self._vehicle_heard(-_INF),
        )  # fmt: skip
        alerts: list[Alert] = []
        for rule in self.rule_list:
            alerts += self._raise(rule.batch(step))
        known = self._known_through()
        alerts += self._incidents(known, -_INF)
        self.merger.prune(self._vehicle_min(known, -_INF))
        self._count(alerts)
        return alerts

    def advance(self, now_ms: int) -> list[Alert]:
        """Live: the clock (wall time) is `now_ms`. Fires timers, and decides what waits on a
        silent device once it is `lateness_ms` behind: its last known state is taken to hold."""
        floor = float(now_ms - self.lateness_ms)
        alerts = self._flush(floor) + self._timers(now_ms)
        alerts += self._incidents(self._known_through(), floor)
        self._count(alerts)
        return alerts

    def hold_silences(self, from_ms: int, to_ms: int) -> None:
        """Live: the platform heard no device from `from_ms` to `to_ms` (its gateway paused
        reading): that time does not count towards any silence."""
        for rule in self.rule_list:
            rule.hold(from_ms, to_ms)
        self.heard.hold(from_ms, to_ms)

    def finish(self, now_ms: int) -> list[Alert]:
        """End of input (replay): every device's data is in, so everything waiting is decided;
        then the clock advances to `now_ms`, the latest time of the input."""
        alerts = self._flush(_INF) + self._timers(now_ms)
        alerts += self._incidents(self._known_through(), _INF)
        self._count(alerts)
        return alerts

    def _flush(self, floor: float) -> list[Alert]:
        """Evaluates buffered vehicle-level rows up to the watermarks raised to `floor`."""
        watermark, heard = self._vehicle_watermark(floor), self._vehicle_heard(floor)
        alerts: list[Alert] = []
        for rule in self.rule_list:
            alerts += self._raise(rule.flush(watermark, heard))
        return alerts

    def _timers(self, now_ms: int) -> list[Alert]:
        """Timer rules whose deadline the clock has reached."""
        alerts: list[Alert] = []
        for rule in self.rule_list:
            alerts += self._raise(rule.advance(now_ms))
        return alerts

    # -- helpers --------------------------------------------------------------------------
    def _reported_through(self) -> npt.NDArray[np.float64]:
        """Per device: the time of its latest report (-inf before any)."""
        seen = self.pre.last_ms[: len(self.vehicle_of)].astype(np.float64)
        return np.where(seen < -1e17, -_INF, seen)

    def _known_through(self) -> npt.NDArray[np.float64]:
        """Per device: the time up to which its episode edges are final. Its latest report,
        or earlier where a rule may still date an edge back (a side change confirmed by a
        later fix, a deadline that only a later valid fix can pass)."""
        n = len(self.vehicle_of)
        known = self._reported_through()
        for rule in self.rule_list:
            limit = rule.known_through_ms(n)
            if limit is not None:
                known = np.minimum(known, limit)
        return known

    def _vehicle_min(
        self, per_device: npt.NDArray[np.float64], floor: float
    ) -> npt.NDArray[np.float64]:
        """Per vehicle: the smallest value of its devices, raised to `floor`."""
        mark = np.full(len(self.vehicle_ids), _INF)
        np.minimum.at(mark, self.vehicle_of, per_device)
        return np.asarray(np.maximum(mark, floor), dtype=np.float64)

    def _vehicle_watermark(self, floor: float) -> npt.NDArray[np.float64]:
        """Per vehicle: the time up to which every one of its devices has reported."""
        return self._vehicle_min(self._reported_through(), floor)

    def _vehicle_heard(self, floor: float) -> npt.NDArray[np.float64]:
        """Per vehicle: the receive time up to which every one of its devices has talked."""
        if not self.receive_times:
            return self._vehicle_watermark(floor)
        return self._vehicle_min(self.heard.through_ms(len(self.vehicle_of)), floor)

    def _raise(self, found: list[Hits]) -> list[Alert]:
        """Rules' hits: episode edges to the incident merger, alert rows as alerts."""
        alerts: list[Alert] = []
        for hits in found:
            if hits.edges:
                self.merger.apply(hits.edges, self.vehicle_of)
            if hits.type is None or not hits.device:
                continue
            fences = hits.fence_id or [None] * len(hits.device)
            alerts += [
                self._alert(hits.type, d, t, f, info)
                for d, t, f, info in zip(
                    hits.device, hits.time_ms, fences, hits.details, strict=True
                )
            ]
        return alerts

    def _incidents(self, known: npt.NDArray[np.float64], floor: float) -> list[Alert]:
        decided = self.merger.resolve(self.devices_of, known, floor)
        alerts = [self._from_incident(s) for s in decided if s.type != VISIT]
        for rule in self.rule_list:
            alerts += self._raise(rule.incidents(decided))
        return alerts

    def _from_incident(self, s: IncidentStart) -> Alert:
        return self._alert(AlertType(s.type), s.device, s.time_ms, s.fence_id or None, s.details)

    def _alert(
        self,
        kind: AlertType,
        device: int,
        time_ms: int,
        fence_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Alert:
        return Alert(
            kind,
            self.devices.terminal(device),
            self.vehicle_ids[int(self.vehicle_of[device])],
            int(time_ms),
            fence_id,
            details=details or {},
        )

    def _count(self, alerts: list[Alert]) -> None:
        self.stats.alerts += len(alerts)
        for a in alerts:
            self.stats.by_type[a.type.value] = self.stats.by_type.get(a.type.value, 0) + 1


def device_order(device: Ints) -> npt.NDArray[np.intp]:
    """The stable order grouping rows by device. The same permutation as a stable argsort of
    the int32 column, through 16-bit keys when they fit (numpy radix-sorts those: several
    times faster than its merge sort on 32-bit keys)."""
    if len(device) and int(device.min()) >= 0 and int(device.max()) < 1 << 16:
        return np.argsort(device.astype(np.uint16), kind="stable")
    return np.argsort(device, kind="stable")
