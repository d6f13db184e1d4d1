"""A track asked again is answered from the pieces kept only while its rows are the same,
with an ETag that If-None-Match turns into a 304; another subtree still gets 404."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import ApiUnderTest, api_under_test

T0 = 1_704_081_600_000  # 2024-01-01T12:00:00+08:00
A = "013900000001"
URL = f"/api/v1/devices/{A}/track"
DAY = {"from": "2024-01-01T00:00:00+08:00", "to": "2024-01-02T00:00:00+08:00"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiUnderTest]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    yield from api_under_test(url, tmp_path)


def test_the_same_rows_give_the_same_answer_and_tag_and_a_304_for_it(api: ApiUnderTest) -> None:
    api.client.put(f"/api/v1/devices/{A}", json={"vehicle_id": "V1"}, headers=api.admin)
    api.write(
        A, [{"time_ms": T0 + i * 1000, "lon": 121.0 + i / 1e4, "lat": 31.0} for i in range(3000)]
    )
    viewer = api.key("viewer")
    first = api.client.get(URL, params=DAY, headers=viewer)
    again = api.client.get(URL, params=DAY, headers=viewer)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content and len(first.json()) == 3000
    tag = first.headers["etag"]
    assert again.headers["etag"] == tag and tag.startswith('"')
    unchanged = api.client.get(URL, params=DAY, headers={**viewer, "If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == tag
    listed = api.client.get(URL, params=DAY, headers={**viewer, "If-None-Match": f'"x", W/{tag}'})
    assert listed.status_code == 304


def test_a_fix_stored_late_into_the_range_changes_the_answer_and_its_tag(
    api: ApiUnderTest,
) -> None:
    api.client.put(f"/api/v1/devices/{A}", json={"vehicle_id": "V1"}, headers=api.admin)
    api.write(A, [{"time_ms": T0 + i * 10_000, "lon": 121.0, "lat": 31.0} for i in range(10)])
    viewer = api.key("viewer")
    before = api.client.get(URL, params=DAY, headers=viewer)
    api.write(A, [{"time_ms": T0 + 5_000, "lon": 121.5, "lat": 31.5}])  # between two others
    after = api.client.get(
        URL, params=DAY, headers={**viewer, "If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert [p["lon"] for p in after.json()][:3] == [121.0, 121.5, 121.0]
    assert len(after.json()) == len(before.json()) + 1


def test_a_key_of_another_subtree_gets_404_for_a_track_kept(api: ApiUnderTest) -> None:
    def unit(name: str) -> int:
        body = {"name": name, "kind": "tenant", "parent": None}
        answer = api.client.post("/api/v1/orgs", json=body, headers=api.admin)
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    def key(org: int) -> dict[str, str]:
        body = {"name": f"viewer-{org}", "role": "viewer", "org": org}
        answer = api.client.post("/api/v1/keys", json=body, headers=api.admin)
        assert answer.status_code == 201, answer.text
        return api.auth(answer.json()["key"])

    acme, other = unit("acme"), unit("other")
    body = {"vehicle_id": "V1", "org": acme}
    assert api.client.put(f"/api/v1/devices/{A}", json=body, headers=api.admin).status_code == 201
    api.write(A, [{"time_ms": T0 + i * 1000, "lon": 121.0, "lat": 31.0} for i in range(20)])
    seen = api.client.get(URL, params=DAY, headers=key(acme))
    assert seen.status_code == 200 and len(seen.json()) == 20
    stranger = key(other)
    assert api.client.get(URL, params=DAY, headers=stranger).status_code == 404
    tagged = {**stranger, "If-None-Match": seen.headers["etag"]}
    assert api.client.get(URL, params=DAY, headers=tagged).status_code == 404
