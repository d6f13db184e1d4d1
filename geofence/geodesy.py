"""Distances in metres on the ground: haversine for circles, a local projection for corridors.

Circles and corridors are defined in metres, so they are measured in metres, never in degrees
(a degree of longitude shrinks with latitude).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pyproj

FloatArray = npt.NDArray[np.float64]

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), the usual haversine sphere
# Upper bound of the ground length of one degree (of latitude or longitude) on that sphere.
MAX_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0 * 1.0001
# Lower bound of one degree of latitude on that sphere (for "how many degrees cover r metres").
MIN_M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180.0 * 0.9999


def haversine_m(
    lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance in metres; broadcasts like numpy."""
    phi1 = np.radians(lat1)
    phi2 = np.radians(lat2)
    dphi = phi2 - phi1
    dlmb = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dphi * 0.5) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb * 0.5) ** 2
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0))))


def haversine_scalar_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """The same distance for one pair, in plain floats (oracles and small inputs)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi * 0.5) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb * 0.5) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))


def degrees_around(lat_deg: float, radius_m: float) -> tuple[float, float]:
    """(dlon, dlat) in degrees that surely cover `radius_m` around a point at `lat_deg`."""
    dlat = radius_m / MIN_M_PER_DEG_LAT
    top = min(abs(lat_deg) + dlat, 89.9)
    dlon = radius_m / (MIN_M_PER_DEG_LAT * math.cos(math.radians(top)))
    return min(dlon, 180.0), dlat


@lru_cache(maxsize=4096)
def local_projection(lon0_deg: float, lat0_deg: float) -> pyproj.Transformer:
    """Azimuthal equidistant projection centred on a fence: metres, nearly true near the centre.

    Its scale error across a corridor grows as (d / R)^2 / 6: 0.03 % at 250 km from the centre.
    """
    crs = pyproj.CRS.from_proj4(
        f"+proj=aeqd +lat_0={lat0_deg:.9f} +lon_0={lon0_deg:.9f} +datum=WGS84 +units=m"
    )
    return pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def project(
    transformer: pyproj.Transformer, lon: npt.ArrayLike, lat: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    x, y = transformer.transform(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def unproject(
    transformer: pyproj.Transformer, x: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    lon, lat = transformer.transform(
        np.asarray(x, np.float64), np.asarray(y, np.float64), direction="INVERSE"
    )
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
