"""The row-at-a-time baseline of `lienwatch bench replay`: the core rules of contracts section 3
written the way one would without vectorizing, to measure the engine against.

One pass over the CSV rows with each device's and vehicle's state in dicts; fence lookups
through a shapely STRtree over the fences' outlines (which cover them), then each candidate's
exact test as the engine's index does it (point in polygon, great-circle distance to a circle's
centre, distance to a corridor's line in its own projection). Every lookup is a dict or the
tree: nothing scans all fences or all devices per row. Same JSON lines as `lienwatch replay`.

Run as `python -m benchmarks.rowwise --positions P.csv --fences F.geojson [--fleet FLEET.json]
--out ALERTS.jsonl`, so that the benchmark gives both sides the same treatment: a process each.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely

from alerts.model import Alert, AlertType
from geofence import Fence, FenceKind, FenceSet, Shape, load_fences
from geofence.fenceset import _corridor
from pipeline.fleet import Fleet, parse_fleet
from pipeline.thresholds import Thresholds
from positions.geo import haversine_scalar_m
from trajectory.geo import local_scalar_m

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ALLOWED = "~allowed"  # the key of a device's "outside its allowed areas" side


@dataclass(slots=True)
class Row:
    device: str
    time_ms: int
    lon: float
    lat: float
    speed_kmh: float
    alarm: int
    status: int


@dataclass(slots=True)
class DeviceState:
    last_ms: int | None = None
    ref: tuple[int, float, float] | None = None
    in_jump: bool = False
    run: list[tuple[int, float, float]] = field(default_factory=list)
    bits: dict[int, int] = field(default_factory=dict)
    fast_since: int | None = None
    fast_fired: bool = False


class Episodes:
    """Per (vehicle, type, fence): each device's episodes [start, end); the open one of each
    device is found by key, not by a scan."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], list[list[Any]]] = defaultdict(list)
        self.open: dict[tuple[str, str, str, str], list[Any]] = {}

    def start(self, vehicle: str, kind: str, fence_id: str, device: str, t: int) -> None:
        item = [device, t, None]
        self.items[(vehicle, kind, fence_id)].append(item)
        self.open[(vehicle, kind, fence_id, device)] = item

    def end(self, vehicle: str, kind: str, fence_id: str, device: str, t: int) -> None:
        item = self.open.pop((vehicle, kind, fence_id, device), None)
        if item is not None:
            item[2] = t

    def starts(self, rank: dict[str, int]) -> Iterator[tuple[str, str, str, str, int]]:
        """(vehicle, type, fence, device, time) of each incident: the starts of the union of
        the vehicle's device episodes, by one sweep over them in (start, device rank) order."""
        for (vehicle, kind, fence_id), items in self.items.items():
            reach = -1.0  # the latest end of the episodes started so far (inf: still open)
            for device, start, end in sorted(items, key=lambda i: (i[1], rank[i[0]])):
                if reach <= start:
                    yield vehicle, kind, fence_id, device, start
                reach = max(reach, float("inf") if end is None else end)


def parse_time_ms(text: str) -> int:
    try:
        return round(float(text) * 1000)
    except ValueError:
        stamp = datetime.fromisoformat(text)
        return round((stamp - EPOCH).total_seconds() * 1000)


def read_rows(data: bytes) -> Iterator[Row]:
    """The CSV's good rows, one at a time (a bad row is skipped)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    header = [h.strip().lower() for h in next(reader, [])]
    at = {name: i for i, name in enumerate(header)}
    device, when, lon, lat = at["device_id"], at["time"], at["lon"], at["lat"]
    speed, alarm, status = at.get("speed_kmh"), at.get("alarm"), at.get("status")
    for record in reader:
        try:
            yield Row(
                record[device],
                parse_time_ms(record[when]),
                float(record[lon]),
                float(record[lat]),
                float(record[speed] or 0) if speed is not None else 0.0,
                int(record[alarm] or 0) if alarm is not None else 0,
                int(record[status] or 0) if status is not None else 0,
            )
        except (ValueError, IndexError):
            continue


class FenceIndex:
    """Which fences hold one point: the STRtree's candidates, then each one's exact test."""

    def __init__(self, fences: Sequence[Fence]) -> None:
        self.fences = list(fences)
        self.tree = FenceSet(self.fences, version=1).tree
        self.corridors = {
            i: _corridor(f.geometry, f.buffer_m)
            for i, f in enumerate(self.fences)
            if f.shape is Shape.CORRIDOR and f.buffer_m is not None
        }
        for f in self.fences:
            if f.shape is Shape.POLYGON:
                shapely.prepare(f.geometry)

    def holding(self, lon: float, lat: float, vehicle: str) -> set[str]:
        found: set[str] = set()
        for i in self.tree.query(shapely.Point(lon, lat)).tolist():
            fence = self.fences[i]
            if fence.vehicles is not None and vehicle not in fence.vehicles:
                continue
            if self._inside(i, fence, lon, lat):
                found.add(fence.id)
        return found

    def _inside(self, i: int, fence: Fence, lon: float, lat: float) -> bool:
        if fence.shape is Shape.POLYGON:
            return bool(shapely.contains_xy(fence.geometry, lon, lat))
        if fence.shape is Shape.CIRCLE:
            assert fence.radius_m is not None
            centre = fence.geometry
            return haversine_scalar_m(centre.x, centre.y, lon, lat) <= fence.radius_m
        corridor = self.corridors[i]
        x, y = corridor.transformer.transform(lon, lat)
        return bool(shapely.dwithin(corridor.line_m, shapely.Point(x, y), corridor.buffer_m))


class Places:
    """Fence rules one fix at a time: the fences holding the point, then per (device, fence) a
    confirmed side and a count of fixes seen on the other side."""

    def __init__(
        self, fences: Sequence[Fence], fleet: Fleet, t: Thresholds, episodes: Episodes
    ) -> None:
        self.index = FenceIndex(fences)
        self.order = {f.id: i for i, f in enumerate(fences)}
        self.by_id = {f.id: f for f in fences}
        self.allowed: dict[str, set[str]] = defaultdict(set)
        for v in fleet.vehicles:
            if v.allowed_area:
                self.allowed[v.vehicle_id].add(v.allowed_area)
        for f in fences:
            if f.kind is FenceKind.ALLOWED_AREA and f.vehicles:
                for vehicle_id in f.vehicles:
                    self.allowed[vehicle_id].add(f.id)
        self.primary = {v: min(a, key=self.order.__getitem__) for v, a in self.allowed.items() if a}
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

    def fix(self, row: Row, vehicle: str) -> None:
        self.vehicle_of[row.device] = vehicle
        inside = self.index.holding(row.lon, row.lat, vehicle)
        active = self.active[row.device]
        for fence_id in sorted(inside | active, key=self.order.__getitem__):
            fence = self.by_id[fence_id]
            if fence.kind is FenceKind.ALLOWED_AREA:
                continue
            key = (row.device, fence_id)
            self._observe(key, fence_id in inside, row, vehicle, fence)
            if self.side.get(key) or key in self.pending:
                active.add(fence_id)
            else:
                active.discard(fence_id)
            stay = self.stays.get(key)
            due = stay is not None and row.time_ms >= stay[0] + self.dwell_ms
            if stay and due and not stay[1] and fence_id in inside:
                self._dwell(row.device, vehicle, fence_id, stay)
        if vehicle in self.primary:
            outside = not (inside & self.allowed[vehicle])
            self._observe((row.device, ALLOWED), outside, row, vehicle, None)

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
        episodes = self.episodes
        if fence is None:  # the outside of the allowed areas
            kind = AlertType.LEAVE_ALLOWED_AREA.value
            if inside:
                episodes.start(vehicle, kind, self.primary[vehicle], device, t)
            else:
                episodes.end(vehicle, kind, self.primary[vehicle], device, t)
        elif fence.kind is FenceKind.ZONE:
            now, other = (
                (AlertType.GEOFENCE_ENTER, AlertType.GEOFENCE_EXIT)
                if inside
                else (AlertType.GEOFENCE_EXIT, AlertType.GEOFENCE_ENTER)
            )
            episodes.end(vehicle, other.value, fence.id, device, t)
            if now.value.removeprefix("geofence_") in fence.notify:
                episodes.start(vehicle, now.value, fence.id, device, t)
        elif inside:
            self.stays[(device, fence.id)] = [t, 0]
        else:
            stay = self.stays.pop((device, fence.id))
            if not stay[1] and t > stay[0] + self.dwell_ms:
                self._dwell(device, vehicle, fence.id, stay)
            episodes.end(vehicle, AlertType.HOTSPOT_DWELL.value, fence.id, device, t)

    def _dwell(self, device: str, vehicle: str, fence_id: str, stay: list[int]) -> None:
        stay[1] = 1
        kind = AlertType.HOTSPOT_DWELL.value
        self.episodes.start(vehicle, kind, fence_id, device, stay[0] + self.dwell_ms)

    def finish(self, latest: int) -> None:
        for (device, fence_id), stay in self.stays.items():
            if not stay[1] and latest >= stay[0] + self.dwell_ms:
                self._dwell(device, self.vehicle_of[device], fence_id, stay)


def run_rowwise(
    data: bytes,
    fleet: Fleet | None = None,
    limits: Thresholds | None = None,
    fences: Sequence[Fence] = (),
) -> list[Alert]:
    """All core alerts for a positions CSV, sorted like the engine's."""
    t = limits or Thresholds()
    spec = fleet or Fleet()
    vehicle_of = {d: v.vehicle_id for v in spec.vehicles for d in v.devices}
    devices: dict[str, DeviceState] = defaultdict(DeviceState)
    alerts: list[Alert] = []
    episodes = Episodes()
    accepted: dict[str, list[Row]] = defaultdict(list)  # by vehicle
    offline_ms = round(t.offline_after_s * 1000)
    places = Places(fences, spec, t, episodes) if fences else None
    # Devices rank as the engine indexes them: fleet order, then first appearance.
    rank: dict[str, int] = {}
    for name in vehicle_of:
        rank.setdefault(name, len(rank))
    latest = 0

    def alert(kind: AlertType, row_device: str, time_ms: int, **details: Any) -> None:
        vehicle = vehicle_of.get(row_device, row_device)
        alerts.append(Alert(kind, row_device, vehicle, time_ms, None, details=details))

    for row in read_rows(data):
        latest = max(latest, row.time_ms)
        rank.setdefault(row.device, len(rank))
        st = devices[row.device]
        if st.last_ms is not None and row.time_ms <= st.last_ms:
            continue  # out of order or duplicate: no rule state moves
        if st.last_ms is not None and row.time_ms - st.last_ms >= offline_ms:
            alert(AlertType.OFFLINE, row.device, st.last_ms + offline_ms)
        st.last_ms = row.time_ms
        for bit, kind in ((8, AlertType.POWER_CUT), (5, AlertType.ANTENNA_CUT)):
            value = (row.alarm >> bit) & 1
            if value == 1 and st.bits.get(bit, 0) == 0:
                alert(kind, row.device, row.time_ms, alarm=row.alarm)
            st.bits[bit] = value
        if not (row.status & 2) or (row.lat == 0 and row.lon == 0):
            continue
        accepted_fix, jump = _gate(st, row, t)
        if jump is not None:
            alert(AlertType.GPS_JUMP, row.device, row.time_ms, implied_speed_kmh=round(jump, 1))
        if not accepted_fix:
            continue
        vehicle = vehicle_of.get(row.device, row.device)
        accepted[vehicle].append(row)
        _overspeed(st, row, t, vehicle, episodes)
        if places is not None:
            places.fix(row, vehicle)
    for name, st in devices.items():
        if st.last_ms is not None and latest - st.last_ms >= offline_ms:
            alert(AlertType.OFFLINE, name, st.last_ms + offline_ms)
    if places is not None:
        places.finish(latest)
    for vehicle, kind_name, fence_id, device, start in episodes.starts(rank):
        alerts.append(Alert(AlertType(kind_name), device, vehicle, start, fence_id or None))
    for vehicle, fixes in accepted.items():
        for device, start in separation_starts(fixes, t, latest, rank):
            alerts.append(Alert(AlertType.DEVICE_SEPARATION, device, vehicle, start))
    alerts.sort(key=Alert.sort_key)
    return alerts


def speed_kmh(a: tuple[int, float, float], row: Row) -> float:
    dt_s = max((row.time_ms - a[0]) / 1000.0, 1e-3)
    return haversine_scalar_m(a[1], a[2], row.lon, row.lat) / dt_s * 3.6


def _gate(st: DeviceState, row: Row, t: Thresholds) -> tuple[bool, float | None]:
    """(accepted as the device's new reference, implied speed when the fix starts a jump)."""
    if st.ref is None:
        st.ref, st.in_jump, st.run = (row.time_ms, row.lon, row.lat), False, []
        return True, None
    speed = speed_kmh(st.ref, row)
    if speed <= t.gps_jump_speed_kmh:
        st.ref, st.in_jump, st.run = (row.time_ms, row.lon, row.lat), False, []
        return True, None
    jump = None if st.in_jump else speed
    st.in_jump = True
    if st.run and speed_kmh(st.run[-1], row) <= t.gps_jump_speed_kmh:
        st.run.append((row.time_ms, row.lon, row.lat))
    else:
        st.run = [(row.time_ms, row.lon, row.lat)]
    if len(st.run) >= t.gps_jump_reanchor_fixes:
        st.ref, st.in_jump, st.run = st.run[-1], False, []
    return False, jump


def _overspeed(st: DeviceState, row: Row, t: Thresholds, vehicle: str, ep: Episodes) -> None:
    duration_ms = round(t.overspeed_duration_s * 1000)
    kind = AlertType.OVERSPEED.value
    if row.speed_kmh > t.overspeed_speed_kmh:
        if st.fast_since is None:
            st.fast_since, st.fast_fired = row.time_ms, False
        if not st.fast_fired and row.time_ms - st.fast_since >= duration_ms:
            st.fast_fired = True
            ep.start(vehicle, kind, "", row.device, st.fast_since + duration_ms)
    else:
        if st.fast_fired:
            ep.end(vehicle, kind, "", row.device, row.time_ms)
        st.fast_since, st.fast_fired = None, False


def separation_starts(
    fixes: list[Row], t: Thresholds, latest: int, rank: dict[str, int]
) -> list[tuple[str, int]]:
    """One vehicle's device-separation starts, from its accepted fixes in time order; each fix
    is compared with the latest fix of each other device of the vehicle."""
    devices = sorted({r.device for r in fixes}, key=rank.__getitem__)
    if len(devices) < 2:
        return []
    window_ms = t.device_separation_window_s * 1000
    duration_ms = t.device_separation_duration_s * 1000
    last: dict[str, Row] = {}
    run_start: int | None = None
    run_device = ""
    fired = False
    out = []
    for row in sorted(fixes, key=lambda r: (r.time_ms, rank[r.device])):
        apart = together = False
        for other in devices:
            o = last.get(other)
            if other == row.device or o is None or row.time_ms - o.time_ms > window_ms:
                continue
            dist = local_scalar_m(row.lon, row.lat, o.lon, o.lat)
            allowance = max(row.speed_kmh, o.speed_kmh) / 3.6 * (row.time_ms - o.time_ms) / 1000
            if dist - allowance > t.device_separation_distance_m:
                apart = True
            elif dist <= t.device_separation_distance_m:
                together = True
        last[row.device] = row
        if apart and run_start is None:
            run_start, run_device, fired = row.time_ms, row.device, False
        elif together and not apart:
            run_start, fired = None, False
        if run_start is not None and not fired and row.time_ms - run_start >= duration_ms:
            fired = True
            out.append((run_device, int(run_start + duration_ms)))
    if run_start is not None and not fired and latest - run_start >= duration_ms:
        out.append((run_device, int(run_start + duration_ms)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rowwise", description=__doc__)
    parser.add_argument("--positions", type=Path, required=True)
    parser.add_argument("--fences", type=Path, required=True)
    parser.add_argument("--fleet", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    fleet = parse_fleet(args.fleet.read_bytes(), str(args.fleet)) if args.fleet else Fleet()
    fences = load_fences(args.fences)
    data = args.positions.read_bytes()
    alerts = run_rowwise(data, fleet, fences=fences)
    with args.out.open("w", encoding="utf-8") as fh:
        for a in alerts:
            fh.write(json.dumps(a.to_json(), ensure_ascii=False) + "\n")
    positions = max(data.count(b"\n") - 1 + (0 if data.endswith(b"\n") else 1), 0)
    seconds = round(time.perf_counter() - started, 3)
    print(json.dumps({"positions": positions, "alerts": len(alerts), "seconds": seconds}),
          file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
