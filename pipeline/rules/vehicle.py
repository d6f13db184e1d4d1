"""Rules about a vehicle's devices together: all_devices_offline, partial_offline and
device_separation (they wait until every device of the vehicle is known past a row)."""

from __future__ import annotations

import numpy as np

from alerts.model import AlertType, format_time
from pipeline.rules.base import F64, FleetView, Hits, Limits, Rule, Setting, Step
from trajectory.separation import SeparationRule, SeparationSettings, SeparationStarts
from trajectory.vehicle_offline import SilenceAlerts, VehicleSilenceRule, VehicleSilenceSettings

HOUR_S = 3600.0


class VehicleSilences(Rule):
    name = "all_devices_offline"
    settings = (
        Setting("all_devices_offline", "after_s", 6 * HOUR_S, per_vehicle=True),
        Setting("all_devices_offline", "parked_after_s", 24 * HOUR_S, per_vehicle=True),
        Setting("partial_offline", "after_s", 2 * HOUR_S, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.rule = VehicleSilenceRule(silence_settings(limits))

    def grow(self, n_devices: int) -> None:
        self.rule.set_vehicles(vehicle_slots(self.view), n_devices)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        indexes = list(range(devices.start or 0, devices.stop))
        vehicles = self.view.vehicle_of[devices].tolist()
        self.rule.set_limits(vehicles, indexes, [silence_settings(t) for t in limits])

    def fleet_changed(self, moved: list[int], touched: list[int]) -> None:
        self.rule.set_vehicles(vehicle_slots(self.view), self.view.n_devices)
        if moved:
            self.rule.forget(moved)

    def batch(self, step: Step) -> list[Hits]:
        veh = self.view.vehicle_of[step.talk_dev].astype(np.intp)
        speed = step.batch.speed_kmh[step.talk]
        return _silences(*self.rule.reports(veh, step.talk_dev, step.talk_ms, speed, step.heard))

    def flush(self, watermark: F64, heard: F64) -> list[Hits]:
        none_i, none_t = np.zeros(0, np.int32), np.zeros(0, np.int64)
        none_s = np.zeros(0, np.float32)
        return _silences(*self.rule.reports(none_i, none_i, none_t, none_s, heard))

    def advance(self, now_ms: int) -> list[Hits]:
        return _silences(self.rule.advance(now_ms), None)

    def hold(self, from_ms: int, to_ms: int) -> None:
        self.rule.hold(from_ms, to_ms)


def silence_settings(limits: Limits) -> VehicleSilenceSettings:
    return VehicleSilenceSettings(
        moving_after_ms=int(limits.get("all_devices_offline", "after_s") * 1000),
        parked_after_ms=int(limits.get("all_devices_offline", "parked_after_s") * 1000),
        partial_after_ms=int(limits.get("partial_offline", "after_s") * 1000),
    )


def separation_settings(limits: Limits) -> SeparationSettings:
    return SeparationSettings(
        distance_m=limits.get("device_separation", "distance_m"),
        duration_ms=int(limits.get("device_separation", "duration_s") * 1000),
        window_ms=int(limits.get("device_separation", "window_s") * 1000),
    )


def _silences(everyone: SilenceAlerts, partial: SilenceAlerts | None) -> list[Hits]:
    out = []
    for kind, found in (
        (AlertType.ALL_DEVICES_OFFLINE, everyone),
        (AlertType.PARTIAL_OFFLINE, partial),
    ):
        if found is not None and len(found.device):
            details = [{"last_report": format_time(last)} for last in found.last_ms.tolist()]
            out.append(Hits.rows(kind, found.device, found.time_ms, details))
    return out


def vehicle_slots(view: FleetView) -> np.ndarray:
    """vehicle -> its devices, -1 padded (at least two columns), as SeparationRule builds them."""
    width = max([2, *(len(d) for d in view.devices_of.values())])
    slots = np.full((len(view.vehicle_ids), width), -1, np.intp)
    for vehicle, devices in view.devices_of.items():
        slots[vehicle, : len(devices)] = devices
    return slots


class Separation(Rule):
    name = "device_separation"
    settings = (
        Setting("device_separation", "distance_m", 2000.0, per_vehicle=True),
        Setting("device_separation", "duration_s", 30 * 60.0, per_vehicle=True),
        Setting("device_separation", "window_s", 10 * 60.0, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.rule = SeparationRule(separation_settings(limits))

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        vehicles = self.view.vehicle_of[devices].tolist()
        self.rule.set_limits(vehicles, [separation_settings(t) for t in limits])

    def grow(self, n_devices: int) -> None:
        v = self.view
        self.rule.set_vehicles(v.devices_of, len(v.vehicle_ids), n_devices)

    def fleet_changed(self, moved: list[int], touched: list[int]) -> None:
        v = self.view
        self.rule.set_vehicles(v.devices_of, len(v.vehicle_ids), v.n_devices)
        if moved:
            self.rule.forget(moved, touched)

    def batch(self, step: Step) -> list[Hits]:
        s = step
        return _separations(
            self.rule.fixes(s.f_veh, s.f_dev, s.f_ms, s.f_lon, s.f_lat, s.f_speed, s.watermark)
        )

    def flush(self, watermark: F64, heard: F64) -> list[Hits]:
        none_i, none_t = np.zeros(0, np.int32), np.zeros(0, np.int64)
        none_f, none_s = np.zeros(0, np.float64), np.zeros(0, np.float32)
        return _separations(
            self.rule.fixes(none_i, none_i, none_t, none_f, none_f, none_s, watermark)
        )

    def advance(self, now_ms: int) -> list[Hits]:
        return _separations(self.rule.advance(now_ms))


def _separations(s: SeparationStarts) -> list[Hits]:
    if len(s.device) == 0:
        return []
    details = [{"distance_m": round(m)} for m in s.distance_m.tolist()]
    return [Hits.rows(AlertType.DEVICE_SEPARATION, s.device, s.time_ms, details)]
