"""`hotspot_dwell_critical`: the hotspot_dwell incident escalated after a long stay (24 h).

The contract's `hotspot_dwell` alert stays exactly as it is (entry + 30 min, high); a stay that
goes on to last the critical threshold raises a second alert of its own type, dated entry +
threshold, one per vehicle incident like the dwell itself (the incident merger unions the
devices' episodes). It follows the dwell episodes the fence rules report: a device's critical
episode can only open inside a stay whose dwell episode opened, and ends with it. Evidence is
the same as for the dwell: the device's latest valid fix still inside at or after the deadline,
an exit strictly after it, or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from alerts.incidents import Edge
from alerts.model import AlertType, format_time
from geofence import FenceSet
from trajectory.segments import Ints, last_of_device

_DWELL = AlertType.HOTSPOT_DWELL.value
_CRITICAL = AlertType.HOTSPOT_DWELL_CRITICAL.value


@dataclass
class DwellEscalation:
    # (device, fence id) -> [entry ms, deadline ms, fired] for stays whose dwell episode opened
    stays: dict[tuple[int, str], list[int]] = field(default_factory=dict)

    def follow(
        self,
        edges: list[Edge],
        dwell_ms: npt.NDArray[np.int64],
        critical_ms: npt.NDArray[np.int64],
    ) -> list[Edge]:
        """Tracks the dwell starts and ends among the fence rules' `edges` (device time order):
        a stay that ended strictly after its deadline opens (and closes) its critical episode."""
        out: list[Edge] = []
        for e in edges:
            if e.type != _DWELL:
                continue
            key = (e.device, e.fence_id)
            if e.is_start:
                since = e.time_ms - int(dwell_ms[e.device])
                deadline = since + max(int(critical_ms[e.device]), int(dwell_ms[e.device]))
                self.stays[key] = [since, deadline, 0]
                continue
            stay = self.stays.pop(key, None)
            if stay is None:
                continue
            if not stay[2] and e.time_ms > stay[1]:
                out.append(self._start(e.device, e.fence_id, stay))
            out.append(Edge(e.device, e.time_ms, False, _CRITICAL, e.fence_id))
        return out

    def fixes(
        self,
        fences: FenceSet,
        device: Ints,
        vehicle: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
    ) -> list[Edge]:
        """Open stays whose device's latest valid fix (grouped by device, time order), still
        inside the hotspot, is at or past the deadline."""
        if not self.stays or len(device) == 0:
            return []
        rows = np.flatnonzero(last_of_device(device))
        last_of = dict(zip(device[rows].tolist(), rows.tolist(), strict=True))
        due: list[tuple[tuple[int, str], list[int], int]] = []
        for key, stay in self.stays.items():
            r = last_of.get(key[0])
            if r is not None and not stay[2] and int(time_ms[r]) >= stay[1]:
                due.append((key, stay, r))
        if not due:
            return []
        at = np.array([r for _, _, r in due], np.intp)
        hit_row, hit_fence = fences.contains(lon[at], lat[at], vehicle[at])
        inside = set(zip(hit_row.tolist(), hit_fence.tolist(), strict=True))
        out: list[Edge] = []
        for i, ((d, fence_id), stay, _) in enumerate(due):
            if (i, fences.get(fence_id)) in inside:
                out.append(self._start(d, fence_id, stay))
        return out

    def advance(self, now_ms: int) -> list[Edge]:
        """Timer: stays the clock has carried past their deadline."""
        return [
            self._start(d, fence_id, stay)
            for (d, fence_id), stay in self.stays.items()
            if not stay[2] and now_ms >= stay[1]
        ]

    def known_through_ms(self, n_devices: int) -> npt.NDArray[np.float64]:
        """Per device: a critical start may still be dated at a deadline not yet passed."""
        known = np.full(n_devices, np.inf)
        for (d, _), stay in self.stays.items():
            if d < n_devices and not stay[2]:
                known[d] = min(known[d], stay[1] - 1)
        return known

    def retain(self, alive: set[tuple[int, str]]) -> None:
        """Forgets the stays the fence rules no longer hold (a fence removed or no longer a
        hotspot): their episodes were ended with the fence."""
        self.stays = {k: v for k, v in self.stays.items() if k in alive}

    @staticmethod
    def _start(device: int, fence_id: str, stay: list[int]) -> Edge:
        stay[2] = 1
        details = {"entered": format_time(stay[0]), "dwell_s": (stay[1] - stay[0]) // 1000}
        return Edge(device, stay[1], True, _CRITICAL, fence_id, details)
