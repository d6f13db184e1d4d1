"""`lienwatch bench geocode`: reverse geocoding of 1,000,000 points against China's 2,875
county outlines (the packaged set, geofence/data/cn_admin.npz), one batch call.

Points (seeded): 1,000,000 fixes of 10,000 cars on random walks (~200 m steps) from starts
drawn around China's 40 largest cities (normal, sigma 0.3 degrees) and 10 % anywhere in
73-135 E, 18-54 N: borders are dense where the cars are, as in a real fleet.
- `engine` (main): `AdminRegions.resolve`, the geofence engine's own grid and exact test.
- `shapely_strtree` (baseline): what a competent engineer writes with shapely 2 for the same
  job: one STRtree over the same county polygons (prepared), `tree.query(points)` for the
  bounding-box candidates of the whole batch, then `shapely.contains_xy` on the candidate
  pairs, lowest county per point; the points built before the clock starts (generous to it;
  the predicate inside the query instead measured slower, as it tests each pair twice).
  Checked outside the clock: both give the same county for every point.
- `index_build`: loading the packaged set and building the engine's index, for context.
Both sides use the same outlines, the same points and the same rounds.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import shapely

from geofence.admin import DEFAULT_PATH, AdminRegions, load_regions

SEED = 15
N_CARS = 10_000
FIXES = 100
ROUNDS = 5
CITIES = [  # (lon, lat), WGS-84
    (121.47, 31.23), (116.40, 39.90), (113.26, 23.13), (114.06, 22.54), (104.07, 30.67),
    (106.55, 29.56), (120.16, 30.27), (114.31, 30.59), (108.94, 34.34), (118.80, 32.06),
    (117.20, 39.13), (113.62, 34.75), (112.94, 28.23), (120.62, 31.30), (120.38, 36.07),
    (123.43, 41.80), (121.61, 38.91), (125.32, 43.82), (126.64, 45.76), (117.00, 36.67),
    (117.23, 31.82), (119.30, 26.08), (118.09, 24.48), (115.86, 28.68), (108.37, 22.82),
    (102.83, 24.88), (106.63, 26.65), (103.83, 36.06), (101.78, 36.62), (106.23, 38.49),
    (87.62, 43.83), (91.11, 29.65), (111.67, 40.82), (114.51, 38.04), (112.55, 37.87),
    (110.35, 20.02), (121.55, 29.87), (120.30, 31.57), (113.12, 23.02), (113.75, 23.02),
]  # fmt: skip


def _points() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(SEED)
    city = rng.integers(0, len(CITIES), N_CARS)
    centre = np.array(CITIES)[city]
    start = centre + rng.normal(0.0, 0.3, (N_CARS, 2))
    anywhere = rng.random(N_CARS) < 0.1
    start[anywhere, 0] = rng.uniform(73, 135, anywhere.sum())
    start[anywhere, 1] = rng.uniform(18, 54, anywhere.sum())
    steps = rng.normal(0.0, 0.0015, (N_CARS, FIXES, 2))
    walk = start[:, None, :] + np.cumsum(steps, axis=1)
    return walk[:, :, 0].ravel(), walk[:, :, 1].ravel()


@pytest.fixture(scope="module")
def regions() -> AdminRegions:
    """Loaded with the engine's index built, before any clock starts (as the baseline's tree)."""
    loaded = load_regions(DEFAULT_PATH)
    assert len(loaded.fences) == len(loaded)
    return loaded


@pytest.fixture(scope="module")
def points() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    return _points()


class Baseline:
    def __init__(self, regions: AdminRegions) -> None:
        self.polygons = regions.outlines
        shapely.prepare(self.polygons)
        self.tree = shapely.STRtree(self.polygons)

    def resolve(self, geoms: Any, lon: Any, lat: Any) -> npt.NDArray[np.int32]:
        point, unit = self.tree.query(geoms)
        inside = shapely.contains_xy(self.polygons[unit], lon[point], lat[point])
        point, unit = point[inside], unit[inside]
        out = np.full(len(lon), -1, np.int32)
        # Reversed so the lowest unit of a point is written last and stays.
        order = np.lexsort((-unit, point))
        out[point[order]] = unit[order]
        return out


def test_engine(benchmark: Any, regions: AdminRegions, points: Any) -> None:
    lon, lat = points
    cpu = time.process_time()
    got = benchmark.pedantic(
        regions.resolve, args=(lon, lat), rounds=ROUNDS, iterations=1, warmup_rounds=1
    )
    cpu = time.process_time() - cpu
    benchmark.extra_info.update(
        items=len(lon),
        baseline="test_shapely_strtree",
        main=True,
        cpu_s=cpu / (ROUNDS + 1),
        resolved=int((got >= 0).sum()),
    )


def test_shapely_strtree(benchmark: Any, regions: AdminRegions, points: Any) -> None:
    lon, lat = points
    baseline = Baseline(regions)
    geoms = shapely.points(lon, lat)
    cpu = time.process_time()
    got = benchmark.pedantic(
        baseline.resolve, args=(geoms, lon, lat), rounds=ROUNDS, iterations=1, warmup_rounds=1
    )
    cpu = time.process_time() - cpu
    benchmark.extra_info.update(items=len(lon), cpu_s=cpu / (ROUNDS + 1))
    engine = regions.resolve(lon, lat)
    differ = np.flatnonzero(engine != got)
    assert len(differ) == 0, f"{len(differ)} points differ, first {differ[:5].tolist()}"


def test_index_build(benchmark: Any) -> None:
    benchmark.pedantic(lambda: load_regions(DEFAULT_PATH).fences, rounds=1, iterations=1)
