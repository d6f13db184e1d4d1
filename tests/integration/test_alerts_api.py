"""The alert routes on SQLite and real PostgreSQL: listing with filters and a cursor, reading,
acknowledging and resolving (409 on a forbidden move, 400 naming the field on bad input), and
the live stream served for real by uvicorn.

The app is `api.app.create_app` plus `alerts_router` with a trivial key check, as the process
wires it with the real one. No `from __future__ import annotations`: FastAPI reads the test
dependency's parameter types from the live annotations.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from fastapi import FastAPI, WebSocketException, status
from prometheus_client import CollectorRegistry
from starlette.requests import HTTPConnection
from websockets.asyncio.client import connect

from alerts.delivery.hub import AlertHub
from alerts.lifecycle import StoredAlert, opened
from alerts.model import Alert, AlertType
from api.app import READY, create_app
from api.errors import ApiError
from api.routes.alerts import alerts_router
from api.server import ApiServer
from api.stores import StoreAccess
from organizations import EVERYWHERE, Scope
from store import migrate, open_store
from tests.support.api import BlockingClient, blocking_client, error

T0 = 1_709_280_000_000  # 2024-03-01T08:00:00Z = 16:00 +08:00
NOW = T0 + 3_600_000
KEYS = {"k-officer": ("li", "officer"), "k-viewer": ("zhao", "viewer")}
OFFICER = {"Authorization": "Bearer k-officer"}
VIEWER = {"Authorization": "Bearer k-viewer"}


@dataclass(frozen=True)
class Caller:
    name: str
    role: str

    @property
    def scope(self) -> Scope:
        return EVERYWHERE  # the platform's: this router's own scoping is tested in test_orgs_api


def _token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return conn.query_params.get("key") if conn.scope["type"] == "websocket" else None


def _refuse(conn: HTTPConnection, status_code: int, code: str) -> Exception:
    if conn.scope["type"] == "websocket":
        return WebSocketException(status.WS_1008_POLICY_VIOLATION, code)
    return ApiError(status_code, code, code)


async def reader(conn: HTTPConnection) -> Caller:
    found = KEYS.get(_token(conn) or "")
    if found is None:
        raise _refuse(conn, 401, "unauthorized")
    return Caller(*found)


async def officer(conn: HTTPConnection) -> Caller:
    caller = await reader(conn)
    if caller.role != "officer":
        raise _refuse(conn, 403, "forbidden")
    return caller


def build_app(url: str | None, tmp_path: Path, hub: AlertHub) -> tuple[FastAPI, StoreAccess]:
    stores = StoreAccess(lambda: open_store(url, tmp_path), threads=2)
    app = create_app(registry=CollectorRegistry(), ready=lambda: READY)
    app.include_router(alerts_router(stores, hub, reader, act=officer, clock_ms=lambda: NOW))
    return app, stores


@dataclass
class Api:
    client: BlockingClient
    ids: list[int]


def seed(url: str | None, tmp_path: Path) -> list[int]:
    store = open_store(url, tmp_path)
    try:
        added = store.add_alerts(
            [
                Alert(AlertType.POWER_CUT, "013900000001", "V1", T0, details={"alarm": 256}),
                Alert(AlertType.OFFLINE, "013900000002", "V2", T0 + 60_000),
                Alert(AlertType.HOTSPOT_DWELL, "013900000001", "V1", T0 + 120_000, "pawn-17"),
                Alert(AlertType.POWER_CUT, "013900000003", "V3", T0 + 180_000),
            ],
            T0 + 200_000,
        )
    finally:
        store.close()
    return [s.id for s in added.stored]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    migrate(url, tmp_path)
    ids = seed(url, tmp_path)
    app, stores = build_app(url, tmp_path, AlertHub())
    with blocking_client(app) as client:
        yield Api(client, ids)
    stores.close()


def listed(api: Api, query: str = "") -> list[int]:
    answer = api.client.get(f"/api/v1/alerts{query}", headers=VIEWER)
    assert answer.status_code == 200, answer.text
    return [a["id"] for a in answer.json()]


def test_the_list_is_the_contract_alert_plus_id_and_state(api: Api) -> None:
    answer = api.client.get("/api/v1/alerts", headers=VIEWER)
    assert answer.status_code == 200
    first = answer.json()[0]
    assert {k: first[k] for k in ("type", "device_id", "vehicle_id", "time", "fence_id")} == {
        "type": "power_cut",
        "device_id": "013900000001",
        "vehicle_id": "V1",
        "time": "2024-03-01T16:00:00+08:00",
        "fence_id": None,
    }
    assert (first["id"], first["state"], first["severity"], first["details"]) == (
        api.ids[0],
        "open",
        "critical",
        {"alarm": 256},
    )
    assert [a["id"] for a in answer.json()] == api.ids
    assert "X-Next-After-Id" not in answer.headers


def test_filters_by_type_since_vehicle_and_state(api: Api) -> None:
    ids = api.ids
    assert listed(api, "?type=power_cut") == [ids[0], ids[3]]
    assert listed(api, "?type=power_cut,offline") == [ids[0], ids[1], ids[3]]
    assert listed(api, "?vehicle_id=V1") == [ids[0], ids[2]]
    assert listed(api, "?since=2024-03-01T16:02:00%2B08:00") == [ids[2], ids[3]]
    assert listed(api, "?since=2024-03-01T16:02:00+08:00") == [ids[2], ids[3]]  # + as space
    assert listed(api, "?since=2024-03-01T08:01:00Z&type=power_cut") == [ids[3]]
    assert listed(api, "?state=open&vehicle_id=V3") == [ids[3]]
    assert listed(api, "?state=resolved") == []


def test_pages_follow_the_next_cursor(api: Api) -> None:
    seen: list[int] = []
    query = "?limit=3&vehicle_id=V1"
    answer = api.client.get("/api/v1/alerts?limit=3", headers=VIEWER)
    assert answer.headers["X-Next-After-Id"] == str(api.ids[2])
    assert "after_id=" in answer.headers["Link"] and 'rel="next"' in answer.headers["Link"]
    seen += [a["id"] for a in answer.json()]
    cursor = answer.headers["X-Next-After-Id"]
    rest = api.client.get(f"/api/v1/alerts?limit=3&after_id={cursor}", headers=VIEWER)
    seen += [a["id"] for a in rest.json()]
    assert "X-Next-After-Id" not in rest.headers
    assert seen == api.ids
    assert listed(api, query) == [api.ids[0], api.ids[2]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?type=bogus", "query.type"),
        ("?type=power_cut,nope", "query.type"),
        ("?since=yesterday", "query.since"),
        ("?since=2024-03-01T16:00:00", "query.since"),
        ("?state=closed", "query.state"),
        ("?limit=0", "query.limit"),
        ("?limit=100000", "query.limit"),
        ("?limit=ten", "query.limit"),
        ("?after_id=-1", "query.after_id"),
        ("?vehicle_id=", "query.vehicle_id"),
    ],
)
def test_bad_query_values_are_a_400_naming_the_field(api: Api, query: str, field: str) -> None:
    error(api.client.get(f"/api/v1/alerts{query}", headers=VIEWER), 400, "bad_request", field)


def test_one_alert_by_id_or_a_404(api: Api) -> None:
    answer = api.client.get(f"/api/v1/alerts/{api.ids[2]}", headers=VIEWER)
    assert answer.status_code == 200
    assert (answer.json()["type"], answer.json()["fence_id"]) == ("hotspot_dwell", "pawn-17")
    error(api.client.get("/api/v1/alerts/999999", headers=VIEWER), 404, "not_found")
    error(api.client.get("/api/v1/alerts/abc", headers=VIEWER), 400, "bad_request", "path")
    error(api.client.get("/api/v1/alerts/0", headers=VIEWER), 400, "bad_request", "path")


def test_acknowledge_then_resolve_records_the_key_name_and_the_note(api: Api) -> None:
    alert_id = api.ids[0]
    acked = api.client.post(
        f"/api/v1/alerts/{alert_id}/acknowledge",
        json={"note": "calling the borrower"},
        headers=OFFICER,
    )
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["state"], body["acknowledged_by"], body["note"]) == (
        "acknowledged",
        "li",
        "calling the borrower",
    )
    assert body["acknowledged_at"] == "2024-03-01T17:00:00+08:00"
    again = api.client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=OFFICER)
    assert "already acknowledged" in error(again, 409, "invalid_transition")
    resolved = api.client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=OFFICER)
    assert resolved.status_code == 200
    assert (resolved.json()["state"], resolved.json()["resolved_by"]) == ("resolved", "li")
    assert resolved.json()["note"] == "calling the borrower"
    error(
        api.client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=OFFICER),
        409,
        "invalid_transition",
    )
    assert listed(api, "?state=resolved") == [alert_id]


def test_moves_refuse_bad_bodies_unknown_alerts_and_keys_without_the_role(api: Api) -> None:
    alert_id = api.ids[1]
    path = f"/api/v1/alerts/{alert_id}/acknowledge"
    error(api.client.post(path, json={"nope": 1}, headers=OFFICER), 400, "bad_request", "body")
    error(api.client.post(path, json={"note": 5}, headers=OFFICER), 400, "bad_request", "body.note")
    error(
        api.client.post(
            path, content=b"{not json", headers={**OFFICER, "Content-Type": "application/json"}
        ),
        400,
        "bad_request",
    )
    error(
        api.client.post(path, json={"note": "x" * 2001}, headers=OFFICER),
        400,
        "bad_request",
        "body.note",
    )
    error(api.client.post("/api/v1/alerts/999999/resolve", headers=OFFICER), 404, "not_found")
    error(api.client.post(path, headers=VIEWER), 403, "forbidden")
    error(api.client.get("/api/v1/alerts"), 401, "unauthorized")
    assert api.client.get(f"/api/v1/alerts/{alert_id}", headers=VIEWER).json()["state"] == "open"


def test_assign_hands_an_alert_to_someone_and_keeps_its_state(api: Api) -> None:
    alert_id = api.ids[0]
    path = f"/api/v1/alerts/{alert_id}/assign"
    handed = api.client.post(
        path, json={"assignee": "collector-7", "note": "visit"}, headers=OFFICER
    )
    assert handed.status_code == 200, handed.text
    body = handed.json()
    assert (body["state"], body["assignee"], body["assigned_by"], body["note"]) == (
        "open",
        "collector-7",
        "li",
        "visit",
    )
    assert body["assigned_at"] == body["updated_at"] == "2024-03-01T17:00:00+08:00"
    stored = api.client.get(f"/api/v1/alerts/{alert_id}", headers=VIEWER).json()
    assert stored["assignee"] == "collector-7"
    cleared = api.client.post(path, json={"assignee": None}, headers=OFFICER).json()
    assert cleared["assignee"] is None and cleared["note"] == "visit"
    for bad in ({}, {"assignee": ""}, {"assignee": "  "}, {"assignee": 7}, {"assignee": "x" * 65}):
        error(api.client.post(path, json=bad, headers=OFFICER), 400, "bad_request", "body")
    error(api.client.post(path, json={"assignee": "a"}, headers=VIEWER), 403, "forbidden")
    error(
        api.client.post("/api/v1/alerts/999999/assign", json={"assignee": "a"}, headers=OFFICER),
        404,
        "not_found",
    )
    api.client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=OFFICER)
    refused = api.client.post(path, json={"assignee": "late"}, headers=OFFICER)
    assert "resolved alert is final" in error(refused, 409, "invalid_transition")


# -- the live stream, served for real -----------------------------------------------------------


@dataclass
class Served:
    address: str
    hub: AlertHub


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    migrate(None, tmp_path)
    hub = AlertHub(max_queue=5)
    app, stores = build_app(None, tmp_path, hub)
    server = ApiServer(app, "127.0.0.1", 0)
    host, port = await server.start()
    try:
        yield Served(f"{host}:{port}", hub)
    finally:
        await server.stop()
        stores.close()


async def subscribed(hub: AlertHub, count: int = 1) -> None:
    for _ in range(500):
        if len(hub) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the stream never subscribed")


def stored_alerts(*kinds: AlertType) -> list[StoredAlert]:
    return [
        opened(i + 1, Alert(kind, "013900000001", "V1", T0 + i * 1000), NOW)
        for i, kind in enumerate(kinds)
    ]


async def test_the_stream_sends_each_alert_as_it_fires(served: Served) -> None:
    url = f"ws://{served.address}/api/v1/alerts/stream?key=k-viewer"
    async with connect(url) as ws:
        await subscribed(served.hub)
        alerts = stored_alerts(AlertType.POWER_CUT, AlertType.OFFLINE)
        served.hub.publish(alerts)
        got = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
    # With where the vehicle was: these devices have no stored fix, so nowhere known.
    assert got == [{**a.to_json(), "place": None} for a in alerts]
    for _ in range(100):  # the server notices the close and unsubscribes
        if len(served.hub) == 0:
            break
        await asyncio.sleep(0.01)
    assert len(served.hub) == 0


async def test_the_stream_filters_by_type_and_takes_a_bearer_header(served: Served) -> None:
    url = f"ws://{served.address}/api/v1/alerts/stream?type=offline,gps_jump"
    async with connect(url, additional_headers={"Authorization": "Bearer k-viewer"}) as ws:
        await subscribed(served.hub)
        served.hub.publish(stored_alerts(AlertType.POWER_CUT, AlertType.OFFLINE))
        got = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert got["type"] == "offline"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.2)


async def test_the_stream_refuses_bad_keys_and_unknown_types(served: Served) -> None:
    base = f"ws://{served.address}/api/v1/alerts/stream"
    for query in ("", "?key=wrong"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(base + query):
                pass
        assert refused.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(base + "?key=k-viewer&type=bogus"):
            pass
    assert refused.value.response.status_code == 403


async def test_a_client_that_falls_too_far_behind_is_closed_with_a_reason(
    served: Served,
) -> None:
    async with connect(f"ws://{served.address}/api/v1/alerts/stream?key=k-viewer") as ws:
        await subscribed(served.hub)
        served.hub.publish(stored_alerts(*[AlertType.POWER_CUT] * 8))  # queue bound: 5
        received = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(5)]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert [a["id"] for a in received] == [1, 2, 3, 4, 5]
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    assert "too slow" in closed.value.rcvd.reason


async def test_a_stream_that_asks_for_changes_sees_an_acknowledgement(
    served: Served, tmp_path: Path
) -> None:
    store = open_store(None, tmp_path)
    (stored,) = store.add_alerts([Alert(AlertType.POWER_CUT, "013900000001", "V1", T0)], NOW).new
    store.close()
    base = f"ws://{served.address}/api/v1/alerts/stream?key=k-viewer"
    async with connect(base + "&changes=true") as follows, connect(base) as plain:
        await subscribed(served.hub, 2)
        async with httpx.AsyncClient(base_url=f"http://{served.address}") as http:
            path = f"/api/v1/alerts/{stored.id}/acknowledge"
            answer = await http.post(path, json={"note": "called"}, headers=OFFICER)
            assert answer.status_code == 200, answer.text
        changed = json.loads(await asyncio.wait_for(follows.recv(), 5))
        assert (changed["id"], changed["state"]) == (stored.id, "acknowledged")
        with pytest.raises(asyncio.TimeoutError):  # the contract's stream: new alerts only
            await asyncio.wait_for(plain.recv(), 0.3)
