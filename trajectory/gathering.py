"""`gathering`: financed cars of different borrowers repeatedly parking at one place.

A *visit* is a stop of at least `stop_ms` (2 h) more than `usual_radius_m` from the car's own
learned home and work (a car with no learned home yet makes none: its first nights would look
like visits). When a visit brings the visits within `radius_m` of it over the last `window_ms`
(14 days) to `cars` (5) different borrowers, the place (the mean of those visits) is proposed
as a candidate risk spot with the visits as evidence, unless a known spot covers it (the caller
says which places are known) or a spot was already proposed within twice the radius.

Visits are taken in time order (`SpotFinder.add`); given the same visits in the same order,
the proposals are the same, so the engine can evaluate them once every car's visits are in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from positions.geo import haversine_scalar_m

M_PER_DEG = 111_320.0


@dataclass(frozen=True, slots=True)
class GatheringSettings:
    cars: int = 5
    radius_m: float = 150.0
    stop_ms: int = 2 * 3_600_000
    window_ms: int = 14 * 86_400_000
    usual_radius_m: float = 1000.0


@dataclass(frozen=True, slots=True)
class Visit:
    """A car parked long enough away from its usual places; `time_ms` = arrival + stop.
    `settings`: the car's own thresholds (None: the finder's), which decide whether this visit
    completes the evidence (how near, how recent and how many borrowers)."""

    time_ms: int
    arrived_ms: int
    lon: float
    lat: float
    device: str
    vehicle: str
    borrower: str
    settings: GatheringSettings | None = None

    def sort_key(self) -> tuple[int, str]:
        return (self.time_ms, self.device)


@dataclass(frozen=True, slots=True)
class SpotProposal:
    """A candidate spot: its centre, and the visits that make the evidence (the last one, the
    trigger, completed it)."""

    time_ms: int
    lon: float
    lat: float
    radius_m: float
    visits: tuple[Visit, ...]
    trigger: Visit

    @property
    def borrowers(self) -> int:
        return len({v.borrower for v in self.visits})


KnownSpot = Callable[[float, float, float], bool]


def _no_known_spot(lon: float, lat: float, radius_m: float) -> bool:
    return False


@dataclass
class SpotFinder:
    settings: GatheringSettings = field(default_factory=GatheringSettings)
    known: KnownSpot = _no_known_spot
    cells: dict[tuple[int, int], list[Visit]] = field(default_factory=dict)
    proposed: list[tuple[float, float]] = field(default_factory=list)
    # The longest window any car's thresholds give: visits older than it are dropped.
    longest_ms: int = 0

    def _cell(self, lon: float, lat: float) -> tuple[int, int]:
        size = self.settings.radius_m / M_PER_DEG
        return (math.floor(lon / size), math.floor(lat / size))

    def add(self, visits: Iterable[Visit]) -> list[SpotProposal]:
        """Visits in time order; returns the spots they make proposable."""
        visits = list(visits)
        # Keep every visit a car's own (longer) window may still count.
        windows = [v.settings.window_ms for v in visits if v.settings is not None]
        self.longest_ms = max([self.longest_ms, *windows])
        out: list[SpotProposal] = []
        for visit in visits:
            found = self._visit(visit)
            if found is not None:
                out.append(found)
        return out

    def _visit(self, v: Visit) -> SpotProposal | None:
        s = v.settings or self.settings
        cx, cy = self._cell(v.lon, v.lat)
        # Cells are the finder's radius wide; a car's own radius may reach further. A lon cell
        # is narrower on the ground than a lat cell: look wide enough east-west.
        ratio = s.radius_m / self.settings.radius_m
        reach_y = max(1, math.ceil(ratio))
        reach = 1 + math.ceil(ratio / max(math.cos(math.radians(v.lat)), 0.05))
        kept = v.time_ms - max(self.longest_ms, self.settings.window_ms, s.window_ms)
        since = v.time_ms - s.window_ms
        near: list[Visit] = []
        for x in range(cx - reach, cx + reach + 1):
            for y in range(cy - reach_y, cy + reach_y + 1):
                cell = self.cells.get((x, y))
                if not cell:
                    continue
                cell[:] = [w for w in cell if w.time_ms > kept]
                near += [
                    w
                    for w in cell
                    if w.time_ms > since
                    and haversine_scalar_m(w.lon, w.lat, v.lon, v.lat) <= s.radius_m
                ]
        self.cells.setdefault((cx, cy), []).append(v)
        near.append(v)
        if len({w.borrower for w in near}) < s.cars:
            return None
        lon = sum(w.lon for w in near) / len(near)
        lat = sum(w.lat for w in near) / len(near)
        if any(haversine_scalar_m(x, y, lon, lat) <= 2 * s.radius_m for x, y in self.proposed):
            return None
        if self.known(lon, lat, s.radius_m):
            return None
        self.proposed.append((lon, lat))
        visits = tuple(sorted(near, key=Visit.sort_key))
        return SpotProposal(v.time_ms, lon, lat, s.radius_m, visits, v)
