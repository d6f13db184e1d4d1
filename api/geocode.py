"""The `place` of API answers: the administrative unit (province, city, county) of points,
resolved in one batch against the packaged boundaries (`geofence.admin`), which load on first
use and stay for the process."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from geofence.admin import default_regions

Place = dict[str, str] | None


def places(lon: npt.ArrayLike, lat: npt.ArrayLike, valid: Any = None) -> list[Place]:
    """Each point's place; None at sea, abroad, and where `valid` (a mask) is false."""
    lon_a = np.asarray(lon, np.float64)
    lat_a = np.asarray(lat, np.float64)
    if valid is not None:
        keep = np.asarray(valid, bool)
        lon_a = np.where(keep, lon_a, np.nan)
        lat_a = np.where(keep, lat_a, np.nan)
    if lon_a.size == 0:
        return []
    return default_regions().places(lon_a, lat_a)


def place(lon: float, lat: float) -> Place:
    return places([lon], [lat])[0]
