"""`lienwatch serve` end to end: a tracker's report becomes a stored, streamed alert, and a fence
added through the API reaches the running engine."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.support.device import TestDevice
from tests.support.processes import api_url, start_serve, stop

KEY = "e2e-admin-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
POWER_CUT = 1 << 8
ZONE = {
    "type": "Feature",
    "properties": {"id": "depot", "kind": "zone", "notify": ["enter"]},
    "geometry": {"type": "Point", "coordinates": [120.20, 30.25]},
}
ZONE["properties"]["radius_m"] = 500  # type: ignore[index]


async def wait_for(http: httpx.AsyncClient, query: str, timeout_s: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = (await http.get(f"/api/v1/alerts?{query}")).json()
        if found or time.monotonic() > deadline:
            return list(found)
        time.sleep(0.1)


async def test_a_power_cut_is_stored_streamed_and_acknowledged_and_a_new_fence_applies(
    tmp_path: Path,
) -> None:
    env = {
        "LIENWATCH_DATA_DIR": str(tmp_path / "data"),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
        "LIENWATCH_ADMIN_API_KEY": KEY,
        "LIENWATCH_RELOAD_INTERVAL_S": "0.2",
    }
    proc, port = start_serve(env)
    try:
        base = api_url(proc)
        async with httpx.AsyncClient(base_url=base, timeout=5, headers=AUTH) as http:
            bound = await http.put("/api/v1/devices/013900000081", json={"vehicle_id": "VIN-81"})
            assert bound.status_code == 201, bound.text
            stream_url = base.replace("http", "ws", 1) + f"/api/v1/alerts/stream?key={KEY}"
            async with connect(stream_url) as stream:
                device = TestDevice("013900000081")
                await device.connect("127.0.0.1", port)
                assert await device.login()
                now = int(time.time() * 1000)
                first = await device.report(120.19, 30.25, now - 600_000)  # 1 km from the depot
                cut = await device.report(120.19, 30.25, now - 540_000, alarm=POWER_CUT)
                await device.wait_acks([first, cut])
                streamed = json.loads(await stream.recv())
                assert (streamed["type"], streamed["vehicle_id"]) == ("power_cut", "VIN-81")
                assert streamed["state"] == "open"
            (stored,) = await wait_for(http, "type=power_cut&vehicle_id=VIN-81")
            assert stored["id"] == streamed["id"]
            metrics = (await http.get("/metrics")).text
            assert 'lienwatch_alerts_raised_total{type="power_cut"} 1.0' in metrics
            assert 'lienwatch_alert_deliveries_total{sink="' in metrics
            acked = await http.post(f"/api/v1/alerts/{stored['id']}/acknowledge", json={})
            assert acked.status_code == 200, acked.text
            assert acked.json()["state"] == "acknowledged"

            # A zone posted now is picked up by the running engine: entering it alerts.
            assert (await http.post("/api/v1/fences", json=ZONE)).status_code in (200, 201)
            time.sleep(1.0)  # the engine reloads fences every 0.2 s here
            now = int(time.time() * 1000)
            inside = [await device.report(120.20, 30.25, now - i * 60_000) for i in (2, 1, 0)]
            await device.wait_acks(inside)
            (entered,) = await wait_for(http, "type=geofence_enter")
            assert (entered["fence_id"], entered["vehicle_id"]) == ("depot", "VIN-81")

            # The car's loan is settled: it is no longer watched, a new power cut stays quiet.
            loan = {
                "loan_no": "L-81",
                "borrower_name": "Borrower 81",
                "vehicle_id": "VIN-81",
                "principal": "120000.00",
                "start_date": "2026-01-05",
                "due_day": 5,
            }
            assert (await http.post("/api/v1/loans", json=loan)).status_code == 201
            settled = await http.post("/api/v1/loans/L-81/transition", json={"to": "settled"})
            assert settled.status_code == 200, settled.text
            time.sleep(1.0)  # the alert side re-reads the watched cars every 0.2 s here
            now = int(time.time() * 1000)
            quiet = [
                await device.report(120.20, 30.25, now + 1000),
                await device.report(120.20, 30.25, now + 2000, alarm=POWER_CUT),
            ]
            await device.wait_acks(quiet)
            time.sleep(1.5)  # a detector cycle and more
            cuts = (await http.get("/api/v1/alerts?type=power_cut")).json()
            assert [a["id"] for a in cuts] == [stored["id"]]
            await device.close()
    finally:
        assert stop(proc, signal.SIGTERM) == 0
