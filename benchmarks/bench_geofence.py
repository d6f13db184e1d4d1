"""`lienwatch bench geofence`: batch membership + transitions, against shapely 2's bulk path.

Data (seeded): 10,000 star-shaped polygons of 20 vertices (2-10 km across) and 10,000 circles
(50 m to 1 km) over 110-120 E, 25-35 N; 1,000,000 fixes from 10,000 devices driving random
walks (100 fixes each, 30 s apart, ~200 m steps, 2 % invalid). A tenth of the polygons apply
to 5 vehicles only. Every comparison uses the same fences and points in the same run, the
same number of rounds on both sides, indexes built before the clock starts on both sides:
- `engine` (the main figure, baseline `shapely_bulk`): FenceSet.contains + TransitionTracker
  .update over all 1M fixes as one batch: (fix, fence) memberships, then enter/exit events
  confirmed over 2 consecutive valid fixes.
- `shapely_bulk`: what a competent engineer writes with shapely 2 and numpy for the same job.
  One STRtree over the polygons and the circles' bounding boxes (degrees that surely cover the
  radius at that latitude); one `tree.query(points, predicate="intersects")` over the whole
  batch, the points built before the clock starts (generous to it: making and freeing 1M
  shapely points costs more than the query here; `shapely_points` times it); circle pairs kept
  when the haversine distance (the project's numpy `haversine_m`, as the engine: circles are
  metres on the ground) is within the radius; pairs of restricted fences kept when the vehicle
  is allowed (sorted keys, `np.isin`). Transitions in numpy on the engine's rules: valid fixes
  only; per (device, fence), runs of consecutive inside fixes (lexsort, np.diff), the outside
  runs being the gaps between them; a run of at least 2 fixes sets the state, and it is an
  event when it differs from the state before (outside at first), timed at its first fix.
  Querying the other way (a tree of the points, queried with the prepared fences) measured no
  faster here. Checked outside the clock: its (fix, fence) pairs equal the engine's in both
  directions, and so do the events. Tie rule: a point exactly on a polygon's edge intersects
  it but is not inside it for the engine (shapely's `contains_xy`); the suite's random points
  hit no edge, and the check would fail if one did.
- `engine_membership` / `shapely_bulk_membership`: the membership part of each alone.
- `engine_membership_postgis_points` / `postgis_gist`: membership of the first 100,000 fixes,
  by the engine and by PostGIS: ST_Intersects (polygons) and ST_DWithin on geography on the
  sphere (circles, as haversine, behind an indexed bounding box) with GiST indexes, vehicle
  restrictions joined from a table, points passed as arrays (unnest), rows fetched. The check
  fails on any (fix, fence) pair found by one side only.
- `shapely_point_loop`: context only, no ratio: per fix, an STRtree query then `contains` on
  each candidate (haversine for circles), as a one-at-a-time checker works.
- `shapely_points`: context only: `shapely.points` over the 1M fixes, which shapely_bulk skips.
- `fence_set_build`: building the engine's index for the 20,000 fences.
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
from geofence.geodesy import degrees_around, haversine_m, haversine_scalar_m
from geofence.transitions import ENTER, Transitions

SEED = 808
N_POLYGONS = 10_000
N_CIRCLES = 10_000
N_DEVICES = 10_000
FIXES_PER_DEVICE = 100
ROUNDS = 5  # every timed side of a ratio, after one warm-up round
POSTGIS_POINTS = 100_000
POSTGIS_ROUNDS = 3
LOOP_POINTS = 20_000
LOOP_ROUNDS = 3
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


def _engine(data: Data) -> Transitions:
    fence_set = data.fence_set
    row, fence = fence_set.contains(data.lon, data.lat, data.device)  # vehicle i = device i
    tracker = TransitionTracker()
    return tracker.update(fence_set, row, fence, data.device, data.time_ms, data.valid)


@dataclass(frozen=True)
class Bulk:
    """shapely_bulk's index, built before the clock starts (as the engine's FenceSet is)."""

    tree: shapely.STRtree
    circle_lon: npt.NDArray[np.float64]  # NaN for polygons
    circle_lat: npt.NDArray[np.float64]
    radius_m: npt.NDArray[np.float64]
    restricted: npt.NDArray[np.bool_]
    allowed: npt.NDArray[np.int64]  # sorted fence * N_DEVICES + device, of restricted fences


def _bulk_index(data: Data) -> Bulk:
    n = len(data.fences)
    circle_lon, circle_lat, radius_m = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    shapes = np.empty(n, dtype=object)
    for i, fence in enumerate(data.fences):
        if fence.radius_m is None:
            shapes[i] = fence.geometry
            continue
        lon, lat = fence.geometry.x, fence.geometry.y
        dlon, dlat = degrees_around(lat, fence.radius_m)
        shapes[i] = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        circle_lon[i], circle_lat[i], radius_m[i] = lon, lat, fence.radius_m
    restricted = np.array([f.vehicles is not None for f in data.fences])
    allowed = [
        i * N_DEVICES + int(v[1:])
        for i, f in enumerate(data.fences)
        if f.vehicles is not None
        for v in f.vehicles
    ]
    return Bulk(
        shapely.STRtree(shapes),
        circle_lon,
        circle_lat,
        radius_m,
        restricted,
        np.unique(np.array(allowed, dtype=np.int64)),
    )


@pytest.fixture(scope="module")
def bulk(data: Data) -> Bulk:
    return _bulk_index(data)


@pytest.fixture(scope="module")
def points(data: Data) -> Any:
    """The fixes as shapely points, built once before any clock starts (module docstring)."""
    return shapely.points(data.lon, data.lat)


Pairs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]


def _bulk_membership(bulk: Bulk, data: Data, points: Any) -> Pairs:
    """(fix, fence) pairs: one tree query, then circles by distance and restrictions by key."""
    point, fence = bulk.tree.query(points, predicate="intersects")
    circle = ~np.isnan(bulk.radius_m[fence])
    at = np.flatnonzero(circle)
    f, p = fence[at], point[at]
    far = haversine_m(bulk.circle_lon[f], bulk.circle_lat[f], data.lon[p], data.lat[p])
    keep = ~circle
    keep[at] = far <= bulk.radius_m[f]
    at = np.flatnonzero(bulk.restricted[fence])
    keep[at] &= np.isin(fence[at] * N_DEVICES + data.device[point[at]], bulk.allowed)
    order = np.lexsort((fence[keep], point[keep]))
    return point[keep][order], fence[keep][order]


@dataclass(frozen=True)
class Events:
    device: npt.NDArray[np.int64]
    fence: npt.NDArray[np.int64]
    enter: npt.NDArray[np.bool_]
    time_ms: npt.NDArray[np.int64]


def _bulk_transitions(data: Data, point: npt.NDArray[np.int64], fence: Any) -> Events:
    """Enter/exit confirmed over 2 valid fixes, from outside, in numpy (module docstring)."""
    rows = np.flatnonzero(data.valid)
    rows = rows[np.argsort(data.device[rows], kind="stable")]  # fixes in time order per device
    device = data.device[rows]
    first = np.flatnonzero(np.diff(device, prepend=-1))  # each device's first valid fix
    n_valid = np.diff(first, append=len(rows))
    start_of = np.zeros(N_DEVICES, dtype=np.int64)
    start_of[device[first]] = first
    count_of = np.zeros(N_DEVICES, dtype=np.int64)
    count_of[device[first]] = n_valid
    ordinal = np.full(len(data.valid), -1, dtype=np.int64)
    ordinal[rows] = np.arange(len(rows)) - np.repeat(first, n_valid)
    keep = data.valid[point]
    dev = data.device[point[keep]].astype(np.int64)
    fen = np.asarray(fence[keep], dtype=np.int64)
    ordn = ordinal[point[keep]]
    order = np.lexsort((ordn, fen, dev))
    dev, fen, ordn = dev[order], fen[order], ordn[order]
    # Runs of consecutive inside fixes per (device, fence); outside runs are the gaps after.
    new_pair = (np.diff(dev, prepend=-1) != 0) | (np.diff(fen, prepend=-1) != 0)
    run = np.flatnonzero(new_pair | (np.diff(ordn, prepend=-2) != 1))
    end = np.append(run[1:], len(ordn))
    r_dev, r_fen, r_start = dev[run], fen[run], ordn[run]
    r_len = end - run
    last = np.append(new_pair[run[1:]], True)  # the last run of its pair
    next_start = np.where(last, count_of[r_dev], np.append(r_start[1:], 0))
    gap_len = next_start - (r_start + r_len)
    # Interleaved: inside run, gap after it, inside run, ... (the leading gap sets nothing).
    n = len(run)
    seq_dev, seq_fen = np.repeat(r_dev, 2), np.repeat(r_fen, 2)
    seq_start = np.empty(2 * n, dtype=np.int64)
    seq_start[0::2], seq_start[1::2] = r_start, r_start + r_len
    seq_len = np.empty(2 * n, dtype=np.int64)
    seq_len[0::2], seq_len[1::2] = r_len, gap_len
    inside = np.tile([True, False], n)
    long = np.flatnonzero(seq_len >= 2)
    l_dev, l_fen, l_in = seq_dev[long], seq_fen[long], inside[long]
    same_pair = np.zeros(len(long), dtype=bool)
    same_pair[1:] = (l_dev[1:] == l_dev[:-1]) & (l_fen[1:] == l_fen[:-1])
    before = np.zeros(len(long), dtype=bool)
    before[1:] = l_in[:-1]
    before &= same_pair
    flip = np.flatnonzero(l_in != before)
    at = rows[start_of[l_dev[flip]] + seq_start[long][flip]]
    return Events(l_dev[flip], l_fen[flip], l_in[flip], data.time_ms[at])


def _shapely_bulk(bulk: Bulk, data: Data, points: Any) -> Events:
    point, fence = _bulk_membership(bulk, data, points)
    return _bulk_transitions(data, point, fence)


def _pair_set(point: npt.ArrayLike, fence: npt.ArrayLike) -> set[tuple[int, int]]:
    return set(zip(np.asarray(point).tolist(), np.asarray(fence).tolist(), strict=True))


def _assert_same_pairs(what: str, engine: set[Any], other: set[Any]) -> None:
    """Fails on any pair found by one side only, either way round."""
    only_engine, only_other = sorted(engine - other), sorted(other - engine)
    assert (len(only_engine), len(only_other)) == (0, 0), (
        f"{what}: {len(only_engine)} pairs only in the engine (first {only_engine[:5]}), "
        f"{len(only_other)} only in the baseline (first {only_other[:5]})"
    )


def _event_set(device: Any, fence: Any, enter: Any, time_ms: Any) -> set[Any]:
    return set(
        zip(
            np.asarray(device).tolist(),
            np.asarray(fence).tolist(),
            np.asarray(enter, dtype=bool).tolist(),
            np.asarray(time_ms).tolist(),
            strict=True,
        )
    )


def _timed(benchmark: Any, fn: Any, *args: Any) -> Any:
    return benchmark.pedantic(fn, args=args, rounds=ROUNDS, iterations=1, warmup_rounds=1)


def test_engine(benchmark: Any, data: Data) -> None:
    events = _timed(benchmark, _engine, data)
    row, _ = data.fence_set.contains(data.lon, data.lat, data.device)
    found = data.fence_set.grid.candidates(data.lon, data.lat)
    benchmark.extra_info.update(
        items=len(data.lon),
        baseline="test_shapely_bulk",
        main=True,
        memberships=len(row),
        transitions=len(events),
        fences=len(data.fence_set),
        cell_deg=data.fence_set.grid.cell_deg,
        grid_pairs=len(found.row),  # (point, fence) pairs the grid lists, all vehicles
        boundary_pairs=int(found.exact.sum()),  # those in boundary cells: the exact tests
    )
    assert len(events) > 0


def test_shapely_bulk(benchmark: Any, data: Data, bulk: Bulk, points: Any) -> None:
    events = _timed(benchmark, _shapely_bulk, bulk, data, points)
    point, fence = _bulk_membership(bulk, data, points)
    row, engine_fence = data.fence_set.contains(data.lon, data.lat, data.device)
    _assert_same_pairs("membership", _pair_set(row, engine_fence), _pair_set(point, fence))
    engine = _engine(data)
    _assert_same_pairs(
        "transitions",
        _event_set(engine.device, engine.fence, engine.kind == ENTER, engine.time_ms),
        _event_set(events.device, events.fence, events.enter, events.time_ms),
    )
    benchmark.extra_info.update(
        items=len(data.lon), memberships=len(point), transitions=len(events.device)
    )


def test_engine_membership(benchmark: Any, data: Data) -> None:
    _timed(benchmark, data.fence_set.contains, data.lon, data.lat, data.device)
    benchmark.extra_info.update(items=len(data.lon), baseline="test_shapely_bulk_membership")


def test_shapely_bulk_membership(benchmark: Any, data: Data, bulk: Bulk, points: Any) -> None:
    _timed(benchmark, _bulk_membership, bulk, data, points)
    benchmark.extra_info.update(items=len(data.lon))


def test_shapely_points(benchmark: Any, data: Data) -> None:
    """What shapely_bulk is spared: the fixes as shapely points (made, then freed)."""

    def build() -> int:
        return len(shapely.points(data.lon, data.lat))

    benchmark.pedantic(build, rounds=LOOP_ROUNDS, iterations=1)
    benchmark.extra_info["items"] = len(data.lon)


def test_fence_set_build(benchmark: Any, data: Data) -> None:
    benchmark.pedantic(FenceSet, args=(data.fences, 2), rounds=1, iterations=1)
    benchmark.extra_info.update(items=len(data.fences))


def _contains_one(fence: Fence, point: Any, lon: float, lat: float) -> bool:
    if fence.radius_m is not None:
        centre = fence.geometry
        return haversine_scalar_m(centre.x, centre.y, lon, lat) <= fence.radius_m
    return bool(fence.geometry.contains(point))


def test_shapely_point_loop(benchmark: Any, data: Data) -> None:
    tree, fences = data.fence_set.tree, data.fences
    for fence in fences:
        shapely.prepare(fence.geometry)
    lon, lat = data.lon[:LOOP_POINTS].tolist(), data.lat[:LOOP_POINTS].tolist()

    def loop() -> int:
        found = 0
        for x, y in zip(lon, lat, strict=True):
            point = shapely.Point(x, y)
            for f in tree.query(point):
                if _contains_one(fences[f], point, x, y):
                    found += 1
        return found

    benchmark.pedantic(loop, rounds=LOOP_ROUNDS, iterations=1)
    benchmark.extra_info["items"] = LOOP_POINTS


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
    conn.execute(
        "CREATE TABLE fence_poly (idx int PRIMARY KEY, geom geometry(Polygon, 4326),"
        " restricted bool NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE fence_circle (idx int PRIMARY KEY, geog geography(Point, 4326), "
        "radius_m float8, box geometry(Polygon, 4326))"
    )
    conn.execute("CREATE TABLE fence_vehicle (idx int, device int, PRIMARY KEY (idx, device))")
    with conn.cursor() as cur:
        with cur.copy("COPY fence_poly (idx, geom, restricted) FROM STDIN") as copy:
            for i, fence in enumerate(data.fences):
                if fence.radius_m is None:
                    restricted = fence.vehicles is not None
                    copy.write_row((i, f"SRID=4326;{fence.geometry.wkt}", restricted))
        with cur.copy("COPY fence_circle (idx, geog, radius_m, box) FROM STDIN") as copy:
            for i, fence in enumerate(data.fences):
                if fence.radius_m is not None:
                    # ST_DWithin cannot use an index when the distance is a column of the
                    # indexed table, so each circle also gets a box that surely covers it,
                    # indexed: the usual PostGIS way to do it.
                    x, y = fence.geometry.x, fence.geometry.y
                    dlon, dlat = degrees_around(y, fence.radius_m)
                    box = shapely.box(x - dlon, y - dlat, x + dlon, y + dlat)
                    copy.write_row(
                        (i, f"SRID=4326;{fence.geometry.wkt}", fence.radius_m, f"SRID=4326;{box}")
                    )
        with cur.copy("COPY fence_vehicle (idx, device) FROM STDIN") as copy:
            for i, fence in enumerate(data.fences):
                for vehicle in sorted(fence.vehicles or ()):
                    copy.write_row((i, int(vehicle[1:])))  # vehicle "V<n>" is device n
    conn.execute("CREATE INDEX ON fence_poly USING gist (geom)")
    conn.execute("CREATE INDEX ON fence_circle USING gist (box)")
    for table in ("fence_poly", "fence_circle", "fence_vehicle"):
        conn.execute(f"ANALYZE {table}")


# Circles on the sphere (use_spheroid false), as the engine's haversine measures them.
_POSTGIS_QUERY = """
WITH p AS (
  SELECT i - 1 AS i, dev, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS pt
  FROM unnest(%(lon)s::float8[], %(lat)s::float8[], %(dev)s::int[])
    WITH ORDINALITY AS u(lon, lat, dev, i)
)
SELECT p.i, f.idx FROM p JOIN fence_poly f ON ST_Intersects(f.geom, p.pt)
  WHERE NOT f.restricted
     OR EXISTS (SELECT 1 FROM fence_vehicle v WHERE v.idx = f.idx AND v.device = p.dev)
UNION ALL
SELECT p.i, c.idx FROM p JOIN fence_circle c
  ON c.box && p.pt AND ST_DWithin(c.geog, p.pt::geography, c.radius_m, false)
"""


def test_postgis_gist(benchmark: Any, data: Data, postgis: psycopg.Connection[Any]) -> None:
    params = {
        "lon": data.lon[:POSTGIS_POINTS].tolist(),
        "lat": data.lat[:POSTGIS_POINTS].tolist(),
        "dev": data.device[:POSTGIS_POINTS].tolist(),
    }

    def query() -> list[tuple[int, int]]:
        return postgis.execute(_POSTGIS_QUERY, params).fetchall()

    rows = benchmark.pedantic(query, rounds=POSTGIS_ROUNDS, iterations=1, warmup_rounds=1)
    engine_row, engine_fence = data.fence_set.contains(
        data.lon[:POSTGIS_POINTS], data.lat[:POSTGIS_POINTS], data.device[:POSTGIS_POINTS]
    )
    benchmark.extra_info.update(items=POSTGIS_POINTS, rows=len(rows), engine_rows=len(engine_row))
    _assert_same_pairs("PostGIS membership", _pair_set(engine_row, engine_fence), set(rows))


def test_engine_membership_postgis_points(benchmark: Any, data: Data) -> None:
    lon, lat = data.lon[:POSTGIS_POINTS], data.lat[:POSTGIS_POINTS]
    device = data.device[:POSTGIS_POINTS]
    benchmark.pedantic(
        data.fence_set.contains,
        args=(lon, lat, device),
        rounds=POSTGIS_ROUNDS,
        iterations=1,
        warmup_rounds=1,
    )
    benchmark.extra_info.update(items=POSTGIS_POINTS, baseline="test_postgis_gist")
