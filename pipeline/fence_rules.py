"""The fence rules: geofence_enter/exit on zones, leave_allowed_area, hotspot_dwell.

Membership and the two-fix confirmation come from the geofence package; this module turns its
transitions into per-device condition episodes for the incident merger:
- a zone enter opens an enter episode (closed by the exit) and the reverse for exits;
- being outside a vehicle's allowed areas is tracked as membership of their complement, so the
  first two valid fixes outside open the episode even for a car never seen inside (the tracker
  starts every pair "not inside": here, not outside);
- a hotspot stay opens a dwell episode at entry + threshold once the device's own data has
  passed that time inside the stay (or the clock has, at `advance`), and likewise a visit
  episode at entry + 5 min, which the engine counts for hotspot_repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.incidents import Edge
from alerts.model import AlertType, format_time
from geofence import ENTER, KIND_CODES, FenceKind, FenceSet, TransitionTracker
from geofence.admin import AdminRegions, default_regions
from trajectory.segments import Ints, last_of_device
from trajectory.state import grown

VISIT = "hotspot_visit"
VISIT_MS = 5 * 60_000
_HOTSPOT = KIND_CODES[FenceKind.HOTSPOT]
_ZONE = KIND_CODES[FenceKind.ZONE]
_ALLOWED = KIND_CODES[FenceKind.ALLOWED_AREA]
# (vehicle, fence) pairs up to this many are looked up in a table of flags (4 MB at most).
DENSE_PAIRS_MAX = 1 << 22


@dataclass
class FenceRules:
    fences: FenceSet
    # vehicle index -> indexes of its allowed-area fences (fleet file or the fence's list)
    allowed: dict[int, list[int]] = field(default_factory=dict)
    zones: TransitionTracker = field(default_factory=lambda: TransitionTracker(2))
    outside: TransitionTracker = field(default_factory=lambda: TransitionTracker(2))
    # (device, hotspot) -> [since, visit counted, dwell fired]
    stays: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    visit_ms: int = VISIT_MS
    # per device: time of its latest accepted valid fix (-1: none yet)
    last_fix_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # Names where a car that left its allowed area went (`leave_allowed_area` details); asked
    # only when one leaves, so a run without such an alert never loads the boundaries.
    regions: Callable[[], AdminRegions] = default_regions

    def __post_init__(self) -> None:
        self._allowed_keys = np.zeros(0, np.int64)
        self._allowed_table: npt.NDArray[np.bool_] | None = None
        self._primary = np.full(0, -1, np.int64)
        self.set_allowed(self.allowed)

    def rebind(self, fences: FenceSet) -> None:
        """Moves to a new fence set: hotspot stays follow their fence by id (a removed fence,
        or one no longer a hotspot, drops its stay); the trackers re-key on their next update."""
        old = self.fences
        stays: dict[tuple[int, int], list[int]] = {}
        for (device, fence), stay in self.stays.items():
            new = fences.get(old.fences[fence].id)
            if new is not None and fences.kinds[new] == _HOTSPOT:
                stays[(device, new)] = stay
        self.fences = fences
        self.stays = stays

    def set_allowed(self, allowed: dict[int, list[int]], n_vehicles: int = 0) -> None:
        """Each vehicle's allowed-area fences (its primary one first); `n_vehicles` sizes the
        lookup tables for every vehicle known so far, so a batch's rows index them directly."""
        self.allowed = allowed
        n = max(max(allowed, default=-1) + 1, n_vehicles)
        self._primary = np.full(n, -1, np.int64)
        keys = []
        for vehicle, fences in allowed.items():
            if fences:
                self._primary[vehicle] = fences[0]
                keys += [(vehicle << 32) | f for f in fences]
        self._allowed_keys = np.array(sorted(keys), np.int64)
        # The same pairs as flags vehicle * F + fence, for the vehicles with allowed areas: one
        # gather per fix instead of a sort-based membership test.
        n_fences = len(self.fences.fences)
        self._allowed_table = None
        if n * n_fences <= DENSE_PAIRS_MAX:
            self._allowed_table = np.zeros(n * n_fences, np.bool_)
            for vehicle, fences in allowed.items():
                self._allowed_table[[vehicle * n_fences + f for f in fences]] = True

    def fixes(
        self,
        device: Ints,
        vehicle: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        dwell_ms: npt.NDArray[np.int64],
    ) -> list[Edge]:
        """Accepted valid fixes grouped by device in time order; edges in device time order."""
        if len(device) == 0:
            return []
        self.last_fix_ms = grown(self.last_fix_ms, int(device.max()) + 1, -1)
        last = last_of_device(device)
        self.last_fix_ms[device[last]] = time_ms[last]
        row, fence = self.fences.contains(lon, lat, vehicle)
        kinds = np.take(self.fences.kinds, fence) if len(fence) else np.zeros(0, np.uint8)
        valid = np.ones(len(device), np.bool_)
        edges: list[Edge] = []
        placed = kinds != _ALLOWED
        zone_events = self.zones.update(
            self.fences, row[placed], fence[placed], device, time_ms, valid
        )
        for d, f, kind, t in zip(
            zone_events.device.tolist(),
            zone_events.fence.tolist(),
            zone_events.kind.tolist(),
            zone_events.time_ms.tolist(),
            strict=True,
        ):
            edges += self._transition(d, f, kind == ENTER, t, int(dwell_ms[d]))
        edges += self._dwell_evidence(device, time_ms, row, fence, dwell_ms)
        edges += self._allowed_area(device, vehicle, time_ms, lon, lat, row, fence, kinds, valid)
        edges.sort(key=lambda e: (e.device, e.time_ms, e.is_start))
        return edges

    def _transition(self, d: int, f: int, entered: bool, t: int, dwell_ms: int) -> list[Edge]:
        spec = self.fences.fences[f]
        code = self.fences.kinds[f]
        out: list[Edge] = []
        if code == _ZONE:
            opened, closed = (
                (AlertType.GEOFENCE_ENTER, AlertType.GEOFENCE_EXIT)
                if entered
                else (AlertType.GEOFENCE_EXIT, AlertType.GEOFENCE_ENTER)
            )
            out.append(Edge(d, t, False, closed.value, spec.id))
            if opened.value.removeprefix("geofence_") in spec.notify:
                out.append(Edge(d, t, True, opened.value, spec.id))
        elif code == _HOTSPOT:
            if entered:
                self.stays[(d, f)] = [t, 0, 0]
            else:
                stay = self.stays.pop((d, f), None)
                if stay is not None:
                    out += self._due(d, f, stay, dwell_ms, t, strictly=True)
                out.append(Edge(d, t, False, VISIT, spec.id))
                out.append(Edge(d, t, False, AlertType.HOTSPOT_DWELL.value, spec.id))
        return out

    def _due(
        self, d: int, f: int, stay: list[int], dwell_ms: int, at_ms: int, strictly: bool = False
    ) -> list[Edge]:
        """Starts of the visit and dwell episodes whose deadline `at_ms` has passed (an exit at
        `at_ms` must be strictly after it; evidence inside or the clock may equal it)."""

        def passed(deadline: int) -> bool:
            return at_ms > deadline if strictly else at_ms >= deadline

        out: list[Edge] = []
        fence_id = self.fences.fences[f].id
        if not stay[1] and passed(stay[0] + self.visit_ms):
            stay[1] = 1
            out.append(Edge(d, stay[0] + self.visit_ms, True, VISIT, fence_id))
        if not stay[2] and passed(stay[0] + dwell_ms):
            stay[2] = 1
            out.append(self._dwell_start(d, f, stay[0], dwell_ms))
        return out

    def _dwell_start(self, d: int, f: int, since_ms: int, dwell_ms: int) -> Edge:
        details = {"entered": format_time(since_ms), "dwell_s": dwell_ms // 1000}
        return Edge(
            d, since_ms + dwell_ms, True, AlertType.HOTSPOT_DWELL, self.fences.fences[f].id, details
        )

    def _dwell_evidence(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        row: npt.NDArray[np.intp],
        fence: Ints,
        dwell_ms: npt.NDArray[np.int64],
    ) -> list[Edge]:
        """Open stays whose device's latest fix, still inside, is past entry + threshold."""
        if not self.stays:
            return []
        last = np.ones(len(device), np.bool_)
        last[:-1] = device[1:] != device[:-1]
        last_rows = np.flatnonzero(last)
        last_of = dict(zip(device[last_rows].tolist(), last_rows.tolist(), strict=True))
        out: list[Edge] = []
        for (d, f), stay in self.stays.items():
            r = last_of.get(d)
            if r is None or (stay[1] and stay[2]):
                continue
            lo, hi = np.searchsorted(row, [r, r + 1])
            if f in fence[lo:hi]:
                out += self._due(d, f, stay, int(dwell_ms[d]), int(time_ms[r]))
        return out

    def _allowed_area(
        self,
        device: Ints,
        vehicle: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        row: npt.NDArray[np.intp],
        fence: Ints,
        kinds: npt.NDArray[np.uint8],
        valid: npt.NDArray[np.bool_],
    ) -> list[Edge]:
        if len(self._allowed_keys) == 0:
            return []
        n_known = len(self._primary)
        # Vehicles past the table (none once it is sized to the fleet) have no allowed area.
        covered = len(vehicle) == 0 or (int(vehicle.min()) >= 0 and int(vehicle.max()) < n_known)
        if covered:
            primary = self._primary[vehicle]
        else:
            primary = np.full(len(device), -1, np.int64)
            known = (vehicle >= 0) & (vehicle < n_known)
            primary[known] = self._primary[vehicle[known]]
        in_area = np.zeros(len(device), np.bool_)
        mine = kinds == _ALLOWED
        mine_rows = row[mine]
        owner = vehicle[mine_rows].astype(np.int64)
        n_fences = len(self.fences.fences)
        table = self._allowed_table
        if table is not None and len(table) == n_known * n_fences and covered:
            hit = table[owner * n_fences + fence[mine]]
        elif table is not None and len(table) == n_known * n_fences:
            listed = (owner >= 0) & (owner < n_known)
            at = np.flatnonzero(listed)
            hit = np.zeros(len(owner), np.bool_)
            hit[at] = table[owner[at] * n_fences + fence[mine][at]]
        else:
            hit = np.isin((owner << 32) | fence[mine], self._allowed_keys)
        in_area[mine_rows[hit]] = True
        out_rows = np.flatnonzero((primary >= 0) & ~in_area)
        events = self.outside.update(
            self.fences, out_rows, primary[out_rows], device, time_ms, valid
        )
        left = events.kind == ENTER  # entering the complement: leaving the area
        details: list[dict[str, Any]] = [{} for _ in range(len(events.kind))]
        if left.any():
            at = np.flatnonzero(left)
            where = events.row[at]
            places = self.regions().places(lon[where], lat[where])
            for i, r, place in zip(at.tolist(), where.tolist(), places, strict=True):
                # Where the car went: the fix that confirmed it outside.
                details[i] = {
                    "entered": place,
                    "lon": round(float(lon[r]), 6),
                    "lat": round(float(lat[r]), 6),
                }
        return [
            Edge(
                d,
                t,
                kind == ENTER,
                AlertType.LEAVE_ALLOWED_AREA.value,
                self.fences.fences[f].id,
                info,
            )
            for d, f, kind, t, info in zip(
                events.device.tolist(),
                events.fence.tolist(),
                events.kind.tolist(),
                events.time_ms.tolist(),
                details,
                strict=True,
            )
        ]

    def known_through_ms(
        self, n_devices: int, dwell_ms: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        """Per device, the time up to which its edges are final (inf: no limit from here).

        A side change is dated by the first of its confirming fixes, so an edge may still come
        at the device's latest valid fix (confirmed by a later one: with two-fix confirmation
        the pending run can only begin there) or at a visit or dwell deadline that no fix
        inside has passed yet. Invalid fixes move neither, so these can lie behind the
        device's latest report; the incident merger must not decide past them.
        """
        known = np.full(n_devices, np.inf)
        seen = np.flatnonzero(self.last_fix_ms[:n_devices] >= 0)
        known[seen] = self.last_fix_ms[seen] - 1
        for (d, _), stay in self.stays.items():
            if d >= n_devices:
                continue
            if not stay[1]:
                known[d] = min(known[d], stay[0] + self.visit_ms - 1)
            if not stay[2]:
                known[d] = min(known[d], stay[0] + int(dwell_ms[d]) - 1)
        return known

    def advance(self, now_ms: int, dwell_ms: npt.NDArray[np.int64]) -> list[Edge]:
        """Timer: stays the clock has carried past their deadlines."""
        out: list[Edge] = []
        for (d, f), stay in self.stays.items():
            out += self._due(d, f, stay, int(dwell_ms[d]), now_ms)
        return out
