"""Distances on numpy columns (longitude before latitude): great-circle, and a fast local one."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from positions.geo import EARTH_RADIUS_M, haversine_m, haversine_scalar_m

__all__ = [
    "EARTH_RADIUS_M",
    "haversine_m",
    "haversine_scalar_m",
    "local_m",
    "local_scalar_m",
    "local_within_m",
]

FloatArray = npt.NDArray[np.float64]


def local_m(
    lon1_deg: npt.ArrayLike,
    lat1_deg: npt.ArrayLike,
    lon2_deg: npt.ArrayLike,
    lat2_deg: npt.ArrayLike,
) -> FloatArray:
    """Equirectangular distance: within 0.1% of haversine under ~100 km and about twice as
    fast; for thresholds of metres to a few km (stops, separation)."""
    lon1 = np.asarray(lon1_deg, dtype=np.float64)
    lat1 = np.asarray(lat1_deg, dtype=np.float64)
    lat2 = np.asarray(lat2_deg, dtype=np.float64)
    k = np.pi / 180.0 * EARTH_RADIUS_M
    dx = np.asarray(np.asarray(lon2_deg, dtype=np.float64) - lon1)
    if dx.ndim == 0 or lat1.shape != dx.shape or lat2.shape != dx.shape:
        dx = dx * np.cos((lat1 + lat2) * (np.pi / 360.0))
        return np.asarray(np.hypot(dx, lat2 - lat1) * k)
    # The same operations in the same order, into two scratch arrays (whole batches).
    t = np.add(lat1, lat2)
    t *= np.pi / 360.0
    np.cos(t, out=t)
    dx *= t
    np.subtract(lat2, lat1, out=t)
    np.hypot(dx, t, out=dx)
    dx *= k
    return dx


def local_within_m(
    lon1_deg: npt.NDArray[np.float64],
    lat1_deg: npt.NDArray[np.float64],
    lon2_deg: npt.NDArray[np.float64],
    lat2_deg: npt.NDArray[np.float64],
    radius_m: float | npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """`local_m(...) <= radius_m` (one radius, or one per pair), element-wise, with `local_m`
    evaluated only where bounds cannot decide: |dlat| k <= local <= (|dlon| + |dlat|) k (the
    cosine is at most 1, a hypotenuse at most the sum of its sides), with margins far above
    the rounding error. A parked car's noise is decided by the upper bound, a moving car's step
    by the lower."""
    k = np.pi / 180.0 * EARTH_RADIUS_M
    dy = np.abs(lat2_deg - lat1_deg)
    dy *= k
    upper = np.abs(lon2_deg - lon1_deg)
    upper *= k
    upper += dy
    inside = upper * (1.0 + 1e-9) + 1e-9 <= radius_m
    outside = dy * (1.0 - 1e-9) - 1e-9 > radius_m
    within = inside.copy()
    open_ = np.flatnonzero(~(inside | outside))
    limit = radius_m[open_] if isinstance(radius_m, np.ndarray) else radius_m
    within[open_] = (
        local_m(lon1_deg[open_], lat1_deg[open_], lon2_deg[open_], lat2_deg[open_]) <= limit
    )
    return within


def local_scalar_m(lon1_deg: float, lat1_deg: float, lon2_deg: float, lat2_deg: float) -> float:
    """`local_m` for one pair (sequential loops)."""
    import math

    k = math.pi / 180.0 * EARTH_RADIUS_M
    dx = (lon2_deg - lon1_deg) * math.cos((lat1_deg + lat2_deg) * (math.pi / 360.0))
    return math.hypot(dx, lat2_deg - lat1_deg) * k
