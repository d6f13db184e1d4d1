"""The `place` of API answers: the administrative unit (province, city, county) of points,
resolved in one batch against the packaged boundaries (`geofence.admin`).

The boundaries load once per process, on the first answer that names a place (about 0.6 s
and 52 MB: a process that never answers one, such as a gateway beside its API, never pays
for them), and the engine's grid over them is built on the first batch of `SMALL_BATCH`
points or more (about 1.5 s); a lock keeps two store threads from building either twice."""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence.admin import SMALL_BATCH, AdminRegions, default_regions

Place = dict[str, str] | None
_building = threading.Lock()


def regions(points: int = 0) -> AdminRegions:
    """The packaged boundaries, with the grid built when `points` need it."""
    with _building:
        fresh = default_regions.cache_info().currsize == 0
        loaded = default_regions()
        if points >= SMALL_BATCH and "fences" not in loaded.__dict__:
            _ = loaded.fences
            fresh = True
        if fresh:
            _give_back_freed_memory()
    return loaded


def _give_back_freed_memory() -> None:
    """Returns to the system what building the outlines and the grid freed: their GEOS copies
    and numpy temporaries leave about 140 MB in glibc's heap that RSS keeps counting (190 MB
    after the load, 52 MB once trimmed)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to give back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


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
    return regions(lon_a.size).places(lon_a, lat_a)


def place(lon: float, lat: float) -> Place:
    return places([lon], [lat])[0]
