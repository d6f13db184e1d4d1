"""`not_home` and `night_trips` (trajectory.nights) on the engine's rule shape."""

from __future__ import annotations

from alerts.model import AlertType, format_time
from pipeline.rules.base import F64, FleetView, Hits, Limits, Rule, Setting, Step, episode_edges
from trajectory.nights import (
    NightEdges,
    NightTripRule,
    NightTripSettings,
    NotHomeRule,
    NotHomeSettings,
)


class NotHome(Rule):
    name = "not_home"
    settings = (
        Setting("not_home", "nights", 3, per_vehicle=True),
        Setting("not_home", "radius_m", 1000.0, per_vehicle=True),
        Setting("not_home", "learn_nights", 3, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.rule = NotHomeRule(not_home_settings(limits))

    def grow(self, n_devices: int) -> None:
        self.rule.ensure(n_devices)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        self.rule.set_limits(devices, [not_home_settings(t) for t in limits])

    def batch(self, step: Step) -> list[Hits]:
        return _hits(
            AlertType.NOT_HOME, self.rule.fixes(step.f_dev, step.f_ms, step.f_lon, step.f_lat)
        )

    def advance(self, now_ms: int) -> list[Hits]:
        return _hits(AlertType.NOT_HOME, self.rule.advance(now_ms))

    def known_through_ms(self, n_devices: int) -> F64:
        return self.rule.known_through_ms(n_devices)


class NightTrips(Rule):
    name = "night_trips"
    settings = (
        Setting("night_trips", "from_h", 0.0, per_vehicle=True),
        Setting("night_trips", "to_h", 5.0, per_vehicle=True),
        Setting("night_trips", "distance_m", 5000.0, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.rule = NightTripRule(night_trip_settings(limits))

    def grow(self, n_devices: int) -> None:
        self.rule.ensure(n_devices)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        self.rule.set_limits(devices, [night_trip_settings(t) for t in limits])

    def batch(self, step: Step) -> list[Hits]:
        s = step
        return _hits(
            AlertType.NIGHT_TRIPS, self.rule.fixes(s.f_dev, s.f_ms, s.f_lon, s.f_lat, s.f_speed)
        )


def not_home_settings(limits: Limits) -> NotHomeSettings:
    return NotHomeSettings(
        nights=max(1, int(limits.get("not_home", "nights"))),
        radius_m=limits.get("not_home", "radius_m"),
        learn=max(1, int(limits.get("not_home", "learn_nights"))),
    )


def night_trip_settings(limits: Limits) -> NightTripSettings:
    return NightTripSettings(
        from_h=limits.get("night_trips", "from_h") % 24,
        to_h=limits.get("night_trips", "to_h") % 24,
        distance_m=limits.get("night_trips", "distance_m"),
    )


def _hits(kind: AlertType, found: NightEdges) -> list[Hits]:
    if not found.start_device and not found.end_device:
        return []
    details = []
    for info in found.details:
        info = dict(info)
        if "since_ms" in info:
            info["since"] = format_time(int(info.pop("since_ms")))  # type: ignore[call-overload]
        details.append(info)
    return [
        Hits.episodes(
            episode_edges(
                kind, found.start_device, found.start_ms, details,
                found.end_device, found.end_ms,
            )
        )
    ]  # fmt: skip
