"""`gathering` (trajectory.gathering) on the engine's rule shape: visits come from the stops
every device's fixes make; the spots they propose are checked against the hotspot fences.

Live, each batch's visits are evaluated at once (in time order). A replay defers them
(`defer = True`): its vehicles may be split over processes, so the visits of every process
are gathered and evaluated together at the end (`propose`), giving the same spots for any
split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alerts.model import Alert, AlertType, format_time
from pipeline.rules.base import FleetView, Hits, Limits, Rule, Setting, Step
from trajectory.gathering import GatheringSettings, KnownSpot, SpotFinder, SpotProposal, Visit
from trajectory.state import grown

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S


class Gathering(Rule):
    name = "gathering"
    settings = (
        Setting("gathering", "cars", 5, per_vehicle=True),
        Setting("gathering", "radius_m", 150.0, per_vehicle=True),
        Setting("gathering", "stop_s", 2 * HOUR_S, per_vehicle=True),
        Setting("gathering", "window_s", 14 * DAY_S, per_vehicle=True),
        Setting("gathering", "usual_radius_m", 1000.0, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.gathering = gathering_settings(limits)
        self.finder = SpotFinder(self.gathering)
        self.counted = np.zeros(0, np.int64)  # per device: start of the stop already a visit
        # per device: its vehicle's thresholds, when they differ from the defaults
        self.own: dict[int, GatheringSettings] = {}
        self.defer = False
        self.visits: list[Visit] = []  # deferred visits (replay)

    def know_spots(self, known: KnownSpot) -> None:
        """Where known risk spots are (the engine's hotspot fences)."""
        self.finder.known = known

    def grow(self, n_devices: int) -> None:
        self.counted = grown(self.counted, n_devices, -1)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        """A car's own thresholds: its visits' stop and distance from home (long_stay finds
        them), and the place's radius, window and borrowers when its visit may complete one."""
        for d, t in zip(range(*devices.indices(len(self.counted))), limits, strict=False):
            own = gathering_settings(t)
            if own == self.gathering:
                self.own.pop(d, None)
            else:
                self.own[d] = own
                self.finder.longest_ms = max(self.finder.longest_ms, own.window_ms)

    def batch(self, step: Step) -> list[Hits]:
        visits = self._visits(step)
        if self.defer:
            self.visits += visits
            return []
        visits.sort(key=Visit.sort_key)
        return self.hits(self.finder.add(visits))

    def _visits(self, step: Step) -> list[Visit]:
        """Each stop the long-stay rule found long enough and away from the usual places
        (`FleetView.away_stops`) is one visit, counted once (while open or when closed)."""
        out: list[Visit] = []
        v = self.view
        for d, start, end, lon, lat in v.away_stops:
            if self.counted[d] == start:
                if end >= 0:
                    self.counted[d] = -1
                continue
            self.counted[d] = start if end < 0 else -1
            vehicle = int(v.vehicle_of[d])
            own = self.own.get(d)
            stop_ms = (own or self.gathering).stop_ms
            out.append(
                Visit(
                    start + stop_ms, start, lon, lat,
                    v.devices.terminal(d), v.vehicle_ids[vehicle], v.borrower_of[vehicle], own,
                )
            )  # fmt: skip
        return out

    def hits(self, proposals: Sequence[SpotProposal]) -> list[Hits]:
        if not proposals:
            return []
        v = self.view
        return [
            Hits.rows(
                AlertType.GATHERING,
                [v.devices.index_of(p.trigger.device) for p in proposals],
                [p.time_ms for p in proposals],
                [spot_details(p) for p in proposals],
            )
        ]

    def propose(self, visits: Sequence[Visit]) -> list[Alert]:
        """The deferred visits of every process, evaluated in time order (replay)."""
        found = self.finder.add(sorted(visits, key=Visit.sort_key))
        return [
            Alert(AlertType.GATHERING, p.trigger.device, p.trigger.vehicle, p.time_ms,
                  details=spot_details(p))
            for p in found
        ]  # fmt: skip


def gathering_settings(limits: Limits) -> GatheringSettings:
    return GatheringSettings(
        cars=max(2, int(limits.get("gathering", "cars"))),
        radius_m=limits.get("gathering", "radius_m"),
        stop_ms=int(limits.get("gathering", "stop_s") * 1000),
        window_ms=int(limits.get("gathering", "window_s") * 1000),
        usual_radius_m=limits.get("gathering", "usual_radius_m"),
    )


def spot_details(p: SpotProposal) -> dict[str, Any]:
    """A candidate spot as alert details: where, and the evidence (which cars, when)."""
    return {
        "lon": round(p.lon, 6),
        "lat": round(p.lat, 6),
        "radius_m": round(p.radius_m),
        "borrowers": p.borrowers,
        "visits": [
            {
                "vehicle_id": w.vehicle,
                "device_id": w.device,
                "borrower": w.borrower,
                "arrived": format_time(w.arrived_ms),
                "parked_until_at_least": format_time(w.time_ms),
                "lon": round(w.lon, 6),
                "lat": round(w.lat, 6),
            }
            for w in p.visits
        ],
    }
