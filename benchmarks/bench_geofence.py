"""`lienwatch bench geofence`: batch membership + transitions against PostGIS and shapely loops.

Data (seeded): 10,000 star-shaped polygons of 20 vertices (2-10 km across) and 10,000 circles
(50 m to 1 km) over 110-120 E, 25-35 N; 1,000,000 fixes from 10,000 devices driving random
walks (100 fixes each, 30 s apart, ~200 m steps, 2 % invalid). A tenth of the polygons apply
to a few vehicles only. Every comparison uses the same fences and points in the same run:
- engine: FenceSet.contains + TransitionTracker.update over all 1M fixes, one batch;
- PostGIS: ST_Intersects (polygons) and ST_DWithin on geography (circles, behind an indexed
  bounding box) with GiST indexes, 100,000 fixes per round passed as arrays (unnest), rows
  fetched;
- shapely loop: per fix, an STRtree query then `contains` on each candidate (haversine for
  circles): how a one-at-a-time checker with a spatial index works;
- naive loop: per fix, `contains` on every fence (what slows down as fences grow).
PostGIS comes from `scripts/services --postgis`; LIENWATCH_BENCH_PG_URL points elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
import pytest
import shapely

from geofence import Fence, FenceKind, FenceSet, TransitionTracker
from geofence.geodesy import haversine_scalar_m

SEED = 808
N_POLYGONS = 10_000
N_CIRCLES = 10_000
N_DEVICES = 10_000
FIXES_PER_DEVICE = 100
POSTGIS_POINTS = 100_000
LOOP_POINTS = 20_000
NAIVE_POINTS = 20
LON0, LAT0, SPAN_DEG = 110.0, 25.0, 10.0
PG_ADMIN_URL = os.environ.get(
    "LIENWATCH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True)
class Data:
    fences: list[Fence]
    fence_set: FenceSet
    device: npt.NDArray[np.int32]
    time_ms: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    valid: npt.NDArray[np.bool_]


def _make_data() -> Data:
    rng = np.random.default_rng(SEED)
    cx = rng.uniform(LON0, LON0 + SPAN_DEG, N_POLYGONS)
    cy = rng.uniform(LAT0, LAT0 + SPAN_DEG, N_POLYGONS)
    angle = np.sort(rng.uniform(0.0, 2.0 * np.pi, (N_POLYGONS, 20)), axis=1)
    radius = rng.uniform(0.01, 0.05, (N_POLYGONS, 1)) * rng.uniform(0.6, 1.0, (N_POLYGONS, 20))
    rings = np.stack(
        [cx[:, None] + radius * np.cos(angle), cy[:, None] + radius * np.sin(angle)], 2
    )
    polygons = shapely.polygons(rings)
    vehicles = [f"V{i}" for i in range(N_DEVICES)]
    fences = [
        Fence(
            id=f"poly-{i}",
            kind=FenceKind.ALLOWED_AREA if i % 10 == 0 else FenceKind.ZONE,
            geometry=polygons[i],
            vehicles=frozenset(vehicles[j] for j in rng.integers(0, N_DEVICES, 5))
            if i % 10 == 0
            else None,
        )
        for i in range(N_POLYGONS)
    ]
    ccx = rng.uniform(LON0, LON0 + SPAN_DEG, N_CIRCLES)
    ccy = rng.uniform(LAT0, LAT0 + SPAN_DEG, N_CIRCLES)
    radius_m = rng.uniform(50.0, 1000.0, N_CIRCLES)
    fences += [
        Fence(
            id=f"spot-{i}",
            kind=FenceKind.HOTSPOT,
            geometry=shapely.Point(ccx[i], ccy[i]),
            radius_m=float(radius_m[i]),
        )
        for i in range(N_CIRCLES)
    ]
    fence_set = FenceSet(fences, version=1, vehicles=vehicles)
    # Random walks, ~200 m steps; rows sorted by (device, time) as batches are.
    start_lon = rng.uniform(LON0, LON0 + SPAN_DEG, N_DEVICES)
    start_lat = rng.uniform(LAT0, LAT0 + SPAN_DEG, N_DEVICES)
    steps = rng.normal(0.0, 0.0015, (N_DEVICES, FIXES_PER_DEVICE, 2))
    steps[:, 0, :] = 0.0
    walk = np.cumsum(steps, axis=1)
    lon = (start_lon[:, None] + walk[:, :, 0]).ravel()
    lat = (start_lat[:, None] + walk[:, :, 1]).ravel()
    device = np.repeat(np.arange(N_DEVICES, dtype=np.int32), FIXES_PER_DEVICE)
    time_ms = 1_700_000_000_000 + np.tile(
        np.arange(FIXES_PER_DEVICE, dtype=np.int64) * 30_000, N_DEVICES
    )
    valid = rng.random(len(lon)) >= 0.02
    return Data(fences, fence_set, device, time_ms, lon, lat, valid)


@pytest.fixture(scope="module")
def data() -> Data:
    return _make_data()


def _engine(data: Data) -> int:
    fence_set = data.fence_set
    row, fence = fence_set.contains(data.lon, data.lat, data.device)  # vehicle i = device i
    tracker = TransitionTracker()
    events = tracker.update(fence_set, row, fence, data.device, data.time_ms, data.valid)
    return len(events)


def _engine_bench(benchmark: Any, data: Data, baseline: str) -> None:
    events = benchmark(_engine, data)
    row, _ = data.fence_set.contains(data.lon, data.lat, data.device)
    found = data.fence_set.grid.candidates(data.lon, data.lat)
    benchmark.extra_info.update(
        items=len(data.lon),
        baseline=baseline,
        memberships=len(row),
        transitions=events,
        fences=len(data.fence_set),
        cell_deg=data.fence_set.grid.cell_deg,
        grid_pairs=len(found.row),  # (point, fence) pairs the grid lists, all vehicles
        boundary_pairs=int(found.exact.sum()),  # those in boundary cells: the exact tests
    )
    assert events > 0


def test_engine_vs_postgis(benchmark: Any, data: Data) -> None:
    _engine_bench(benchmark, data, "test_postgis_gist")


def test_engine_vs_shapely_loop(benchmark: Any, data: Data) -> None:
    _engine_bench(benchmark, data, "test_shapely_contains_loop")


def test_engine_vs_naive_loop(benchmark: Any, data: Data) -> None:
    _engine_bench(benchmark, data, "test_naive_contains_loop")


def test_membership_only(benchmark: Any, data: Data) -> None:
    benchmark(data.fence_set.contains, data.lon, data.lat, data.device)
    benchmark.extra_info.update(items=len(data.lon), baseline="test_shapely_contains_loop")


def test_fence_set_build(benchmark: Any, data: Data) -> None:
    benchmark.pedantic(FenceSet, args=(data.fences, 2), rounds=1, iterations=1)
    benchmark.extra_info.update(items=len(data.fences))


def _loop_fences(data: Data) -> tuple[shapely.STRtree, list[Any]]:
    outlines = data.fence_set.tree.geometries
    prepared = list(outlines)
    for geometry in prepared:
        shapely.prepare(geometry)
    return data.fence_set.tree, prepared


def _contains_one(fence: Fence, geometry: Any, point: Any, lon: float, lat: float) -> bool:
    if fence.radius_m is not None:
        centre = fence.geometry
        return haversine_scalar_m(centre.x, centre.y, lon, lat) <= fence.radius_m
    return bool(geometry.contains(point))


def test_shapely_contains_loop(benchmark: Any, data: Data) -> None:
    tree, geometries = _loop_fences(data)
    fences = data.fences
    lon, lat = data.lon[:LOOP_POINTS].tolist(), data.lat[:LOOP_POINTS].tolist()

    def loop() -> int:
        found = 0
        for x, y in zip(lon, lat, strict=True):
            point = shapely.Point(x, y)
            for f in tree.query(point):
                if _contains_one(fences[f], geometries[f], point, x, y):
                    found += 1
        return found

    benchmark(loop)
    benchmark.extra_info["items"] = LOOP_POINTS


def test_naive_contains_loop(benchmark: Any, data: Data) -> None:
    _, geometries = _loop_fences(data)
    fences = data.fences
    lon, lat = data.lon[:NAIVE_POINTS].tolist(), data.lat[:NAIVE_POINTS].tolist()

    def loop() -> int:
        found = 0
        for x, y in zip(lon, lat, strict=True):
            point = shapely.Point(x, y)
            for fence, geometry in zip(fences, geometries, strict=True):
                if _contains_one(fence, geometry, point, x, y):
                    found += 1
        return found

    benchmark.pedantic(loop, rounds=2, iterations=1)
    benchmark.extra_info["items"] = NAIVE_POINTS


@pytest.fixture(scope="module")
def postgis(data: Data) -> Iterator[psycopg.Connection[Any]]:
    name = f"lienwatch_bench_geofence_{uuid.uuid4().hex[:8]}"
    base = PG_ADMIN_URL.rpartition("/")[0]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
            try:
                conn.execute("CREATE EXTENSION postgis")
            except psycopg.Error as exc:
                pytest.fail(f"PostGIS is not installed: run scripts/services --postgis ({exc})")
            _load_postgis(conn, data)
            yield conn
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _load_postgis(conn: psycopg.Connection[Any], data: Data) -> None:
    conn.execute("CREATE TABLE fence_poly (idx int PRIMARY KEY, geom geometry(Polygon, 4326))")
    conn.execute(
        "CREATE TABLE fence_circle (idx int PRIMARY KEY, geog geography(Point, 4326), "
        "radius_m float8, box geometry(Polygon, 4326))"
    )
    with conn.cursor() as cur:
        with cur.copy("COPY fence_poly (idx, geom) FROM STDIN") as copy:
            for i, fence in enumerate(data.fences):
                if fence.radius_m is None:
                    copy.write_row((i, f"SRID=4326;{fence.geometry.wkt}"))
        with cur.copy("COPY fence_circle (idx, geog, radius_m) FROM STDIN") as copy:
            for i, fence in enumerate(data.fences):
                if fence.radius_m is not None:
                    copy.write_row((i, f"SRID=4326;{fence.geometry.wkt}", fence.radius_m))
    conn.execute("CREATE INDEX ON fence_poly USING gist (geom)")
    # ST_DWithin cannot use an index when the distance is a column of the indexed table, so
    # each circle also gets its bounding box, indexed: the usual PostGIS way to do it.
    conn.execute("UPDATE fence_circle SET box = ST_Envelope(ST_Buffer(geog, radius_m)::geometry)")
    conn.execute("CREATE INDEX ON fence_circle USING gist (box)")
    conn.execute("ANALYZE fence_poly")
    conn.execute("ANALYZE fence_circle")


_POSTGIS_QUERY = """
WITH p AS (
  SELECT i, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS pt
  FROM unnest(%(lon)s::float8[], %(lat)s::float8[]) WITH ORDINALITY AS u(lon, lat, i)
)
SELECT p.i, f.idx FROM p JOIN fence_poly f ON ST_Intersects(f.geom, p.pt)
UNION ALL
SELECT p.i, c.idx FROM p JOIN fence_circle c
  ON c.box && p.pt AND ST_DWithin(c.geog, p.pt::geography, c.radius_m)
"""


def test_postgis_gist(benchmark: Any, data: Data, postgis: psycopg.Connection[Any]) -> None:
    lon = data.lon[:POSTGIS_POINTS].tolist()
    lat = data.lat[:POSTGIS_POINTS].tolist()

    def query() -> int:
        return len(postgis.execute(_POSTGIS_QUERY, {"lon": lon, "lat": lat}).fetchall())

    found = benchmark.pedantic(query, rounds=3, iterations=1, warmup_rounds=1)
    engine_rows, _ = data.fence_set.with_vehicles([]).contains(
        data.lon[:POSTGIS_POINTS], data.lat[:POSTGIS_POINTS], np.full(POSTGIS_POINTS, -1)
    )
    benchmark.extra_info.update(
        items=POSTGIS_POINTS, rows=found, engine_rows_unrestricted=len(engine_rows)
    )
    # PostGIS matches restricted fences for everyone and boundaries too: never fewer rows.
    assert found >= len(engine_rows)
