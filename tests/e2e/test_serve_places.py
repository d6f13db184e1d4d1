"""`lienwatch serve` end to end: a car that must stay in Zhejiang (an administrative allowed
area, one line) is driven from Hangzhou to Shanghai; one `leave_allowed_area` names Shanghai,
and the positions, the alert and the car's trip say where they are."""

from __future__ import annotations

import asyncio
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
TERMINAL = "013900000090"
HANGZHOU = (120.1636, 30.2578)
SHANGHAI = (121.4737, 31.2304)
ZHEJIANG = {
    "type": "Feature",
    "properties": {"id": "zj", "kind": "allowed_area", "adcode": "330000", "vehicles": ["V90"]},
    "geometry": None,
}


async def test_hangzhou_to_shanghai_leaves_zhejiang_once_for_shanghai(tmp_path: Path) -> None:
    env = {
        "LIENWATCH_DATA_DIR": str(tmp_path / "data"),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
        "LIENWATCH_ADMIN_API_KEY": KEY,
        "LIENWATCH_RELOAD_INTERVAL_S": "0.2",
    }
    proc, port = start_serve(env)
    try:
        async with httpx.AsyncClient(base_url=api_url(proc), timeout=10, headers=AUTH) as http:
            bound = await http.put(f"/api/v1/devices/{TERMINAL}", json={"vehicle_id": "V90"})
            assert bound.status_code == 201, bound.text
            posted = await http.post("/api/v1/fences", json=ZHEJIANG)
            assert posted.status_code == 201, posted.text
            time.sleep(1.0)  # the engine reloads fences every 0.2 s here
            base = api_url(proc)
            stream_url = base.replace("http", "ws", 1) + f"/api/v1/alerts/stream?key={KEY}"
            stream = await connect(stream_url)
            device = TestDevice(TERMINAL)
            await device.connect("127.0.0.1", port)
            assert await device.login()
            # 100 km/h, a fix a minute for 100 minutes, ending a minute ago; then parked.
            start = int(time.time() * 1000) - 130 * 60_000
            serials = []
            for m in range(101):
                f = m / 100
                lon = HANGZHOU[0] + f * (SHANGHAI[0] - HANGZHOU[0])
                lat = HANGZHOU[1] + f * (SHANGHAI[1] - HANGZHOU[1])
                serials.append(
                    await device.report(lon, lat, start + m * 60_000, speed_kmh=100.0, status=3)
                )
            for m in range(101, 129):
                serials.append(await device.report(*SHANGHAI, start + m * 60_000, status=2))
            await device.wait_acks(serials)
            # Other rules may speak first (a drive at night raises `night_trips`).
            streamed = json.loads(await asyncio.wait_for(stream.recv(), 20))
            while streamed["type"] != "leave_allowed_area":
                streamed = json.loads(await asyncio.wait_for(stream.recv(), 20))
            await stream.close()
            assert streamed["place"]["province"] == "上海市"
            deadline = time.monotonic() + 20
            while True:
                found = (await http.get("/api/v1/alerts?type=leave_allowed_area")).json()
                if found or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            time.sleep(1.0)  # a second one would have come by now
            alerts = (await http.get("/api/v1/alerts?type=leave_allowed_area")).json()
            assert len(alerts) == 1, alerts
            (alert,) = alerts
            assert (alert["vehicle_id"], alert["fence_id"]) == ("V90", "zj")
            assert alert["details"]["entered"]["province"] == "上海市"
            assert alert["place"]["province"] == "上海市"

            latest = (await http.get(f"/api/v1/devices/{TERMINAL}/latest")).json()
            assert latest["place"]["district"] == "黄浦区"  # People's Square
            track = (
                await http.get(
                    f"/api/v1/devices/{TERMINAL}/track", params={"from": str(start // 1000)}
                )
            ).json()
            provinces = [p["place"]["province"] for p in track if p["place"]]
            assert provinces[0] == "浙江省" and provinces[-1] == "上海市"
            assert all(p["place"] is None or p["place"]["district"] for p in track)
            trips = (
                await http.get("/api/v1/vehicles/V90/trips", params={"from": str(start // 1000)})
            ).json()["trips"]
            assert len(trips) == 1
            assert trips[0]["from"]["place"]["city"] == "杭州市"
            assert trips[0]["to"]["place"]["province"] == "上海市"
            assert 160_000 < trips[0]["distance_m"] < 180_000
            await device.close()
    finally:
        assert stop(proc, signal.SIGTERM) == 0
