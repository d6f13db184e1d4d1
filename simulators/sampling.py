"""Report times and raw columns of each unit: the wired one on the car's power, the wireless one
on a battery.

Wired: every 10-30 s while moving (ACC on), every `parked_interval_s` parked, one report at each
start and stop. Wireless: about every `wireless_interval_s`, but only at a quiet moment (parked
for 12 min before and after at a place far from any fence: a battery unit that wakes, waits for
the car to settle and reports), or every `tracking_interval_s` while told to track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.config import ScenarioConfig
from simulators.plan import Segment, Stay, sample_plan, sample_trip
from simulators.routine import Tracking
from simulators.timefmt import MINUTE_MS

STATUS_ACC = 1
STATUS_POSITIONED = 2
QUIET_MS = 12 * MINUTE_MS


@dataclass(slots=True)
class DeviceRows:
    """Mutable columns of one unit, in fix-time order; `x_m`/`y_m` until converted."""

    time_ms: npt.NDArray[np.int64]
    x_m: npt.NDArray[np.float64]
    y_m: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float64]
    course: npt.NDArray[np.float64]
    moving: npt.NDArray[np.bool_]
    status: npt.NDArray[np.uint32]

    def __len__(self) -> int:
        return len(self.time_ms)


def wired_rows(plan: list[Segment], cfg: ScenarioConfig, rng: np.random.Generator) -> DeviceRows:
    parts_t, parts_x, parts_y, parts_v, parts_c, parts_m = [], [], [], [], [], []
    parked_ms = cfg.parked_interval_s * 1000
    for seg in plan:
        if isinstance(seg, Stay):
            t = np.arange(seg.t0_ms, seg.t1_ms, parked_ms, dtype=np.int64)
            n = len(t)
            parts_t.append(t)
            parts_x.append(np.full(n, seg.x_m))
            parts_y.append(np.full(n, seg.y_m))
            parts_v.append(np.zeros(n))
            parts_c.append(np.zeros(n))
            parts_m.append(np.zeros(n, dtype=np.bool_))
        else:
            t = np.arange(seg.t0_ms, seg.t1_ms, seg.report_interval_s * 1000, dtype=np.int64)
            s = sample_trip(seg, t)
            noise = rng.normal(0.0, 1.0, len(t))
            parts_t.append(t)
            parts_x.append(s.x_m)
            parts_y.append(s.y_m)
            parts_v.append(np.maximum(s.speed_kmh + np.clip(noise, -2.5, 2.5), 0.0))
            parts_c.append(s.course_deg)
            parts_m.append(s.moving)
    moving = np.concatenate(parts_m)
    status = np.where(moving, STATUS_ACC | STATUS_POSITIONED, STATUS_POSITIONED).astype(np.uint32)
    return DeviceRows(
        np.concatenate(parts_t),
        np.concatenate(parts_x),
        np.concatenate(parts_y),
        np.concatenate(parts_v),
        np.concatenate(parts_c),
        moving,
        status,
    )


def wireless_times(
    plan: list[Segment], cfg: ScenarioConfig, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Report times at quiet moments, about every wireless_interval_s."""
    windows = [
        (s.t0_ms + QUIET_MS, s.t1_ms - QUIET_MS)
        for s in plan
        if isinstance(s, Stay) and s.safe and s.t1_ms - s.t0_ms >= 2 * QUIET_MS + MINUTE_MS
    ]
    interval_ms = cfg.wireless_interval_s * 1000
    out: list[int] = []
    target = plan[0].t0_ms + int(rng.integers(0, interval_ms // 1000)) * 1000
    k = 0
    while k < len(windows):
        lo, hi = windows[k]
        if target > hi:
            k += 1
            continue
        t = max(target, lo)
        out.append(t)
        target = t + interval_ms + int(rng.integers(-300, 301)) * 1000
    return np.array(out, dtype=np.int64)


def wireless_rows(
    plan: list[Segment], trackings: list[Tracking], cfg: ScenarioConfig, rng: np.random.Generator
) -> DeviceRows:
    times = wireless_times(plan, cfg, rng)
    keep = np.ones(len(times), dtype=np.bool_)
    for tr in trackings:
        keep &= ~((times >= tr.t0_ms - QUIET_MS) & (times < tr.t1_ms + QUIET_MS))
    times = times[keep]
    s = sample_plan(plan, times)
    xs, ys, ts = [s.x_m], [s.y_m], [times]
    for tr in trackings:
        t = np.arange(tr.t0_ms, tr.t1_ms, cfg.tracking_interval_s * 1000, dtype=np.int64)
        ts.append(t)
        xs.append(np.full(len(t), tr.x_m))
        ys.append(np.full(len(t), tr.y_m))
    t_all = np.concatenate(ts)
    order = np.argsort(t_all, kind="stable")
    n = len(t_all)
    return DeviceRows(
        t_all[order],
        np.concatenate(xs)[order],
        np.concatenate(ys)[order],
        np.zeros(n),
        np.zeros(n),
        np.zeros(n, dtype=np.bool_),
        np.full(n, STATUS_POSITIONED, dtype=np.uint32),
    )
