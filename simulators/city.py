"""A road-like city in metres: a jittered street grid, homes, work places and shops.

Routes follow the grid (an L through the nearest streets), which is enough to make tracks that
turn, cross fences and take realistic times, without a real road graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.config import ScenarioConfig
from simulators.geo import FloatArray, LocalFrame


@dataclass(frozen=True, slots=True)
class City:
    frame: LocalFrame
    half_w_m: float
    half_h_m: float
    street_x_m: FloatArray  # x of north-south streets
    street_y_m: FloatArray  # y of east-west streets
    shops_xy: FloatArray  # (n, 2) errand places

    def inside_routine(self, x: float, y: float, inset_m: float = 0.0) -> bool:
        return abs(x) <= self.half_w_m - inset_m and abs(y) <= self.half_h_m - inset_m

    def route(self, ax: float, ay: float, bx: float, by: float) -> tuple[FloatArray, FloatArray]:
        """Polyline from a to b: to the nearest east-west street, along it, then north-south."""
        sy = float(self.street_y_m[np.argmin(np.abs(self.street_y_m - ay))])
        sx = float(self.street_x_m[np.argmin(np.abs(self.street_x_m - bx))])
        pts = [(ax, ay), (ax, sy), (sx, sy), (sx, by), (bx, by)]
        keep = [pts[0]]
        for p in pts[1:]:
            if np.hypot(p[0] - keep[-1][0], p[1] - keep[-1][1]) > 1.0:
                keep.append(p)
        if len(keep) == 1:
            keep.append((bx + 1.0, by))
        arr = np.array(keep)
        return arr[:, 0].copy(), arr[:, 1].copy()


def build_city(cfg: ScenarioConfig, rng: np.random.Generator) -> City:
    half_w = cfg.width_km * 500.0
    half_h = cfg.height_km * 500.0
    spacing = 1200.0

    def streets(half: float) -> FloatArray:
        base = np.arange(-half + spacing / 2, half, spacing)
        return np.sort(base + rng.uniform(-150.0, 150.0, len(base)))

    sx = streets(half_w)
    sy = streets(half_h)
    n_shops = max(60, cfg.vehicles // 2)
    shops = np.column_stack(
        [
            rng.uniform(-half_w + 800, half_w - 800, n_shops),
            rng.uniform(-half_h + 800, half_h - 800, n_shops),
        ]
    )
    return City(LocalFrame(cfg.centre_lon_deg, cfg.centre_lat_deg), half_w, half_h, sx, sy, shops)
