"""`lienwatch serve` answers /healthz and exposes its Prometheus metrics on the API port."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.support.device import TestDevice
from tests.support.processes import api_url, start_serve, stop

T0_MS = 1_735_689_600_000


async def test_serve_reports_health_and_counts_acknowledged_positions(tmp_path: Path) -> None:
    env = {
        "LIENWATCH_DATA_DIR": str(tmp_path / "data"),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
    }
    proc, port = start_serve(env)
    try:
        base = api_url(proc)
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            health = await http.get("/healthz")
            assert health.status_code == 200
            assert health.json() == {"status": "ok"}
            device = TestDevice("13900000070")
            await device.connect("127.0.0.1", port)
            assert await device.login()
            serials = [await device.report(121.4, 31.2, T0_MS + i * 1000) for i in range(25)]
            await device.wait_acks(serials)
            text = (await http.get("/metrics")).text
            assert "lienwatch_positions_acked_total 25.0" in text
            assert "lienwatch_connections_open 1.0" in text
            missing = await http.get("/api/v1/nothing-here")
            assert missing.status_code == 404
            assert missing.json()["error"] == "not_found"
            await device.close()
    finally:
        assert stop(proc, signal.SIGTERM) == 0
