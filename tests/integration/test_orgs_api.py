"""Organization units, the two-person rule for dangerous commands, moving a car between units,
the audit log and the scoped alert stream, over HTTP against both databases."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect

from alerts.delivery.hub import AlertHub
from alerts.lifecycle import opened
from alerts.model import Alert, AlertType
from api.app import READY, create_app
from api.auth import ensure_admin_key
from api.context import ApiContext
from api.routes.alerts import alerts_router
from api.server import ApiServer
from api.stores import StoreAccess
from ingest.commands import CommandOutcome
from ingest.jt808.messages import (
    Message,
    TerminalControl,
    TerminalGeneralResponse,
    VehicleControl,
)
from store import CommandState, migrate, open_store
from tests.support.api import ApiUnderTest, api_under_test, error

T0_MS = 1_709_280_000_000
HOUR_MS = 3_600_000


class Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []

    async def __call__(self, terminal: str, message: Message) -> CommandOutcome:
        self.sent.append((terminal, message))
        reply = TerminalGeneralResponse(1, int(message.MSG_ID), 0)
        return CommandOutcome(CommandState.ACKED, reply)


class Clock:
    def __init__(self) -> None:
        self.now = T0_MS

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def sender() -> Sender:
    return Sender()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(
    store_url: str | None, tmp_path: Path, sender: Sender, clock: Clock
) -> Iterator[ApiUnderTest]:
    for running in api_under_test(store_url, tmp_path, send_command=sender, with_alerts=True):
        running.context.clock_ms = clock
        yield running


def unit(api: ApiUnderTest, name: str, kind: str, parent: int | None, key: Any = None) -> int:
    body = {"name": name, "kind": kind, "parent": parent}
    answer = api.client.post("/api/v1/orgs", json=body, headers=key or api.admin)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def key(api: ApiUnderTest, name: str, role: str, org: int) -> dict[str, str]:
    body = {"name": name, "role": role, "org": org}
    answer = api.client.post("/api/v1/keys", json=body, headers=api.admin)
    assert answer.status_code == 201, answer.text
    return api.auth(answer.json()["key"])


def test_tenants_branches_and_dealers_form_a_tree_each_key_sees_its_subtree(
    api: ApiUnderTest,
) -> None:
    client = api.client
    acme = unit(api, "Acme", "tenant", None)
    north = unit(api, "North", "branch", acme)
    dealer = unit(api, "Dealer 1", "dealer", north)
    other = unit(api, "Other", "tenant", None)
    acme_admin = key(api, "acme-admin", "admin", acme)
    north_viewer = key(api, "north-viewer", "viewer", north)
    # Root-unit keys alone create tenants; admins of an ancestor create branches and dealers.
    error(
        client.post("/api/v1/orgs", json={"name": "x", "kind": "tenant"}, headers=acme_admin),
        403,
        "forbidden",
        "kind",
    )
    error(
        client.post(
            "/api/v1/orgs",
            json={"name": "x", "kind": "branch", "parent": other},
            headers=acme_admin,
        ),
        404,
        "not_found",
    )
    error(
        client.post("/api/v1/orgs", json={"name": "x", "kind": "branch"}, headers=acme_admin),
        400,
        "bad_request",
    )
    error(
        client.post(
            "/api/v1/orgs",
            json={"name": "x", "kind": "dealer", "parent": north},
            headers=north_viewer,
        ),
        403,
        "forbidden",
    )
    south = unit(api, "South", "branch", acme, acme_admin)
    listed = client.get("/api/v1/orgs", headers=north_viewer).json()["orgs"]
    assert [(o["id"], o["kind"], o["parent"]) for o in listed] == [
        (north, "branch", acme),
        (dealer, "dealer", north),
    ]
    everything = {o["id"] for o in client.get("/api/v1/orgs", headers=api.admin).json()["orgs"]}
    assert {1, acme, north, dealer, other, south} <= everything
    tenant = client.get(f"/api/v1/orgs/{acme}", headers=acme_admin).json()
    assert tenant["parent"] is None and tenant["kind"] == "tenant"
    error(client.get(f"/api/v1/orgs/{acme}", headers=north_viewer), 404, "not_found")
    # A key is made in the caller's unit by default, and only within its subtree.
    made = client.post("/api/v1/keys", json={"name": "a2", "role": "viewer"}, headers=acme_admin)
    assert made.json()["org"] == acme
    outside = {"name": "a3", "role": "viewer", "org": other}
    error(client.post("/api/v1/keys", json=outside, headers=acme_admin), 404, "not_found")
    assert client.get("/api/v1/me", headers=north_viewer).json()["org"] == north


def test_dangerous_commands_wait_for_another_admin_of_the_unit_or_above(
    api: ApiUnderTest, sender: Sender, clock: Clock
) -> None:
    client = api.client
    acme = unit(api, "Acme", "tenant", None)
    north = unit(api, "North", "branch", acme)
    dealer = unit(api, "D", "dealer", north)
    other = unit(api, "Other", "tenant", None)
    officer = key(api, "north-officer", "officer", north)
    north_admin = key(api, "north-admin", "admin", north)
    acme_admin = key(api, "acme-admin", "admin", acme)
    dealer_admin = key(api, "dealer-admin", "admin", dealer)
    other_admin = key(api, "other-admin", "admin", other)
    terminal = "013900000001"
    provision = {"vehicle_id": "V1", "org": north}
    assert client.put(f"/api/v1/devices/{terminal}", json=provision, headers=acme_admin).is_success
    url = f"/api/v1/devices/{terminal}/commands"

    reset = client.post(url, json={"kind": "terminal_control", "command": "factory_reset"},
                        headers=officer)  # fmt: skip
    assert reset.status_code == 202, reset.text
    pending = reset.json()
    assert pending["state"] == "pending" and pending["requested_by"] == "north-officer"
    assert pending["org"] == north and sender.sent == []
    approve = f"/api/v1/approvals/{pending['id']}/approve"
    # Outside the device's unit and above: as missing. The requester: refused.
    error(client.post(approve, headers=dealer_admin), 404, "not_found")
    error(client.post(approve, headers=other_admin), 404, "not_found")
    error(client.post(approve, headers=officer), 403, "forbidden")
    assert sender.sent == []
    done = client.post(approve, headers=acme_admin)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "approved" and done.json()["decided_by"] == "acme-admin"
    assert sender.sent == [(terminal, TerminalControl(5, ""))]
    command = client.get(f"/api/v1/commands/{done.json()['command_id']}", headers=officer).json()
    assert command["issued_by"] == "north-officer" and command["approved_by"] == "acme-admin"
    error(client.post(approve, headers=north_admin), 409, "decided")

    # An admin's own request needs another admin.
    move = client.post(url, json={"kind": "set_parameters", "params": {"0x0013": "evil:1"}},
                       headers=north_admin)  # fmt: skip
    assert move.status_code == 202
    error(client.post(f"/api/v1/approvals/{move.json()['id']}/approve", headers=north_admin),
          409, "own_request")  # fmt: skip
    rejected = client.post(f"/api/v1/approvals/{move.json()['id']}/reject", headers=acme_admin)
    assert rejected.json()["state"] == "rejected"
    assert len(sender.sent) == 1

    # Unapproved, a request expires.
    off = client.post(url, json={"kind": "terminal_control", "command": "power_off"},
                      headers=officer)  # fmt: skip
    clock.now += HOUR_MS + 1
    error(client.post(f"/api/v1/approvals/{off.json()['id']}/approve", headers=acme_admin),
          409, "expired")  # fmt: skip
    assert (
        client.get(f"/api/v1/approvals/{off.json()['id']}", headers=officer).json()["state"]
        == "expired"
    )
    assert len(sender.sent) == 1

    # Vehicle control (cut fuel and power) always needs a second person.
    cut = client.post(url, json={"kind": "vehicle_control", "flags": 1}, headers=officer)
    assert (cut.status_code, cut.json()["kind"], cut.json()["msg_id"]) == (
        202,
        "vehicle_control",
        "0x8500",
    )
    assert len(sender.sent) == 1
    approved = client.post(f"/api/v1/approvals/{cut.json()['id']}/approve", headers=north_admin)
    assert approved.status_code == 200, approved.text
    assert sender.sent[-1] == (terminal, VehicleControl(1))
    assert approved.json()["command"]["approved_by"] == "north-admin"
    sender.sent.pop()

    # Everything else goes out at once.
    assert client.post(url, json={"kind": "query_location"}, headers=officer).status_code == 200
    locate_ok = client.post(url, json={"kind": "terminal_control", "command": "reset"},
                            headers=officer)  # fmt: skip
    assert locate_ok.status_code == 200
    # The audit log shows both people.
    entries = client.get("/api/v1/audit?limit=1000", headers=acme_admin).json()
    actions = [(e["action"], e["actor"]) for e in entries]
    assert ("command.request", "north-officer") in actions
    assert ("command.approved", "acme-admin") in actions
    assert ("command.rejected", "acme-admin") in actions
    error(client.get("/api/v1/audit", headers=officer), 403, "forbidden")
    other_log = client.get("/api/v1/audit?limit=1000", headers=other_admin).json()
    assert all(e["org"] == other for e in other_log)


def test_a_car_moves_with_its_devices_loans_and_alerts_in_one_action(api: ApiUnderTest) -> None:
    client = api.client
    acme = unit(api, "Acme", "tenant", None)
    north = unit(api, "North", "branch", acme)
    south = unit(api, "South", "branch", acme)
    north_viewer = key(api, "nv", "viewer", north)
    south_viewer = key(api, "sv", "viewer", south)
    acme_admin = key(api, "aa", "admin", acme)
    for terminal in ("013900000001", "013900000002"):
        body = {"vehicle_id": "V1", "org": north}
        assert client.put(f"/api/v1/devices/{terminal}", json=body, headers=acme_admin).is_success
    loan = {"loan_no": "L1", "borrower_name": "B", "vehicle_id": "V1", "principal": "10.00",
            "start_date": "2024-01-15", "due_day": 15}  # fmt: skip
    assert client.post("/api/v1/loans", json=loan, headers=acme_admin).json()["org"] == north
    store = api.store()
    try:
        store.add_alerts([Alert(AlertType.POWER_CUT, "013900000001", "V1", T0_MS)], T0_MS)
    finally:
        store.close()
    assert len(client.get("/api/v1/alerts", headers=north_viewer).json()) == 1
    moved = client.post("/api/v1/vehicles/V1/move", json={"org": south}, headers=acme_admin)
    assert moved.json() == {"vehicle_id": "V1", "org": south, "moved": 4}
    assert client.get("/api/v1/alerts", headers=north_viewer).json() == []
    assert [a["org"] for a in client.get("/api/v1/alerts", headers=south_viewer).json()] == [south]
    assert client.get("/api/v1/vehicles/V1", headers=south_viewer).json()["org"] == south
    error(client.get("/api/v1/loans/L1", headers=north_viewer), 404, "not_found")
    assert client.get("/api/v1/loans/L1", headers=south_viewer).json()["org"] == south
    devices = client.get("/api/v1/devices", headers=south_viewer).json()["devices"]
    assert [d["org"] for d in devices] == [south, south]
    audit = client.get("/api/v1/audit", headers=acme_admin).json()
    assert audit[-1]["action"] == "vehicle.move"
    assert audit[-1]["before"]["org"] == north and audit[-1]["after"]["org"] == south


async def test_the_alert_stream_shows_only_the_callers_subtree(tmp_path: Path) -> None:
    migrate(None, tmp_path)
    store = open_store(None, tmp_path)
    try:
        admin = ensure_admin_key(store, None)
        hub = AlertHub()
        context = ApiContext(stores=StoreAccess(lambda: open_store(None, tmp_path), threads=2))
        context.extra_routers.append(alerts_router(context.stores, hub, context.auth.viewer))
        app = create_app(registry=CollectorRegistry(), ready=lambda: READY, context=context)
        server = ApiServer(app, "127.0.0.1", 0)
        host, port = await server.start()
    finally:
        store.close()
    assert admin is not None
    try:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            root = {"Authorization": f"Bearer {admin}"}
            made = []
            for name in ("A", "B"):
                answer = await client.post(
                    "/api/v1/orgs", json={"name": name, "kind": "tenant"}, headers=root
                )
                made.append(answer.json()["id"])
            answer = await client.post(
                "/api/v1/keys", json={"name": "va", "role": "viewer", "org": made[0]}, headers=root
            )
            viewer = answer.json()["key"]
        alerts = [
            replace(opened(i, Alert(AlertType.POWER_CUT, f"01390000000{i}", f"V{i}", T0_MS), T0_MS),
                    org=org)
            for i, org in enumerate((made[1], made[0], made[1], None), start=1)
        ]  # fmt: skip
        async with connect(f"ws://{host}:{port}/api/v1/alerts/stream?key={viewer}") as ws:
            for _ in range(500):
                if len(hub):
                    break
                await asyncio.sleep(0.01)
            hub.publish(alerts)
            got = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert got["id"] == 2 and got["org"] == made[0]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
    finally:
        await server.stop()
        context.stores.close()


def test_borrowers_are_masked_for_viewers_and_cars_are_records(api: ApiUnderTest) -> None:
    client = api.client
    acme = unit(api, "Acme", "tenant", None)
    dealer = unit(api, "Dealer", "dealer", acme)
    other = unit(api, "Other", "tenant", None)
    admin = key(api, "aa", "admin", acme)
    officer = key(api, "ao", "officer", acme)
    viewer = key(api, "av", "viewer", acme)
    other_admin = key(api, "oa", "admin", other)
    person = {"name": "Wang Wei", "id_number": "110101199001011234", "phone": "13812345678"}
    made = client.post("/api/v1/borrowers", json=person, headers=admin)
    assert made.status_code == 201, made.text
    borrower = made.json()
    assert (borrower["org"], borrower["id_number"], borrower["phone"]) == (
        acme,
        "110101199001011234",
        "13812345678",
    )
    url = f"/api/v1/borrowers/{borrower['id']}"
    assert client.get(url, headers=officer).json()["phone"] == "13812345678"
    shown = client.get(url, headers=viewer).json()
    assert (shown["id_number"], shown["phone"]) == ("**************1234", "138****5678")
    assert [b["phone"] for b in client.get("/api/v1/borrowers", headers=viewer).json()] == [
        "138****5678"
    ]
    error(client.get(url, headers=other_admin), 404, "not_found")
    assert client.get("/api/v1/borrowers", headers=other_admin).json() == []
    # The audit log never holds the numbers whole.
    entry = client.get("/api/v1/audit", headers=admin).json()[-1]
    assert entry["action"] == "borrower.create"
    assert entry["after"]["id_number"] == "**************1234"
    assert "110101199001011234" not in json.dumps(client.get("/api/v1/audit", headers=admin).json())

    car = {"vin": "LSVAU2180N2183294", "plate": "沪A12345", "make": "VW", "model": "Lavida",
           "colour": "white", "dealer": dealer}  # fmt: skip
    put = client.put("/api/v1/vehicles/V1", json=car, headers=admin)
    assert put.status_code == 201, put.text
    assert put.json() == {"vehicle_id": "V1", "org": acme, **car}
    assert client.put("/api/v1/vehicles/V1", json=car, headers=admin).status_code == 200
    error(client.put("/api/v1/vehicles/V1", json=car, headers=other_admin), 404, "not_found")
    error(client.put("/api/v1/vehicles/V2", json={"dealer": acme}, headers=admin), 404,
          "not_found", "dealer")  # fmt: skip
    error(client.put("/api/v1/vehicles/V2", json={"dealer": dealer}, headers=other_admin), 404,
          "not_found")  # fmt: skip
    record = client.get("/api/v1/vehicles/V1", headers=viewer).json()
    assert (record["vin"], record["dealer"], record["devices"]) == (car["vin"], dealer, [])
    assert [v["vehicle_id"] for v in client.get("/api/v1/vehicles", headers=viewer).json()[
        "vehicles"]] == ["V1"]  # fmt: skip
    assert client.get("/api/v1/vehicles", headers=other_admin).json()["vehicles"] == []

    loan = {"loan_no": "L1", "borrower_id": borrower["id"], "vehicle_id": "V1",
            "principal": "10.00", "start_date": "2024-01-15", "due_day": 15}  # fmt: skip
    created = client.post("/api/v1/loans", json=loan, headers=admin)
    assert created.status_code == 201, created.text
    assert (created.json()["borrower_name"], created.json()["borrower_id"]) == (
        "Wang Wei",
        borrower["id"],
    )
    detail = client.get("/api/v1/loans/L1", headers=viewer).json()
    assert detail["borrower"]["phone"] == "138****5678"
    assert client.get("/api/v1/loans/L1", headers=officer).json()["borrower"]["phone"] == (
        "13812345678"
    )
    theirs = {**loan, "loan_no": "L2", "vehicle_id": "V9"}
    error(client.post("/api/v1/loans", json=theirs, headers=other_admin), 404, "not_found")
    error(client.post("/api/v1/loans", json={k: v for k, v in loan.items() if k != "borrower_id"}
                      | {"loan_no": "L3"}, headers=admin), 400, "bad_request")  # fmt: skip
    # Another unit for a known car moves it, with its loans, as the move route does.
    moved = client.put("/api/v1/vehicles/V1", json={**car, "org": dealer}, headers=admin)
    assert (moved.status_code, moved.json()["org"]) == (200, dealer)
    assert client.get("/api/v1/loans/L1", headers=admin).json()["org"] == dealer


def test_the_platform_keeps_an_admin_key_a_tenant_need_not(api: ApiUnderTest) -> None:
    client = api.client
    acme = unit(api, "Acme", "tenant", None)
    key(api, "acme-admin", "admin", acme)
    assert client.delete("/api/v1/keys/acme-admin", headers=api.admin).status_code == 200
    error(client.delete("/api/v1/keys/admin", headers=api.admin), 409, "last_admin")


def test_a_units_threshold_overrides_through_the_api(api: ApiUnderTest) -> None:
    client = api.client
    acme = unit(api, "Acme", "tenant", None)
    other = unit(api, "Other", "tenant", None)
    admin = key(api, "aa", "admin", acme)
    viewer = key(api, "av", "viewer", acme)
    url = f"/api/v1/orgs/{acme}/rules"
    assert client.get(url, headers=viewer).json() == {"org": acme, "rules": {}}
    rules = {"overspeed": {"speed_kmh": 110}, "offline": {"after_s": 3600}}
    put = client.put(url, json=rules, headers=admin)
    assert put.status_code == 200, put.text
    assert client.get(url, headers=viewer).json() == {"org": acme, "rules": rules}
    error(client.put(url, json={"overspeed": {"knots": 3}}, headers=admin), 400, "bad_request",
          "body: overspeed.knots")  # fmt: skip
    error(client.put(url, json={"overspeed": {"speed_kmh": -1}}, headers=admin), 400,
          "bad_request")  # fmt: skip
    error(client.put(url, json=rules, headers=viewer), 403, "forbidden")
    error(client.put(f"/api/v1/orgs/{other}/rules", json=rules, headers=admin), 404, "not_found")
    error(client.get(f"/api/v1/orgs/{other}/rules", headers=viewer), 404, "not_found")
    assert client.put(url, json={}, headers=admin).json() == {"org": acme, "rules": {}}
