"""What the map page draws, in the datum it draws in: `/api/v1/map/...`.

- `config`: the datum, the optional tile layer and the boundary set's URL.
- `cars`: every car at its newest fix, with its state (`api.fleet`), as GeoJSON points.
- `vehicles/{key}`: the car panel: position, state, loans (borrower masked), devices, unresolved
  alerts.
- `vehicles/{key}/track`: one tracker's fixes for playback, compact.
- `boundaries?level=`: the administrative outlines of the offline basemap, when installed.

Positions are stored in WGS-84; with `crs=gcj02` or `bd09` (a Chinese tile service) they are
converted here with `geofence.crs`, the same conversions fences use, so the page does no datum
arithmetic of its own.
"""

import asyncio
import json
from collections import OrderedDict
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import shapely
import shapely.geometry
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from alerts.lifecycle import StoredAlert
from api import params
from api.auth import Identity
from api.context import ApiContext
from api.errors import not_found
from api.fleet import OFFLINE_AFTER_MS, STATES, Car, cars, feature, mask_name
from api.loan_views import local_date
from api.map_options import BOUNDARY_LEVELS, MapOptions
from api.openapi import KEYED, NO_NUL, errors
from api.portfolio_reads import all_devices, snapshot, unresolved_alerts
from api.routes.lookup import online_of
from api.views import iso, json_bytes
from geofence.crs import Crs, from_wgs84
from loans import Loan
from store import Device
from store.interface import LoanFilter
from store.scoped import ScopedStore

DAY_MS = 86_400_000
CrsQuery = Annotated[Crs | None, Query(description="datum of the answer (default: the map's)")]
CarKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=80,
        pattern=NO_NUL,
        description="a vehicle id, or `device:TERMINAL` for a tracker bound to no car",
    ),
]


class MapConfig(BaseModel):
    crs: Crs
    tiles: dict[str, Any] | None
    boundaries: dict[str, Any] | None
    states: list[str]
    offline_after_s: int


class GeoJsonCollection(BaseModel):
    type: str
    features: list[dict[str, Any]]


class CarPanel(BaseModel):
    key: str
    vehicle_id: str | None
    state: str
    position: dict[str, Any] | None
    devices: list[dict[str, Any]]
    loans: list[dict[str, Any]]
    open_alerts: list[dict[str, Any]]


class TrackPlayback(BaseModel):
    key: str
    terminal: str | None
    crs: Crs
    points: list[list[float]]


def _convert(lon: list[float], lat: list[float], crs: Crs) -> tuple[list[float], list[float]]:
    if crs is Crs.WGS84 or not lon:
        return lon, lat
    x, y = from_wgs84(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), crs)
    return np.round(x, 7).tolist(), np.round(y, 7).tolist()


def _loan_card(loan: Loan, now_ms: int) -> dict[str, Any]:
    today = local_date(now_ms)
    bucket = loan.bucket(today)
    return {
        "loan_no": loan.loan_no,
        "borrower": mask_name(loan.borrower_name),
        "state": loan.state.value,
        "stage": None if loan.stage is None else loan.stage.value,
        "dpd": loan.dpd(today),
        "bucket": None if bucket is None else bucket.value,
        "next_due_date": loan.next_due_date.isoformat(),
        "branch": loan.branch,
    }


class _Snapshots:
    """The fleet snapshot shared by every open map of one organization unit for `MAX_AGE_MS`:
    each tab polls every 5 s, and a snapshot of 5,000 cars with 20,000 unresolved alerts costs
    ~0.2 s of CPU, so ten tabs cost what one does. Each unit has its own (a key sees its
    subtree only); concurrent requests of a unit wait for one read, the last `UNITS` units
    kept."""

    MAX_AGE_MS = 2000
    UNITS = 64

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._locks: dict[int, asyncio.Lock] = {}
        self._taken: OrderedDict[int, tuple[int, list[Car]]] = OrderedDict()

    async def get(self, who: Identity) -> tuple[int, list[Car]]:
        lock = self._locks.setdefault(who.org, asyncio.Lock())
        async with lock:
            now = self._ctx.clock_ms()
            taken = self._taken.get(who.org)
            if taken is None or not 0 <= now - taken[0] < self.MAX_AGE_MS:
                cars = await self._ctx.scoped(who, lambda s: snapshot(s, now, OFFLINE_AFTER_MS))
                taken = (now, cars)
                self._taken[who.org] = taken
            self._taken.move_to_end(who.org)
            while len(self._taken) > self.UNITS:
                gone, _ = self._taken.popitem(last=False)
                self._locks.pop(gone, None)
            return taken


def router(ctx: ApiContext, options: MapOptions | None = None) -> APIRouter:
    opts = options or MapOptions()
    snapshots = _Snapshots(ctx)
    encoded: dict[tuple[str, Crs], bytes] = {}  # boundaries answers: a few, immutable
    api = APIRouter(prefix="/api/v1/map", tags=["map"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]

    @api.get(
        "/config", response_model=None, responses={200: {"model": MapConfig}, **errors(*KEYED)}
    )
    async def config(who: viewer) -> dict[str, Any]:
        """How the page draws: its datum, the optional raster tiles, the boundary set."""
        tiles = None
        if opts.tiles_url:
            tiles = {
                "url": opts.tiles_url,
                "crs": opts.tiles_crs.value,
                "attribution": opts.tiles_attribution,
            }
        boundaries = None
        if opts.boundaries is not None:
            boundaries = {
                "levels": list(BOUNDARY_LEVELS),
                "url": "/api/v1/map/boundaries?level={level}",
            }
        return {
            "crs": opts.crs.value,
            "tiles": tiles,
            "boundaries": boundaries,
            "states": list(STATES),
            "offline_after_s": OFFLINE_AFTER_MS // 1000,
        }

    @api.get(
        "/cars",
        response_model=None,
        responses={200: {"model": GeoJsonCollection}, **errors(*KEYED)},
    )
    async def map_cars(who: viewer, crs: CrsQuery = None) -> dict[str, Any]:
        """Every car that has a fix, at its newest one, with `state`, `open_alerts`, speed,
        fix time (`time_ms`) and its trackers; `counts` by state over every car. Taken at most
        every 2 s for all callers (`as_of` says when)."""
        target = crs or opts.crs
        now, snap = await snapshots.get(who)
        placed = [c for c in snap if c.lon is not None and c.lat is not None]
        lon, lat = _convert([c.lon for c in placed], [c.lat for c in placed], target)  # type: ignore[misc]
        counts = dict.fromkeys(STATES, 0)
        for c in snap:
            counts[c.state] += 1
        return {
            "type": "FeatureCollection",
            "crs_name": target.value,
            "as_of": iso(now),
            "counts": counts,
            "features": [feature(c, x, y) for c, x, y in zip(placed, lon, lat, strict=True)],
        }

    def devices_of(store: ScopedStore, key: str) -> list[Device]:
        if key.startswith("device:"):
            device = store.device(params.terminal(key.removeprefix("device:"), "path.key"))
            return [device] if device is not None and device.vehicle_id is None else []
        return all_devices(store, key)

    @api.get(
        "/vehicles/{key}",
        response_model=None,
        responses={200: {"model": CarPanel}, **errors(*KEYED, 404)},
    )
    async def car_panel(key: CarKey, who: viewer, crs: CrsQuery = None) -> dict[str, Any]:
        """The car panel: state and position, loans (borrower masked), trackers with their
        newest fix and connection, unresolved alerts newest first (by alert time)."""
        target = crs or opts.crs
        now = ctx.clock_ms()

        def read(
            store: ScopedStore,
        ) -> tuple[list[Device], Car | None, Any, list[Loan], list[StoredAlert]]:
            devices = devices_of(store, key)
            if not devices:
                return [], None, None, [], []
            vehicle = devices[0].vehicle_id
            latest = store.latest(devices)
            alerts = unresolved_alerts(store, vehicle) if vehicle is not None else []
            if vehicle is None:
                alone = key.removeprefix("device:")
                alerts = [a for a in unresolved_alerts(store) if a.alert.device_id == alone]
            car = cars(devices, latest, alerts, now, OFFLINE_AFTER_MS)[0]
            loans = store.loans(LoanFilter(vehicle_id=vehicle), limit=100) if vehicle else []
            return devices, car, latest, loans, alerts

        devices, car, latest, loans, alerts = await ctx.scoped(who, read)
        if car is None:
            raise not_found(f"no device is bound to vehicle {key!r}")
        fixes: dict[str, dict[str, Any]] = {}
        if len(latest):
            lon, lat = _convert(latest.lon.tolist(), latest.lat.tolist(), target)
            for i, index in enumerate(latest.device.tolist()):
                fixes[devices[int(index)].terminal] = {
                    "lon": lon[i],
                    "lat": lat[i],
                    "time": iso(int(latest.time_ms[i])),
                    "speed_kmh": round(float(latest.speed_kmh[i]), 1),
                    "alarm": int(latest.alarm[i]),
                }
        position = None
        if car.lon is not None and car.lat is not None and car.time_ms is not None:
            x, y = _convert([car.lon], [car.lat], target)
            position = {
                "lon": x[0],
                "lat": y[0],
                "time": iso(car.time_ms),
                "speed_kmh": round(car.speed_kmh, 1),
            }
        online = await online_of(ctx, [d.terminal for d in devices])
        return {
            "key": car.key,
            "vehicle_id": car.vehicle_id,
            "state": car.state,
            "position": position,
            "devices": [
                {
                    "terminal": d.terminal,
                    "online": online(d.terminal),
                    "last_seen": iso(d.last_seen_ms),
                    "latest": fixes.get(d.terminal),
                }
                for d in devices
            ],
            "loans": [_loan_card(loan, now) for loan in loans],
            "open_alerts": [
                a.to_json() for a in sorted(alerts, key=lambda a: (-a.alert.time_ms, -a.id))
            ],
        }

    @api.get(
        "/vehicles/{key}/track",
        response_model=None,
        responses={200: {"model": TrackPlayback}, **errors(*KEYED, 404)},
    )
    async def playback(
        key: CarKey,
        who: viewer,
        from_: Annotated[params.QueryTime | None, Query(alias="from")] = None,
        to: Annotated[params.QueryTime | None, Query(description="default now")] = None,
        terminal: Annotated[str | None, Query(pattern=r"^[0-9]{1,20}$")] = None,
        max_points: Annotated[int, Query(ge=2, le=20_000)] = 5000,
        crs: CrsQuery = None,
    ) -> dict[str, Any]:
        """Valid fixes of one tracker for playback (`terminal`, default the car's tracker with
        the most fixes in range), `points` as `[lon, lat, time_ms, speed_kmh]` in time order,
        thinned to `max_points`; `from` defaults to 24 h before `to`."""
        target = crs or opts.crs
        end = to if to is not None else ctx.clock_ms()
        start = from_ if from_ is not None else end - DAY_MS
        wanted = None if terminal is None else params.terminal(terminal, "query.terminal")

        def read(store: ScopedStore) -> tuple[bool, str | None, Any]:
            devices = devices_of(store, key)
            best: tuple[str | None, Any] = (None, None)
            for device in devices:
                if wanted not in (None, device.terminal):
                    continue
                batch = store.track(device, start, end + 1, max_points=max_points)
                batch = batch.take(batch.valid())
                if best[1] is None or len(batch) > len(best[1]):
                    best = (device.terminal, batch)
            return bool(devices), best[0], best[1]

        known, term, batch = await ctx.scoped(who, read)
        if not known:
            raise not_found(f"no device is bound to vehicle {key!r}")
        points: list[list[float]] = []
        if batch is not None and len(batch):
            lon, lat = _convert(batch.lon.tolist(), batch.lat.tolist(), target)
            points = [
                [x, y, t, round(v, 1)]
                for x, y, t, v in zip(
                    lon, lat, batch.time_ms.tolist(), batch.speed_kmh.tolist(), strict=True
                )
            ]
        return {"key": key, "terminal": term, "crs": target.value, "points": points}

    @api.get(
        "/boundaries",
        response_model=None,
        responses={200: {"model": GeoJsonCollection}, **errors(*KEYED, 404)},
    )
    async def boundaries(
        who: viewer,
        level: Annotated[str, Query(pattern="^(province|city|county)$")] = "province",
        crs: CrsQuery = None,
    ) -> Response:
        """The administrative outlines of one level, for the offline basemap; 404 when this
        installation has no boundary set. Encoded once per level and datum (the provinces are
        430 KB of JSON)."""
        if opts.boundaries is None:
            raise not_found("no administrative boundary set is installed")
        source = opts.boundaries
        target = crs or opts.crs
        body = encoded.get((level, target))
        if body is None:
            body = await asyncio.to_thread(lambda: json_bytes(_outlines_in(source(level), target)))
            encoded[(level, target)] = body
        return Response(body, media_type="application/json")

    return api


def _outlines_in(collection: dict[str, Any], crs: Crs) -> dict[str, Any]:
    """A WGS-84 FeatureCollection with every coordinate in `crs` (a new collection)."""
    if crs is Crs.WGS84:
        return collection

    def move(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = from_wgs84(xy[:, 0], xy[:, 1], crs)
        return np.column_stack([x, y])

    features = []
    for f in collection.get("features", []):
        geometry = f.get("geometry")
        if geometry is not None:
            moved = shapely.transform(shapely.geometry.shape(geometry), move)
            geometry = json.loads(shapely.to_geojson(moved))
        features.append({**f, "geometry": geometry})
    return {**collection, "features": features}
