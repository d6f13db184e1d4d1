"""Where a car lives and goes: `/api/v1/vehicles/{vehicle_id}/places`, `/stops`, `/trips` and
`/risk`.

Computed on request from the stored fixes of the vehicle's busiest device in the range (the
wired unit reports most; mixing units would zig-zag between them) with the pure functions of
`trajectory.visits`, and the risk score from its stored alerts with `alerts.risk`. Every point
carries its `place` (province, city, county).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from alerts.risk import score_vehicles
from api import params
from api.auth import Identity
from api.context import ApiContext
from api.errors import bad_request, not_found
from api.geocode import places
from api.models import PlaceOut, Time
from api.openapi import KEYED, NO_NUL, errors
from api.views import iso
from positions import PositionBatch, empty_batch
from store.scoped import ScopedStore
from trajectory.visits import HOURS, find_stops, find_trips, learn_places, usable_fixes

DAY_MS = 86_400_000
PLACES_DAYS = 28  # the window places are learned over by default
MAX_RANGE_DAYS = 92
RISK_LOOKBACK_DAYS = 60  # older alerts weigh under 1/1000 of their weight (3-day half-life)
ROWS_PER_READ = 1_000_000  # fixes of one device in one answer, at most

VehicleId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]


class Point(BaseModel):
    lon: float
    lat: float
    place: PlaceOut | None


class BestHour(BaseModel):
    hour: int = Field(ge=0, le=23, description="local hour of the day (GMT+8)")
    presence: float = Field(description="share of that hour the car spent there in the range")


class PlaceVisits(BaseModel):
    kind: str = Field(description="home, work or frequent")
    lon: float
    lat: float
    place: PlaceOut | None
    visits: int
    dwell_s: int
    night_dwell_s: int = Field(description="between 22:00 and 07:00 local")
    workday_dwell_s: int = Field(description="weekdays between 09:00 and 18:00 local")
    last_visit: Time
    last_left: Time = Field(description="its end, or the last fix while the car is still there")
    best_hour: BestHour
    presence_by_hour: list[float] = Field(description="24 shares, local hours 0 to 23")


class Range(BaseModel):
    vehicle_id: str
    terminal: str | None = Field(description="the device whose fixes were used")
    since: Time = Field(alias="from")
    to: Time


class PlacesOut(Range):
    places: list[PlaceVisits]


class StopOut(Point):
    start: Time
    end: Time
    duration_s: int
    ongoing: bool


class StopsOut(Range):
    stops: list[StopOut]


class TripOut(BaseModel):
    start: Time
    end: Time
    duration_s: int
    distance_m: float
    max_speed_kmh: float
    origin: Point = Field(alias="from")
    destination: Point = Field(alias="to")
    ongoing: bool


class TripsOut(Range):
    trips: list[TripOut]


class Reason(BaseModel):
    reason: str
    time: Time
    points: float


class RiskOut(BaseModel):
    vehicle_id: str
    score: int = Field(ge=0, le=100)
    reasons: list[Reason]
    as_of: Time


@dataclass(frozen=True, slots=True)
class Fixes:
    terminal: str | None
    time_ms: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    speed_kmh: np.ndarray


def _valid(batch: PositionBatch) -> PositionBatch:
    """The rows the rules take as fixes: valid as stored, and past the engine's glitch gate."""
    stored = batch.take(np.flatnonzero(batch.valid()))
    usable = usable_fixes(
        stored.time_ms, stored.recv_ms, stored.lon, stored.lat, stored.status, stored.flags
    )
    return stored.take(np.flatnonzero(usable))


def busiest_fixes(store: ScopedStore, vehicle_id: str, start_ms: int, end_ms: int) -> Fixes | None:
    """The valid fixes of the vehicle's device with the most of them in [start, end]; None
    when no device of the caller's subtree is bound to the vehicle (another subtree's car is
    as unknown as a missing one)."""
    devices = store.devices(vehicle_id=vehicle_id, after="", limit=1000)
    if not devices:
        return None
    best: tuple[str | None, PositionBatch] = (None, empty_batch())
    for device in devices:
        batch = store.track(device, start_ms, end_ms + 1, limit=ROWS_PER_READ)
        if len(batch) > ROWS_PER_READ:
            raise bad_request("query.from", f"more than {ROWS_PER_READ} fixes in range: narrow it")
        valid = _valid(batch)
        if best[0] is None or len(valid) > len(best[1]):
            best = (device.terminal, valid)
    terminal, batch = best
    return Fixes(terminal, batch.time_ms, batch.lon, batch.lat, batch.speed_kmh)


def _range(
    ctx: ApiContext, since: int | None, to: int | None, default_days: int
) -> tuple[int, int]:
    """[start, end] of a query: `to` defaults to now, `from` to `default_days` before it; a
    range longer than `MAX_RANGE_DAYS` keeps its last days (the answer's `from` says so), and
    one that ends before it starts is empty."""
    end = to if to is not None else ctx.clock_ms()
    start = since if since is not None else end - default_days * DAY_MS
    return max(start, end - MAX_RANGE_DAYS * DAY_MS), end


def _head(vehicle_id: str, fixes: Fixes, start: int, end: int) -> dict[str, Any]:
    return {
        "vehicle_id": vehicle_id,
        "terminal": fixes.terminal,
        "from": iso(start),
        "to": iso(end),
    }


def places_json(fixes: Fixes, start: int, end: int) -> list[dict[str, Any]]:
    stops = find_stops(fixes.time_ms, fixes.lon, fixes.lat, fixes.speed_kmh)
    learned = learn_places(stops, start, end + 1)
    where = places(learned.lon, learned.lat)
    best = learned.best_hour()
    return [
        {
            "kind": learned.kind[i],
            "lon": round(float(learned.lon[i]), 6),
            "lat": round(float(learned.lat[i]), 6),
            "place": where[i],
            "visits": int(learned.visits[i]),
            "dwell_s": int(learned.dwell_ms[i]) // 1000,
            "night_dwell_s": int(learned.night_ms[i]) // 1000,
            "workday_dwell_s": int(learned.work_ms[i]) // 1000,
            "last_visit": iso(int(learned.last_visit_ms[i])),
            "last_left": iso(int(learned.last_left_ms[i])),
            "best_hour": {
                "hour": int(best[i]),
                "presence": round(float(learned.presence[i, best[i]]), 3),
            },
            "presence_by_hour": [round(float(p), 3) for p in learned.presence[i, :HOURS]],
        }
        for i in range(len(learned))
    ]


def stops_json(fixes: Fixes) -> list[dict[str, Any]]:
    stops = find_stops(fixes.time_ms, fixes.lon, fixes.lat, fixes.speed_kmh)
    where = places(stops.lon, stops.lat)
    return [
        {
            "start": iso(int(stops.start_ms[i])),
            "end": iso(int(stops.end_ms[i])),
            "duration_s": int(stops.end_ms[i] - stops.start_ms[i]) // 1000,
            "lon": round(float(stops.lon[i]), 6),
            "lat": round(float(stops.lat[i]), 6),
            "place": where[i],
            "ongoing": bool(stops.ongoing[i]),
        }
        for i in range(len(stops))
    ]


def trips_json(fixes: Fixes) -> list[dict[str, Any]]:
    stops = find_stops(fixes.time_ms, fixes.lon, fixes.lat, fixes.speed_kmh)
    trips = find_trips(stops, fixes.time_ms, fixes.lon, fixes.lat, fixes.speed_kmh)
    n = len(trips)
    where = places(
        np.concatenate([trips.start_lon, trips.end_lon]),
        np.concatenate([trips.start_lat, trips.end_lat]),
    )

    def point(lon: float, lat: float, place: Any) -> dict[str, Any]:
        return {"lon": round(lon, 6), "lat": round(lat, 6), "place": place}

    return [
        {
            "start": iso(int(trips.start_ms[i])),
            "end": iso(int(trips.end_ms[i])),
            "duration_s": int(trips.end_ms[i] - trips.start_ms[i]) // 1000,
            "distance_m": round(float(trips.distance_m[i]), 1),
            "max_speed_kmh": round(float(trips.max_speed_kmh[i]), 1),
            "from": point(float(trips.start_lon[i]), float(trips.start_lat[i]), where[i]),
            "to": point(float(trips.end_lon[i]), float(trips.end_lat[i]), where[n + i]),
            "ongoing": bool(trips.ongoing[i]),
        }
        for i in range(n)
    ]


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["vehicles"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    since_query = Query(alias="from", description="ISO 8601 with offset, or epoch seconds")
    to_query = Query(description="default now")

    async def fixes_of(who: Identity, vehicle_id: str, start: int, end: int) -> Fixes:
        found = await ctx.scoped(
            who, lambda s: busiest_fixes(s, vehicle_id, start, max(start - 1, end))
        )
        if found is None:
            raise not_found(f"no device is bound to vehicle {vehicle_id!r}")
        return found

    async def ranged(
        who: Identity,
        vehicle_id: str,
        since: int | None,
        to: int | None,
        default_days: int,
        key: str,
        build: Callable[[Fixes, int, int], Any],
    ) -> dict[str, Any]:
        """The answer of a range route: its head, and `key` built from the busiest tracker's
        fixes on a store thread (the work is CPU, off the event loop)."""
        start, end = _range(ctx, since, to, default_days)
        fixes = await fixes_of(who, vehicle_id, start, end)
        body = await ctx.stores.run(lambda _s: build(fixes, start, end))
        return {**_head(vehicle_id, fixes, start, end), key: body}

    @api.get(
        "/vehicles/{vehicle_id}/places",
        response_model=None,
        responses={200: {"model": PlacesOut}, **errors(*KEYED, 404)},
    )
    async def vehicle_places(
        vehicle_id: VehicleId,
        who: viewer,
        since: Annotated[params.QueryTime | None, since_query] = None,
        to: Annotated[params.QueryTime | None, to_query] = None,
    ) -> dict[str, Any]:
        """Learned places (home, work, frequent stops) over the range (default the last 28
        days), each with its visits, dwell, last visit and the local hour the car is most
        likely there."""
        return await ranged(who, vehicle_id, since, to, PLACES_DAYS, "places", places_json)

    @api.get(
        "/vehicles/{vehicle_id}/stops",
        response_model=None,
        responses={200: {"model": StopsOut}, **errors(*KEYED, 404)},
    )
    async def vehicle_stops(
        vehicle_id: VehicleId,
        who: viewer,
        since: Annotated[params.QueryTime, since_query],
        to: Annotated[params.QueryTime | None, to_query] = None,
    ) -> dict[str, Any]:
        """Stops in the range, in time order (under 5 km/h within 200 m for 3 minutes)."""
        return await ranged(
            who, vehicle_id, since, to, 1, "stops", lambda fixes, _s, _e: stops_json(fixes)
        )

    @api.get(
        "/vehicles/{vehicle_id}/trips",
        response_model=None,
        responses={200: {"model": TripsOut}, **errors(*KEYED, 404)},
    )
    async def vehicle_trips(
        vehicle_id: VehicleId,
        who: viewer,
        since: Annotated[params.QueryTime, since_query],
        to: Annotated[params.QueryTime | None, to_query] = None,
    ) -> dict[str, Any]:
        """Trips between the stops of the range, with distance, duration and top speed."""
        return await ranged(
            who, vehicle_id, since, to, 1, "trips", lambda fixes, _s, _e: trips_json(fixes)
        )

    @api.get(
        "/vehicles/{vehicle_id}/risk",
        response_model=None,
        responses={200: {"model": RiskOut}, **errors(*KEYED, 404)},
    )
    async def vehicle_risk(vehicle_id: VehicleId, who: viewer) -> dict[str, Any]:
        """The vehicle's 0-100 risk score now, from its stored alerts, with the reasons."""
        now = ctx.clock_ms()

        def read(store: ScopedStore) -> tuple[bool, list[Any]]:
            bound = bool(store.devices(vehicle_id=vehicle_id, after="", limit=1))
            found: list[Any] = []
            while True:
                page = store.alerts(
                    vehicle_id=vehicle_id,
                    since_ms=now - RISK_LOOKBACK_DAYS * DAY_MS,
                    after_id=found[-1].id if found else 0,
                    limit=1000,
                )
                found += page
                if len(page) < 1000:
                    return bound, found

        bound, stored = await ctx.scoped(who, read)
        if not bound and not stored:
            raise not_found(f"no device is bound to vehicle {vehicle_id!r}")
        scored = score_vehicles([a.alert for a in stored], now)
        risk = scored[0].to_json() if scored else {"score": 0, "reasons": []}
        return {
            "vehicle_id": vehicle_id,
            "score": risk["score"],
            "reasons": risk["reasons"],
            "as_of": iso(now),
        }

    return api
