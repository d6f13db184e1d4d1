"""Terminal identity through real TCP against `lienwatch serve` (contracts section 8).

An impostor registering a known terminal with other hardware is refused: none of its positions
is stored, the real tracker keeps its session and code, and a command queued for the real one
still reaches it. Replaced hardware is re-provisioned through the API, then registers. Two
connections taking one terminal from each other again and again raise one `device_conflict`.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ingest.jt808 import Edition
from ingest.jt808.messages import RegisterResponse
from simulators.device import Device, Habits, Shuttle
from simulators.wire import Clock, run_tcp
from tests.support.device import TestDevice
from tests.support.processes import api_url, start_serve, stop

KEY = "e2e-admin-key-identity-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
IMPOSTOR = ("EVIL", "X9", "6666666")
V2019 = Edition.V2019


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """One `serve` (SQLite, auto-registration off) for the module: (API base URL, JT808 port)."""
    data: Path = tmp_path_factory.mktemp("identity") / "data"
    env = {
        "LIENWATCH_DATA_DIR": str(data),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "false",
        "LIENWATCH_ADMIN_API_KEY": KEY,
        "LIENWATCH_RELOAD_INTERVAL_S": "0.2",
    }
    proc: subprocess.Popen[str]
    proc, port = start_serve(env)
    try:
        yield api_url(proc), port
    finally:
        assert stop(proc, signal.SIGTERM) == 0


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    """Polls an async predicate until it holds."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


def refusals(metrics: str, reason: str) -> float:
    found = re.search(rf'lienwatch_identity_refusals_total{{reason="{reason}"}} (\S+)', metrics)
    assert found, metrics
    return float(found[1])


async def test_an_impostor_is_refused_and_the_real_tracker_keeps_everything(
    serve: tuple[str, int],
) -> None:
    base, port = serve
    terminal = "013900000301"
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=AUTH) as http:
        made = await http.put(f"/api/v1/devices/{terminal}", json={"vehicle_id": "CAR-301"})
        assert made.status_code == 201, made.text
        code = made.json()["auth_code"]
        queued = await http.post(
            f"/api/v1/devices/{terminal}/commands", json={"kind": "query_location"}
        )
        assert queued.status_code == 202 and queued.json()["state"] == "queued", queued.text
        command = queued.json()["id"]
        before = (await http.get("/metrics")).text

        # The real tracker registers first (its identity is recorded), takes the command
        # queued while it was offline, and keeps reporting while the impostor tries.
        real = Device(
            terminal,
            Shuttle(121.47, 31.23, drive_s=600, park_s=60),
            Habits(moving_interval_s=1, heartbeat_interval_s=5, seed=1),
            start_ms=int(time.time() * 1000),
        )
        stop_real = asyncio.Event()
        task = asyncio.create_task(run_tcp(real, "127.0.0.1", port, Clock.start(), stop_real))
        try:

            async def delivered() -> bool:
                state = (await http.get(f"/api/v1/commands/{command}")).json()["state"]
                return bool(state == "acked")

            await until(delivered)  # registered, authenticated, the queued command answered
            assert real.stats.commands == 1

            impostor = TestDevice(terminal, identity=IMPOSTOR, imei="869999999999999")
            await impostor.connect("127.0.0.1", port)
            assert not await impostor.login()
            (answer,) = [m for m in impostor.received if isinstance(m, RegisterResponse)]
            assert (answer.result, answer.auth_code) == (3, "")
            assert not await impostor.authenticate("0123456789abcdef")
            now = int(time.time() * 1000)
            sent = [await impostor.report(100.0, 10.0, now + i * 1000) for i in range(3)]
            await impostor.pump(1.0)
            assert all(impostor.acked.get(s) != 0 for s in sent)
            await impostor.close()

            shown = (await http.get(f"/api/v1/devices/{terminal}")).json()
            assert shown["online"] is True and shown["auth_code"] == code
            assert shown["identity"] == {
                "maker_id": "LWSIM",
                "model": real.registration.model,
                "terminal_id": terminal[-7:],
                "imei": None,  # a 2013 0x0102 carries none
            }
            acked_then = real.stats.acknowledged
            while real.stats.acknowledged < acked_then + 2:  # still reporting, still acked
                await asyncio.sleep(0.1)
        finally:
            stop_real.set()
            await task
        # The real tracker's one session was never replaced nor refused.
        assert (real.stats.connects, real.stats.refused) == (1, 0)

        async def stored() -> bool:
            track = await http.get(f"/api/v1/devices/{terminal}/track?from=0")
            return len(track.json()) == real.stats.acknowledged

        await until(stored)
        track = (await http.get(f"/api/v1/devices/{terminal}/track?from=0")).json()
        assert not [p for p in track if abs(p["lon"] - 100.0) < 1]  # nothing of the impostor
        after = (await http.get("/metrics")).text
        assert refusals(after, "identity_differs") == refusals(before, "identity_differs") + 1
        assert refusals(after, "bad_code") == refusals(before, "bad_code") + 1


async def test_replaced_hardware_registers_after_it_is_reprovisioned(
    serve: tuple[str, int],
) -> None:
    base, port = serve
    terminal = "01390000030200000000"  # 2019 trackers: their 0x0102 carries the IMEI
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=AUTH) as http:
        made = await http.put(f"/api/v1/devices/{terminal}", json={"vehicle_id": "CAR-302"})
        assert made.status_code == 201, made.text
        old = TestDevice(terminal, V2019, identity=("LW", "OLD", "0000001"))
        await old.connect("127.0.0.1", port)
        assert await old.login()
        old_code = old.auth_code

        new = TestDevice(terminal, V2019, identity=("LW", "NEW", "0000002"), imei="860000000000302")
        await new.connect("127.0.0.1", port)
        assert not await new.login()  # the old hardware's identity is recorded
        assert new.register_result == 3
        await new.close()

        answer = await http.post(f"/api/v1/devices/{terminal}/reprovision", json={})
        assert answer.status_code == 200, answer.text
        assert answer.json()["identity"] is None and answer.json()["vehicle_id"] == "CAR-302"
        await old.pump(2.0)
        assert old.reader is not None and old.reader.at_eof()  # its connection was closed
        await old.close()

        new = TestDevice(terminal, V2019, identity=("LW", "NEW", "0000002"), imei="860000000000302")
        await new.connect("127.0.0.1", port)
        assert await new.login()
        assert new.auth_code and new.auth_code != old_code
        now = int(time.time() * 1000)
        serial = await new.report(121.0, 31.0, now)
        await new.wait_acks([serial])
        assert new.acked[serial] == 0

        again = TestDevice(terminal, V2019, identity=("LW", "OLD", "0000001"))
        await again.connect("127.0.0.1", port)
        assert not await again.login()  # the old hardware no longer fits
        assert not await again.authenticate(old_code)  # nor does its old code
        await again.close()
        shown = (await http.get(f"/api/v1/devices/{terminal}")).json()
        assert shown["online"] is True
        assert shown["identity"] == {"maker_id": "LW", "model": "NEW", "terminal_id": "0000002",
                                     "imei": "860000000000302"}  # fmt: skip
        await new.close()


async def test_a_takeover_storm_raises_one_device_conflict_with_both_addresses(
    serve: tuple[str, int],
) -> None:
    base, port = serve
    terminal = "013900000303"
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=AUTH) as http:
        made = await http.put(f"/api/v1/devices/{terminal}", json={"vehicle_id": "CAR-303"})
        assert made.status_code == 201, made.text
        # Two clones (same identity and code) take the terminal from each other: each login
        # closes the other's connection, which reconnects and takes it back.
        addresses: list[str] = []
        now = int(time.time() * 1000)
        live: TestDevice | None = None
        for i in range(6):
            clone = TestDevice(terminal)
            await clone.connect("127.0.0.1", port)
            assert await clone.login()
            addresses.append(clone.address)
            serial = await clone.report(121.0 + i / 1000, 31.0, now + i * 1000)
            await clone.wait_acks([serial])
            if live is not None:
                await live.close()
            live = clone

        async def raised() -> bool:
            found = (await http.get("/api/v1/alerts?type=device_conflict")).json()
            return bool(found)

        await until(raised)
        await asyncio.sleep(1.5)  # a detector cycle and more: nothing else comes
        assert live is not None
        await live.close()
        (alert,) = (await http.get("/api/v1/alerts?type=device_conflict")).json()
        assert (alert["device_id"], alert["vehicle_id"]) == (terminal, "CAR-303")
        assert alert["severity"] == "high" and alert["state"] == "open"
        # Raised at the fourth takeover: the fourth and fifth connections' addresses.
        assert alert["details"]["peers"] == [addresses[3], addresses[4]]
        assert alert["details"]["takeovers"] == 4
