"""SIGTERM stops `serve` promptly even while its database has stopped answering mid-write,
and a restart stores everything that was acknowledged."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.test_gateway_kill import T0_MS, _stored, _stream
from tests.support.processes import start_serve, stop
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.db, pytest.mark.slow]
# serve's own budget is 4 s (lienwatch.runtime.STOP_BUDGET_S); the margin is for a busy machine.
STOP_WITHIN_S = 8.0


def _via(url: str, port: int) -> str:
    scheme, rest = url.split("://", 1)
    userinfo, _, hostpart = rest.rpartition("@")
    _, _, path = hostpart.partition("/")
    return f"{scheme}://{userinfo}@127.0.0.1:{port}/{path}"


async def test_sigterm_stops_serve_while_the_database_hangs_and_a_restart_stores_all(
    pg_url: str, tmp_path: Path
) -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    port = await proxy.start()
    data = str(tmp_path / "data")
    env = {
        "LIENWATCH_DATABASE_URL": _via(pg_url, port),
        "LIENWATCH_DATA_DIR": data,
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
    }
    times = [T0_MS + i * 10_000 for i in range(200)]
    acked: set[int] = set()
    proc, gw_port = await asyncio.to_thread(start_serve, env)
    try:
        await _stream(gw_port, times[:100], acked, stop_after=None)
        proxy.stall()  # the database stops answering, connections stay open
        await _stream(gw_port, times[100:], acked, stop_after=None)
        assert acked == set(times)  # acknowledged from the journal alone
        await asyncio.sleep(1.0)  # a drain write is now stuck on the silent database
        began = time.monotonic()
        code = await asyncio.to_thread(stop, proc, signal.SIGTERM, 30.0)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
        await proxy.close()
    assert code == 0
    assert took < STOP_WITHIN_S, f"serve took {took:.1f} s to stop"
    # Restarted on the database directly: the journal stores what the stuck write did not.
    proc, _ = await asyncio.to_thread(start_serve, {**env, "LIENWATCH_DATABASE_URL": pg_url})
    try:
        deadline = time.monotonic() + 30
        while _stored(pg_url)[0] < len(times) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        assert stop(proc, signal.SIGTERM) == 0
    assert _stored(pg_url) == (len(times), len(times))
