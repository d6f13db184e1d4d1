"""`long_stay`: a stop of days away from the car's learned home and work."""

from __future__ import annotations

from alerts.model import AlertType
from pipeline.rules.base import F64, FleetView, Hits, Limits, Rule, Setting, Step, episode_edges
from trajectory.places import LongStayRule, LongStays, LongStaySettings

HOUR_S = 3600.0


class LongStay(Rule):
    name = "long_stay"
    settings = (
        Setting("long_stay", "after_s", 72 * HOUR_S, per_vehicle=True),
        Setting("long_stay", "radius_m", 1000.0, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.rule = LongStayRule(long_stay_settings(limits))

    def grow(self, n_devices: int) -> None:
        self.rule.ensure(n_devices)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        self.rule.set_limits(devices, [long_stay_settings(t) for t in limits])
        if self.rule.away_ms is not None:  # gathering's visits, by each car's own thresholds
            self.rule.set_away(
                devices,
                [int(t.get("gathering", "stop_s") * 1000) for t in limits],
                [t.get("gathering", "usual_radius_m") for t in limits],
            )

    def report_away(self, away_ms: int, radius_m: float) -> None:
        """Also find stops of `away_ms` far from the usual places (FleetView.away_stops); a
        vehicle's own `gathering.stop_s` and `.usual_radius_m` replace them (`per_vehicle`)."""
        self.rule.away_ms = away_ms
        self.rule.away_radius_m = radius_m
        self.rule.away_of_ms[:] = away_ms
        self.rule.away_radius_of_m[:] = radius_m

    def batch(self, step: Step) -> list[Hits]:
        stays = self.rule.stops(step.stops)
        self.view.away_stops = stays.away
        return _stays(stays)

    def advance(self, now_ms: int) -> list[Hits]:
        stops = self.view.stops
        return _stays(self.rule.advance(now_ms, stops.start_ms, stops.anchor_lon, stops.anchor_lat))

    def known_through_ms(self, n_devices: int) -> F64:
        stops = self.view.stops
        return self.rule.known_through_ms(n_devices, stops.start_ms, stops.last_ms)


def long_stay_settings(limits: Limits) -> LongStaySettings:
    return LongStaySettings(
        after_ms=int(limits.get("long_stay", "after_s") * 1000),
        radius_m=limits.get("long_stay", "radius_m"),
    )


def _stays(stays: LongStays) -> list[Hits]:
    where = [{"lon": round(x, 6), "lat": round(y, 6)} for x, y in stays.where]
    return [
        Hits.episodes(
            episode_edges(
                AlertType.LONG_STAY, stays.start_device, stays.start_ms, where,
                stays.end_device, stays.end_ms,
            )
        )
    ]  # fmt: skip
