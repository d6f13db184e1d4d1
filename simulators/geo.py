"""Ground geometry for the simulator: a local metric frame and great-circle distances.

The fleet model works in metres (x east, y north) around the scenario centre and converts to
WGS-84 lon/lat only when it writes positions; the frame is affine in lon/lat, so a straight
line in lon/lat stays straight in metres and polygon containment means the same in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from positions.geo import M_PER_DEG_LAT as M_PER_DEG_LAT
from positions.geo import haversine_m as haversine_m

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """Equirectangular metres around (lon0_deg, lat0_deg); exact enough within ~100 km."""

    lon0_deg: float
    lat0_deg: float

    @property
    def m_per_deg_lon(self) -> float:
        return M_PER_DEG_LAT * math.cos(math.radians(self.lat0_deg))

    def to_xy(
        self, lon_deg: npt.ArrayLike, lat_deg: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        lon = np.asarray(lon_deg, dtype=np.float64)
        lat = np.asarray(lat_deg, dtype=np.float64)
        return (lon - self.lon0_deg) * self.m_per_deg_lon, (lat - self.lat0_deg) * M_PER_DEG_LAT

    def to_lonlat(self, x_m: npt.ArrayLike, y_m: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        x = np.asarray(x_m, dtype=np.float64)
        y = np.asarray(y_m, dtype=np.float64)
        return self.lon0_deg + x / self.m_per_deg_lon, self.lat0_deg + y / M_PER_DEG_LAT
