"""Where a car lives and goes over the API, on SQLite and PostgreSQL: places, stops, trips,
the risk score, and the `place` of positions and alerts; administrative fences posted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from alerts.delivery.hub import AlertHub
from alerts.model import Alert, AlertType
from api.app import READY, create_app
from api.context import ApiContext
from api.routes.alerts import alerts_router
from api.stores import StoreAccess
from geofence.admin import default_regions
from tests.support.api import ApiUnderTest, api_under_test, blocking_client, error

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# 2024-03-04T00:00:00+08:00, a Monday.
T0 = 1_709_481_600_000
HOME = (120.1300, 30.2750)  # Hangzhou
WORK = (120.1636, 30.2578)  # West Lake's east shore, ~3.8 km away
TERMINAL = "013900000001"
SPARE = "013900000002"  # the vehicle's wireless unit: a few fixes a day


def commute(days: int) -> list[dict[str, Any]]:
    """Home at night, work 09:00-18:00 on weekdays, 20-minute drives between."""
    rows: list[dict[str, Any]] = []

    def park(at: tuple[float, float], start: int, end: int, step: int) -> None:
        rows.extend(
            {"time_ms": t, "lon": at[0], "lat": at[1], "speed_kmh": 0.0}
            for t in range(start, end, step)
        )

    def drive(a: tuple[float, float], b: tuple[float, float], start: int) -> int:
        for i in range(1, 21):
            f = i / 20
            rows.append(
                {
                    "time_ms": start + (i - 1) * 60_000,
                    "lon": a[0] + f * (b[0] - a[0]),
                    "lat": a[1] + f * (b[1] - a[1]),
                    "speed_kmh": 40.0 + i,
                }
            )
        return start + 20 * 60_000

    t = T0
    for day in range(days):
        base = T0 + day * DAY_MS
        if day % 7 < 5:
            park(HOME, t, base + 8 * HOUR_MS + 30 * 60_000, 600_000)
            t = drive(HOME, WORK, base + 8 * HOUR_MS + 30 * 60_000)
            park(WORK, t, base + 18 * HOUR_MS, 300_000)
            t = drive(WORK, HOME, base + 18 * HOUR_MS)
        else:
            park(HOME, t, base + DAY_MS, 600_000)
            t = base + DAY_MS
    park(HOME, t, T0 + days * DAY_MS, 600_000)
    return rows


@pytest.fixture
def api(store_url: str | None, tmp_path: Path) -> Iterator[ApiUnderTest]:
    yield from api_under_test(store_url, tmp_path)


@pytest.fixture
def fleet(api: ApiUnderTest) -> ApiUnderTest:
    for terminal in (TERMINAL, SPARE):
        answer = api.client.put(
            f"/api/v1/devices/{terminal}", json={"vehicle_id": "V1"}, headers=api.admin
        )
        assert answer.status_code == 201, answer.text
    api.write(TERMINAL, commute(14))
    api.write(
        SPARE,
        [{"time_ms": T0 + h * 6 * HOUR_MS, "lon": HOME[0], "lat": HOME[1]} for h in range(20)],
    )
    return api


def district(at: tuple[float, float]) -> str:
    place = default_regions().places([at[0]], [at[1]])[0]
    assert place is not None
    return place["district"]


def span(days: int) -> dict[str, str]:
    return {"from": str(T0 // 1000), "to": str((T0 + days * DAY_MS) // 1000)}


def test_places_home_work_and_the_hour_to_find_the_car(fleet: ApiUnderTest) -> None:
    answer = fleet.client.get("/api/v1/vehicles/V1/places", params=span(14), headers=fleet.admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["terminal"] == TERMINAL  # the busiest unit, not the wireless one
    home, work = body["places"]
    assert (home["kind"], work["kind"]) == ("home", "work")
    assert home["place"]["city"] == "杭州市"
    assert home["place"]["district"] == district(HOME)
    assert work["place"]["district"] == district(WORK)
    assert home["visits"] == 11 and work["visits"] == 10
    assert work["workday_dwell_s"] > 10 * 8 * 3600
    assert 9 <= work["best_hour"]["hour"] <= 17
    assert home["best_hour"]["presence"] == 1.0
    assert len(home["presence_by_hour"]) == 24
    assert home["last_visit"].endswith("+08:00")


def test_stops_and_trips_of_a_day(fleet: ApiUnderTest) -> None:
    day = {"from": "2024-03-05T00:00:00+08:00", "to": "2024-03-05T23:59:59+08:00"}
    stops = fleet.client.get("/api/v1/vehicles/V1/stops", params=day, headers=fleet.admin)
    assert stops.status_code == 200, stops.text
    got = stops.json()["stops"]
    assert [s["place"]["district"] for s in got] == [district(HOME), district(WORK), district(HOME)]
    assert got[1]["start"] == "2024-03-05T08:49:00+08:00"
    assert got[-1]["ongoing"] is True
    trips = fleet.client.get("/api/v1/vehicles/V1/trips", params=day, headers=fleet.admin)
    assert trips.status_code == 200, trips.text
    morning, evening = trips.json()["trips"]
    assert morning["from"]["place"]["district"] == district(HOME)
    assert morning["to"]["place"]["district"] == district(WORK)
    assert 3500 < morning["distance_m"] < 4200
    assert morning["max_speed_kmh"] == 60.0
    assert 19 * 60 <= morning["duration_s"] <= 21 * 60
    assert evening["ongoing"] is False


def test_risk_score_with_its_reasons(fleet: ApiUnderTest) -> None:
    now = T0 + 14 * DAY_MS
    fleet.context.clock_ms = lambda: now
    empty = fleet.client.get("/api/v1/vehicles/V1/risk", headers=fleet.admin).json()
    assert empty["score"] == 0 and empty["reasons"] == []
    store = fleet.store()
    try:
        store.add_alerts(
            [
                Alert(AlertType.POWER_CUT, TERMINAL, "V1", now - 2 * HOUR_MS),
                Alert(AlertType.HOTSPOT_DWELL, TERMINAL, "V1", now - HOUR_MS, "pawn-1"),
            ],
            now,
        )
    finally:
        store.close()
    risk = fleet.client.get("/api/v1/vehicles/V1/risk", headers=fleet.admin).json()
    assert risk["score"] > 50
    assert {r["reason"] for r in risk["reasons"]} >= {"power_cut", "removal and pawn spot"}
    assert risk["as_of"].endswith("+08:00")


def test_positions_and_alerts_carry_their_place(fleet: ApiUnderTest) -> None:
    latest = fleet.client.get(f"/api/v1/devices/{TERMINAL}/latest", headers=fleet.admin)
    assert latest.json()["place"]["district"] == district(HOME)
    track = fleet.client.get(
        f"/api/v1/devices/{TERMINAL}/track",
        params={"from": "2024-03-05T12:00:00+08:00", "to": "2024-03-05T12:10:00+08:00"},
        headers=fleet.admin,
    ).json()
    assert {p["place"]["district"] for p in track} == {district(WORK)}
    store = fleet.store()
    at_work = T0 + DAY_MS + 12 * HOUR_MS + 2 * 60_000  # 2 min after a fix at work
    silent = T0 + 40 * DAY_MS  # no fix within 6 h before it
    try:
        store.add_alerts(
            [
                Alert(AlertType.OVERSPEED, TERMINAL, "V1", at_work),
                Alert(AlertType.OFFLINE, TERMINAL, "V1", silent),
                Alert(
                    AlertType.LEAVE_ALLOWED_AREA,
                    TERMINAL,
                    "V1",
                    at_work,
                    "zj",
                    details={"lon": 121.4737, "lat": 31.2304},
                ),
            ],
            at_work,
        )
    finally:
        store.close()
    # The alert routes as the process mounts them, over the same store.
    context = ApiContext(stores=StoreAccess(fleet.store, threads=1))
    context.extra_routers.append(alerts_router(context.stores, AlertHub(), context.auth.viewer))
    app = create_app(registry=CollectorRegistry(), ready=lambda: READY, context=context)
    with blocking_client(app) as client:
        alerts = client.get("/api/v1/alerts", headers=fleet.admin).json()
        by_type = {a["type"]: a for a in alerts}
        assert by_type["overspeed"]["place"]["district"] == district(WORK)
        assert by_type["offline"]["place"] is None
        assert by_type["leave_allowed_area"]["place"]["province"] == "上海市"
        one = client.get(f"/api/v1/alerts/{by_type['overspeed']['id']}", headers=fleet.admin)
        assert one.json()["place"]["district"] == district(WORK)
        moved = client.post(
            f"/api/v1/alerts/{by_type['offline']['id']}/acknowledge", headers=fleet.admin
        )
        assert moved.status_code == 200, moved.text
        assert "place" in moved.json()


def test_an_administrative_fence_is_posted_and_read_back(api: ApiUnderTest) -> None:
    feature = {
        "type": "Feature",
        "properties": {"id": "zj", "kind": "allowed_area", "adcode": "330000"},
        "geometry": None,
    }
    posted = api.client.post("/api/v1/fences", json=feature, headers=api.admin)
    assert posted.status_code == 201, posted.text
    stored = api.client.get("/api/v1/fences/zj", headers=api.admin).json()
    assert stored["geometry"] is None
    assert stored["properties"]["adcode"] == "330000"
    assert stored["properties"]["name"] == "浙江省"
    gcj = api.client.get("/api/v1/fences", params={"crs": "gcj02"}, headers=api.admin).json()
    assert gcj["features"][0]["geometry"] is None
    bad = {**feature, "properties": {**feature["properties"], "adcode": "999999"}}
    error(api.client.post("/api/v1/fences", json=bad, headers=api.admin), 400, "bad_fence")


def test_bad_requests_are_4xx(fleet: ApiUnderTest) -> None:
    headers = fleet.admin
    error(fleet.client.get("/api/v1/vehicles/nobody/places", headers=headers), 404, "not_found")
    error(fleet.client.get("/api/v1/vehicles/nobody/risk", headers=headers), 404, "not_found")
    backwards = {"from": "2024-03-05T00:00:00+08:00", "to": "2024-03-04T00:00:00+08:00"}
    empty = fleet.client.get("/api/v1/vehicles/V1/stops", params=backwards, headers=headers)
    assert empty.status_code == 200 and empty.json()["stops"] == []
    long = {"from": "0", "to": "2024-06-01T00:00:00+08:00"}
    clamped = fleet.client.get("/api/v1/vehicles/V1/trips", params=long, headers=headers)
    assert clamped.status_code == 200
    assert clamped.json()["from"] == "2024-03-01T00:00:00+08:00"  # the last 92 days
    answer = fleet.client.get(
        "/api/v1/vehicles/V1/stops", params={"from": "yesterday"}, headers=headers
    )
    assert answer.status_code == 400
    assert fleet.client.get("/api/v1/vehicles/V1/stops", params=span(1)).status_code == 401
