"""Terminal identity through the API (contracts section 8): shown to admins only, given on PUT
while none is recorded, replaced by re-provisioning; over SQLite and real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store import Device
from tests.support.api import ApiUnderTest, api_under_test, error

A = "013900000001"
HW = {"maker_id": "70111", "model": "GT06", "terminal_id": "A1"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiUnderTest]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    yield from api_under_test(url, tmp_path)


def registered(api: ApiUnderTest, **identity: str) -> None:
    """What the gateway writes at a first registration."""
    store = api.store()
    try:
        store.upsert_device(Device(A, edition=2013, **identity))  # type: ignore[arg-type]
    finally:
        store.close()


def test_identity_is_shown_to_admins_only_and_null_until_recorded(api: ApiUnderTest) -> None:
    created = api.client.put(f"/api/v1/devices/{A}", json={"vehicle_id": "V1"}, headers=api.admin)
    assert created.status_code == 201 and created.json()["identity"] is None
    registered(api, imei="860000000000001")
    only_imei = api.client.get(f"/api/v1/devices/{A}", headers=api.admin).json()["identity"]
    assert only_imei == {"maker_id": None, "model": None, "terminal_id": None,
                         "imei": "860000000000001"}  # fmt: skip
    registered(api, **HW)
    shown = api.client.get(f"/api/v1/devices/{A}", headers=api.admin).json()["identity"]
    assert shown == {**HW, "imei": "860000000000001"}
    viewer = api.key("viewer")
    seen = api.client.get(f"/api/v1/devices/{A}", headers=viewer).json()
    assert "identity" not in seen and "auth_code" not in seen
    page = api.client.get("/api/v1/devices", headers=viewer).json()["devices"]
    assert all("identity" not in d for d in page)


def test_put_gives_an_identity_while_none_is_recorded_and_refuses_another(
    api: ApiUnderTest,
) -> None:
    body = {"vehicle_id": "V1", "auth_code": "123456", "identity": HW}
    given = api.client.put(f"/api/v1/devices/{A}", json=body, headers=api.admin)
    assert given.status_code == 201, given.text
    assert given.json()["identity"] == {**HW, "imei": None}
    assert given.json()["auth_code"] == "123456"
    same = api.client.put(f"/api/v1/devices/{A}", json={"identity": HW}, headers=api.admin)
    assert same.status_code == 200 and same.json()["vehicle_id"] == "V1"
    other = {"identity": {**HW, "terminal_id": "B2"}, "vehicle_id": "V2"}
    detail = error(
        api.client.put(f"/api/v1/devices/{A}", json=other, headers=api.admin),
        409,
        "identity_recorded",
    )
    assert "terminal_id" in detail and "reprovision" in detail
    kept = api.client.get(f"/api/v1/devices/{A}", headers=api.admin).json()
    assert kept["identity"]["terminal_id"] == "A1" and kept["vehicle_id"] == "V1"


def test_reprovisioning_replaces_identity_and_code_and_keeps_the_car(api: ApiUnderTest) -> None:
    body = {"vehicle_id": "V1", "auth_code": "old-code", "identity": HW}
    api.client.put(f"/api/v1/devices/{A}", json=body, headers=api.admin)
    cleared = api.client.post(f"/api/v1/devices/{A}/reprovision", json={}, headers=api.admin)
    assert cleared.status_code == 200, cleared.text
    out = cleared.json()
    assert (out["identity"], out["auth_code"], out["vehicle_id"]) == (None, None, "V1")
    assert api.changed[-1] == Device(A, edition=None, vehicle_id="V1")  # the gateway is told

    new = {"identity": {**HW, "terminal_id": "B2", "imei": "860000000000002"},
           "auth_code": "fixed-code"}  # fmt: skip
    given = api.client.post(f"/api/v1/devices/{A}/reprovision", json=new, headers=api.admin)
    assert given.status_code == 200, given.text
    assert given.json()["identity"] == new["identity"]
    assert given.json()["auth_code"] == "fixed-code"
    store = api.store()
    try:
        stored = store.get_device(A)
    finally:
        store.close()
    assert stored is not None and (stored.terminal_id, stored.imei) == ("B2", "860000000000002")


def test_reprovisioning_is_for_admins_and_known_devices(api: ApiUnderTest) -> None:
    officer = api.key("officer")
    url = f"/api/v1/devices/{A}/reprovision"
    error(api.client.post(url, json={}, headers=officer), 403, "forbidden")
    error(api.client.post(url, json={}, headers=api.admin), 404, "not_found")
    api.client.put(f"/api/v1/devices/{A}", json={}, headers=api.admin)
    for bad, field in (
        ({"identity": {"maker_id": "x"}}, "body.identity.model"),
        ({"identity": {**HW, "serial": "1"}}, "body.identity.serial"),
        ({"auth_code": ""}, "body.auth_code"),
        ({"identity": {**HW, "imei": "8" * 16}}, "body.identity.imei"),
    ):
        error(api.client.post(url, json=bad, headers=api.admin), 400, "bad_request", field)
