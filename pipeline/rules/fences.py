"""Rules about fences: geofence_enter/exit, leave_allowed_area, hotspot_dwell (and its
critical escalation) and hotspot_repeat. It owns the fence set, swapped live between batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from alerts.incidents import IncidentMerger, IncidentStart
from alerts.model import AlertType
from alerts.repeats import RepeatVisits
from geofence import KIND_CODES, Fence, FenceKind, FenceSet
from pipeline.dwell_escalation import DwellEscalation
from pipeline.fence_rules import VISIT, FenceRules
from pipeline.fleet import Fleet, FleetError
from pipeline.rules.base import F64, FleetView, Hits, Limits, Rule, Setting, Step
from trajectory.state import grown

MINUTE_S = 60.0
M_PER_DEG = 111_320.0
HOUR_S = 3600.0


class Fences(Rule):
    name = "hotspot_dwell"
    settings = (
        Setting("hotspot_dwell", "after_s", 30 * MINUTE_S, per_vehicle=True),
        Setting("hotspot_dwell", "critical_after_s", 24 * HOUR_S, per_vehicle=True),
        Setting("hotspot_repeat", "visits", 2, per_vehicle=True),
        Setting("hotspot_repeat", "window_s", 7 * 24 * HOUR_S, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.default_dwell_ms = int(limits.get("hotspot_dwell", "after_s") * 1000)
        self.default_critical_ms = int(limits.get("hotspot_dwell", "critical_after_s") * 1000)
        self.repeats = RepeatVisits(
            int(limits.get("hotspot_repeat", "visits")),
            int(limits.get("hotspot_repeat", "window_s") * 1000),
        )
        self.escalation = DwellEscalation()
        self.dwell_ms = np.zeros(0, np.int64)
        self.critical_ms = np.zeros(0, np.int64)
        self.fence_list: tuple[Fence, ...] = ()
        self.rules: FenceRules | None = None
        self.fleet = Fleet()

    # -- fences and the fleet ---------------------------------------------------------------
    def start(self, fences: Sequence[Fence], fleet: Fleet) -> None:
        self.fleet = fleet
        self.fence_list = tuple(fences)
        self.rules = FenceRules(FenceSet(self.fence_list, version=1)) if self.fence_list else None

    def grow(self, n_devices: int) -> None:
        self.dwell_ms = grown(self.dwell_ms, n_devices, self.default_dwell_ms)
        self.critical_ms = grown(self.critical_ms, n_devices, self.default_critical_ms)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        self.dwell_ms[devices] = [int(t.get("hotspot_dwell", "after_s") * 1000) for t in limits]
        self.critical_ms[devices] = [
            int(t.get("hotspot_dwell", "critical_after_s") * 1000) for t in limits
        ]
        for vehicle, t in zip(self.view.vehicle_of[devices].tolist(), limits, strict=True):
            self.repeats.set_limits(
                vehicle,
                int(t.get("hotspot_repeat", "visits")),
                int(t.get("hotspot_repeat", "window_s") * 1000),
            )

    def set_fleet(self, fleet: Fleet) -> None:
        """Checks the new fleet's allowed areas (FleetError, changing nothing) and keeps it."""
        if self.rules is not None:
            check_areas(fleet, self.fence_list)
        self.fleet = fleet

    def set_fences(self, fences: Sequence[Fence], merger: IncidentMerger) -> None:
        """A new fence set between batches (see Engine.set_fences)."""
        fence_list = tuple(fences)
        if fence_list:
            check_areas(self.fleet, fence_list)
        old = self.rules
        if old is not None:
            gone = {f.id for f in old.fences.fences} - {f.id for f in fence_list}
            if gone:
                merger.end_fences(gone, old.last_fix_ms)
        self.fence_list = fence_list
        if not fence_list:
            self.rules = None
            self.escalation.retain(set())
            return
        fence_set = FenceSet(fence_list, version=old.fences.version + 1 if old else 1)
        if old is None:
            self.rules = FenceRules(fence_set)
        else:
            old.rebind(fence_set)
        self.bind()
        rules = self.rules
        assert rules is not None
        self.escalation.retain({(d, rules.fences.fences[f].id) for d, f in rules.stays})

    def bind(self) -> None:
        """Binds the fence set to the vehicle list and resolves each vehicle's allowed areas."""
        if self.rules is None:
            return
        vehicle_ids = self.view.vehicle_ids
        fence_set = self.rules.fences.with_vehicles(vehicle_ids)
        self.rules.fences = fence_set
        by_vehicle = {v.vehicle_id: v for v in self.fleet.vehicles}
        # Allowed-area fences that list their vehicles, by vehicle: one pass over the fences,
        # not one per vehicle (this runs whenever new devices appear).
        listed: dict[str, list[int]] = {}
        for i, fence in enumerate(fence_set.fences):
            if fence.kind is FenceKind.ALLOWED_AREA and fence.vehicles is not None:
                for vehicle_id in dict.fromkeys(fence.vehicles):
                    listed.setdefault(vehicle_id, []).append(i)
        allowed: dict[int, list[int]] = {}
        for index, vehicle_id in enumerate(vehicle_ids):
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
        self.rules.set_allowed(allowed, len(vehicle_ids))

    def near_hotspot(self, lon: float, lat: float, margin_m: float) -> bool:
        """Whether a hotspot fence (for every vehicle) covers the point or a point `margin_m`
        from it in one of eight directions."""
        if self.rules is None:
            return False
        angles = np.linspace(0.0, 2 * np.pi, 8, endpoint=False)
        dy = np.concatenate([[0.0], np.cos(angles)]) * margin_m / M_PER_DEG
        dx = (
            np.concatenate([[0.0], np.sin(angles)])
            * margin_m
            / (M_PER_DEG * max(np.cos(np.radians(lat)), 0.05))
        )
        fences = self.rules.fences
        _, found = fences.contains(lon + dx, lat + dy, np.full(9, -1, np.int32))
        kinds = np.take(fences.kinds, found)
        return bool((kinds == KIND_CODES[FenceKind.HOTSPOT]).any())

    # -- steps ------------------------------------------------------------------------------
    def batch(self, step: Step) -> list[Hits]:
        if self.rules is None:
            return []
        s = step
        edges = self.rules.fixes(s.f_dev, s.f_veh, s.f_ms, s.f_lon, s.f_lat, self.dwell_ms)
        edges += self.escalation.follow(edges, self.dwell_ms, self.critical_ms)
        edges += self.escalation.fixes(
            self.rules.fences, s.f_dev, s.f_veh, s.f_ms, s.f_lon, s.f_lat
        )
        return [Hits.episodes(edges)]

    def advance(self, now_ms: int) -> list[Hits]:
        if self.rules is None:
            return []
        edges = self.rules.advance(now_ms, self.dwell_ms)
        edges += self.escalation.follow(edges, self.dwell_ms, self.critical_ms)
        return [Hits.episodes(edges + self.escalation.advance(now_ms))]

    def known_through_ms(self, n_devices: int) -> F64 | None:
        if self.rules is None:
            return None
        known: npt.NDArray[np.float64] = np.minimum(
            self.rules.known_through_ms(n_devices, self.dwell_ms),
            self.escalation.known_through_ms(n_devices),
        )
        return known

    def incidents(self, decided: list[IncidentStart]) -> list[Hits]:
        """Hotspot visits (an internal episode type) in time order: `hotspot_repeat`."""
        visits = sorted((s for s in decided if s.type == VISIT), key=lambda s: s.time_ms)
        hits = Hits(AlertType.HOTSPOT_REPEAT, fence_id=[])
        for visit in visits:
            repeat = self.repeats.visit(visit.vehicle, visit.time_ms, visit.fence_id)
            if repeat is not None:
                hits.device.append(visit.device)
                hits.time_ms.append(visit.time_ms)
                hits.details.append({"visits": repeat})
                assert hits.fence_id is not None
                hits.fence_id.append(visit.fence_id)
        return [hits] if hits.device else []


def check_areas(fleet: Fleet, fences: Sequence[Fence]) -> None:
    ids = {f.id for f in fences}
    for vehicle in fleet.vehicles:
        if vehicle.allowed_area is not None and vehicle.allowed_area not in ids:
            raise FleetError(
                f"vehicle {vehicle.vehicle_id}: allowed_area {vehicle.allowed_area!r}"
                " is not a fence"
            )
