"""A tenant's own candidate spots and backtests, over SQLite and real PostgreSQL: a candidate
whose evidence cars are all one tenant's is that tenant's (accepted into its own spot library,
borrowers masked for its viewers), one spanning tenants stays the platform's; a tenant's
backtest covers its own cars and alerts; jobs live in the store, and one whose process stopped
reads as failed with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.model import Alert, AlertType
from api.backtests import STALE_MS, now_ms
from store.backtest_jobs import INTERRUPTED
from tests.support.api import ApiUnderTest, api_under_test, error, wait_for_backtest

T0 = 1_709_280_000_000  # 2024-03-01T08:00:00Z
MIN = 60_000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiUnderTest]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    for running in api_under_test(url, tmp_path, with_alerts=True):
        running.context.webhook_allow_private = True  # its receivers' URLs are on 127.0.0.1
        yield running


def _tenant(api: ApiUnderTest, name: str) -> tuple[int, dict[str, dict[str, str]]]:
    made = api.client.post("/api/v1/orgs", json={"name": name, "kind": "tenant"}, headers=api.admin)
    assert made.status_code == 201, made.text
    org = int(made.json()["id"])
    keys = {}
    for role in ("viewer", "officer", "admin"):
        body = {"name": f"{name}-{role}", "role": role, "org": org}
        key = api.client.post("/api/v1/keys", json=body, headers=api.admin)
        assert key.status_code == 201, key.text
        keys[role] = api.auth(key.json()["key"])
    return org, keys


def _car(api: ApiUnderTest, vehicle: str, org: int, terminal: str) -> None:
    body = {"vehicle_id": vehicle, "org": org}
    answer = api.client.put(f"/api/v1/devices/{terminal}", json=body, headers=api.admin)
    assert answer.is_success, answer.text


def _gathering(api: ApiUnderTest, visits: list[dict[str, Any]], at_ms: int) -> int:
    """A gathering alert with these visits (the last one its trigger), as the live detector
    stores it; its candidate id."""
    last = visits[-1]
    details = {"lon": 121.5, "lat": 31.3, "radius_m": 150, "borrowers": len(visits),
               "visits": visits}  # fmt: skip
    store = api.store()
    try:
        alert = Alert(AlertType.GATHERING, last["device_id"], last["vehicle_id"], at_ms,
                      details=details)  # fmt: skip
        (stored,) = store.add_alerts([alert], at_ms).stored
        (found,) = [c for c in store.spot_candidates_in(None) if c.alert_id == stored.id]
        return found.id
    finally:
        store.close()


def test_a_tenants_cars_make_its_own_candidate_and_its_admins_accept_it_into_its_library(
    api: ApiUnderTest,
) -> None:
    a, a_keys = _tenant(api, "acme")
    b, b_keys = _tenant(api, "bolt")
    person = {"name": "张三", "id_number": "110101199001011234", "phone": "13812345678", "org": a}
    borrower = api.client.post("/api/v1/borrowers", json=person, headers=api.admin).json()["id"]
    visits = []
    for i in range(5):
        _car(api, f"A{i}", a, f"01390000010{i}")
        visits.append({"vehicle_id": f"A{i}", "device_id": f"01390000010{i}",
                       "borrower": f"borrower:{borrower}" if i == 0 else f"A{i}"})  # fmt: skip
    _car(api, "B0", b, "013900000200")
    own = _gathering(api, visits, T0)
    mixed = _gathering(
        api, [*visits[:4], {"vehicle_id": "B0", "device_id": "013900000200", "borrower": "B0"}],
        T0 + MIN,
    )  # fmt: skip
    get = api.client.get
    listed = get("/api/v1/spot-candidates", headers=a_keys["viewer"]).json()
    assert [(c["id"], c["org"]) for c in listed] == [(own, a)]
    shown = listed[0]["visits"][0]["borrower_record"]
    assert shown["id_number"] == "**************1234" and shown["phone"] == "138****5678"
    whole = get(f"/api/v1/spot-candidates/{own}", headers=a_keys["officer"]).json()
    assert whole["visits"][0]["borrower_record"]["id_number"] == "110101199001011234"
    assert whole["visits"][1]["borrower_record"] is None  # a car standing for its borrower
    assert get("/api/v1/spot-candidates", headers=b_keys["viewer"]).json() == []
    everything = get("/api/v1/spot-candidates", headers=api.admin).json()
    assert [(c["id"], c["org"]) for c in everything] == [(own, a), (mixed, 1)]
    for key, hidden in ((a_keys["viewer"], mixed), (b_keys["viewer"], own)):
        error(get(f"/api/v1/spot-candidates/{hidden}", headers=key), 404, "not_found")
        error(get("/api/v1/spot-candidates/999999", headers=key), 404, "not_found")
    post = api.client.post
    error(post(f"/api/v1/spot-candidates/{own}/accept", headers=b_keys["admin"]), 404, "not_found")
    error(post(f"/api/v1/spot-candidates/{mixed}/dismiss", headers=a_keys["admin"]), 404,
          "not_found")  # fmt: skip
    bolts = {
        "type": "Feature",
        "properties": {"id": "bolt-yard", "kind": "hotspot", "radius_m": 50},
        "geometry": {"type": "Point", "coordinates": [120.0, 30.0]},
    }
    assert post("/api/v1/fences", json=bolts, headers=b_keys["admin"]).status_code == 201
    taken = post(f"/api/v1/spot-candidates/{own}/accept", json={"fence_id": "bolt-yard"},
                 headers=a_keys["admin"])  # fmt: skip
    error(taken, 404, "not_found")  # another tenant's fence id: as if unknown
    accepted = post(f"/api/v1/spot-candidates/{own}/accept", headers=a_keys["admin"])
    assert accepted.status_code == 200, accepted.text
    fence_id = accepted.json()["fence_id"]
    fence = get(f"/api/v1/fences/{fence_id}", headers=a_keys["viewer"]).json()
    assert fence["properties"]["org"] == a and fence["properties"]["kind"] == "hotspot"
    error(get(f"/api/v1/fences/{fence_id}", headers=b_keys["viewer"]), 404, "not_found")
    audit = get("/api/v1/audit", headers=a_keys["admin"]).json()
    assert {"spot.accept", "fence.create"} <= {e["action"] for e in audit}
    done = post(f"/api/v1/spot-candidates/{mixed}/dismiss", headers=api.admin).json()
    assert done["status"] == "dismissed"


def test_a_gathering_alert_names_only_the_cars_its_own_unit_sees(api: ApiUnderTest) -> None:
    """The alert is its car's unit's, as every alert; its details are the evidence, cut to the
    visits of that unit's subtree (the others counted), in the store, its webhook bodies and
    what the API shows. A place of acme's and bolt's cars completed by bolt's car shows bolt
    its own visit only; one of acme's and its branch's cars completed by the branch's car shows
    the branch its own. The candidates keep every visit."""
    a, _ = _tenant(api, "acme")
    b, b_keys = _tenant(api, "bolt")
    post, get = api.client.post, api.client.get
    branch = post("/api/v1/orgs", json={"name": "north", "kind": "branch", "parent": a},
                  headers=api.admin).json()["id"]  # fmt: skip
    for org in (b, branch):
        body = {"url": f"http://127.0.0.1:9/{org}", "org": org}
        assert post("/api/v1/webhooks", json=body, headers=api.admin).status_code == 201
    devices = {"A0": "013900000100", "N0": "013900000101", "B0": "013900000200"}
    for car, org in (("A0", a), ("N0", branch), ("B0", b)):
        _car(api, car, org, devices[car])

    def visits(*cars: str) -> list[dict[str, Any]]:
        return [{"vehicle_id": c, "device_id": devices[c], "borrower": c} for c in cars]

    mixed = _gathering(api, visits("A0", "B0"), T0)
    own = _gathering(api, visits("A0", "N0"), T0 + MIN)
    store = api.store()
    try:
        alert_of = {c.id: int(c.alert_id or 0) for c in store.spot_candidates_in(None)}
        bodies = {c: [w.body for w in store.list_webhooks(alert_of[c])] for c in (mixed, own)}
        stored = {c: store.get_alert(alert_of[c]) for c in (mixed, own)}
    finally:
        store.close()
    assert {c: s.org for c, s in stored.items() if s is not None} == {mixed: b, own: branch}
    for candidate, key, car, hidden in (
        (mixed, b_keys["viewer"], "B0", "A0"),
        (own, api.admin, "N0", "A0"),
    ):
        shown = get(f"/api/v1/alerts/{alert_of[candidate]}", headers=key).json()["details"]
        assert [v["vehicle_id"] for v in shown["visits"]] == [car] and shown["other_visits"] == 1
        assert shown["borrowers"] == 2
        assert bodies[candidate] and all(hidden.encode() not in x for x in bodies[candidate])
    whole = get(f"/api/v1/spot-candidates/{mixed}", headers=api.admin).json()
    assert [v["vehicle_id"] for v in whole["visits"]] == ["A0", "B0"]


def _positions(api: ApiUnderTest, terminal: str, vehicle: str) -> None:
    """3 min at 130 km/h, then parked; its overspeed fired."""
    rows: list[dict[str, Any]] = []
    lon = 121.4
    for m in range(30):
        speed = 130.0 if 5 <= m < 8 else 0.0
        lon += speed / 3.6 * 60 / 95_000
        rows.append({"time_ms": T0 + m * MIN, "lon": lon, "lat": 31.2, "speed_kmh": speed})
    api.write(terminal, rows)
    store = api.store()
    try:
        fired = Alert(AlertType.OVERSPEED, terminal, vehicle, T0 + 6 * MIN,
                      details={"speed_kmh": 130.0})  # fmt: skip
        store.add_alerts([fired], T0 + 40 * MIN)
    finally:
        store.close()


def test_a_tenants_backtest_covers_its_own_cars_and_alerts_only(api: ApiUnderTest) -> None:
    a, a_keys = _tenant(api, "acme")
    b, b_keys = _tenant(api, "bolt")
    _car(api, "VA", a, "013900000001")
    _car(api, "VB", b, "013900000002")
    _positions(api, "013900000001", "VA")
    _positions(api, "013900000002", "VB")
    body = {"since": "2024-03-01T16:00:00+08:00", "until": "2024-03-01T17:00:00+08:00",
            "rules": "[overspeed]\nspeed_kmh = 140\n"}  # fmt: skip
    started = api.client.post("/api/v1/backtests", json=body, headers=a_keys["officer"])
    assert started.status_code == 202, started.text
    assert started.json()["org"] == a
    mine = wait_for_backtest(api, started.headers["Location"], a_keys["officer"])
    assert mine["state"] == "done" and mine["progress"]["positions"] == 30, mine
    assert mine["report"]["by_type"]["overspeed"]["fired"] == 1
    assert {x["vehicle_id"] for x in mine["report"]["removed"]} == {"VA"}
    every = api.client.post("/api/v1/backtests", json=body, headers=api.admin)
    platform = wait_for_backtest(api, every.headers["Location"], api.admin)
    assert platform["progress"]["positions"] == 60
    assert platform["report"]["by_type"]["overspeed"]["fired"] == 2
    error(api.client.get(started.headers["Location"], headers=b_keys["officer"]), 404, "not_found")
    assert api.client.get("/api/v1/backtests", headers=b_keys["officer"]).json() == []
    listed = api.client.get("/api/v1/backtests", headers=api.admin).json()
    assert [j["id"] for j in listed] == [mine["id"], platform["id"]]
    assert all("report" not in j for j in listed)
    store = api.store()
    try:  # in the store: another API process (or this one restarted) answers it
        kept = store.get_backtest(mine["id"])
        assert kept is not None and kept.state == "done" and kept.report == mine["report"]
    finally:
        store.close()


def test_a_job_whose_process_stopped_reads_as_failed_with_the_reason(api: ApiUnderTest) -> None:
    store = api.store()
    try:
        beat = now_ms() - STALE_MS - 1000
        gone = store.add_backtest(org=1, since_ms=T0, until_ms=T0 + MIN, rules=None,
                                  tolerance_ms=0, requested_by="admin", runner="api-gone",
                                  now_ms=beat)  # fmt: skip
        held = store.add_backtest(org=1, since_ms=T0, until_ms=T0 + MIN, rules=None,
                                  tolerance_ms=0, requested_by="admin", runner="api-alive",
                                  now_ms=now_ms())  # fmt: skip
    finally:
        store.close()
    job = api.client.get(f"/api/v1/backtests/{gone.id}", headers=api.admin).json()
    assert job["state"] == "failed" and job["error"] == INTERRUPTED
    alive = api.client.get(f"/api/v1/backtests/{held.id}", headers=api.admin).json()
    assert alive["state"] == "queued" and alive["error"] is None


def test_the_live_fleet_counts_the_borrower_an_open_loan_names(api: ApiUnderTest) -> None:
    post = api.client.post
    person = post("/api/v1/borrowers", json={"name": "王五"}, headers=api.admin).json()["id"]
    loan = {"principal": "1000.00", "start_date": "2024-01-15", "due_day": 15}
    for n, who in enumerate(({"borrower_id": person}, {"borrower_id": person},
                             {"borrower_name": "no record"})):  # fmt: skip
        body = {**loan, **who, "loan_no": f"L{n}", "vehicle_id": f"C{n}"}
        assert post("/api/v1/loans", json=body, headers=api.admin).status_code == 201
    store = api.store()
    try:
        assert store.loan_borrowers() == {"C0": f"borrower:{person}", "C1": f"borrower:{person}"}
    finally:
        store.close()
    closed = post("/api/v1/loans/L1/transition", json={"to": "settled"}, headers=api.admin)
    assert closed.status_code == 200, closed.text
    store = api.store()
    try:
        assert store.loan_borrowers() == {"C0": f"borrower:{person}"}  # open loans only
    finally:
        store.close()
