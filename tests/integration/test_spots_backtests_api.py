"""`/api/v1/spot-candidates` and `/api/v1/backtests` over SQLite and real PostgreSQL: roles,
listing, accept into the spot library, dismiss, conflicts; a backtest runs asynchronously
with its progress and report; bad input is a 400 naming the field, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.model import Alert, AlertType
from store import Device
from tests.support.api import ApiUnderTest, api_under_test, error, wait_for_backtest

T0 = 1_709_280_000_000  # 2024-03-01T08:00:00Z
MIN = 60_000
W1 = "013900000001"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiUnderTest]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    yield from api_under_test(url, tmp_path)


def _propose(api: ApiUnderTest, *vehicles: str) -> None:
    visits = [{"vehicle_id": f"V{i}", "device_id": f"D{i}", "borrower": f"B{i}"} for i in range(5)]
    store = api.store()
    try:
        store.add_alerts(
            [
                Alert(AlertType.GATHERING, "D4", v, T0 + i * MIN, details={
                    "lon": 121.5 + i / 100, "lat": 31.3, "radius_m": 150, "borrowers": 5,
                    "visits": visits})
                for i, v in enumerate(vehicles)
            ],
            T0,
        )  # fmt: skip
    finally:
        store.close()


def test_viewers_list_candidates_and_admins_accept_them_into_the_spot_library(
    api: ApiUnderTest,
) -> None:
    _propose(api, "V4", "V7")
    viewer = api.key("viewer")
    listed = api.client.get("/api/v1/spot-candidates", headers=viewer)
    assert listed.status_code == 200, listed.text
    first, second = listed.json()
    assert first["status"] == "proposed" and first["borrowers"] == 5
    assert first["proposed"] == "2024-03-01T16:00:00+08:00" and len(first["visits"]) == 5
    url = f"/api/v1/spot-candidates/{first['id']}"
    error(api.client.post(f"{url}/accept", headers=viewer), 403, "forbidden")
    answer = api.client.post(
        f"{url}/accept", json={"name": "new yard", "radius_m": 90, "note": "seen"},
        headers=api.admin,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    accepted = answer.json()
    assert accepted["status"] == "accepted" and accepted["fence_id"] == f"spot-{first['id']}"
    assert accepted["decided_by"] == "admin" and accepted["note"] == "seen"
    fence = api.client.get(f"/api/v1/fences/{accepted['fence_id']}", headers=viewer).json()
    assert fence["properties"]["kind"] == "hotspot" and fence["properties"]["radius_m"] == 90
    assert fence["geometry"]["coordinates"] == [first["lon"], first["lat"]]
    error(api.client.post(f"{url}/dismiss", headers=api.admin), 409, "already_decided")
    other = f"/api/v1/spot-candidates/{second['id']}"
    taken = {"fence_id": accepted["fence_id"]}
    error(api.client.post(f"{other}/accept", json=taken, headers=api.admin), 409, "fence_exists")
    dismissed = api.client.post(f"{other}/dismiss", json={"note": "a mall"}, headers=api.admin)
    assert dismissed.json()["status"] == "dismissed"
    only = api.client.get("/api/v1/spot-candidates?status=dismissed", headers=viewer).json()
    assert [c["id"] for c in only] == [second["id"]]
    assert api.client.get(other, headers=viewer).json()["note"] == "a mall"


def test_bad_candidate_requests_are_4xx(api: ApiUnderTest) -> None:
    error(api.client.get("/api/v1/spot-candidates/7", headers=api.admin), 404, "not_found")
    error(api.client.post("/api/v1/spot-candidates/7/dismiss", headers=api.admin), 404, "not_found")
    error(
        api.client.get("/api/v1/spot-candidates?status=maybe", headers=api.admin),
        400,
        "bad_request",
    )
    _propose(api, "V1")
    for body in ({"radius_m": 0}, {"fence_id": ""}, {"colour": "red"}, {"name": "a\x00b"}):
        answer = api.client.post("/api/v1/spot-candidates/1/accept", json=body, headers=api.admin)
        error(answer, 400, "bad_request")
    error(api.client.get("/api/v1/spot-candidates"), 401, "unauthorized")


def _history(api: ApiUnderTest) -> None:
    """W1 (car V1): 3 min at 130 km/h, then parked; its overspeed fired."""
    rows: list[dict[str, Any]] = []
    lon = 121.4
    for m in range(30):
        speed = 130.0 if 5 <= m < 8 else 0.0
        lon += speed / 3.6 * 60 / 95_000
        rows.append({"time_ms": T0 + m * MIN, "lon": lon, "lat": 31.2, "speed_kmh": speed})
    api.write(W1, rows)
    store = api.store()
    try:
        store.upsert_device(Device(W1, vehicle_id="V1"))
        fired = Alert(AlertType.OVERSPEED, W1, "V1", T0 + 6 * MIN, details={"speed_kmh": 130.0})
        store.add_alerts([fired], T0 + 40 * MIN)
    finally:
        store.close()


def test_a_backtest_runs_asynchronously_and_reports_what_new_thresholds_change(
    api: ApiUnderTest,
) -> None:
    _history(api)
    officer = api.key("officer")
    error(
        api.client.post("/api/v1/backtests", json={}, headers=api.key("viewer")), 403, "forbidden"
    )
    body = {"since": "2024-03-01T16:00:00+08:00", "until": "2024-03-01T17:00:00+08:00",
            "rules": "[overspeed]\nspeed_kmh = 140\n"}  # fmt: skip
    started = api.client.post("/api/v1/backtests", json=body, headers=officer)
    assert started.status_code == 202, started.text
    assert started.json()["state"] in ("queued", "running", "done")
    job = wait_for_backtest(api, started.headers["Location"], officer)
    assert job["state"] == "done", job
    assert job["progress"] == {"fraction": 1.0, "positions": 30}
    report = job["report"]
    assert report["by_type"]["overspeed"] == {
        "fired": 1, "new": 0, "kept": 0, "moved": 0, "added": 0, "removed": 1
    }  # fmt: skip
    assert [a["type"] for a in report["removed"]] == ["overspeed"]
    same = wait_for_backtest(api, api.client.post("/api/v1/backtests", json={**body, "rules": None},
                                      headers=officer).headers["Location"], officer)  # fmt: skip
    assert same["report"]["by_type"]["overspeed"]["kept"] == 1


def test_bad_backtest_requests_are_400_naming_the_field(api: ApiUnderTest) -> None:
    h = api.admin
    ok = {"since": "2024-03-01T00:00:00Z", "until": "2024-03-02T00:00:00Z"}
    for body, field in (
        ({**ok, "since": "yesterday"}, "body.since"),
        ({**ok, "until": "2024-03-01T00:00:00Z"}, "body.until"),
        ({**ok, "until": "2024-09-01T00:00:00Z"}, "body.until"),
        ({**ok, "since": "-99999999999"}, "body.since"),
        ({**ok, "rules": "[overspeed]\nspeed = 3\n"}, "overspeed.speed"),
        ({**ok, "rules": "[[["}, "body.rules"),
        ({**ok, "tolerance_h": -1}, "tolerance_h"),
        ({"since": ok["since"]}, "until"),
    ):
        answer = api.client.post("/api/v1/backtests", json=body, headers=h)
        assert answer.status_code == 400 and field in answer.json()["detail"], (body, answer.text)
    error(api.client.get("/api/v1/backtests/5", headers=h), 404, "not_found")
