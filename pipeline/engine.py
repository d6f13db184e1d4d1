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

from alerts.incidents import Edge, IncidentMerger, IncidentStart
from alerts.model import Alert, AlertType, format_time
from alerts.repeats import RepeatVisits
from geofence import Fence, FenceKind, FenceSet
from pipeline.dwell_escalation import DwellEscalation
from pipeline.fence_rules import VISIT, FenceRules
from pipeline.fleet import Fleet, FleetError
from pipeline.thresholds import RuleBook, Thresholds
from positions import DeviceIndex, PositionBatch
from trajectory.alarms import ANTENNA_CUT_BIT, POWER_CUT_BIT, AlarmBitRule
from trajectory.clock import DeviceClocks
from trajectory.frozen import FrozenPositionRule, FrozenSettings
from trajectory.heard import Heard
from trajectory.offline import OfflineRule, Silences
from trajectory.overspeed import OverspeedRule
from trajectory.places import LongStayRule, LongStays, LongStaySettings
from trajectory.preprocess import NOT_A_FIX, NOT_A_REPORT, GateSettings, Preprocessor
from trajectory.segments import Ints
from trajectory.separation import SeparationRule, SeparationSettings, SeparationStarts
from trajectory.state import grown
from trajectory.stops import StopDetector
from trajectory.tow import TowRule, TowSettings
from trajectory.vehicle_offline import SilenceAlerts, VehicleSilenceRule, VehicleSilenceSettings

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
        self.pre = Preprocessor(
            GateSettings(
                max_speed_kmh=d.gps_jump_speed_kmh,
                reanchor_fixes=int(d.gps_jump_reanchor_fixes),
            )
        )
        self.offline = OfflineRule()
        self.power = AlarmBitRule(POWER_CUT_BIT)
        self.antenna = AlarmBitRule(ANTENNA_CUT_BIT)
        self.overspeed = OverspeedRule()
        self.separation = SeparationRule(
            SeparationSettings(
                distance_m=d.device_separation_distance_m,
                duration_ms=int(d.device_separation_duration_s * 1000),
                window_ms=int(d.device_separation_window_s * 1000),
            )
        )
        self.silences = VehicleSilenceRule(
            VehicleSilenceSettings(
                moving_after_ms=int(d.all_devices_offline_after_s * 1000),
                parked_after_ms=int(d.all_devices_offline_parked_after_s * 1000),
                partial_after_ms=int(d.partial_offline_after_s * 1000),
            )
        )
        self.tow = TowRule(
            TowSettings(
                speed_kmh=d.tow_speed_kmh,
                duration_ms=int(d.tow_duration_s * 1000),
                distance_m=d.tow_distance_m,
            )
        )
        self.frozen = FrozenPositionRule(
            FrozenSettings(
                fixes=int(d.frozen_position_fixes), speed_kmh=d.frozen_position_speed_kmh
            )
        )
        self.stops = StopDetector()
        self.long_stays = LongStayRule(
            LongStaySettings(
                after_ms=int(d.long_stay_after_s * 1000), radius_m=d.long_stay_radius_m
            )
        )
        self.merger = IncidentMerger()
        self.repeats = RepeatVisits(
            int(d.hotspot_repeat_visits), int(d.hotspot_repeat_window_s * 1000)
        )
        self.fence_list = tuple(fences)
        self.fence_rules = (
            FenceRules(FenceSet(self.fence_list, version=1)) if self.fence_list else None
        )
        self.escalation = DwellEscalation()
        self.dwell_ms = np.zeros(0, np.int64)
        self.critical_ms = np.zeros(0, np.int64)
        self.vehicle_ids: list[str] = []
        self.vehicle_of = np.zeros(0, np.int32)
        self.devices_of: dict[int, list[int]] = {}
        self.thresholds: list[Thresholds] = []
        self._vehicle_index: dict[str, int] = {}
        self._by_device = self.fleet.by_device()
        for vehicle in self.fleet.vehicles:
            for device in vehicle.devices:
                self.devices.index_of(device)
        self._register(len(self.devices))

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
        self.vehicle_of = vehicle_of
        d = self.rules.defaults
        self.pre.ensure(n_devices)
        self.heard.ensure(n_devices)
        self.offline.ensure(n_devices, int(d.offline_after_s * 1000))
        self.power.ensure(n_devices)
        self.antenna.ensure(n_devices)
        self.overspeed.ensure(n_devices, d.overspeed_speed_kmh, int(d.overspeed_duration_s * 1000))
        self._device_thresholds(slice(start, n_devices))
        self.separation.set_vehicles(self.devices_of, len(self.vehicle_ids), n_devices)
        self.silences.set_vehicles(self.separation.slots, n_devices)
        self.tow.ensure(n_devices)
        self.frozen.ensure(n_devices)
        self.stops.ensure(n_devices)
        self.long_stays.ensure(n_devices)
        if self.fence_rules is not None:
            self._bind_fences()

    def _device_thresholds(self, devices: slice) -> None:
        """Per-device copies of each device's vehicle thresholds."""
        per_device = [self.thresholds[v] for v in self.vehicle_of[devices].tolist()]
        d = self.rules.defaults
        self.offline.after_ms[devices] = [int(t.offline_after_s * 1000) for t in per_device]
        self.overspeed.limit_kmh[devices] = [t.overspeed_speed_kmh for t in per_device]
        self.overspeed.duration_ms[devices] = [
            int(t.overspeed_duration_s * 1000) for t in per_device
        ]
        self.dwell_ms = grown(
            self.dwell_ms, len(self.vehicle_of), int(d.hotspot_dwell_after_s * 1000)
        )
        self.dwell_ms[devices] = [int(t.hotspot_dwell_after_s * 1000) for t in per_device]
        self.critical_ms = grown(
            self.critical_ms,
            len(self.vehicle_of),
            int(d.hotspot_dwell_critical_after_s * 1000),
        )
        self.critical_ms[devices] = [
            int(t.hotspot_dwell_critical_after_s * 1000) for t in per_device
        ]

    # -- live changes: fleet and fences swapped between batches ------------------------------
    def set_fleet(self, fleet: Fleet) -> None:
        """Swaps the fleet (live: a device bound to a vehicle, thresholds by tenant changed).

        New devices are registered. A known device whose vehicle changed moves with its own
        state (offline timer, alarm bits, glitch gate, stops, fence membership, open episodes);
        the vehicle-level runs of the vehicles it left and joined (device separation, vehicle
        rows still waiting for the watermark) restart from the next reports. Raises FleetError,
        changing nothing, when an allowed area names no fence.
        """
        if self.fence_rules is not None:
            self._check_areas(fleet, self.fence_list)
        self.fleet = fleet
        self._by_device = fleet.by_device()
        for vehicle in fleet.vehicles:
            for device in vehicle.devices:
                self.devices.index_of(device)
        by_id = {v.vehicle_id: v for v in fleet.vehicles}
        for index, vehicle_id in enumerate(self.vehicle_ids):
            spec = by_id.get(vehicle_id)
            self.thresholds[index] = self.rules.for_spec(spec)
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
        self.separation.set_vehicles(self.devices_of, len(self.vehicle_ids), known)
        self.silences.set_vehicles(self.separation.slots, known)
        if moved:
            self.separation.forget(moved, sorted(touched))
            self.silences.forget(moved)
        self._register(len(self.devices))
        if self.fence_rules is not None:
            self._bind_fences()

    def set_fences(self, fences: Sequence[Fence]) -> None:
        """Swaps the fence set (a new version) between batches. State follows fences by id:
        membership, confirmations and hotspot stays of a kept fence carry over; a removed
        fence's state is dropped and its open episodes end at the device's latest fix.
        Raises FleetError, changing nothing, when an allowed area names no fence."""
        fence_list = tuple(fences)
        if fence_list:
            self._check_areas(self.fleet, fence_list)
        old = self.fence_rules
        if old is not None:
            gone = {f.id for f in old.fences.fences} - {f.id for f in fence_list}
            if gone:
                self.merger.end_fences(gone, old.last_fix_ms)
        self.fence_list = fence_list
        if not fence_list:
            self.fence_rules = None
            self.escalation.retain(set())
            return
        fence_set = FenceSet(fence_list, version=old.fences.version + 1 if old else 1)
        if old is None:
            self.fence_rules = FenceRules(fence_set)
        else:
            old.rebind(fence_set)
        self._bind_fences()
        rules = self.fence_rules
        assert rules is not None
        self.escalation.retain({(d, rules.fences.fences[f].id) for d, f in rules.stays})

    @staticmethod
    def _check_areas(fleet: Fleet, fences: Sequence[Fence]) -> None:
        ids = {f.id for f in fences}
        for vehicle in fleet.vehicles:
            if vehicle.allowed_area is not None and vehicle.allowed_area not in ids:
                raise FleetError(
                    f"vehicle {vehicle.vehicle_id}: allowed_area {vehicle.allowed_area!r}"
                    " is not a fence"
                )

    def _bind_fences(self) -> None:
        """Binds the fence set to the vehicle list and resolves each vehicle's allowed areas."""
        assert self.fence_rules is not None
        fence_set = self.fence_rules.fences.with_vehicles(self.vehicle_ids)
        self.fence_rules.fences = fence_set
        by_vehicle = {v.vehicle_id: v for v in self.fleet.vehicles}
        # Allowed-area fences that list their vehicles, by vehicle: one pass over the fences,
        # not one per vehicle (this runs whenever new devices appear).
        listed: dict[str, list[int]] = {}
        for i, fence in enumerate(fence_set.fences):
            if fence.kind is FenceKind.ALLOWED_AREA and fence.vehicles is not None:
                for vehicle_id in dict.fromkeys(fence.vehicles):
                    listed.setdefault(vehicle_id, []).append(i)
        allowed: dict[int, list[int]] = {}
        for index, vehicle_id in enumerate(self.vehicle_ids):
            chosen: list[int] = []
            spec = by_vehicle.get(vehicle_id)
            if spec is not None and spec.allowed_area is not None:
                found = fence_set.get(spec.allowed_area)
                if found is None:
                    raise FleetError(
                        f"vehicle {vehicle_id}: allowed_area {spec.allowed_area!r} is not a fence"
                    )
                chosen.append(found)
            chosen += [i for i in listed.get(vehicle_id, ()) if i not in chosen]
            if chosen:
                allowed[index] = chosen
        self.fence_rules.set_allowed(allowed, len(self.vehicle_ids))

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
        alerts: list[Alert] = []
        for row, speed in zip(pre.jump_rows.tolist(), pre.jump_speed_kmh.tolist(), strict=True):
            alerts.append(
                self._alert(
                    AlertType.GPS_JUMP,
                    int(b.device[row]),
                    int(b.time_ms[row]),
                    details={"implied_speed_kmh": round(speed, 1)},
                )
            )
        is_report = (flags & NOT_A_REPORT) == 0
        report = np.flatnonzero(is_report)
        r_dev = dev[report]
        # Silence rules run on receive times (trajectory.heard).
        if self.receive_times:
            talk, talk_ms = self.heard.talk(dev, b.recv_ms, is_report)
            t_dev = dev[talk]
        else:
            talk, talk_ms, t_dev = report, b.time_ms[report], r_dev
        alerts += self._silences(self.offline.reports(t_dev, talk_ms))
        for rule, kind in (
            (self.power, AlertType.POWER_CUT),
            (self.antenna, AlertType.ANTENNA_CUT),
        ):
            rows = report[rule.rises(r_dev, b.alarm[report])]
            alerts += [
                self._alert(
                    kind, int(b.device[i]), int(b.time_ms[i]), details={"alarm": int(b.alarm[i])}
                )
                for i in rows
            ]
        fix = np.flatnonzero((flags & NOT_A_FIX) == 0)
        # The valid fixes' columns, gathered once for every rule below.
        f_dev, f_ms, f_lon, f_lat = dev[fix], b.time_ms[fix], b.lon[fix], b.lat[fix]
        f_speed, f_status = b.speed_kmh[fix], b.status[fix]
        f_veh = self.vehicle_of[f_dev].astype(np.intp)
        fast = self.overspeed.fixes(f_dev, f_ms, f_speed)
        speeds = [{"speed_kmh": round(v, 1)} for v in fast.start_value.tolist()]
        self._edges(
            _edges(
                AlertType.OVERSPEED, fast.start_device, fast.start_ms, speeds,
                fast.end_device, fast.end_ms,
            )
        )  # fmt: skip
        alerts += self._tows(f_dev, f_ms, f_lon, f_lat, f_speed, f_status)
        alerts += self._frozen(f_dev, f_ms, f_lon, f_lat, f_speed, f_status)
        if self.fence_rules is not None:
            edges = self.fence_rules.fixes(f_dev, f_veh, f_ms, f_lon, f_lat, self.dwell_ms)
            edges += self.escalation.follow(edges, self.dwell_ms, self.critical_ms)
            edges += self.escalation.fixes(
                self.fence_rules.fences, f_dev, f_veh, f_ms, f_lon, f_lat
            )
            self._edges(edges)
        stops = self.stops.fixes(f_dev, f_ms, f_lon, f_lat, f_speed)
        self._long_stays(self.long_stays.stops(stops))
        watermark = self._vehicle_watermark(-_INF)
        alerts += self._vehicle_silences(
            *self.silences.reports(
                self.vehicle_of[t_dev].astype(np.intp),
                t_dev,
                talk_ms,
                b.speed_kmh[talk],
                self._vehicle_heard(-_INF),
            )
        )
        alerts += self._separations(
            self.separation.fixes(f_veh, f_dev, f_ms, f_lon, f_lat, f_speed, watermark)
        )
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
        self.offline.hold(from_ms, to_ms)
        self.silences.hold(from_ms, to_ms)
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
        watermark = self._vehicle_watermark(floor)
        none_i, none_t = np.zeros(0, np.int32), np.zeros(0, np.int64)
        none_f, none_s = np.zeros(0, np.float64), np.zeros(0, np.float32)
        alerts = self._separations(
            self.separation.fixes(none_i, none_i, none_t, none_f, none_f, none_s, watermark)
        )
        alerts += self._vehicle_silences(
            *self.silences.reports(none_i, none_i, none_t, none_s, self._vehicle_heard(floor))
        )
        return alerts

    def _timers(self, now_ms: int) -> list[Alert]:
        """Timer rules whose deadline the clock has reached."""
        alerts = self._silences(self.offline.advance(now_ms))
        alerts += self._separations(self.separation.advance(now_ms))
        alerts += self._vehicle_silences(self.silences.advance(now_ms), None)
        self._long_stays(
            self.long_stays.advance(
                now_ms, self.stops.start_ms, self.stops.anchor_lon, self.stops.anchor_lat
            )
        )
        if self.fence_rules is not None:
            edges = self.fence_rules.advance(now_ms, self.dwell_ms)
            edges += self.escalation.follow(edges, self.dwell_ms, self.critical_ms)
            self._edges(edges + self.escalation.advance(now_ms))
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
        known = np.minimum(known, self.overspeed.known_through_ms(n))
        known = np.minimum(
            known,
            self.long_stays.known_through_ms(n, self.stops.start_ms, self.stops.last_ms),
        )
        if self.fence_rules is not None:
            known = np.minimum(known, self.fence_rules.known_through_ms(n, self.dwell_ms))
            known = np.minimum(known, self.escalation.known_through_ms(n))
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

    def _edges(self, edges: list[Edge]) -> None:
        """Episode edges (in each device's time order) to the incident merger."""
        self.merger.apply(edges, self.vehicle_of)

    def _long_stays(self, stays: LongStays) -> None:
        where = [{"lon": round(x, 6), "lat": round(y, 6)} for x, y in stays.where]
        self._edges(
            _edges(
                AlertType.LONG_STAY, stays.start_device, stays.start_ms, where,
                stays.end_device, stays.end_ms,
            )
        )  # fmt: skip

    def _incidents(self, known: npt.NDArray[np.float64], floor: float) -> list[Alert]:
        decided = self.merger.resolve(self.devices_of, known, floor)
        visits = sorted((s for s in decided if s.type == VISIT), key=lambda s: s.time_ms)
        alerts = [self._from_incident(s) for s in decided if s.type != VISIT]
        for visit in visits:
            repeat = self.repeats.visit(visit.vehicle, visit.time_ms, visit.fence_id)
            if repeat is not None:
                alerts.append(
                    self._alert(
                        AlertType.HOTSPOT_REPEAT,
                        visit.device,
                        visit.time_ms,
                        visit.fence_id,
                        {"visits": repeat},
                    )
                )
        return alerts

    def _from_incident(self, s: IncidentStart) -> Alert:
        return self._alert(AlertType(s.type), s.device, s.time_ms, s.fence_id or None, s.details)

    def _silences(self, s: Silences) -> list[Alert]:
        return [
            self._alert(AlertType.OFFLINE, d, t, details={"last_report": format_time(int(last))})
            for d, t, last in zip(
                s.device.tolist(), s.alert_ms.tolist(), s.last_ms.tolist(), strict=True
            )
        ]

    def _vehicle_silences(
        self, everyone: SilenceAlerts, partial: SilenceAlerts | None
    ) -> list[Alert]:
        alerts = [
            self._alert(
                AlertType.ALL_DEVICES_OFFLINE, d, t, details={"last_report": format_time(last)}
            )
            for d, t, last in zip(
                everyone.device.tolist(),
                everyone.time_ms.tolist(),
                everyone.last_ms.tolist(),
                strict=True,
            )
        ]
        if partial is not None:
            alerts += [
                self._alert(
                    AlertType.PARTIAL_OFFLINE, d, t, details={"last_report": format_time(last)}
                )
                for d, t, last in zip(
                    partial.device.tolist(),
                    partial.time_ms.tolist(),
                    partial.last_ms.tolist(),
                    strict=True,
                )
            ]
        return alerts

    def _tows(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        speed_kmh: npt.NDArray[np.float32],
        status: npt.NDArray[np.uint32],
    ) -> list[Alert]:
        """`tow` alerts from the accepted valid fixes of the device-grouped batch."""
        towed = self.tow.fixes(device, time_ms, lon, lat, speed_kmh, status)
        rows = towed.rows
        return [
            self._alert(
                AlertType.TOW,
                d,
                t,
                details={"since": format_time(since), "distance_m": round(m)},
            )
            for d, t, since, m in zip(
                device[rows].tolist(),
                time_ms[rows].tolist(),
                towed.since_ms.tolist(),
                towed.distance_m.tolist(),
                strict=True,
            )
        ]

    def _frozen(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        speed_kmh: npt.NDArray[np.float32],
        status: npt.NDArray[np.uint32],
    ) -> list[Alert]:
        """`frozen_position` alerts from the accepted valid fixes of the batch."""
        frozen = self.frozen.fixes(device, time_ms, lon, lat, speed_kmh, status)
        rows = frozen.rows
        return [
            self._alert(
                AlertType.FROZEN_POSITION,
                d,
                t,
                details={
                    "since": format_time(since),
                    "fixes": self.frozen.settings.fixes,
                    "lon": round(x, 6),
                    "lat": round(y, 6),
                },
            )
            for d, t, since, x, y in zip(
                device[rows].tolist(),
                time_ms[rows].tolist(),
                frozen.since_ms.tolist(),
                lon[rows].tolist(),
                lat[rows].tolist(),
                strict=True,
            )
        ]

    def _separations(self, s: SeparationStarts) -> list[Alert]:
        return [
            self._alert(AlertType.DEVICE_SEPARATION, d, t, details={"distance_m": round(m)})
            for d, t, m in zip(
                s.device.tolist(), s.time_ms.tolist(), s.distance_m.tolist(), strict=True
            )
        ]

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


def _edges(
    kind: AlertType,
    start_device: Any,
    start_ms: Any,
    details: list[dict[str, Any]],
    end_device: Any,
    end_ms: Any,
) -> list[Edge]:
    """Starts and ends of one rule as merger edges, in each device's time order (an end before
    a start at the same time, so a new episode never closes itself)."""
    edges = [
        Edge(int(d), int(t), True, kind.value, "", info)
        for d, t, info in zip(start_device, start_ms, details, strict=True)
    ]
    edges += [
        Edge(int(d), int(t), False, kind.value, "") for d, t in zip(end_device, end_ms, strict=True)
    ]
    edges.sort(key=lambda e: (e.device, e.time_ms, e.is_start))
    return edges
