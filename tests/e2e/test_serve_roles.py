"""A split deployment of real `serve` processes on PostgreSQL (LIENWATCH_ROLES, docs/deploy.md):
two gateways sharing one port (SO_REUSEPORT), an API process of its own, a gateway with its
detector beside an API process."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.asyncio.client import connect

from ingest.jt808 import ParamId
from simulators.device import Device as SimulatedDevice
from simulators.device import Shuttle
from simulators.wire import Clock, run_tcp
from tests.support.device import TestDevice
from tests.support.processes import Started, start_roles, stop

pytestmark = pytest.mark.db
POWER_CUT = 1 << 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def role_env(pg_url: str, data_dir: Path, roles: str, **more: str) -> dict[str, str]:
    return {
        "LIENWATCH_DATABASE_URL": pg_url,
        "LIENWATCH_DATA_DIR": str(data_dir),
        "LIENWATCH_ROLES": roles,
        "LIENWATCH_AUTO_REGISTER": "true",
        **more,
    }


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def holders(pg_url: str) -> dict[str, str]:
    """terminal -> gateway, as the gateways told the store."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT terminal, gateway FROM gateway_sessions").fetchall()
    return {str(t): str(g) for t, g in rows}


class Tracker:
    """A simulated tracker (answers commands) running against the shared port."""

    def __init__(self, number: int, port: int) -> None:
        self.device = SimulatedDevice(f"1390000{number:04d}", Shuttle(121.5, 31.3))
        self.terminal = f"01390000{number:04d}"
        self.port = port
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.stop = asyncio.Event()
        clock = Clock.start(1.0)
        self.task = asyncio.create_task(
            run_tcp(self.device, "127.0.0.1", self.port, clock, self.stop)
        )

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task


async def test_two_gateways_share_a_port_and_commands_reach_either_through_the_api(
    pg_url: str, tmp_path: Path
) -> None:
    port = free_port()
    api = start_roles(role_env(pg_url, tmp_path / "api", "api"))
    shared = {"LIENWATCH_JT808_LISTEN": f"127.0.0.1:{port}", "LIENWATCH_JT808_REUSE_PORT": "true"}
    gateways = [
        start_roles(role_env(pg_url, tmp_path / f"gateway{i}", "gateway", **shared))
        for i in range(2)
    ]
    trackers: list[Tracker] = []
    try:
        assert api.port is None and api.api is not None and api.key is not None
        assert all(g.port == port and g.api is None for g in gateways)
        headers = {"Authorization": f"Bearer {api.key}"}
        async with httpx.AsyncClient(base_url=api.api, headers=headers, timeout=40) as http:
            # Trackers connect until both gateways hold some (the kernel spreads them).
            while len(set(holders(pg_url).values())) < 2 or len(trackers) < 6:
                assert len(trackers) < 40, "every connection went to one gateway"
                tracker = Tracker(len(trackers), port)
                tracker.start()
                trackers.append(tracker)

                async def held(tracker: Tracker = tracker) -> bool:
                    return tracker.terminal in holders(pg_url)

                await until(held)
            held_by = holders(pg_url)

            async def online(terminal: str) -> bool:
                answer = await http.get(f"/api/v1/devices/{terminal}")
                return answer.status_code == 200 and answer.json()["online"] is True

            for gateway in set(held_by.values()):  # one tracker on each gateway
                tracker = next(t for t in trackers if held_by[t.terminal] == gateway)
                await until(lambda t=tracker: online(t.terminal))
                url = f"/api/v1/devices/{tracker.terminal}/commands"
                body = {"kind": "set_parameters", "params": {"default_interval_s": 7}}
                answer = await http.post(url, json=body)
                assert answer.status_code == 200, answer.text
                assert answer.json()["state"] == "acked"
                assert answer.json()["reply"]["msg_id"] == "0x0001"
                assert tracker.device.params[ParamId.DEFAULT_INTERVAL_S] == 7
                where = await http.post(url, json={"kind": "query_location"})
                assert where.status_code == 200, where.text
                assert where.json()["reply"]["msg_id"] == "0x0201"
                listed = await http.get("/api/v1/devices", params={"limit": 100})
                assert listed.status_code == 200
                assert {d["terminal"]: d["online"] for d in listed.json()["devices"]}[
                    tracker.terminal
                ] is True

            # A tracker offline: its command waits in the queue, then reaches it on login.
            quiet = trackers[0]
            await quiet.halt()

            async def offline() -> bool:
                return not await online(quiet.terminal)

            await until(offline)
            url = f"/api/v1/devices/{quiet.terminal}/commands"
            queued = await http.post(url, json={"kind": "track", "interval_s": 5, "validity_s": 60})
            assert queued.status_code == 202, queued.text
            assert queued.json()["state"] == "queued"
            quiet.start()

            async def delivered() -> bool:
                found = await http.get(f"/api/v1/commands/{queued.json()['id']}")
                return found.json()["state"] == "acked"

            await until(delivered)
            kept = (await http.get(f"/api/v1/commands/{queued.json()['id']}")).json()
            assert kept["reply"]["msg_id"] == "0x0001"
            assert kept["issued_by"] == "admin"

            # One gateway stops: its trackers reconnect to the other and carry on.
            first = gateways[0]
            assert stop(first.proc, signal.SIGTERM) == 0
            held_by = holders(pg_url)
            assert set(held_by.values()) == {next(iter(set(held_by.values())))}
            moved = [t for t in trackers if t.terminal not in held_by]
            assert moved, "the stopped gateway held nothing"

            async def all_back() -> bool:
                return all(t.terminal in holders(pg_url) for t in trackers)

            await until(all_back, timeout_s=30)
            mover = moved[0]
            url = f"/api/v1/devices/{mover.terminal}/commands"
            body = {"kind": "set_parameters", "params": {"default_interval_s": 9}}
            answer = await http.post(url, json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["state"] == "acked"
            assert mover.device.params[ParamId.DEFAULT_INTERVAL_S] == 9
    finally:
        for tracker in trackers:
            await tracker.halt()
        for started in [*gateways, api]:
            assert stop(started.proc, signal.SIGTERM) == 0


async def test_an_api_process_alone_serves_reads_and_streams_what_the_detector_stored(
    pg_url: str, tmp_path: Path
) -> None:
    engine: Started = start_roles(
        role_env(
            pg_url,
            tmp_path / "engine",
            "gateway,detector",
            LIENWATCH_JT808_LISTEN="127.0.0.1:0",
            LIENWATCH_RELOAD_INTERVAL_S="30",  # the device notice, not the poll, must tell
        )
    )
    api = start_roles(role_env(pg_url, tmp_path / "api", "api"))
    other = start_roles(role_env(pg_url, tmp_path / "other", "api"))
    try:
        assert engine.port is not None and engine.api is None
        assert api.api is not None and api.key is not None and other.api is not None
        headers = {"Authorization": f"Bearer {api.key}"}
        async with httpx.AsyncClient(base_url=api.api, headers=headers, timeout=10) as http:
            health = await http.get("/healthz")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            bound = await http.put("/api/v1/devices/013900000081", json={"vehicle_id": "VIN-81"})
            assert bound.status_code == 201, bound.text
            await asyncio.sleep(1.0)  # the detector hears of the binding by notice
            ws = api.api.replace("http", "ws", 1)
            stream_url = f"{ws}/api/v1/alerts/stream?key={api.key}&changes=true"
            async with connect(stream_url) as stream:
                device = TestDevice("013900000081")
                await device.connect("127.0.0.1", engine.port)
                assert await device.login()
                now = int(time.time() * 1000)
                first = await device.report(120.19, 30.25, now - 600_000)
                cut = await device.report(120.19, 30.25, now - 540_000, alarm=POWER_CUT)
                await device.wait_acks([first, cut])
                streamed = json.loads(await asyncio.wait_for(stream.recv(), 20))
                assert (streamed["type"], streamed["vehicle_id"]) == ("power_cut", "VIN-81")
                await device.close()
                # Acknowledged through another API process: this one's stream shows it too.
                async with httpx.AsyncClient(base_url=other.api, headers=headers) as elsewhere:
                    acked = await elsewhere.post(f"/api/v1/alerts/{streamed['id']}/acknowledge")
                assert acked.status_code == 200, acked.text
                changed = json.loads(await asyncio.wait_for(stream.recv(), 10))
                assert (changed["id"], changed["state"]) == (streamed["id"], "acknowledged")
            alerts = await http.get("/api/v1/alerts", params={"vehicle_id": "VIN-81"})
            assert [a["id"] for a in alerts.json()] == [streamed["id"]]

            async def stored() -> bool:
                latest = await http.get("/api/v1/devices/013900000081/latest")
                return latest.status_code == 200

            await until(stored)
            latest = (await http.get("/api/v1/devices/013900000081/latest")).json()
            assert abs(latest["lon"] - 120.19) < 1e-6
            assert "lienwatch_positions_acked_total" not in (await http.get("/metrics")).text
    finally:
        for started in (other, api, engine):
            assert stop(started.proc, signal.SIGTERM) == 0


async def test_a_detector_of_its_own_reads_what_the_gateway_stored_and_goes_on_after_a_restart(
    pg_url: str, tmp_path: Path
) -> None:
    gateway = start_roles(
        role_env(pg_url, tmp_path / "gateway", "gateway", LIENWATCH_JT808_LISTEN="127.0.0.1:0")
    )
    api = start_roles(role_env(pg_url, tmp_path / "api", "api"))
    detector_env = role_env(pg_url, tmp_path / "detector", "detector")
    detector = start_roles(detector_env)
    try:
        assert gateway.port is not None and detector.port is None and detector.api is None
        assert api.api is not None
        headers = {"Authorization": f"Bearer {api.key}"}
        async with httpx.AsyncClient(base_url=api.api, headers=headers, timeout=10) as http:
            for n in (81, 82):
                bound = await http.put(
                    f"/api/v1/devices/0139000000{n}", json={"vehicle_id": f"VIN-{n}"}
                )
                assert bound.status_code == 201, bound.text
            await asyncio.sleep(1.0)  # the detector hears of the bindings by notice

            async def power_cut(terminal: str) -> None:
                device = TestDevice(terminal)
                await device.connect("127.0.0.1", gateway.port or 0)
                assert await device.login()
                now = int(time.time() * 1000)
                first = await device.report(120.19, 30.25, now - 600_000)
                cut = await device.report(120.19, 30.25, now - 540_000, alarm=POWER_CUT)
                await device.wait_acks([first, cut])
                await device.close()

            async def alerted(vehicle: str) -> bool:
                found = await http.get("/api/v1/alerts", params={"vehicle_id": vehicle})
                return [a["type"] for a in found.json()] == ["power_cut"]

            await power_cut("013900000081")
            await until(lambda: alerted("VIN-81"))
            # While the detector is down the gateway stores on; the restarted detector reads
            # on from its saved cursor and raises what it missed, and nothing twice.
            assert stop(detector.proc, signal.SIGTERM) == 0
            await power_cut("013900000082")
            await asyncio.sleep(1.0)
            assert not await alerted("VIN-82")
            detector = start_roles(detector_env)
            await until(lambda: alerted("VIN-82"))
            await asyncio.sleep(1.0)
            assert await alerted("VIN-81")
    finally:
        for started in (detector, api, gateway):
            assert stop(started.proc, signal.SIGTERM) == 0
