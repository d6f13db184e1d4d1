"""One alert per vehicle and incident, whatever the order devices' data arrives in.

Rules about where a vehicle is report, per device, condition episodes: the time the condition
became true and, later, the time it stopped. The vehicle's incident is the union of its devices'
episodes for one (type, fence): an episode opens a new incident only if no other device's episode
covers its start. Whether one does is only known once every other device of the vehicle has
reported past that start, so starts wait for that watermark (or for `flush`, at the end of
input). This makes the alerts independent of how the input is cut into batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GroupKey = tuple[int, str, str]  # (vehicle index, alert type, fence id or "")


@dataclass(frozen=True, slots=True)
class Edge:
    """A device's condition starting (with the alert's details) or stopping at `time_ms`."""

    device: int
    time_ms: int
    is_start: bool
    type: str  # an alert type, or an internal episode type (hotspot visits)
    fence_id: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Episode:
    device: int
    start_ms: int
    end_ms: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncidentStart:
    """An episode that opened a new vehicle incident: the alert to raise."""

    vehicle: int
    type: str
    fence_id: str
    device: int
    time_ms: int
    details: dict[str, Any]


@dataclass
class IncidentMerger:
    """Per (vehicle, type, fence): recent episodes and starts still waiting for the watermark."""

    episodes: dict[GroupKey, list[Episode]] = field(default_factory=dict)
    open_by_device: dict[tuple[GroupKey, int], Episode] = field(default_factory=dict)
    pending: list[tuple[GroupKey, Episode]] = field(default_factory=list)

    def start(
        self, key: GroupKey, device: int, time_ms: int, details: dict[str, Any] | None = None
    ) -> None:
        """A device's condition became true at `time_ms` (calls in the device's time order)."""
        episode = Episode(device, time_ms, None, details or {})
        self.episodes.setdefault(key, []).append(episode)
        self.open_by_device[(key, device)] = episode
        self.pending.append((key, episode))

    def end(self, key: GroupKey, device: int, time_ms: int) -> None:
        """A device's condition stopped at `time_ms` (no-op if it was not true)."""
        episode = self.open_by_device.pop((key, device), None)
        if episode is not None:
            episode.end_ms = time_ms

    def apply(self, edges: list[Edge], vehicle_of: Any) -> None:
        """Edges in each device's time order; `vehicle_of[device]` gives the vehicle index."""
        for e in edges:
            key = (int(vehicle_of[e.device]), e.type, e.fence_id)
            if e.is_start:
                self.start(key, e.device, e.time_ms, e.details)
            else:
                self.end(key, e.device, e.time_ms)

    def resolve(
        self, devices_of: dict[int, list[int]], device_ms: Any, floor_ms: float
    ) -> list[IncidentStart]:
        """Decides the starts every other device has reported past (or `floor_ms` covers)."""
        decided: list[IncidentStart] = []
        waiting: list[tuple[GroupKey, Episode]] = []
        for key, episode in self.pending:
            others = [d for d in devices_of.get(key[0], ()) if d != episode.device]
            known = all(max(float(device_ms[d]), floor_ms) >= episode.start_ms for d in others)
            if not known:
                waiting.append((key, episode))
                continue
            if not self._covered(key, episode):
                decided.append(
                    IncidentStart(
                        key[0], key[1], key[2], episode.device, episode.start_ms, episode.details
                    )
                )
        self.pending = waiting
        return decided

    def _covered(self, key: GroupKey, episode: Episode) -> bool:
        s = episode.start_ms
        for other in self.episodes.get(key, ()):
            if other is episode or other.device == episode.device:
                continue
            earlier = other.start_ms < s or (other.start_ms == s and other.device < episode.device)
            if earlier and (other.end_ms is None or other.end_ms > s):
                return True
        return False

    def move_device(self, device: int, old_vehicle: int, new_vehicle: int) -> None:
        """The device now belongs to another vehicle: its episodes (open, closed, waiting)
        go with it."""

        def moved(key: GroupKey) -> GroupKey:
            return (new_vehicle, key[1], key[2]) if key[0] == old_vehicle else key

        for key in [k for k in self.episodes if k[0] == old_vehicle]:
            mine = [e for e in self.episodes[key] if e.device == device]
            if not mine:
                continue
            rest = [e for e in self.episodes[key] if e.device != device]
            if rest:
                self.episodes[key] = rest
            else:
                del self.episodes[key]
            self.episodes.setdefault(moved(key), []).extend(mine)
        self.open_by_device = {
            ((moved(key), d) if d == device else (key, d)): e
            for (key, d), e in self.open_by_device.items()
        }
        self.pending = [(moved(key) if e.device == device else key, e) for key, e in self.pending]

    def end_fences(self, fence_ids: set[str], end_ms: Any) -> None:
        """Those fences are gone: their open episodes end at `end_ms[device]` (the device's
        latest fix), so they cannot cover an incident if the id comes back later."""
        for key, device in [k for k in self.open_by_device if k[0][2] in fence_ids]:
            episode = self.open_by_device.pop((key, device))
            last = int(end_ms[device]) if device < len(end_ms) else -1
            episode.end_ms = max(last, episode.start_ms)

    def prune(self, watermark_ms: Any) -> None:
        """Forgets closed episodes that ended at or before their vehicle's watermark: every
        start still to be decided for that vehicle is later than it, so none can be covered."""
        for key in list(self.episodes):
            mark = float(watermark_ms[key[0]])
            kept = [e for e in self.episodes[key] if e.end_ms is None or e.end_ms > mark]
            if kept:
                self.episodes[key] = kept
            else:
                del self.episodes[key]
