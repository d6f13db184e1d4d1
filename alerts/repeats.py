"""`hotspot_repeat`: several separate visits of one vehicle to risk spots within a window.

Visits arrive already deduplicated per vehicle (one per vehicle incident of "at least a few
minutes inside a hotspot"), in time order. One alert per burst: once alerted, the vehicle needs a
window without enough visits before it can be alerted again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RepeatVisits:
    visits: int = 2
    window_ms: int = 7 * 86_400_000
    recent: dict[int, deque[tuple[int, str]]] = field(default_factory=dict)
    alerted_until: dict[int, int] = field(default_factory=dict)
    # per vehicle: its own (visits, window_ms) where they differ from the defaults above
    own: dict[int, tuple[int, int]] = field(default_factory=dict)

    def set_limits(self, vehicle: int, visits: int, window_ms: int) -> None:
        """The vehicle's own thresholds (the defaults again when equal to them)."""
        if (visits, window_ms) == (self.visits, self.window_ms):
            self.own.pop(vehicle, None)
        else:
            self.own[vehicle] = (visits, window_ms)

    def visit(self, vehicle: int, time_ms: int, fence_id: str) -> list[str] | None:
        """Records a visit; returns the fences of the qualifying visits when it opens a burst."""
        visits, window_ms = self.own.get(vehicle, (self.visits, self.window_ms))
        recent = self.recent.setdefault(vehicle, deque())
        recent.append((time_ms, fence_id))
        while recent and recent[0][0] <= time_ms - window_ms:
            recent.popleft()
        if len(recent) < visits:
            return None
        burst_open = time_ms < self.alerted_until.get(vehicle, -1)
        self.alerted_until[vehicle] = time_ms + window_ms
        return None if burst_open else [f for _, f in recent]
