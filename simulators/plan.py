"""A vehicle's day as contiguous segments: stays at a place and trips along a road polyline.

Every device of the vehicle samples the same plan at its own report times, so the units of one
car agree by construction; positions at any times come out as numpy columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.geo import FloatArray

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Stay:
    """Parked at (x_m, y_m) over [t0_ms, t1_ms); `safe` means no fence is anywhere near."""

    t0_ms: int
    t1_ms: int
    x_m: float
    y_m: float
    safe: bool
    label: str


@dataclass(frozen=True, slots=True)
class Trip:
    """Driving a polyline; speed is piecewise constant over distance (`piece_end_m`)."""

    t0_ms: int
    t1_ms: int
    route_x_m: FloatArray
    route_y_m: FloatArray
    route_cum_m: FloatArray
    knot_t_ms: FloatArray  # time at each piece boundary, len = pieces + 1
    knot_d_m: FloatArray  # distance at each piece boundary
    piece_speed_kmh: FloatArray
    report_interval_s: int  # the wired unit's interval while moving on this trip
    label: str

    @property
    def length_m(self) -> float:
        return float(self.route_cum_m[-1])


Segment = Stay | Trip


def make_trip(
    t0_ms: int,
    route_x_m: FloatArray,
    route_y_m: FloatArray,
    pieces: list[tuple[float, float]],
    report_interval_s: int,
    label: str,
) -> Trip:
    """A trip starting at t0_ms; `pieces` are (length_m, speed_kmh), scaled to the route length."""
    seg = np.hypot(np.diff(route_x_m), np.diff(route_y_m))
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    lengths = np.array([p[0] for p in pieces], dtype=np.float64)
    speeds = np.array([p[1] for p in pieces], dtype=np.float64)
    lengths *= cum[-1] / lengths.sum()
    knot_d = np.concatenate([[0.0], np.cumsum(lengths)])
    durations_ms = lengths / (speeds / 3.6) * 1000.0
    knot_t = t0_ms + np.concatenate([[0.0], np.cumsum(durations_ms)])
    t1_ms = int(np.ceil(knot_t[-1] / 1000.0) * 1000)
    return Trip(
        t0_ms=t0_ms,
        t1_ms=t1_ms,
        route_x_m=route_x_m,
        route_y_m=route_y_m,
        route_cum_m=cum,
        knot_t_ms=knot_t,
        knot_d_m=knot_d,
        piece_speed_kmh=speeds,
        report_interval_s=report_interval_s,
        label=label,
    )


@dataclass(frozen=True, slots=True)
class Sampled:
    """Ground truth of a vehicle at some times (before noise): metres, km/h, degrees."""

    x_m: FloatArray
    y_m: FloatArray
    speed_kmh: FloatArray
    course_deg: FloatArray
    moving: npt.NDArray[np.bool_]


def sample_trip(trip: Trip, times_ms: IntArray) -> Sampled:
    t = np.clip(times_ms.astype(np.float64), trip.knot_t_ms[0], trip.knot_t_ms[-1])
    d = np.interp(t, trip.knot_t_ms, trip.knot_d_m)
    x = np.interp(d, trip.route_cum_m, trip.route_x_m)
    y = np.interp(d, trip.route_cum_m, trip.route_y_m)
    piece = np.clip(
        np.searchsorted(trip.knot_t_ms, t, side="right") - 1, 0, len(trip.piece_speed_kmh) - 1
    )
    seg = np.clip(
        np.searchsorted(trip.route_cum_m, d, side="right") - 1, 0, len(trip.route_x_m) - 2
    )
    dx = trip.route_x_m[seg + 1] - trip.route_x_m[seg]
    dy = trip.route_y_m[seg + 1] - trip.route_y_m[seg]
    course = np.degrees(np.arctan2(dx, dy)) % 360.0
    return Sampled(x, y, trip.piece_speed_kmh[piece], course, np.ones(len(t), dtype=np.bool_))


def sample_plan(plan: list[Segment], times_ms: IntArray) -> Sampled:
    """Where the vehicle is at each time (times sorted, within the plan)."""
    n = len(times_ms)
    x = np.zeros(n)
    y = np.zeros(n)
    speed = np.zeros(n)
    course = np.zeros(n)
    moving = np.zeros(n, dtype=np.bool_)
    starts = np.array([s.t0_ms for s in plan], dtype=np.int64)
    which = np.clip(np.searchsorted(starts, times_ms, side="right") - 1, 0, len(plan) - 1)
    for k in np.unique(which):
        rows = np.nonzero(which == k)[0]
        seg = plan[int(k)]
        if isinstance(seg, Stay):
            x[rows] = seg.x_m
            y[rows] = seg.y_m
        else:
            part = sample_trip(seg, times_ms[rows])
            x[rows], y[rows], speed[rows], course[rows] = (
                part.x_m,
                part.y_m,
                part.speed_kmh,
                part.course_deg,
            )
            moving[rows] = True
    return Sampled(x, y, speed, course, moving)
