"""The `/api/v1` HTTP API over SQLite and real PostgreSQL: keys and roles, devices, positions,
vehicles, fences, and the failure paths (401, 403, 404, 400 naming the field, 503, never 500)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from api.app import READY, Readiness, create_app
from api.auth import ensure_admin_key, hash_key
from api.context import ApiContext
from api.stores import StoreAccess
from geofence import load_fences
from positions import Flag
from store import Device, open_store
from store.fencerows import feature_collection
from tests.support.api import ApiUnderTest, api_under_test, blocking_client, error

T0 = 1_704_081_600_000  # 2024-01-01T12:00:00+08:00
A = "013900000001"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiUnderTest]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    yield from api_under_test(url, tmp_path, max_track_points=50)


def provision(api: ApiUnderTest, terminal: str = A, vehicle: str | None = "V1") -> Any:
    body = {} if vehicle is None else {"vehicle_id": vehicle}
    return api.client.put(f"/api/v1/devices/{terminal}", json=body, headers=api.admin)


# -- keys and roles --------------------------------------------------------------------------


def test_requests_without_a_valid_bearer_key_get_401(api: ApiUnderTest) -> None:
    client = api.client
    for headers in (
        {},
        {"Authorization": "Bearer lw_not-a-key"},
        {"Authorization": f"Basic {api.admin_key}"},
        {"Authorization": "Bearer "},
    ):
        answer = client.get("/api/v1/devices", headers=headers)
        error(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz").json() == {"status": "ok"}  # no key needed
    assert client.get("/metrics").status_code == 200


def test_roles_nest_viewer_reads_officer_acts_admin_manages(api: ApiUnderTest) -> None:
    client = api.client
    viewer, officer = api.key("viewer"), api.key("officer")
    assert client.get("/api/v1/me", headers=viewer).json() == {
        "name": "k-viewer",
        "role": "viewer",
        "org": 1,
    }
    assert client.get("/api/v1/devices", headers=viewer).status_code == 200
    fence = {"type": "Feature", "properties": {"id": "f", "kind": "hotspot"}, "geometry": None}
    for headers in (viewer, officer):
        error(client.post("/api/v1/fences", json=fence, headers=headers), 403, "forbidden")
        error(client.get("/api/v1/keys", headers=headers), 403, "forbidden")
        error(client.put(f"/api/v1/devices/{A}", json={}, headers=headers), 403, "forbidden")
    command = {"kind": "query_location"}
    detail = error(
        client.post(f"/api/v1/devices/{A}/commands", json=command, headers=viewer),
        403,
        "forbidden",
    )
    assert "needs officer" in detail
    # An officer passes the role check (and meets the unknown device).
    answer = client.post(f"/api/v1/devices/{A}/commands", json=command, headers=officer)
    error(answer, 404, "not_found")


def test_a_key_is_shown_once_stored_hashed_and_revoked_at_once(api: ApiUnderTest) -> None:
    client = api.client
    created = client.post(
        "/api/v1/keys", json={"name": "alice", "role": "officer"}, headers=api.admin
    )
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert key.startswith("lw_") and len(key) > 40
    assert body["prefix"] == key[:10] and body["role"] == "officer"
    listed = client.get("/api/v1/keys", headers=api.admin).json()["keys"]
    assert {k["name"] for k in listed} == {"admin", "alice"}
    assert all("key" not in k for k in listed)
    store = api.store()
    try:
        stored = next(k for k in store.list_api_keys() if k.name == "alice")
    finally:
        store.close()
    assert stored.key_hash == hash_key(key) and key not in repr(stored).replace(key[:10], "")
    assert client.get("/api/v1/me", headers=api.auth(key)).status_code == 200
    assert client.delete("/api/v1/keys/alice", headers=api.admin).json() == {"deleted": "alice"}
    error(client.get("/api/v1/me", headers=api.auth(key)), 401, "unauthorized")
    error(client.delete("/api/v1/keys/alice", headers=api.admin), 404, "not_found")


def test_key_requests_with_bad_fields_name_the_field(api: ApiUnderTest) -> None:
    client, admin = api.client, api.admin
    post = client.post
    error(
        post("/api/v1/keys", json={"name": "x", "role": "root"}, headers=admin),
        400,
        "bad_request",
        "body.role",
    )
    error(
        post("/api/v1/keys", json={"name": "a b", "role": "viewer"}, headers=admin),
        400,
        "bad_request",
        "body.name",
    )
    error(
        post("/api/v1/keys", json={"role": "viewer"}, headers=admin),
        400,
        "bad_request",
        "body.name",
    )
    error(
        post("/api/v1/keys", json={"name": "x", "role": "viewer", "rol": 1}, headers=admin),
        400,
        "bad_request",
        "body.rol",
    )
    error(post("/api/v1/keys", content=b"{not json", headers=admin), 400, "bad_request", "body")
    error(
        post("/api/v1/keys", json={"name": "admin", "role": "viewer"}, headers=admin),
        409,
        "conflict",
        "name",
    )


def test_the_last_admin_key_cannot_be_deleted(api: ApiUnderTest) -> None:
    client = api.client
    error(client.delete("/api/v1/keys/admin", headers=api.admin), 409, "last_admin")
    second = api.key("admin", "ops")
    assert client.delete("/api/v1/keys/admin", headers=second).status_code == 200
    error(client.get("/api/v1/me", headers=api.admin), 401, "unauthorized")


def test_the_bootstrap_creates_an_admin_key_once_or_stores_the_configured_one(
    api: ApiUnderTest,
) -> None:
    store = api.store()
    try:
        assert ensure_admin_key(store, None) is None  # the fixture's admin key exists
        assert ensure_admin_key(store, "configured-secret-1") is None
        assert ensure_admin_key(store, "configured-secret-1") is None
        admins = [k for k in store.list_api_keys() if k.role == "admin"]
        assert [k.name for k in admins] == ["admin"]
        assert admins[0].key_hash == hash_key("configured-secret-1")
    finally:
        store.close()
    client = api.client
    assert client.get("/api/v1/me", headers=api.auth("configured-secret-1")).json() == {
        "name": "admin",
        "role": "admin",
        "org": 1,
    }
    error(client.get("/api/v1/me", headers=api.admin), 401, "unauthorized")  # replaced


# -- devices, positions, vehicles ------------------------------------------------------------


def test_provisioning_creates_a_device_with_an_auth_code_and_rebinding_keeps_it(
    api: ApiUnderTest,
) -> None:
    created = provision(api, "13900000001", "V1")  # the 11-digit SIM number
    assert created.status_code == 201
    device = created.json()
    assert device["terminal"] == A and device["vehicle_id"] == "V1"
    assert len(device["auth_code"]) == 16 and device["online"] is True
    rebound = provision(api, A, "V2")
    assert rebound.status_code == 200
    assert rebound.json()["auth_code"] == device["auth_code"]
    assert rebound.json()["vehicle_id"] == "V2"
    assert [d.vehicle_id for d in api.changed] == ["V1", "V2"]
    own = api.client.put(f"/api/v1/devices/{A}", json={"auth_code": "abc123"}, headers=api.admin)
    assert own.json()["auth_code"] == "abc123" and own.json()["vehicle_id"] == "V2"
    viewer = api.key("viewer")
    seen = api.client.get(f"/api/v1/devices/{A}", headers=viewer).json()
    assert "auth_code" not in seen and seen["vehicle_id"] == "V2" and seen["latest"] is None


def test_a_device_is_taken_off_its_car_by_an_explicit_null(api: ApiUnderTest) -> None:
    provision(api, A, "V1")
    unbound = api.client.put(f"/api/v1/devices/{A}", json={"vehicle_id": None}, headers=api.admin)
    assert unbound.status_code == 200, unbound.text
    assert unbound.json()["vehicle_id"] is None
    assert api.changed[-1].vehicle_id is None  # the gateway and the engine are told
    listed = api.client.get("/api/v1/devices?vehicle_id=V1", headers=api.admin).json()
    assert listed["devices"] == []
    kept = api.client.put(f"/api/v1/devices/{A}", json={"auth_code": "x1"}, headers=api.admin)
    assert kept.json()["vehicle_id"] is None


def test_device_requests_with_bad_values_name_the_field(api: ApiUnderTest) -> None:
    client, admin = api.client, api.admin
    error(client.get("/api/v1/devices/12ab", headers=admin), 400, "bad_request", "path.terminal")
    error(
        client.get("/api/v1/devices/" + "1" * 21, headers=admin),
        400,
        "bad_request",
        "path.terminal",
    )
    error(
        client.put(f"/api/v1/devices/{A}", json={"vehicle_id": ""}, headers=admin),
        400,
        "bad_request",
        "body.vehicle_id",
    )
    error(
        client.put(f"/api/v1/devices/{A}", json={"vehicle_id": 7}, headers=admin),
        400,
        "bad_request",
        "body.vehicle_id",
    )
    error(client.put(f"/api/v1/devices/{A}", json=[1], headers=admin), 400, "bad_request", "body")
    error(client.get("/api/v1/devices?limit=0", headers=admin), 400, "bad_request", "query.limit")
    error(client.get("/api/v1/devices?limit=x", headers=admin), 400, "bad_request", "query.limit")
    error(client.get(f"/api/v1/devices/{A}", headers=admin), 404, "not_found")
    error(client.get("/api/v1/devices/%00", headers=admin), 400, "bad_request", "path.terminal")
    error(client.get("/api/v1/vehicles/V%00", headers=admin), 400, "bad_request", "path.vehicle_id")


def test_devices_come_in_pages_filtered_by_vehicle_with_latest_positions(
    api: ApiUnderTest,
) -> None:
    for i in range(5):
        provision(api, f"01390000001{i}", "V1" if i < 3 else "V2")
    api.write("013900000010", [{"time_ms": T0, "lon": 121.5, "lat": 31.2}])
    client, viewer = api.client, api.key("viewer")
    first = client.get("/api/v1/devices?limit=2", headers=viewer).json()
    assert [d["terminal"] for d in first["devices"]] == ["013900000010", "013900000011"]
    assert "latest" not in first["devices"][0]
    second = client.get(f"/api/v1/devices?limit=2&after={first['next']}", headers=viewer).json()
    last = client.get(f"/api/v1/devices?limit=2&after={second['next']}", headers=viewer).json()
    assert [d["terminal"] for d in last["devices"]] == ["013900000014"]
    assert last["next"] is None
    v1 = client.get("/api/v1/devices?vehicle_id=V1&latest=true", headers=viewer).json()
    assert [d["terminal"] for d in v1["devices"]] == [f"01390000001{i}" for i in range(3)]
    assert v1["devices"][0]["latest"]["lon"] == 121.5
    assert v1["devices"][1]["latest"] is None


def test_latest_position_has_the_fields_of_the_decode_contract(api: ApiUnderTest) -> None:
    provision(api)
    api.write(
        A,
        [
            {"time_ms": T0 - 60_000, "lon": 120.0, "lat": 30.0},
            {
                "time_ms": T0,
                "recv_ms": T0 + 1_250,
                "lon": 121.512345,
                "lat": 31.234567,
                "altitude_m": 12,
                "speed_kmh": 60.5,
                "course": 90,
                "alarm": 256,
                "status": 3,
            },
            # Newer but not a valid fix: never the latest.
            {"time_ms": T0 + 60_000, "lon": 1.0, "lat": 1.0, "flags": int(Flag.INVALID_FIX)},
        ],
    )
    answer = api.client.get(f"/api/v1/devices/{A}/latest", headers=api.key("viewer"))
    assert answer.status_code == 200
    assert answer.json() == {
        "terminal": A,
        "lat": 31.234567,
        "lon": 121.512345,
        "altitude_m": 12,
        "speed_kmh": 60.5,
        "course": 90,
        "time": "2024-01-01T12:00:00+08:00",
        "device_time": "2024-01-01T12:00:00+08:00",
        "alarm": 256,
        "status": 3,
        "received": "2024-01-01T12:00:01.250+08:00",
        "flags": [],
        "valid": True,
        "place": {
            "province": "上海市",
            "city": "上海市",
            "district": "浦东新区",
            "adcode": "310115",
        },
    }


def test_latest_answers_404_for_unknown_devices_and_devices_without_a_fix(
    api: ApiUnderTest,
) -> None:
    viewer = api.key("viewer")
    error(api.client.get(f"/api/v1/devices/{A}/latest", headers=viewer), 404, "not_found")
    provision(api)
    error(api.client.get(f"/api/v1/devices/{A}/latest", headers=viewer), 404, "no_position")


def test_a_southern_western_fix_keeps_its_signs(api: ApiUnderTest) -> None:
    provision(api)
    api.write(A, [{"time_ms": T0, "lon": -45.678901, "lat": -23.456789, "status": 15}])
    got = api.client.get(f"/api/v1/devices/{A}/latest", headers=api.admin).json()
    assert (got["lon"], got["lat"], got["status"]) == (-45.678901, -23.456789, 15)


def test_track_gives_positions_in_time_order_between_inclusive_bounds(
    api: ApiUnderTest,
) -> None:
    provision(api)
    rows = [{"time_ms": T0 + i * 10_000, "lon": 121.0 + i / 1000, "lat": 31.0} for i in range(30)]
    api.write(A, list(reversed(rows[10:])) + rows[:10])  # stored out of order
    client, viewer = api.client, api.key("viewer")
    track = client.get(
        f"/api/v1/devices/{A}/track",
        params={"from": "2024-01-01T12:00:10+08:00", "to": "2024-01-01T04:01:00Z"},
        headers=viewer,
    )
    assert track.status_code == 200
    times = [p["time"] for p in track.json()]
    assert times[0] == "2024-01-01T12:00:10+08:00" and times[-1] == "2024-01-01T12:01:00+08:00"
    assert len(times) == 6 and times == sorted(times)
    # A "+" typed into a URL arrives as a space: still understood.
    raw = client.get(
        f"/api/v1/devices/{A}/track?from=2024-01-01T12:00:00+08:00&to=2024-01-01T12:00:20+08:00",
        headers=viewer,
    )
    assert [p["lon"] for p in raw.json()] == [121.0, 121.001, 121.002]
    thinned = client.get(
        f"/api/v1/devices/{A}/track",
        params={"from": str(T0 // 1000), "to": str(T0 // 1000 + 3600), "max_points": 4},
        headers=viewer,
    ).json()
    assert [p["lon"] for p in thinned] == [121.0, 121.01, 121.019, 121.029]
    spaced = client.get(
        f"/api/v1/devices/{A}/track",
        params={"from": str(T0 // 1000), "to": str(T0 // 1000 + 3600), "interval_s": 60},
        headers=viewer,
    ).json()
    assert [p["lon"] for p in spaced] == [121.0, 121.006, 121.012, 121.018, 121.024]


def test_track_requests_with_bad_values_name_the_field(api: ApiUnderTest) -> None:
    provision(api)
    api.write(A, [{"time_ms": T0 + i * 1000, "lon": 121.0, "lat": 31.0} for i in range(60)])
    client, viewer = api.client, api.key("viewer")
    url = f"/api/v1/devices/{A}/track"
    day = {"from": "2024-01-01T00:00:00+08:00", "to": "2024-01-02T00:00:00+08:00"}
    error(client.get(url, headers=viewer), 400, "bad_request", "query.from")
    yesterday = client.get(url, params={"from": "yesterday"}, headers=viewer)
    error(yesterday, 400, "bad_request", "query.from")
    error(
        client.get(url, params={"from": "2024-01-01T00:00:00"}, headers=viewer),
        400,
        "bad_request",
        "query.from",
    )
    # to before from: an empty range, so no position (not an error: both are valid times)
    backwards = client.get(url, params={**day, "to": "2023-01-01T00:00:00Z"}, headers=viewer)
    assert backwards.status_code == 200 and backwards.json() == []
    error(
        client.get(url, params={**day, "max_points": 0}, headers=viewer),
        400,
        "bad_request",
        "query.max_points",
    )
    error(
        client.get(url, params={**day, "interval_s": -1}, headers=viewer),
        400,
        "bad_request",
        "query.interval_s",
    )
    error(
        client.get(url, params={"from": "1e400"}, headers=viewer), 400, "bad_request", "query.from"
    )
    # 60 positions in range, the deployment allows 50 per answer: say how to narrow it.
    detail = error(client.get(url, params=day, headers=viewer), 400, "bad_request", "max_points")
    assert "more than 50 positions" in detail
    assert len(client.get(url, params={**day, "max_points": 50}, headers=viewer).json()) == 50
    error(
        client.get("/api/v1/devices/013900000099/track", params=day, headers=viewer),
        404,
        "not_found",
    )


def test_a_vehicle_shows_each_device_with_its_latest_position(api: ApiUnderTest) -> None:
    provision(api, "013900000021", "CAR-7")
    provision(api, "013900000022", "CAR-7")
    provision(api, "013900000023", "CAR-8")
    api.write("013900000022", [{"time_ms": T0, "lon": 114.3, "lat": 30.5}])
    got = api.client.get("/api/v1/vehicles/CAR-7", headers=api.key("viewer")).json()
    assert got["vehicle_id"] == "CAR-7"
    assert [d["terminal"] for d in got["devices"]] == ["013900000021", "013900000022"]
    assert got["devices"][0]["latest"] is None and got["devices"][0]["online"] is True
    assert got["devices"][1]["latest"]["lat"] == 30.5 and got["devices"][1]["online"] is False
    error(api.client.get("/api/v1/vehicles/CAR-9", headers=api.admin), 404, "not_found")


# -- fences ----------------------------------------------------------------------------------


def feature(props: dict[str, Any], geometry: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": geometry}


SQUARE = {"type": "Polygon", "coordinates": [[[121, 31], [121.1, 31], [121.1, 31.1], [121, 31.1]]]}
FENCES = {
    "type": "FeatureCollection",
    "features": [
        feature(
            {
                "id": "pawn-17",
                "kind": "hotspot",
                "name": "当铺",
                "category": "pawn",
                "radius_m": 150,
            },
            {"type": "Point", "coordinates": [121.47, 31.23]},
        ),
        feature({"id": "shanghai", "kind": "allowed_area", "vehicles": ["V1"]}, SQUARE),
        feature(
            {"id": "road", "kind": "zone", "notify": ["exit"], "buffer_m": 200},
            {"type": "LineString", "coordinates": [[121.0, 31.0], [121.2, 31.1]]},
        ),
    ],
}


def test_posted_fences_are_stored_listed_fetched_and_deleted(api: ApiUnderTest) -> None:
    client, admin, viewer = api.client, api.admin, api.key("viewer")
    posted = client.post("/api/v1/fences", json=FENCES, headers=admin)
    assert posted.status_code == 201
    assert posted.json() == {"version": 1, "ids": ["pawn-17", "shanghai", "road"]}
    listed = client.get("/api/v1/fences", headers=viewer).json()
    assert listed["type"] == "FeatureCollection" and listed["version"] == 1
    by_id = {f["properties"]["id"]: f for f in listed["features"]}
    assert set(by_id) == {"pawn-17", "shanghai", "road"}
    assert by_id["pawn-17"]["properties"]["radius_m"] == 150
    assert by_id["road"]["properties"]["notify"] == ["exit"]
    assert by_id["shanghai"]["properties"]["vehicles"] == ["V1"]
    # What the API stored is what the engine loads: same fences as posted.
    assert by_id["pawn-17"]["properties"]["name"] == "当铺"
    assert by_id["pawn-17"]["properties"]["category"] == "pawn"  # other properties kept
    assert sorted(load_fences(listed), key=lambda f: f.id) == sorted(
        load_fences(FENCES), key=lambda f: f.id
    )
    one = client.get("/api/v1/fences/road", headers=viewer).json()
    assert one == by_id["road"]
    hotspots = client.get("/api/v1/fences?kind=hotspot", headers=viewer).json()
    assert [f["properties"]["id"] for f in hotspots["features"]] == ["pawn-17"]
    deleted = client.delete("/api/v1/fences/road", headers=admin)
    assert deleted.json() == {"deleted": "road", "version": 2}
    error(client.get("/api/v1/fences/road", headers=viewer), 404, "not_found")
    error(client.delete("/api/v1/fences/road", headers=admin), 404, "not_found")


def test_a_single_feature_replaces_the_fence_of_its_id_and_bumps_the_version(
    api: ApiUnderTest,
) -> None:
    client, admin = api.client, api.admin
    client.post("/api/v1/fences", json=FENCES, headers=admin)
    moved = feature(
        {"id": "pawn-17", "kind": "hotspot", "radius_m": 300},
        {"type": "Point", "coordinates": [121.48, 31.24]},
    )
    answer = client.post("/api/v1/fences", json=moved, headers=admin)
    assert answer.json() == {"version": 2, "ids": ["pawn-17"]}
    got = client.get("/api/v1/fences/pawn-17", headers=admin).json()
    assert got["geometry"]["coordinates"] == [121.48, 31.24]
    assert got["properties"]["radius_m"] == 300
    store = api.store()
    try:
        assert store.fences_version() == 2
        fences = load_fences(feature_collection(store.list_fences()))
    finally:
        store.close()
    assert sorted(f.id for f in fences) == ["pawn-17", "road", "shanghai"]


def test_bad_fences_are_refused_naming_the_feature_and_field(api: ApiUnderTest) -> None:
    client, admin = api.client, api.admin
    no_kind = {
        "type": "FeatureCollection",
        "features": [FENCES["features"][1], feature({"id": "x"}, SQUARE)],
    }
    detail = error(client.post("/api/v1/fences", json=no_kind, headers=admin), 400, "bad_fence")
    assert "feature 1 (id 'x'): properties.kind" in detail
    far = feature({"id": "y", "kind": "zone"}, {"type": "Polygon", "coordinates": [[[200, 1]]]})
    detail = error(client.post("/api/v1/fences", json=far, headers=admin), 400, "bad_fence")
    assert "feature 0 (id 'y'): geometry.coordinates" in detail
    error(client.post("/api/v1/fences", content=b"[1,", headers=admin), 400, "bad_request", "body")
    error(client.post("/api/v1/fences", json={"type": "Point"}, headers=admin), 400, "bad_fence")
    empty = {"type": "FeatureCollection", "features": []}
    error(client.post("/api/v1/fences", json=empty, headers=admin), 400, "bad_request", "features")
    error(
        client.post("/api/v1/fences?crs=mars", json=FENCES, headers=admin),
        400,
        "bad_request",
        "query.crs",
    )
    error(client.get("/api/v1/fences?kind=castle", headers=admin), 400, "bad_request", "query.kind")
    assert client.get("/api/v1/fences", headers=admin).json()["version"] == 0  # nothing stored


def test_fences_drawn_on_a_chinese_map_are_stored_in_wgs84_and_given_back_in_kind(
    api: ApiUnderTest,
) -> None:
    client, admin = api.client, api.admin
    drawn = feature(
        {"id": "pawn-1", "kind": "hotspot", "radius_m": 100},
        {"type": "Point", "coordinates": [116.41024449916938, 39.91640428150164]},
    )
    assert client.post("/api/v1/fences?crs=gcj02", json=drawn, headers=admin).status_code == 201
    stored = client.get("/api/v1/fences/pawn-1", headers=admin).json()
    lon, lat = stored["geometry"]["coordinates"]
    assert abs(lon - 116.404) < 1e-5 and abs(lat - 39.915) < 1e-5
    back = client.get("/api/v1/fences/pawn-1?crs=gcj02", headers=admin).json()
    lon, lat = back["geometry"]["coordinates"]
    assert abs(lon - 116.41024449916938) < 1e-5 and abs(lat - 39.91640428150164) < 1e-5
    assert back["properties"]["crs"] == "gcj02"


# -- whole-app failure paths -----------------------------------------------------------------


def test_unknown_paths_and_methods_answer_json_errors(api: ApiUnderTest) -> None:
    client = api.client
    error(client.get("/api/v1/nothing-here", headers=api.admin), 404, "not_found")
    error(client.post("/api/v1/devices", headers=api.admin), 405, "method_not_allowed")


def test_a_database_outage_answers_503_not_500(tmp_path: Path) -> None:
    context = ApiContext(
        stores=StoreAccess(lambda: open_store("postgresql://postgres@127.0.0.1:1/none", tmp_path))
    )
    app = create_app(registry=CollectorRegistry(), ready=lambda: READY, context=context)
    with blocking_client(app) as client:
        answer = client.get("/api/v1/devices", headers={"Authorization": "Bearer lw_x"})
        error(answer, 503, "store_unavailable")
        assert client.get("/healthz").status_code == 200


def test_the_app_without_a_context_keeps_only_the_operations_endpoints() -> None:
    app = create_app(registry=CollectorRegistry(), ready=lambda: Readiness("starting"))
    with blocking_client(app) as client:
        assert client.get("/healthz").status_code == 503
        error(client.get("/api/v1/devices"), 404, "not_found")
        error(client.get("/"), 404, "not_found")


def test_a_provisioned_device_is_seen_by_a_new_store_connection(api: ApiUnderTest) -> None:
    provision(api, A, "V1")
    store = api.store()
    try:
        stored = store.get_device(A)
    finally:
        store.close()
    assert stored is not None and stored.auth_code
    assert stored == Device(A, auth_code=stored.auth_code, vehicle_id="V1")


def test_the_openapi_description_lists_the_v1_routes(api: ApiUnderTest) -> None:
    schema = api.client.get("/openapi.json").json()
    for path in (
        "/api/v1/keys",
        "/api/v1/devices",
        "/api/v1/devices/{terminal}/latest",
        "/api/v1/devices/{terminal}/track",
        "/api/v1/vehicles/{vehicle_id}",
        "/api/v1/fences",
        "/api/v1/fences/{fence_id}",
        "/api/v1/devices/{terminal}/commands",
        "/api/v1/commands/{command_id}",
    ):
        assert path in schema["paths"], path
    assert api.client.get("/api/docs").status_code == 200


def test_healthz_tells_degraded_from_not_serving() -> None:
    """A process waiting for its database or for disk space is alive: 200 with the reasons;
    only one that does not serve (starting, stopping) answers 503."""
    state = [READY]
    app = create_app(registry=CollectorRegistry(), ready=lambda: state[0])
    with blocking_client(app) as client:
        assert (client.get("/healthz").status_code, client.get("/healthz").json()) == (
            200,
            {"status": "ok"},
        )
        state[0] = Readiness.of(["database unavailable: positions wait in the journal"])
        answer = client.get("/healthz")
        assert answer.status_code == 200
        assert answer.json() == {
            "status": "degraded",
            "reasons": ["database unavailable: positions wait in the journal"],
        }
        state[0] = Readiness("stopping")
        assert client.get("/healthz").status_code == 503
