"""Portfolio figures, exports and the map's data over SQLite and real PostgreSQL: cars by risk
level and by state, alerts per type per day, overdue buckets crossed with unresolved alerts,
CSV and XLSX exports of alerts and of a car's track, and the map's cars, car panel and track
in WGS-84 or a Chinese datum."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from alerts.lifecycle import AlertState
from alerts.model import Alert, AlertType
from api.app import READY, create_app
from api.context import ApiContext
from api.map_options import MapOptions
from api.stores import StoreAccess
from geofence.crs import Crs, wgs84_to_gcj02
from organizations import EVERYWHERE
from store import open_store
from store.scoped import ScopedStore
from tests.support.api import ApiUnderTest, api_under_test, blocking_client, error

# 2024-06-30T12:00:00+08:00: "today" is 2024-06-30 in GMT+8.
NOW = 1_719_720_000_000
HOUR, DAY = 3_600_000, 86_400_000
POWER_CUT = 1 << 8
# terminal -> (vehicle, lon, lat, fix time, speed, alarm word)
FLEET = {
    "013900000001": ("V1", 120.10, 30.20, NOW - 60_000, 40.0, 0),  # moving
    "013900000002": ("V2", 120.20, 30.25, NOW - 60_000, 0.0, 0),  # alarm: a high alert
    "013900000003": ("V3", 120.30, 30.30, NOW - 2 * HOUR, 0.0, 0),  # offline
    "013900000004": ("V4", 120.40, 30.35, NOW - 30_000, 0.0, 0),  # parked
    "013900000005": (None, 120.50, 30.40, NOW - 30_000, 0.0, POWER_CUT),  # alarm bit, no car
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiUnderTest]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    for under_test in api_under_test(url, tmp_path):
        under_test.context.clock_ms = lambda: NOW
        yield under_test


def seed(api: ApiUnderTest) -> None:
    for terminal, (vehicle, lon, lat, t, speed, alarm) in FLEET.items():
        body = {"vehicle_id": vehicle} if vehicle else {}
        assert api.client.put(
            f"/api/v1/devices/{terminal}", json=body, headers=api.admin
        ).is_success
        api.write(
            terminal, [{"time_ms": t, "lon": lon, "lat": lat, "speed_kmh": speed, "alarm": alarm}]
        )
    for loan_no, vehicle, paid in (
        ("L-1", "V1", None),  # next due 2024-02-15: 136 days past due, M4+
        ("L-2", "V2", "2024-06-15"),  # next due 2024-07-15: current, M0
        ("L-3", "V3", "2024-05-15"),  # next due 2024-06-15: 15 days, M1
    ):
        body = {
            "loan_no": loan_no,
            "borrower_name": "张三丰",
            "vehicle_id": vehicle,
            "principal": "100000.00",
            "start_date": "2024-01-10",
            "due_day": 15,
            **({"paid_through": paid} if paid else {}),
        }
        assert api.client.post("/api/v1/loans", json=body, headers=api.admin).status_code == 201
    store = api.store()
    try:
        added = store.add_alerts(
            [
                Alert(AlertType.GPS_JUMP, "013900000001", "V1", NOW - DAY),
                Alert(AlertType.OVERSPEED, "013900000001", "V1", NOW - 2 * DAY),
                Alert(AlertType.HOTSPOT_DWELL, "013900000002", "V2", NOW - HOUR, "pawn-1"),
                Alert(AlertType.LEAVE_ALLOWED_AREA, "013900000003", "V3", NOW - DAY),
            ],
            NOW - 1000,
        )
        ids = {a.alert.vehicle_id + a.alert.type.value: a.id for a in added.new}
        store.transition_alert(ids["V2hotspot_dwell"], AlertState.ACKNOWLEDGED, "li", None, NOW)
        store.transition_alert(ids["V3leave_allowed_area"], AlertState.RESOLVED, "li", None, NOW)
    finally:
        store.close()


def test_cars_by_state_and_by_risk_level(api: ApiUnderTest) -> None:
    seed(api)
    states = api.client.get("/api/v1/figures/states", headers=api.admin).json()
    assert states["cars"] == 5 and states["offline_after_s"] == 600
    assert states["states"] == {"moving": 1, "parked": 1, "offline": 1, "alarm": 2}
    # A tighter offline bound: V1 and V2 (heard a minute ago) stay, V4 and the lone unit
    # (30 s ago) too; nothing moves but the bound is checked.
    tight = api.client.get("/api/v1/figures/states?offline_after_s=45", headers=api.admin).json()
    assert tight["states"] == {"moving": 0, "parked": 1, "offline": 2, "alarm": 2}

    risk = api.client.get("/api/v1/figures/risk", headers=api.admin).json()
    # V2: a pawn-shop dwell an hour old (35 points) scores 44, medium; V3: leaving its area a
    # day ago (30 points, 3-day half-life: 23.8) scores 33, medium, resolved or not; V1's
    # gps_jump and overspeed (under 8 points) score 12, low; V4 and the lone unit have none.
    assert risk["cars"] == 5
    assert risk["levels"] == {"low": 3, "medium": 2, "high": 0, "critical": 0}
    short = api.client.get("/api/v1/figures/risk?days=1", headers=api.admin).json()
    assert short["levels"]["medium"] == 2  # both medium alerts are within a day
    error(
        api.client.get("/api/v1/figures/risk?days=0", headers=api.admin),
        400,
        "bad_request",
        "query.days",
    )


def test_alerts_per_type_per_day(api: ApiUnderTest) -> None:
    seed(api)
    answer = api.client.get(
        f"/api/v1/figures/alerts?from={(NOW - 3 * DAY) // 1000}", headers=api.admin
    )
    figures = answer.json()
    assert [d["day"] for d in figures["days"]] == [
        "2024-06-27",
        "2024-06-28",
        "2024-06-29",
        "2024-06-30",
    ]
    per_day = {d["day"]: {k: v for k, v in d["counts"].items() if v} for d in figures["days"]}
    assert per_day == {
        "2024-06-27": {},
        "2024-06-28": {"overspeed": 1},
        "2024-06-29": {"gps_jump": 1, "leave_allowed_area": 1},
        "2024-06-30": {"hotspot_dwell": 1},
    }
    assert [d["total"] for d in figures["days"]] == [0, 1, 2, 1]
    root = str(api.client.get("/api/v1/me", headers=api.admin).json()["org"])
    assert figures["days"][2]["units"] == {root: {"gps_jump": 1, "leave_allowed_area": 1}}
    assert figures["days"][0]["units"] == {}
    assert figures["totals"]["gps_jump"] == 1 and figures["totals"]["power_cut"] == 0
    assert set(figures["days"][0]["counts"]) == {t.value for t in AlertType}
    backwards = f"/api/v1/figures/alerts?from={NOW // 1000}&to={(NOW - DAY) // 1000}"
    empty = api.client.get(backwards, headers=api.admin).json()
    assert empty["days"] == [] and sum(empty["totals"].values()) == 0
    # Over 366 days keeps the last 366 (schema-valid queries are answered, not refused).
    long = api.client.get("/api/v1/figures/alerts?from=0", headers=api.admin).json()
    assert len(long["days"]) == 366 and long["days"][-1]["day"] == "2024-06-30"
    assert long["from"] == "2023-07-01T00:00:00+08:00" and long["totals"]["overspeed"] == 1
    far = api.client.get("/api/v1/figures/alerts?to=-0393054501307", headers=api.admin)
    assert far.status_code == 200 and far.json()["days"][0]["day"] == "1970-01-01"


def test_overdue_buckets_crossed_with_unresolved_alerts(api: ApiUnderTest) -> None:
    seed(api)
    figures = api.client.get("/api/v1/figures/overdue", headers=api.admin).json()
    assert figures["as_of"] == "2024-06-30"
    rows = {r["bucket"]: r for r in figures["buckets"]}
    assert list(rows) == ["M0", "M1", "M2", "M3", "M4+"]
    assert rows["M4+"] == {
        "bucket": "M4+",
        "loans": 1,
        "with_open_alerts": 1,
        "open_alerts": 2,
        "by_type": {"gps_jump": 1, "overspeed": 1},
    }
    assert (rows["M0"]["loans"], rows["M0"]["with_open_alerts"], rows["M0"]["by_type"]) == (
        1,
        1,
        {"hotspot_dwell": 1},  # acknowledged is still unresolved
    )
    assert (rows["M1"]["loans"], rows["M1"]["open_alerts"]) == (1, 0)  # V3's alert is resolved
    assert rows["M2"]["loans"] == rows["M3"]["loans"] == 0


def read_csv(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def xlsx_text(body: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        return "".join(book.read(n).decode() for n in book.namelist() if n.endswith(".xml"))


def test_alert_exports_as_csv_and_xlsx(api: ApiUnderTest) -> None:
    seed(api)
    answer = api.client.get("/api/v1/exports/alerts.csv", headers=api.admin)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert 'filename="alerts.csv"' in answer.headers["content-disposition"]
    rows = read_csv(answer.content)
    assert rows[0][:5] == ["id", "type", "severity", "state", "time"]
    assert [r[1] for r in rows[1:]] == [
        "gps_jump",
        "overspeed",
        "hotspot_dwell",
        "leave_allowed_area",
    ]
    dwell = dict(zip(rows[0], rows[3], strict=True))
    assert (dwell["state"], dwell["fence_id"], dwell["acknowledged_by"]) == (
        "acknowledged",
        "pawn-1",
        "li",
    )
    assert dwell["time"] == "2024-06-30T11:00:00+08:00"

    some = api.client.get(
        f"/api/v1/exports/alerts.csv?type=overspeed,gps_jump&until={(NOW - 36 * HOUR) // 1000}",
        headers=api.admin,
    )
    assert [r[1] for r in read_csv(some.content)[1:]] == ["overspeed"]
    unresolved = api.client.get(
        "/api/v1/exports/alerts.csv?state=open&vehicle_id=V1", headers=api.admin
    )
    assert len(read_csv(unresolved.content)) == 3

    book = api.client.get("/api/v1/exports/alerts.xlsx", headers=api.admin)
    assert book.status_code == 200
    assert book.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = xlsx_text(book.content)
    assert "hotspot_dwell" in sheet and "leave_allowed_area" in sheet and "pawn-1" in sheet
    error(
        api.client.get("/api/v1/exports/alerts.pdf", headers=api.admin),
        400,
        "bad_request",
        "path.fmt",
    )
    error(
        api.client.get("/api/v1/exports/alerts.csv?type=nope", headers=api.admin),
        400,
        "bad_request",
        "query.type",
    )
    assert api.client.get("/api/v1/exports/alerts.csv").status_code == 401


def test_a_car_s_track_export_pages_without_splitting_one_fix_time(api: ApiUnderTest) -> None:
    from api.routes.exports import _track_pages

    assert api.client.put(
        "/api/v1/devices/013900000009", json={"vehicle_id": "V9"}, headers=api.admin
    ).is_success
    # Eleven fix times, three fixes at each (duplicates of one time from a replaying unit).
    rows = [
        {"time_ms": NOW - 100_000 + 1000 * (i // 3), "lon": 120.0 + i * 1e-4, "lat": 30.0}
        for i in range(33)
    ]
    api.write("013900000009", rows)
    store = api.store()
    try:
        scoped = ScopedStore(store, EVERYWHERE, "test", lambda: NOW)
        device = store.get_device("013900000009")
        assert device is not None
        read = _track_pages("V9", [device], NOW - DAY, NOW, page=4)
        pages: list[list[list[Any]]] = []
        while (page := read(scoped)) is not None:
            pages.append(page)
    finally:
        store.close()
    assert all(len(p) <= 4 for p in pages)
    lons = sorted(r[4] for p in pages for r in p)
    stored = store_track_lons(api, "013900000009")
    assert lons == stored  # every stored fix once: none lost at a page edge, none twice

    answer = api.client.get(
        f"/api/v1/exports/vehicles/V9/track.csv?from={(NOW - DAY) // 1000}", headers=api.admin
    )
    table = read_csv(answer.content)
    assert table[0] == ["vehicle_id", "terminal", "time", "lat", "lon", "speed_kmh", "course",
                        "altitude_m", "alarm", "status", "received", "valid", "flags"]  # fmt: skip
    assert len(table) == 1 + len(stored)
    assert 'filename="track-V9.csv"' in answer.headers["content-disposition"]
    book = api.client.get(
        f"/api/v1/exports/vehicles/V9/track.xlsx?from={(NOW - DAY) // 1000}", headers=api.admin
    )
    assert book.status_code == 200 and "013900000009" in xlsx_text(book.content)
    error(
        api.client.get(
            f"/api/v1/exports/vehicles/NOPE/track.csv?from={NOW // 1000}", headers=api.admin
        ),
        404,
        "not_found",
    )
    error(
        api.client.get("/api/v1/exports/vehicles/V9/track.csv", headers=api.admin),
        400,
        "bad_request",
        "query.from",
    )


def store_track_lons(api: ApiUnderTest, terminal: str) -> list[float]:
    store = api.store()
    try:
        batch = store.track(terminal, 0, NOW + 1)
    finally:
        store.close()
    return sorted(round(float(x), 6) for x in batch.lon)


def test_a_track_export_of_100000_fixes_streams_page_by_page(tmp_path: Path) -> None:
    from api.routes.exports import PAGE, _track_pages

    for api in api_under_test(None, tmp_path):
        api.context.clock_ms = lambda: NOW
        assert api.client.put(
            "/api/v1/devices/013900000010", json={"vehicle_id": "VX"}, headers=api.admin
        ).is_success
        n = 100_000
        store = api.store()
        try:
            from positions import PositionBatch

            t = NOW - DAY + np.arange(n, dtype=np.int64) * 500
            batch = PositionBatch.from_columns(
                {
                    "device": np.zeros(n, np.int32),
                    "time_ms": t,
                    "recv_ms": t + 100,
                    "lon": np.full(n, 120.1),
                    "lat": np.full(n, 30.2),
                    "status": np.full(n, 3),
                }
            )
            store.write_positions(batch, ["013900000010"])
            device = store.get_device("013900000010")
            assert device is not None
            read = _track_pages("VX", [device], NOW - DAY, NOW)
            scoped = ScopedStore(store, EVERYWHERE, "test", lambda: NOW)
            sizes: list[int] = []
            while (page := read(scoped)) is not None:
                sizes.append(len(page))
        finally:
            store.close()
        # Never more than one page held: the reader hands out PAGE rows at most at a time.
        assert sum(sizes) == n and max(sizes) <= PAGE and len(sizes) >= n // PAGE
        answer = api.client.get(
            f"/api/v1/exports/vehicles/VX/track.csv?from={(NOW - DAY) // 1000}", headers=api.admin
        )
        assert answer.status_code == 200
        assert answer.content.count(b"\r\n") == n + 1


def test_the_map_s_cars_panel_and_track(api: ApiUnderTest) -> None:
    seed(api)
    cars = api.client.get("/api/v1/map/cars", headers=api.admin).json()
    assert cars["counts"] == {"moving": 1, "parked": 1, "offline": 1, "alarm": 2}
    by_key = {f["id"]: f for f in cars["features"]}
    assert set(by_key) == {"V1", "V2", "V3", "V4", "device:013900000005"}
    assert by_key["V1"]["geometry"]["coordinates"] == pytest.approx([120.10, 30.20])
    assert (
        by_key["V2"]["properties"]["state"] == "alarm"
        and by_key["V2"]["properties"]["open_alerts"] == 1
    )
    assert by_key["device:013900000005"]["properties"]["state"] == "alarm"

    shifted = api.client.get("/api/v1/map/cars?crs=gcj02", headers=api.admin).json()
    lon, lat = wgs84_to_gcj02(120.10, 30.20)
    v1 = next(f for f in shifted["features"] if f["id"] == "V1")
    assert v1["geometry"]["coordinates"] == pytest.approx([float(lon), float(lat)], abs=1e-7)
    assert abs(v1["geometry"]["coordinates"][0] - 120.10) > 1e-3  # GCJ-02 is hundreds of metres off

    panel = api.client.get("/api/v1/map/vehicles/V1", headers=api.admin).json()
    assert panel["state"] == "moving" and panel["position"]["speed_kmh"] == 40.0
    assert panel["loans"] == [
        {
            "loan_no": "L-1",
            "borrower": "张**",
            "state": "active",
            "stage": None,
            "dpd": 136,
            "bucket": "M4+",
            "next_due_date": "2024-02-15",
            "branch": None,
        }
    ]
    assert [d["terminal"] for d in panel["devices"]] == ["013900000001"]
    assert [a["type"] for a in panel["open_alerts"]] == ["gps_jump", "overspeed"]  # newest first
    lone = api.client.get("/api/v1/map/vehicles/device:013900000005", headers=api.admin).json()
    assert lone["vehicle_id"] is None and lone["state"] == "alarm" and lone["loans"] == []
    error(api.client.get("/api/v1/map/vehicles/NOPE", headers=api.admin), 404, "not_found")
    error(api.client.get("/api/v1/map/vehicles/device:12ab", headers=api.admin), 400, "bad_request")

    api.write(
        "013900000001",
        [
            {"time_ms": NOW - 50_000 + i * 1000, "lon": 120.1 + i * 1e-4, "lat": 30.2}
            for i in range(5)
        ],
    )
    track = api.client.get(
        f"/api/v1/map/vehicles/V1/track?from={(NOW - HOUR) // 1000}", headers=api.admin
    ).json()
    assert track["terminal"] == "013900000001" and track["crs"] == "wgs84"
    assert [p[2] for p in track["points"]] == [NOW - 60_000] + [
        NOW - 50_000 + i * 1000 for i in range(5)
    ]
    thin = api.client.get(
        f"/api/v1/map/vehicles/V1/track?from={(NOW - HOUR) // 1000}&max_points=2", headers=api.admin
    )
    assert len(thin.json()["points"]) == 2
    config = api.client.get("/api/v1/map/config", headers=api.admin).json()
    assert config == {
        "crs": "wgs84",
        "tiles": None,
        "boundaries": None,
        "states": ["moving", "parked", "offline", "alarm"],
        "offline_after_s": 600,
    }
    error(api.client.get("/api/v1/map/boundaries", headers=api.admin), 404, "not_found")


def test_a_chinese_tile_service_sets_the_map_s_datum_policy_and_boundaries(tmp_path: Path) -> None:
    boundary = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"adcode": "330000", "name": "浙江省"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[120, 30], [121, 30], [121, 31], [120, 30]]],
                },
            }
        ],
    }
    levels: list[str] = []

    def outlines(level: str) -> dict[str, Any]:
        levels.append(level)
        return boundary

    for api in api_under_test(None, tmp_path):
        options = MapOptions(
            tiles_url="https://tiles.example.cn/{z}/{x}/{y}.png",
            tiles_crs=Crs.GCJ02,
            tiles_attribution="© Example",
            boundaries=outlines,
        )
        context = ApiContext(
            stores=StoreAccess(lambda: open_store(None, tmp_path)), map_options=options
        )
        app = create_app(registry=CollectorRegistry(), ready=lambda: READY, context=context)
        with blocking_client(app) as client:
            page = client.get("/map")
            policy = page.headers["content-security-policy"]
            assert "img-src 'self' data: blob: https://tiles.example.cn" in policy
            assert "connect-src 'self' ws: wss: https://tiles.example.cn" in policy
            config = client.get("/api/v1/map/config", headers=api.admin).json()
            assert config["crs"] == "gcj02"
            assert config["tiles"] == {
                "url": "https://tiles.example.cn/{z}/{x}/{y}.png",
                "crs": "gcj02",
                "attribution": "© Example",
            }
            assert config["boundaries"]["url"] == "/api/v1/map/boundaries?level={level}"
            shown = client.get("/api/v1/map/boundaries?level=city", headers=api.admin).json()
            ring = shown["features"][0]["geometry"]["coordinates"][0]
            x, y = wgs84_to_gcj02(120.0, 30.0)
            assert ring[0] == pytest.approx([float(x), float(y)])
            plain = client.get(
                "/api/v1/map/boundaries?level=city&crs=wgs84", headers=api.admin
            ).json()
            assert plain == boundary
            assert levels == ["city", "city"]
            error(
                client.get("/api/v1/map/boundaries?level=street", headers=api.admin),
                400,
                "bad_request",
                "query.level",
            )
