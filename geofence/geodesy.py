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

from positions.geo import EARTH_RADIUS_M as EARTH_RADIUS_M
from positions.geo import haversine_m as haversine_m
from positions.geo import haversine_scalar_m as haversine_scalar_m

FloatArray = npt.NDArray[np.float64]

# Upper bound of the ground length of one degree (of latitude or longitude) on that sphere.
MAX_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0 * 1.0001
# Lower bound of one degree of latitude on that sphere (for "how many degrees cover r metres").
MIN_M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180.0 * 0.9999


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
    Written as the PROJ pipeline that `Transformer.from_crs("EPSG:4326", "+proj=aeqd ...
    +datum=WGS84", always_xy=True)` resolves to (the same coordinates to the bit), so no CRS
    is looked up in PROJ's database (a SQLite query, 15 ms, on every fence set build).
    """
    return pyproj.Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad"
        f" +step +proj=aeqd +lat_0={lat0_deg:.9f} +lon_0={lon0_deg:.9f} +x_0=0 +y_0=0"
        " +ellps=WGS84"
    )


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
