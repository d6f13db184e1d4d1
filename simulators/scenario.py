"""Builds a whole scenario: city, fleet, fences, episodes, device columns and the truth.

Deterministic for a config: one random generator drives every choice in a fixed order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from positions import DeviceIndex, Flag, PositionBatch
from simulators.city import build_city
from simulators.config import ScenarioConfig
from simulators.fences import Fence, FenceShape, circle
from simulators.gathering import PlantedSpot, gathering_day, plan_gathering
from simulators.layout import Layout, VehicleSpec, build_layout, build_vehicles
from simulators.plan import Segment
from simulators.routine import (
    DAY_KINDS_CONFOUNDER,
    DAY_KINDS_INCIDENT,
    DayBuilder,
    Episode,
    Tracking,
    episode_day,
    merge_stays,
    routine_day,
)
from simulators.sampling import DeviceRows, wired_rows, wireless_rows
from simulators.scenario_faults import FaultRecord, FaultRows, apply_fault, fault_of
from simulators.timefmt import DAY_MS, HOUR_MS, MINUTE_MS, local_midnight_ms
from simulators.truth import Evaluation, FleetMap, Stream, evaluate
from simulators.units import NIGHT_KINDS_CONFOUNDER, NIGHT_KINDS_INCIDENT, Cols, apply_night_episode

GPS_NOISE_M = 3.0
SEPARATION_MARGIN_M = 40.0


@dataclass(frozen=True, slots=True)
class Scenario:
    config: ScenarioConfig
    layout: Layout
    episodes: tuple[Episode, ...]
    stream: Stream
    recv_ms: npt.NDArray[np.int64]
    backfill: npt.NDArray[np.bool_]
    course: npt.NDArray[np.int16]
    evaluation: Evaluation
    # What the devices' clocks sent (the true `stream.time_ms` where the clock is sound), and
    # each faulty device's fault (config.faults).
    device_time_ms: npt.NDArray[np.int64] | None = None
    faults: tuple[FaultRecord, ...] = ()
    spots: tuple[PlantedSpot, ...] = ()  # planted gatherings (config.gathering_cars)

    @property
    def fences(self) -> tuple[Fence, ...]:
        return self.layout.fences

    def fleet_map(self) -> FleetMap:
        return fleet_map(self.layout.vehicles)

    def batch(self) -> tuple[PositionBatch, DeviceIndex]:
        """The positions as the pipeline's batch type (file order), with their device index."""
        index = DeviceIndex(self.stream.device_ids)
        s = self.stream
        flags = np.where(self.backfill, np.uint16(Flag.BACKFILL), np.uint16(0))
        invalid = ((s.status & 2) == 0) | ((s.lat == 0) & (s.lon == 0))
        flags = flags | np.where(invalid, np.uint16(Flag.INVALID_FIX), np.uint16(0))
        batch = PositionBatch.from_columns(
            {
                "device": s.device,
                "time_ms": s.time_ms,
                "recv_ms": self.recv_ms,
                "device_time_ms": s.time_ms if self.device_time_ms is None else self.device_time_ms,
                "lon": s.lon,
                "lat": s.lat,
                "speed_kmh": s.speed_kmh,
                "course": self.course,
                "altitude_m": np.full(len(s.device), 8),
                "alarm": s.alarm,
                "status": s.status,
                "flags": flags,
            }
        )
        return batch, index


def fleet_map(vehicles: tuple[VehicleSpec, ...]) -> FleetMap:
    return FleetMap(
        vehicles={v.vehicle_id: v.devices for v in vehicles},
        allowed_area={v.vehicle_id: v.allowed_area for v in vehicles},
    )


def _assign(
    kinds: list[str],
    count: int,
    slots: list[tuple[int, int]],
    fits: dict[str, list[int]],
    rng: np.random.Generator,
) -> dict[tuple[int, int], str]:
    """Spreads `count` episodes of each kind over free (vehicle, day) slots, kinds in turn."""
    chosen: dict[tuple[int, int], str] = {}
    options = {kind: [s for s in slots if s[0] in set(fits[kind])] for kind in kinds}
    for _ in range(count):
        for kind in kinds:
            free = [s for s in options[kind] if s not in chosen]
            options[kind] = free
            if not free:
                continue
            chosen[free[int(rng.integers(0, len(free)))]] = kind
    return chosen


def _episode_kinds(
    cfg: ScenarioConfig, incident: tuple[str, ...], confounder: tuple[str, ...]
) -> list[str]:
    return [*incident, *confounder] if cfg.incidents else list(confounder)


def build_scenario(cfg: ScenarioConfig) -> Scenario:
    rng = np.random.default_rng(cfg.seed)
    city = build_city(cfg, rng)
    vehicles = build_vehicles(cfg, city, rng)
    layout = build_layout(cfg, city, vehicles, rng)
    start_ms = local_midnight_ms(cfg.start)
    slots = [(v, d) for v in range(cfg.vehicles) for d in range(cfg.days)]
    single = [i for i, v in enumerate(vehicles) if v.wireless_id is None]
    double = [i for i, v in enumerate(vehicles) if v.wireless_id is not None]
    everyone = list(range(cfg.vehicles))
    city_single = [i for i in single if vehicles[i].allowed_area == "city"]
    unlisted = [
        i for i in single if any(not z.applies_to(vehicles[i].vehicle_id) for z in layout.zones)
    ]
    fits = {
        "hotspot_dwell": single,
        "market_dwell": single,
        "leave_area": city_single,
        "zone_visit": single,
        "overspeed": everyone,
        "separation": double,
        "hotspot_short_stop": single,
        "hotspot_drive_by": everyone,
        "speed_burst": everyone,
        "separation_short": double,
        "zone_visit_unlisted": unlisted,
    }
    for kind in (*NIGHT_KINDS_INCIDENT, *NIGHT_KINDS_CONFOUNDER):
        fits[kind] = everyone
    rate = max(cfg.incident_rate, cfg.confounder_rate)
    count = max(1, round(rate * len(slots)))
    day_plan = _assign(
        _episode_kinds(cfg, DAY_KINDS_INCIDENT, DAY_KINDS_CONFOUNDER), count, slots, fits, rng
    )
    night_plan = _assign(
        _episode_kinds(cfg, NIGHT_KINDS_INCIDENT, NIGHT_KINDS_CONFOUNDER), count, slots, fits, rng
    )

    spot = plan_gathering(cfg, city, vehicles, layout, set(day_plan) | set(night_plan), start_ms)
    episodes: list[Episode] = []
    all_cols: list[tuple[str, Cols]] = []
    sep_rows: list[tuple[str, int, int, float, float]] = []
    for vi, v in enumerate(vehicles):
        plan: list[Segment] = []
        trackings: list[Tracking] = []
        b = DayBuilder(city, cfg, rng, plan, v.home_xy[0], v.home_xy[1], start_ms)
        for d in range(cfg.days):
            day0 = start_ms + d * DAY_MS
            day_kind = day_plan.get((vi, d))
            if spot is not None and (vi, d) in spot.slots:
                gathering_day(b, v, day0, spot)
            elif day_kind is None:
                weekday = (cfg.start + dt.timedelta(days=d)).weekday() < 5
                routine_day(b, v, day0, weekday)
            else:
                ep = Episode(day_kind, v.vehicle_id, v.wired_id, 0, 0)
                episode_day(b, v, day_kind, day0, layout, ep, trackings)
                episodes.append(ep)
                if day_kind.startswith("separation"):
                    tr = trackings[-1]
                    sep_rows.append((v.wired_id, tr.t0_ms, tr.t1_ms, tr.x_m, tr.y_m))
        plan = merge_stays(plan)
        units = [(v.wired_id, wired_rows(plan, cfg, rng))]
        if v.wireless_id is not None:
            units.append((v.wireless_id, wireless_rows(plan, trackings, cfg, rng)))
        for device_id, rows in units:
            all_cols.append((device_id, _to_cols(rows, city.frame, rng)))
        for d in range(cfg.days):
            night_kind = night_plan.get((vi, d))
            if night_kind is None:
                continue
            device_index = 0
            wireless_ok = v.wireless_id is not None and d > 0  # it has reported by then
            if night_kind == "offline" and wireless_ok and rng.random() < 0.5:
                device_index = 1
            slot = len(all_cols) - len(units) + device_index
            device_id, cols = all_cols[slot]
            t0 = start_ms + d * DAY_MS + 30 * MINUTE_MS + int(rng.integers(0, 60)) * MINUTE_MS
            cols, t1, params = apply_night_episode(cols, night_kind, t0, rng, city.frame)
            all_cols[slot] = (device_id, cols)
            episodes.append(Episode(night_kind, v.vehicle_id, device_id, t0, t1, None, params))

    _nudge(all_cols, layout.fences, sep_rows, city.frame)
    scenario = _finish(cfg, layout, episodes, all_cols, rng)
    return dataclasses.replace(scenario, spots=() if spot is None else (spot,))


def _to_cols(rows: DeviceRows, frame: object, rng: np.random.Generator) -> Cols:
    from simulators.geo import LocalFrame

    assert isinstance(frame, LocalFrame)
    n = len(rows)
    noise = np.clip(rng.normal(0.0, GPS_NOISE_M, (2, n)), -3 * GPS_NOISE_M, 3 * GPS_NOISE_M)
    lon, lat = frame.to_lonlat(rows.x_m + noise[0], rows.y_m + noise[1])
    return Cols(
        rows.time_ms,
        lon,
        lat,
        rows.speed_kmh,
        rows.course,
        np.zeros(n, dtype=np.uint32),
        rows.status,
    )


def _valid(cols: Cols) -> npt.NDArray[np.bool_]:
    return np.asarray(((cols.status & 2) != 0) & ~((cols.lon == 0) & (cols.lat == 0)))


def _nudge(
    all_cols: list[tuple[str, Cols]],
    fences: tuple[Fence, ...],
    sep_rows: list[tuple[str, int, int, float, float]],
    frame: object,
) -> None:
    """Moves valid fixes out of every boundary's uncertain band, to twice its width."""
    from simulators.geo import LocalFrame

    assert isinstance(frame, LocalFrame)
    shapes: list[tuple[FenceShape, tuple[str, int, int] | None]] = [
        (FenceShape(f), None) for f in fences
    ]
    for device_id, t0, t1, x, y in sep_rows:
        lon, lat = frame.to_lonlat(x, y)
        ring = FenceShape(circle("separation", "separation", float(lon), float(lat), 2000.0))
        ring.margin_m = SEPARATION_MARGIN_M
        shapes.append((ring, (device_id, t0, t1)))
    for _ in range(3):
        moved = 0
        for device_id, cols in all_cols:
            valid = _valid(cols)
            for shape, only in shapes:
                mask = valid
                if only is not None:
                    if only[0] != device_id:
                        continue
                    mask = valid & (cols.time_ms >= only[1]) & (cols.time_ms < only[2])
                for k in np.flatnonzero(mask & shape.in_band(cols.lon, cols.lat)):
                    cols.lon[k], cols.lat[k] = shape.nudge(
                        float(cols.lon[k]), float(cols.lat[k]), 2 * shape.margin_m
                    )
                    moved += 1
        if moved == 0:
            break


def _finish(
    cfg: ScenarioConfig,
    layout: Layout,
    episodes: list[Episode],
    all_cols: list[tuple[str, Cols]],
    rng: np.random.Generator,
) -> Scenario:
    ids = tuple(device_id for device_id, _ in all_cols)
    windows: dict[str, list[tuple[int, int]]] = {}
    for e in episodes:
        windows.setdefault(e.vehicle_id, []).append((e.t0_ms - HOUR_MS, e.t1_ms + HOUR_MS))
    vehicle_of = {d: v.vehicle_id for v in layout.vehicles for d in v.devices}
    parts: dict[str, list[npt.NDArray[np.generic]]] = {
        k: []
        for k in (
            "device",
            "time",
            "recv",
            "lon",
            "lat",
            "speed",
            "course",
            "alarm",
            "status",
            "backfill",
            "device_time",
            "unusable",
        )
    }
    fault_rng = np.random.default_rng([cfg.seed, 808])  # apart: faults change nothing else
    records: list[FaultRecord] = []
    for i, (device_id, cols) in enumerate(all_cols):
        lon = np.round(cols.lon, 6)
        lat = np.round(cols.lat, 6)
        speed = np.round(cols.speed_kmh, 1)
        n = len(cols.time_ms)
        recv = cols.time_ms + rng.integers(300, 3000, n)
        backfill = np.zeros(n, dtype=np.bool_)
        quiet = np.ones(n, dtype=np.bool_)
        for a, b in windows.get(vehicle_of[device_id], []):
            quiet &= ~((cols.time_ms >= a) & (cols.time_ms <= b))
        # Blind areas: a stretch sent late in one 0x0704 batch when the link returns.
        for day in range(cfg.days):
            if rng.random() < 0.15:
                t0 = (
                    local_midnight_ms(cfg.start)
                    + day * DAY_MS
                    + int(rng.integers(8 * 60, 20 * 60)) * MINUTE_MS
                )
                t1 = t0 + int(rng.integers(10, 40)) * MINUTE_MS
                w = (cols.time_ms >= t0) & (cols.time_ms < t1) & quiet
                if w.any():
                    recv[w] = t1 + np.arange(int(w.sum())) * 50
                    backfill |= w
        order_cols = [
            cols.time_ms,
            lon,
            lat,
            speed,
            cols.course,
            cols.alarm,
            cols.status,
            recv,
            backfill,
        ]
        # Out-of-order: a moving report overtaken by the next one (only where nothing hinges on it).
        moving = (speed > 5) & (speed < 110) & quiet & ~backfill & _valid(cols)
        cand = np.flatnonzero(moving[1:-2] & moving[2:-1] & moving[:-3] & moving[3:]) + 1
        if len(cand):
            pick = rng.choice(cand, size=max(1, len(cand) // 400), replace=False)
            pick = (
                pick[np.concatenate([[True], np.diff(np.sort(pick)) > 3])]
                if len(pick) > 1
                else pick
            )
            recv[pick] = recv[pick + 1] + 500
        # Duplicates: a report sent again after a lost acknowledgement.
        dup_cand = np.flatnonzero(quiet & ~backfill & (cols.alarm == 0))
        dups = np.zeros(0, dtype=np.int64)
        if len(dup_cand):
            dups = np.sort(rng.choice(dup_cand, size=max(1, len(dup_cand) // 300), replace=False))
        idx = np.concatenate([np.arange(n), dups])
        extra_recv = recv[dups] + rng.integers(15_000, 40_000, len(dups))
        recv_all = np.concatenate([recv, extra_recv])
        faulted = FaultRows(
            cols.time_ms[idx], recv_all, (quiet & ~backfill)[idx], cols.time_ms[idx].copy(),
            np.zeros(len(idx), np.bool_),
        )  # fmt: skip
        if cfg.faults:
            record = apply_fault(fault_of(i, cfg.faults), device_id, i, faulted, fault_rng)
            if record is not None:
                records.append(record)
        parts["device_time"].append(faulted.device_ms)
        parts["unusable"].append(faulted.unusable)
        parts["device"].append(np.full(len(idx), i, dtype=np.int32))
        parts["time"].append(cols.time_ms[idx])
        parts["recv"].append(recv_all)
        parts["lon"].append(lon[idx])
        parts["lat"].append(lat[idx])
        parts["speed"].append(speed[idx])
        parts["course"].append(np.round(cols.course[idx]).astype(np.int16) % 360)
        parts["alarm"].append(cols.alarm[idx])
        parts["status"].append(cols.status[idx])
        parts["backfill"].append(backfill[idx])
        del order_cols
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    order = np.lexsort((cat["time"], cat["device"], cat["recv"]))
    stream = Stream(
        device_ids=ids,
        device=cat["device"][order].astype(np.int32),
        time_ms=cat["time"][order].astype(np.int64),
        lon=cat["lon"][order].astype(np.float64),
        lat=cat["lat"][order].astype(np.float64),
        speed_kmh=cat["speed"][order].astype(np.float64),
        alarm=cat["alarm"][order].astype(np.uint32),
        status=cat["status"][order].astype(np.uint32),
    )
    if cfg.faults:
        stream = dataclasses.replace(
            stream,
            recv_ms=cat["recv"][order].astype(np.int64),
            unusable=cat["unusable"][order].astype(np.bool_),
        )
    evaluation = evaluate(stream, fleet_map(layout.vehicles), layout.fences)
    return Scenario(
        config=cfg,
        layout=layout,
        episodes=tuple(episodes),
        stream=stream,
        recv_ms=cat["recv"][order].astype(np.int64),
        backfill=cat["backfill"][order].astype(np.bool_),
        course=cat["course"][order].astype(np.int16),
        evaluation=evaluation,
        device_time_ms=cat["device_time"][order].astype(np.int64) if cfg.faults else None,
        faults=tuple(records),
    )
