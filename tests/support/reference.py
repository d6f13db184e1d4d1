"""The core rules written the straightforward way: one Python row at a time, dicts of state.

The oracle that the property tests compare the vectorized engine with: keep it obvious rather
than fast. The benchmark's baseline, benchmarks/rowwise.py, is the same rules without this
file's linear searches, since it is timed; the pieces that have no search to remove (the row
and device state, time parsing, the jump speed, device separation) are that module's, not
written twice.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from alerts.model import Alert, AlertType
from benchmarks.rowwise import DeviceState, Row, parse_time_ms, separation_starts, speed_kmh
from geofence import Fence, FenceKind, FenceSet
from pipeline.fleet import Fleet
from pipeline.thresholds import Thresholds


def read_rows(data: bytes) -> list[Row]:
    rows = []
    for record in csv.DictReader(io.StringIO(data.decode("utf-8-sig"))):
        try:
            rows.append(
                Row(
                    record["device_id"],
                    parse_time_ms(record["time"]),
                    float(record["lon"]),
                    float(record["lat"]),
                    float(record.get("speed_kmh") or 0),
                    int(record.get("alarm") or 0),
                    int(record.get("status") or 0),
                )
            )
        except (ValueError, KeyError):
            continue
    return rows


def run_reference(
    data: bytes,
    fleet: Fleet | None = None,
    limits: Thresholds | None = None,
    fences: Sequence[Fence] = (),
) -> list[Alert]:
    """All core alerts for a positions CSV, sorted like the engine's."""
    t = limits or Thresholds()
    spec = fleet or Fleet()
    vehicle_of = {d: v.vehicle_id for v in spec.vehicles for d in v.devices}
    rows = read_rows(data)
    devices: dict[str, DeviceState] = defaultdict(DeviceState)
    alerts: list[Alert] = []
    episodes: dict[tuple[str, str, str], list[list[Any]]] = defaultdict(list)
    accepted: dict[str, list[Row]] = defaultdict(list)  # by vehicle
    offline_ms = round(t.offline_after_s * 1000)
    places = _Places(fences, spec, t, episodes) if fences else None

    def alert(kind: AlertType, row_device: str, time_ms: int, **details: Any) -> None:
        vehicle = vehicle_of.get(row_device, row_device)
        alerts.append(Alert(kind, row_device, vehicle, time_ms, None, details=details))

    for row in rows:
        st = devices[row.device]
        if st.last_ms is not None and row.time_ms <= st.last_ms:
            continue  # out of order or duplicate: no rule state moves
        if st.last_ms is not None and row.time_ms - st.last_ms >= offline_ms:
            alert(AlertType.OFFLINE, row.device, st.last_ms + offline_ms)
        st.last_ms = row.time_ms
        for bit, kind in ((8, AlertType.POWER_CUT), (5, AlertType.ANTENNA_CUT)):
            value = (row.alarm >> bit) & 1
            if value == 1 and st.bits.get(bit, 0) == 0:
                alert(kind, row.device, row.time_ms)
            st.bits[bit] = value
        if not (row.status & 2) or (row.lat == 0 and row.lon == 0):
            continue
        if not _gate(st, row, t, alert):
            continue
        vehicle = vehicle_of.get(row.device, row.device)
        accepted[vehicle].append(row)
        _overspeed(st, row, t, episodes[(vehicle, AlertType.OVERSPEED.value, "")])
        if places is not None:
            places.fix(row, vehicle)
    latest = max((r.time_ms for r in rows), default=0)
    for name, st in devices.items():
        if st.last_ms is not None and latest - st.last_ms >= offline_ms:
            alert(AlertType.OFFLINE, name, st.last_ms + offline_ms)
    if places is not None:
        places.finish(latest)
    # Devices rank as the engine indexes them: fleet order, then first appearance.
    rank: dict[str, int] = {}
    for name in [*vehicle_of, *(r.device for r in rows)]:
        rank.setdefault(name, len(rank))
    for (vehicle, kind_name, fence_id), items in episodes.items():
        for device, start in _union_starts(items, rank):
            alerts.append(Alert(AlertType(kind_name), device, vehicle, start, fence_id or None))
    for vehicle, fixes in accepted.items():
        for device, start in separation_starts(fixes, t, latest, rank):
            alerts.append(Alert(AlertType.DEVICE_SEPARATION, device, vehicle, start))
    alerts.sort(key=Alert.sort_key)
    return alerts


class _Places:
    """Fence rules one fix at a time: membership of the single point, then per (device, fence)
    a confirmed side and a count of fixes seen on the other side."""

    def __init__(
        self,
        fences: Sequence[Fence],
        fleet: Fleet,
        t: Thresholds,
        episodes: dict[tuple[str, str, str], list[list[Any]]],
    ) -> None:
        self.fences = list(fences)
        self.fence_set = FenceSet(self.fences, version=1)
        self.vehicles: list[str] = []
        self.allowed: dict[str, set[str]] = defaultdict(set)
        for v in fleet.vehicles:
            if v.allowed_area:
                self.allowed[v.vehicle_id].add(v.allowed_area)
        for f in self.fences:
            if f.kind is FenceKind.ALLOWED_AREA and f.vehicles:
                for vehicle_id in f.vehicles:
                    self.allowed[vehicle_id].add(f.id)
        self.primary = {v: sorted(a, key=self._order)[0] for v, a in self.allowed.items() if a}
        for v in fleet.vehicles:
            if v.allowed_area:
                self.primary[v.vehicle_id] = v.allowed_area
        self.dwell_ms = round(t.hotspot_dwell_after_s * 1000)
        self.side: dict[tuple[str, str], bool] = {}
        self.pending: dict[tuple[str, str], tuple[int, int]] = {}
        self.stays: dict[tuple[str, str], list[int]] = {}
        self.episodes = episodes
        self.vehicle_of: dict[str, str] = {}
        self.active: dict[str, set[str]] = defaultdict(set)

    def _order(self, fence_id: str) -> int:
        return self.fence_set.index_of(fence_id)

    def fix(self, row: Row, vehicle: str) -> None:
        self.vehicle_of[row.device] = vehicle
        if vehicle not in self.vehicles:
            self.vehicles.append(vehicle)
            self.fence_set = self.fence_set.with_vehicles(self.vehicles)
        _, found = self.fence_set.contains(
            np.array([row.lon]), np.array([row.lat]), np.array([self.vehicles.index(vehicle)])
        )
        inside = {self.fences[int(i)].id for i in found}
        active = self.active[row.device]
        for fence_id in sorted(inside | active, key=self._order):
            fence = self.fences[self._order(fence_id)]
            if fence.kind is FenceKind.ALLOWED_AREA:
                continue
            key = (row.device, fence.id)
            self._observe(key, fence.id in inside, row, vehicle, fence)
            if self.side.get(key) or key in self.pending:
                active.add(fence_id)
            else:
                active.discard(fence_id)
            stay = self.stays.get(key)
            due = stay is not None and row.time_ms >= stay[0] + self.dwell_ms
            if stay and due and not stay[1] and fence.id in inside:
                self._dwell(row.device, vehicle, fence.id, stay)
        if vehicle in self.primary:
            outside = not (inside & self.allowed[vehicle])
            self._observe((row.device, "~allowed"), outside, row, vehicle, None)

    def _observe(
        self, key: tuple[str, str], side: bool, row: Row, vehicle: str, fence: Fence | None
    ) -> None:
        if side == self.side.get(key, False):
            self.pending.pop(key, None)
            return
        count, first_ms = self.pending.get(key, (0, row.time_ms))
        if count + 1 < 2:
            self.pending[key] = (count + 1, first_ms)
            return
        self.pending.pop(key, None)
        self.side[key] = side
        self._flip(row.device, vehicle, fence, side, first_ms)

    def _flip(self, device: str, vehicle: str, fence: Fence | None, inside: bool, t: int) -> None:
        if fence is None:  # the outside of the allowed areas
            self._edge(
                vehicle, AlertType.LEAVE_ALLOWED_AREA, self.primary[vehicle], device, t, inside
            )
        elif fence.kind is FenceKind.ZONE:
            now, other = (
                (AlertType.GEOFENCE_ENTER, AlertType.GEOFENCE_EXIT)
                if inside
                else (AlertType.GEOFENCE_EXIT, AlertType.GEOFENCE_ENTER)
            )
            self._edge(vehicle, other, fence.id, device, t, False)
            if now.value.removeprefix("geofence_") in fence.notify:
                self._edge(vehicle, now, fence.id, device, t, True)
        elif inside:
            self.stays[(device, fence.id)] = [t, 0]
        else:
            stay = self.stays.pop((device, fence.id))
            if not stay[1] and t > stay[0] + self.dwell_ms:
                self._dwell(device, vehicle, fence.id, stay)
            self._edge(vehicle, AlertType.HOTSPOT_DWELL, fence.id, device, t, False)

    def _dwell(self, device: str, vehicle: str, fence_id: str, stay: list[int]) -> None:
        stay[1] = 1
        self._edge(
            vehicle, AlertType.HOTSPOT_DWELL, fence_id, device, stay[0] + self.dwell_ms, True
        )

    def _edge(
        self, vehicle: str, kind: AlertType, fence_id: str, device: str, t: int, start: bool
    ) -> None:
        items = self.episodes[(vehicle, kind.value, fence_id)]
        if start:
            items.append([device, t, None])
            return
        for item in items:
            if item[0] == device and item[2] is None:
                item[2] = t

    def finish(self, latest: int) -> None:
        for (device, fence_id), stay in self.stays.items():
            if not stay[1] and latest >= stay[0] + self.dwell_ms:
                self._dwell(device, self.vehicle_of[device], fence_id, stay)


def _gate(st: DeviceState, row: Row, t: Thresholds, alert: Any) -> bool:
    """True when the fix is accepted as the device's new reference."""
    if st.ref is None or speed_kmh(st.ref, row) <= t.gps_jump_speed_kmh:
        st.ref, st.in_jump, st.run = (row.time_ms, row.lon, row.lat), False, []
        return True
    if not st.in_jump:
        alert(AlertType.GPS_JUMP, row.device, row.time_ms)
    st.in_jump = True
    if st.run and speed_kmh(st.run[-1], row) <= t.gps_jump_speed_kmh:
        st.run.append((row.time_ms, row.lon, row.lat))
    else:
        st.run = [(row.time_ms, row.lon, row.lat)]
    if len(st.run) >= t.gps_jump_reanchor_fixes:
        st.ref, st.in_jump, st.run = st.run[-1], False, []
    return False


def _overspeed(st: DeviceState, row: Row, t: Thresholds, items: list[list[Any]]) -> None:
    duration_ms = round(t.overspeed_duration_s * 1000)
    if row.speed_kmh > t.overspeed_speed_kmh:
        if st.fast_since is None:
            st.fast_since, st.fast_fired = row.time_ms, False
        if not st.fast_fired and row.time_ms - st.fast_since >= duration_ms:
            st.fast_fired = True
            items.append([row.device, st.fast_since + duration_ms, None])
    else:
        if st.fast_fired:
            for item in items:
                if item[0] == row.device and item[2] is None:
                    item[2] = row.time_ms
        st.fast_since, st.fast_fired = None, False


def _union_starts(items: list[list[Any]], rank: dict[str, int]) -> list[tuple[str, int]]:
    """Starts of the union of devices' episodes [start, end) of one vehicle."""
    out = []
    for device, start, _ in items:
        covered = any(
            (s < start or (s == start and rank[d] < rank[device])) and (e is None or e > start)
            for d, s, e in items
            if d != device
        )
        if not covered:
            out.append((device, start))
    return out
