"""The portfolio figures, exports, map data, spot candidates and backtests keep to the caller's
subtree like every other route: a tenant never counts, exports or sees the other's cars."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.model import Alert, AlertType
from tests.support.api import ApiUnderTest, api_under_test, error

NOW = 1_709_280_000_000
DAY = 86_400_000


@pytest.fixture
def api(store_url: str | None, tmp_path: Path) -> Iterator[ApiUnderTest]:
    for running in api_under_test(store_url, tmp_path, with_alerts=True):
        running.context.clock_ms = lambda: NOW
        yield running


def _tenant(api: ApiUnderTest, name: str) -> tuple[int, dict[str, str]]:
    made = api.client.post(
        "/api/v1/orgs", json={"name": name, "kind": "tenant", "parent": None}, headers=api.admin
    )
    assert made.status_code == 201, made.text
    org = int(made.json()["id"])
    body = {"name": f"{name}-viewer", "role": "officer", "org": org}
    key = api.client.post("/api/v1/keys", json=body, headers=api.admin)
    assert key.status_code == 201, key.text
    return org, api.auth(key.json()["key"])


def test_each_tenant_counts_exports_and_maps_its_own_cars_only(api: ApiUnderTest) -> None:
    client = api.client
    cars = {"A": "013900000101", "B": "013900000102"}
    keys, orgs = {}, {}
    for name, terminal in cars.items():
        org, keys[name] = _tenant(api, name)
        orgs[name] = org
        body = {"vehicle_id": f"V{name}", "org": org}
        assert client.put(f"/api/v1/devices/{terminal}", json=body, headers=api.admin).is_success
        api.write(terminal, [{"time_ms": NOW - 60_000, "lon": 120.1, "lat": 30.2}])
    store = api.store()
    try:
        store.add_alerts(
            [Alert(AlertType.OVERSPEED, cars[n], f"V{n}", NOW - DAY) for n in cars], NOW - 1000
        )
    finally:
        store.close()
    since = (NOW - 2 * DAY) // 1000
    for name, other in (("A", "B"), ("B", "A")):
        key = keys[name]
        states = client.get("/api/v1/figures/states", headers=key).json()
        assert states["cars"] == 1
        assert client.get("/api/v1/figures/risk", headers=key).json()["cars"] == 1
        per_day = client.get(f"/api/v1/figures/alerts?from={since}", headers=key).json()
        assert per_day["totals"]["overspeed"] == 1
        csv_text = client.get("/api/v1/exports/alerts.csv", headers=key).text
        assert f"V{name}" in csv_text and f"V{other}" not in csv_text
        mapped = client.get("/api/v1/map/cars", headers=key).json()
        assert [f["properties"]["vehicle_id"] for f in mapped["features"]] == [f"V{name}"]
        assert client.get(f"/api/v1/map/vehicles/V{name}", headers=key).status_code == 200
        for url in (
            f"/api/v1/map/vehicles/V{other}",
            f"/api/v1/map/vehicles/V{other}/track",
            f"/api/v1/exports/vehicles/V{other}/track.csv?from={since}",
        ):
            error(client.get(url, headers=key), 404, "not_found")
        assert client.get("/api/v1/spot-candidates", headers=key).json() == []
        body = {"since": "2024-02-28T00:00:00Z", "until": "2024-03-01T00:00:00Z"}
        started = client.post("/api/v1/backtests", json=body, headers=key)  # over its own cars
        assert started.status_code == 202 and started.json()["org"] == orgs[name], started.text
        other_key = keys[other]
        error(client.get(started.headers["Location"], headers=other_key), 404, "not_found")
    alerts = client.get("/api/v1/alerts", headers=api.admin).json()
    of_a = next(a["id"] for a in alerts if a["vehicle_id"] == "VA")
    error(
        client.post(f"/api/v1/alerts/{of_a}/assign", json={"assignee": "x"}, headers=keys["B"]),
        404,
        "not_found",
    )
    mine = client.post(f"/api/v1/alerts/{of_a}/assign", json={"assignee": "x"}, headers=keys["A"])
    assert mine.status_code == 200 and mine.json()["assignee"] == "x"
    # The platform sees both.
    assert client.get("/api/v1/figures/states", headers=api.admin).json()["cars"] == 2
