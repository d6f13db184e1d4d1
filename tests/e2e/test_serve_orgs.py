"""`lienwatch serve` end to end with two tenants: each sees only its own, over HTTP and on the
alert stream; every route aimed at the other tenant's records answers 404 and changes nothing;
a tenant's hotspot says nothing about the other tenant's car; a factory reset waits for a
second admin."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.support.device import TestDevice
from tests.support.processes import api_url, start_serve, stop

KEY = "e2e-orgs-admin-key-0123456789abcdef"
ROOT = {"Authorization": f"Bearer {KEY}"}
POWER_CUT = 1 << 8


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def made(answer: Any, status: int = 201) -> Any:
    response = await answer
    assert response.status_code == status, response.text
    return response.json()


async def setup_tenant(http: httpx.AsyncClient, name: str, n: int) -> dict[str, Any]:
    """A tenant with a branch, admin and viewer keys, a car with a device, a loan and a
    hotspot around the car's parking place."""
    tenant = (await made(http.post("/api/v1/orgs", json={"name": name, "kind": "tenant"})))["id"]
    branch = await made(
        http.post("/api/v1/orgs", json={"name": f"{name}-b", "kind": "branch", "parent": tenant})
    )
    keys, raw = {}, ""
    for role in ("admin", "officer", "viewer"):
        body = {"name": f"{name}-{role}", "role": role, "org": branch["id"]}
        key = (await made(http.post("/api/v1/keys", json=body)))["key"]
        keys[role] = auth(key)
        raw = key if role == "viewer" else raw
    terminal, vehicle = f"01390000010{n}", f"VIN-{name}"
    body = {"vehicle_id": vehicle, "org": branch["id"]}
    await made(http.put(f"/api/v1/devices/{terminal}", json=body))
    loan = {"loan_no": f"L-{name}", "borrower_name": "B", "vehicle_id": vehicle,
            "principal": "1000.00", "start_date": "2026-01-05", "due_day": 5}  # fmt: skip
    await made(http.post("/api/v1/loans", json=loan))
    spot = {
        "type": "Feature",
        "properties": {
            "id": f"spot-{name}",
            "kind": "hotspot",
            "radius_m": 300,
            "org": branch["id"],
        },
        "geometry": {"type": "Point", "coordinates": [120.30, 30.30]},
    }
    await made(http.post("/api/v1/fences", json=spot))
    return {"name": name, "tenant": tenant, "branch": branch["id"], "keys": keys, "raw": raw,
            "terminal": terminal, "vehicle": vehicle, "loan": f"L-{name}",
            "fence": f"spot-{name}"}  # fmt: skip


async def wait_for(http: httpx.AsyncClient, query: str, key: dict[str, str]) -> list[Any]:
    deadline = time.monotonic() + 15.0
    while True:
        found = (await http.get(f"/api/v1/alerts?{query}", headers=key)).json()
        if found or time.monotonic() > deadline:
            return list(found)
        await asyncio.sleep(0.1)


def views(http_gets: list[Any]) -> str:
    return json.dumps([answer.json() for answer in http_gets], sort_keys=True)


async def platform_view(http: httpx.AsyncClient) -> str:
    urls = ("/api/v1/devices", "/api/v1/loans", "/api/v1/fences", "/api/v1/keys", "/api/v1/orgs")
    return views([await http.get(url) for url in urls])


async def probe(http: httpx.AsyncClient, mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Every read and write of the other tenant's records answers 404 `not_found`."""
    admin, viewer = mine["keys"]["admin"], mine["keys"]["viewer"]
    t, v, n, f = theirs["terminal"], theirs["vehicle"], theirs["loan"], theirs["fence"]
    reads = [
        f"/api/v1/devices/{t}",
        f"/api/v1/devices/{t}/latest",
        f"/api/v1/devices/{t}/track?from=2026-01-01T00:00:00Z",
        f"/api/v1/devices/{t}/commands",
        f"/api/v1/vehicles/{v}",
        f"/api/v1/loans/{n}",
        f"/api/v1/loans/{n}/actions",
        f"/api/v1/fences/{f}",
        f"/api/v1/orgs/{theirs['tenant']}",
        f"/api/v1/orgs/{theirs['branch']}/rules",
    ]
    for url in reads:
        answer = await http.get(url, headers=viewer)
        assert (answer.status_code, answer.json()["error"]) == (404, "not_found"), url
    writes = [
        ("PUT", f"/api/v1/devices/{t}", {"vehicle_id": "X"}),
        ("POST", f"/api/v1/devices/{t}/reprovision", {}),
        ("POST", f"/api/v1/devices/{t}/commands", {"kind": "query_location"}),
        ("DELETE", f"/api/v1/fences/{f}", None),
        ("POST", f"/api/v1/loans/{n}/payments", {"installments": 1}),
        ("POST", f"/api/v1/loans/{n}/transition", {"to": "settled"}),
        ("POST", f"/api/v1/vehicles/{v}/move", {"org": mine["branch"]}),
        ("PUT", f"/api/v1/vehicles/{v}", {"plate": "X"}),
        ("DELETE", f"/api/v1/keys/{theirs['name']}-viewer", None),
        ("PUT", f"/api/v1/orgs/{theirs['branch']}/rules", {"overspeed": {"speed_kmh": 1}}),
    ]
    for method, url, body in writes:
        answer = await http.request(method, url, json=body, headers=admin)
        assert (answer.status_code, answer.json()["error"]) == (404, "not_found"), (method, url)
    listed = (await http.get("/api/v1/devices", headers=viewer)).json()["devices"]
    assert [d["terminal"] for d in listed] == [mine["terminal"]]
    loans = (await http.get("/api/v1/loans", headers=viewer)).json()
    assert [x["loan_no"] for x in loans] == [mine["loan"]]
    fences = (await http.get("/api/v1/fences", headers=viewer)).json()["features"]
    assert [x["properties"]["id"] for x in fences] == [mine["fence"]]


async def test_two_tenants_see_only_their_own_through_a_real_serve(tmp_path: Path) -> None:
    env = {
        "LIENWATCH_DATA_DIR": str(tmp_path / "data"),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_ADMIN_API_KEY": KEY,
        "LIENWATCH_RELOAD_INTERVAL_S": "0.2",
    }
    proc, port = start_serve(env)
    try:
        base = api_url(proc)
        async with httpx.AsyncClient(base_url=base, timeout=5, headers=ROOT) as http:
            a = await setup_tenant(http, "A", 1)
            b = await setup_tenant(http, "B", 2)
            before = await platform_view(http)
            await probe(http, a, b)
            await probe(http, b, a)
            assert await platform_view(http) == before
            await asyncio.sleep(0.5)  # the detector reloads fences and units every 0.2 s

            # A's car parks 31 min in the spot both tenants marked, then its power is cut:
            # A's stream and list get both alerts, about A's spot only; B's get nothing.
            ws = base.replace("http", "ws", 1) + "/api/v1/alerts/stream?key="
            async with connect(ws + a["raw"]) as stream_a, connect(ws + b["raw"]) as stream_b:
                device = TestDevice(a["terminal"])
                await device.connect("127.0.0.1", port)
                assert await device.login()
                now = int(time.time() * 1000)
                fixes = [await device.report(120.30, 30.30, now - m * 60_000)
                         for m in range(40, 0, -1)]  # fmt: skip
                fixes.append(await device.report(120.30, 30.30, now, alarm=POWER_CUT))
                await device.wait_acks(fixes)
                first = json.loads(await asyncio.wait_for(stream_a.recv(), 10))
                assert first["org"] == a["branch"]
                (dwell,) = await wait_for(http, "type=hotspot_dwell", a["keys"]["viewer"])
                assert dwell["fence_id"] == "spot-A"
                (cut,) = await wait_for(http, "type=power_cut", a["keys"]["viewer"])
                assert cut["vehicle_id"] == "VIN-A"
                await asyncio.sleep(0.5)
                every = (await http.get("/api/v1/alerts")).json()
                assert {x["fence_id"] for x in every} <= {"spot-A", None}
                assert (await http.get("/api/v1/alerts", headers=b["keys"]["viewer"])).json() == []
                try:
                    leaked = await asyncio.wait_for(stream_b.recv(), 0.5)
                except TimeoutError:
                    leaked = None
                assert leaked is None
                await device.close()

            # A factory reset waits for a second admin; the other tenant's cannot approve it.
            reset = {"kind": "terminal_control", "command": "factory_reset"}
            asked = await http.post(
                f"/api/v1/devices/{a['terminal']}/commands",
                json=reset,
                headers=a["keys"]["officer"],
            )
            assert asked.status_code == 202, asked.text
            approve = f"/api/v1/approvals/{asked.json()['id']}/approve"
            assert (await http.post(approve, headers=b["keys"]["admin"])).status_code == 404
            assert (await http.post(approve, headers=a["keys"]["officer"])).status_code == 403
            done = await http.post(approve, headers=a["keys"]["admin"])
            assert done.status_code == 200, done.text
            assert done.json()["command"]["approved_by"] == "A-admin"
            entries = (
                await http.get("/api/v1/audit?limit=1000", headers=a["keys"]["admin"])
            ).json()
            people = {(e["action"], e["actor"]) for e in entries}
            assert {("command.request", "A-officer"), ("command.approved", "A-admin")} <= people
            assert all(e["org"] in (a["tenant"], a["branch"]) for e in entries)
    finally:
        assert stop(proc, signal.SIGTERM) == 0
