"""The contract's alert definitions (section 3) evaluated over a finished scenario: the truth.

This is an oracle, written for clarity over the exact files the scenario writes (rounded
coordinates, file order), not a rule engine: whatever incident the contract defines in the data
is listed, injected or not. Where the contract leaves room for more than one reading (a timer
against the next fix, `>` against `>=`, the first fix of a device, a second unit of the car
confirming a side), the oracle computes each reading and records a doubt when they differ; the
generator is built so that a scenario has no doubts, which the tests check.

Readings used: rows of a device are taken in file order; a row older than the newest one seen
is dropped, an equal one is a duplicate (a report for offline, excluded from location rules);
timers (dwell, overspeed, separation, offline) fire when data time passes the deadline, the
clock ending at the latest time in the whole file.

With receive times (a scenario with device faults), silence is read on them as contracts
section 3 says: a row is the device talking when it is a report or arrives after everything the
device sent before, and the clock ends at the latest receive time. Rows whose device clock
gives no usable time are reports, never fixes. Fix times here are the true ones: what the
platform recovers from a clock it can correct.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulators.fences import Fence, FenceShape
from simulators.geo import haversine_m

VEHICLE_RULES = (
    "geofence_enter",
    "geofence_exit",
    "leave_allowed_area",
    "hotspot_dwell",
    "overspeed",
    "device_separation",
)
DEVICE_RULES = ("offline", "power_cut", "antenna_cut", "gps_jump")
ALERT_TYPES = VEHICLE_RULES + DEVICE_RULES

DWELL_MS = 30 * 60_000
OFFLINE_MS = 2 * 3_600_000
JUMP_KMH = 250.0
OVERSPEED_KMH = 120.0
OVERSPEED_MS = 60_000
SEPARATION_M = 2000.0
SEPARATION_PAIR_MS = 10 * 60_000
SEPARATION_MS = 30 * 60_000
ALARM_ANTENNA_BIT = 5
ALARM_POWER_BIT = 8
INF = np.iinfo(np.int64).max

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Stream:
    """Positions as the CSV holds them, in file order; `device` indexes `device_ids`."""

    device_ids: tuple[str, ...]
    device: npt.NDArray[np.int32]
    time_ms: IntArray
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float64]
    alarm: npt.NDArray[np.uint32]
    status: npt.NDArray[np.uint32]
    recv_ms: IntArray | None = None  # receive times, when the file gives them
    unusable: npt.NDArray[np.bool_] | None = None  # rows whose device time is unusable


@dataclass(frozen=True, slots=True)
class Incident:
    type: str
    device_id: str
    vehicle_id: str
    fence_id: str | None
    time_ms: int


@dataclass(slots=True)
class Evaluation:
    incidents: list[Incident] = field(default_factory=list)
    doubts: list[str] = field(default_factory=list)
    dropped_out_of_order: int = 0
    duplicates: int = 0
    jumps: int = 0


@dataclass(frozen=True, slots=True)
class FleetMap:
    """vehicle -> devices and allowed area; a device not listed is its own vehicle."""

    vehicles: Mapping[str, tuple[str, ...]]
    allowed_area: Mapping[str, str | None]


def _intervals_union(items: list[tuple[int, int, int, str]]) -> list[tuple[int, int, int, str]]:
    """Merges (start, end, last, device) intervals that overlap; keeps the first device."""
    merged: list[tuple[int, int, int, str]] = []
    for start, end, last, dev in sorted(items):
        if merged and start <= merged[-1][1]:
            s0, e0, l0, d0 = merged[-1]
            merged[-1] = (s0, max(e0, end), max(l0, last), d0)
        else:
            merged.append((start, end, last, dev))
    return merged


def _runs(t: IntArray, flag: npt.NDArray[np.bool_]) -> list[tuple[int, int, int]]:
    """(first true time, time of the first false after it or INF, last true time) per run."""
    if len(t) == 0 or not flag.any():
        return []
    padded = np.concatenate([[False], flag, [False]])
    starts = np.flatnonzero(~padded[:-1] & padded[1:])
    ends = np.flatnonzero(padded[:-1] & ~padded[1:])  # index of the first false after the run
    out = []
    for s, e in zip(starts, ends, strict=True):
        out.append((int(t[s]), int(t[e]) if e < len(t) else int(INF), int(t[e - 1])))
    return out


def _confirmed(t: IntArray, flag: npt.NDArray[np.bool_]) -> list[tuple[int, bool, int]]:
    """Side changes confirmed by 2 consecutive fixes: (time of the first, new side, index)."""
    if len(t) < 2:
        return []
    both_true = flag[:-1] & flag[1:]
    both_false = ~flag[:-1] & ~flag[1:]
    idx = np.flatnonzero(both_true | both_false)
    vals = both_true[idx]
    prev = np.concatenate([[False], vals[:-1]])
    change = vals != prev
    return [(int(t[k]), bool(v), int(k)) for k, v in zip(idx[change], vals[change], strict=True)]


class _Oracle:
    def __init__(self, stream: Stream, fleet: FleetMap, fences: Sequence[Fence]) -> None:
        self.s = stream
        self.fleet = fleet
        self.fences = list(fences)
        self.out = Evaluation()
        clock = stream.time_ms if stream.recv_ms is None else stream.recv_ms
        self.file_max = int(clock.max()) if len(clock) else 0
        self.vehicle_of: dict[str, str] = {}
        for vid, devs in fleet.vehicles.items():
            for dev in devs:
                self.vehicle_of[dev] = vid

    def doubt(self, text: str) -> None:
        self.out.doubts.append(text)

    def add(self, kind: str, device: str, vehicle: str, fence: str | None, time_ms: int) -> None:
        self.out.incidents.append(Incident(kind, device, vehicle, fence, int(time_ms)))

    def run(self) -> Evaluation:
        s = self.s
        n = len(s.time_ms)
        order = np.lexsort((np.arange(n), s.device))
        dev = s.device[order].astype(np.int64)
        t = s.time_ms[order]
        key = dev * (1 << 44) + t
        running = np.maximum.accumulate(key)
        prev = np.concatenate([[-1], running[:-1]])
        first = np.concatenate([[True], dev[1:] != dev[:-1]])
        prev[first] = -1
        accepted = key > prev
        dup = key == prev
        processed = accepted | dup
        self.out.dropped_out_of_order = int(n - processed.sum())
        self.out.duplicates = int(dup.sum())
        lon, lat = s.lon[order], s.lat[order]
        status, alarm = s.status[order], s.alarm[order]
        valid = accepted & ((status & 2) != 0) & ~((lat == 0.0) & (lon == 0.0))
        if s.unusable is not None:
            valid &= ~s.unusable[order]
        bounds = [*np.flatnonzero(first).tolist(), n]
        self.groups = {int(dev[a]): (a, b) for a, b in itertools.pairwise(bounds)}
        self.t, self.dev, self.lon, self.lat = t, dev, lon, lat
        self.speed = s.speed_kmh[order]
        jump = self._jumps(valid)
        self.used = valid & ~jump
        if s.recv_ms is None:
            self._offline(accepted)
        else:
            self._offline_received(s.recv_ms[order], accepted)
        self._alarms(processed, alarm)
        self._location()
        self.out.incidents.sort(
            key=lambda i: (i.time_ms, i.type, i.vehicle_id, i.device_id, i.fence_id or "")
        )
        return self.out

    def _rows(self, device: int, mask: npt.NDArray[np.bool_]) -> IntArray:
        a, b = self.groups.get(device, (0, 0))
        return a + np.flatnonzero(mask[a:b])

    def _jumps(self, valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        jump = np.zeros(len(valid), dtype=np.bool_)
        for device in self.groups:
            rows = self._rows(device, valid)
            if len(rows) < 2:
                continue
            dt_h = np.diff(self.t[rows]) / 3_600_000.0
            dist_km = (
                haversine_m(
                    self.lon[rows[:-1]], self.lat[rows[:-1]], self.lon[rows[1:]], self.lat[rows[1:]]
                )
                / 1000.0
            )
            if not np.any(dist_km / dt_h > 0.8 * JUMP_KMH):
                continue
            name = self.s.device_ids[device]
            ref = int(rows[0])
            streak = 0
            for k in rows[1:]:
                k = int(k)
                d_km = _haversine_km(self.lon[ref], self.lat[ref], self.lon[k], self.lat[k])
                kmh = d_km / ((self.t[k] - self.t[ref]) / 3_600_000.0)
                if 0.8 * JUMP_KMH < kmh < 1.2 * JUMP_KMH:
                    self.doubt(
                        f"gps_jump {name} at {self.t[k]}: implied {kmh:.0f} km/h near the gate"
                    )
                if kmh > JUMP_KMH:
                    jump[k] = True
                    streak += 1
                    self.out.jumps += 1
                    self.add(
                        "gps_jump", name, self.vehicle_of.get(name, name), None, int(self.t[k])
                    )
                    if streak >= 2:
                        self.doubt(
                            f"gps_jump {name} at {self.t[k]}: consecutive jumps (re-anchoring)"
                        )
                else:
                    ref = k
                    streak = 0
        return jump

    def _offline(self, accepted: npt.NDArray[np.bool_]) -> None:
        margin = 5 * 60_000
        for device in self.groups:
            times = self.t[self._rows(device, accepted)]
            name = self.s.device_ids[device]
            ends = np.concatenate([times[1:], [self.file_max]])
            gaps = ends - times
            for k in np.flatnonzero(np.abs(gaps - OFFLINE_MS) < margin):
                self.doubt(f"offline {name} at {times[k]}: a gap of {gaps[k] / 60000:.1f} min")
            for k in np.flatnonzero(gaps > OFFLINE_MS):
                self.add(
                    "offline",
                    name,
                    self.vehicle_of.get(name, name),
                    None,
                    int(times[k] + OFFLINE_MS),
                )

    def _offline_received(self, recv: IntArray, accepted: npt.NDArray[np.bool_]) -> None:
        """`offline` on receive times: gaps between the times the device talked."""
        margin = 5 * 60_000
        for device, (a, b) in self.groups.items():
            name = self.s.device_ids[device]
            newest = np.maximum.accumulate(recv[a:b])
            before = np.concatenate([[np.iinfo(np.int64).min], newest[:-1]])
            talk = accepted[a:b] | (recv[a:b] > before)
            times = newest[talk]
            ends = np.concatenate([times[1:], [self.file_max]])
            gaps = ends - times
            for k in np.flatnonzero(np.abs(gaps - OFFLINE_MS) < margin):
                self.doubt(f"offline {name} at {times[k]}: a gap of {gaps[k] / 60000:.1f} min")
            for k in np.flatnonzero(gaps > OFFLINE_MS):
                vehicle = self.vehicle_of.get(name, name)
                self.add("offline", name, vehicle, None, int(times[k] + OFFLINE_MS))

    def _alarms(self, processed: npt.NDArray[np.bool_], alarm: npt.NDArray[np.uint32]) -> None:
        for device in self.groups:
            rows = self._rows(device, processed)
            name = self.s.device_ids[device]
            for kind, bit in (("power_cut", ALARM_POWER_BIT), ("antenna_cut", ALARM_ANTENNA_BIT)):
                on = ((alarm[rows] >> np.uint32(bit)) & np.uint32(1)).astype(np.bool_)
                if len(on) and on[0]:
                    self.doubt(f"{kind} {name}: the first report already has the bit set")
                rising = on & ~np.concatenate([[True], on[:-1]])
                for k in np.flatnonzero(rising):
                    self.add(
                        kind, name, self.vehicle_of.get(name, name), None, int(self.t[rows[k]])
                    )

    def _location(self) -> None:
        shapes = [FenceShape(f) for f in self.fences]
        inside = [sh.contains(self.lon, self.lat) & self.used for sh in shapes]
        vehicles: dict[str, list[int]] = {}
        for device in self.groups:
            name = self.s.device_ids[device]
            vehicles.setdefault(self.vehicle_of.get(name, name), []).append(device)
        for vid in sorted(vehicles):
            devices = sorted(vehicles[vid])
            rows = {d: self._rows(d, self.used) for d in devices}
            allowed = {self.fleet.allowed_area.get(vid)} - {None}
            for f in self.fences:
                if f.kind == "allowed_area" and f.vehicles is not None and vid in f.vehicles:
                    allowed.add(f.fence_id)
            if len(allowed) > 1:
                self.doubt(f"{vid}: more than one allowed area {sorted(a for a in allowed if a)}")
            for fence, ins in zip(self.fences, inside, strict=True):
                if fence.kind == "hotspot" and fence.applies_to(vid):
                    self._dwell(vid, fence, rows, ins)
                elif fence.kind == "zone" and fence.applies_to(vid):
                    self._sides(vid, fence, rows, ins, outside=False)
                elif fence.kind == "allowed_area" and fence.fence_id in allowed:
                    self._sides(vid, fence, rows, ins, outside=True)
            self._overspeed(vid, rows)
            if len(devices) > 1:
                self._separation(vid, rows)

    def _dwell(
        self, vid: str, fence: Fence, rows: dict[int, IntArray], ins: npt.NDArray[np.bool_]
    ) -> None:
        items = []
        for d, r in rows.items():
            if not ins[r].any():
                continue
            for start, end, last in _runs(self.t[r], ins[r]):
                items.append((start, end, last, self.s.device_ids[d]))
        for start, end, last, dev in _intervals_union(items):
            timer = min(end, self.file_max) - start >= DWELL_MS
            by_fix = last - start >= DWELL_MS
            if timer != by_fix or abs(min(end, self.file_max) - start - DWELL_MS) < 2 * 60_000:
                self.doubt(f"hotspot_dwell {vid} {fence.fence_id} at {start}: stay near 30 min")
            if timer:
                self.add("hotspot_dwell", dev, vid, fence.fence_id, start + DWELL_MS)

    def _sides(
        self,
        vid: str,
        fence: Fence,
        rows: dict[int, IntArray],
        ins: npt.NDArray[np.bool_],
        outside: bool,
    ) -> None:
        events: list[tuple[int, bool, str]] = []
        confirming = 0
        for d, r in rows.items():
            flag = ~ins[r] if outside else ins[r]
            if not flag.any():
                continue
            changes = _confirmed(self.t[r], flag)
            if any(v for _, v, _ in changes):
                confirming += 1
            for time_ms, value, k in changes:
                if k == 0 and value:
                    self.doubt(
                        f"{fence.fence_id} {vid}: the first fixes are already on the far side"
                    )
                events.append((time_ms, value, self.s.device_ids[d]))
        if confirming > 1:
            self.doubt(f"{fence.fence_id} {vid}: more than one unit confirms the far side")
        count = 0
        for time_ms, value, dev in sorted(events):
            before = count
            count += 1 if value else -1
            if outside:
                if before == 0 and count == 1:
                    self.add("leave_allowed_area", dev, vid, fence.fence_id, time_ms)
            elif before == 0 and count == 1 and "enter" in fence.notify:
                self.add("geofence_enter", dev, vid, fence.fence_id, time_ms)
            elif before == 1 and count == 0 and "exit" in fence.notify:
                self.add("geofence_exit", dev, vid, fence.fence_id, time_ms)

    def _overspeed(self, vid: str, rows: dict[int, IntArray]) -> None:
        items = []
        for d, r in rows.items():
            speed = self.speed[r]
            near = np.abs(speed - OVERSPEED_KMH) < 1.0
            if near.any():
                self.doubt(f"overspeed {vid}: a speed within 1 km/h of the limit")
            fast = speed > OVERSPEED_KMH
            for start, end, last in _runs(self.t[r], fast):
                items.append((start, end, last, self.s.device_ids[d]))
        for start, end, last, dev in _intervals_union(items):
            timer = min(end, self.file_max) - start >= OVERSPEED_MS
            by_fix = last - start >= OVERSPEED_MS
            if timer != by_fix or abs(min(end, self.file_max) - start - OVERSPEED_MS) < 5_000:
                self.doubt(f"overspeed {vid} at {start}: run near 60 s")
            if timer:
                self.add("overspeed", dev, vid, None, start + OVERSPEED_MS)

    def _separation(self, vid: str, rows: dict[int, IntArray]) -> None:
        devices = sorted(rows)
        items = []
        for i, a in enumerate(devices):
            for b in devices[i + 1 :]:
                obs = self._observations(rows[a], rows[b], a) + self._observations(
                    rows[b], rows[a], b
                )
                obs.sort()
                items.extend(self._apart_runs(vid, obs))
        for start, end, _last, dev in _intervals_union(items):
            if min(end, self.file_max) - start >= SEPARATION_MS:
                self.add("device_separation", dev, vid, None, start + SEPARATION_MS)

    def _observations(
        self, mine: IntArray, other: IntArray, device: int
    ) -> list[tuple[int, bool, int, bool, bool]]:
        """(time, apart, device) each time a fix meets the other unit's latest within 10 min."""
        if len(mine) == 0 or len(other) == 0:
            return []
        tm, to = self.t[mine], self.t[other]
        j = np.searchsorted(to, tm, side="right") - 1
        ok = j >= 0
        k = np.flatnonzero(ok)
        lag = tm[k] - to[j[k]]
        dist = haversine_m(
            self.lon[mine[k]], self.lat[mine[k]], self.lon[other[j[k]]], self.lat[other[j[k]]]
        )
        if np.any((np.abs(dist - SEPARATION_M) < 30.0) & (lag <= SEPARATION_PAIR_MS)):
            self.doubt(f"device_separation {self.s.device_ids[device]}: a distance near 2 km")
        unsure = np.abs(lag - SEPARATION_PAIR_MS) < 30_000
        pair = (lag <= SEPARATION_PAIR_MS) | unsure
        return [
            (
                int(tm[k[i]]),
                bool(dist[i] > SEPARATION_M),
                device,
                bool(unsure[i]),
                bool(lag[i] <= SEPARATION_PAIR_MS),
            )
            for i in np.flatnonzero(pair)
        ]

    def _apart_runs(
        self, vid: str, obs: list[tuple[int, bool, int, bool, bool]]
    ) -> list[tuple[int, int, int, str]]:
        """Apart observations until a together one; a pair whose lag is near 10 min may count."""
        runs = []
        start: int | None = None
        dev = 0
        last_seen = 0
        for time_ms, apart, device, unsure, counts in obs:
            if unsure and (start is None) == apart:
                self.doubt(f"device_separation {vid} at {time_ms}: a pair 10 min apart decides")
            if not counts:
                continue
            if apart and start is None:
                start, dev, last_seen = time_ms, device, time_ms
            elif apart and start is not None:
                if time_ms - last_seen > 5 * 60_000 and last_seen < start + SEPARATION_MS:
                    self.doubt(
                        f"device_separation {vid} at {start}: observations pause while apart"
                    )
                last_seen = time_ms
            elif not apart and start is not None:
                if abs(time_ms - start - SEPARATION_MS) < 2 * 60_000:
                    self.doubt(f"device_separation {vid} at {start}: apart for about 30 min")
                runs.append((start, time_ms, last_seen, self.s.device_ids[dev]))
                start = None
        if start is not None:
            if last_seen < start + SEPARATION_MS < self.file_max:
                self.doubt(f"device_separation {vid} at {start}: observations stop while apart")
            runs.append((start, int(INF), last_seen, self.s.device_ids[dev]))
        return runs


def _haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def evaluate(stream: Stream, fleet: FleetMap, fences: Sequence[Fence]) -> Evaluation:
    """Every incident the contract defines in `stream`, plus doubts about ambiguous spots."""
    return _Oracle(stream, fleet, fences).run()
