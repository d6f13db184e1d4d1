"""SIGKILL the gateway mid-stream and restart it: nothing acknowledged is lost or stored twice."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.device import TestDevice
from tests.support.processes import start_serve, stop

pytestmark = [pytest.mark.db, pytest.mark.slow]
T0_MS = 1_735_689_600_000
TERMINAL = "13900000088"
TOTAL = 400


def _stored(pg_url: str) -> tuple[int, int]:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT fix_time) FROM positions p "
            "JOIN devices d ON d.id = p.device_id WHERE d.terminal = %s",
            (TERMINAL.rjust(12, "0"),),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def _stream(
    port: int, times: list[int], acked_times: set[int], stop_after: int | None
) -> None:
    """Sends a report per fix time; records which fix times were acknowledged."""
    device = TestDevice(TERMINAL)
    await device.connect("127.0.0.1", port)
    try:
        assert await device.login()
        sent: dict[int, int] = {}
        for i, t in enumerate(times):
            sent[await device.report(121.4 + i * 1e-4, 31.2, t)] = t
            if i % 10 == 9:
                await device.pump(0.05)
                acked_times.update(sent[s] for s in device.acked if s in sent)
            if stop_after is not None and len(acked_times) >= stop_after:
                return
        await device.wait_acks(list(sent))
        acked_times.update(sent[s] for s in device.acked if s in sent)
    finally:
        await device.close()


async def test_a_killed_gateway_loses_no_acknowledged_position(pg_url: str, tmp_path: Path) -> None:
    env = {
        "LIENWATCH_DATABASE_URL": pg_url,
        "LIENWATCH_DATA_DIR": str(tmp_path / "data"),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
    }
    times = [T0_MS + i * 10_000 for i in range(TOTAL)]
    acked: set[int] = set()
    proc, port = start_serve(env)
    try:
        await _stream(port, times, acked, stop_after=150)
    finally:
        stop(proc, signal.SIGKILL)
    acked_before_kill = set(acked)
    assert len(acked_before_kill) >= 150

    # The device resends what was never acknowledged, as a real tracker does.
    proc, port = start_serve(env)
    try:
        await _stream(port, [t for t in times if t not in acked], acked, stop_after=None)
        assert acked == set(times)
        deadline = time.monotonic() + 30
        while _stored(pg_url)[0] < TOTAL and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        assert stop(proc, signal.SIGTERM) == 0
    assert _stored(pg_url) == (TOTAL, TOTAL)
