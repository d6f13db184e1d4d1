"""PostgreSQL goes away mid-stream: the gateway keeps acknowledging from its journal, and once
the database is back every acknowledged position is stored exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest

from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from store import migrate, open_store
from tests.support.device import TestDevice
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.db
T0_MS = 1_735_689_600_000


def _via(url: str, port: int) -> str:
    scheme, rest = url.split("://", 1)
    userinfo, _, hostpart = rest.rpartition("@")
    _, _, path = hostpart.partition("/")
    return f"{scheme}://{userinfo}@127.0.0.1:{port}/{path}"


async def _wait_drained(journal: Journal, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while journal.depth_bytes:
        assert time.monotonic() < deadline, f"journal still holds {journal.depth_bytes} bytes"
        await asyncio.sleep(0.1)


async def test_acknowledged_positions_survive_a_database_outage(
    pg_url: str, tmp_path: Path
) -> None:
    migrate(pg_url, tmp_path)
    proxy = TcpProxy("127.0.0.1", 5432)
    port = await proxy.start()
    proxied = _via(pg_url, port)
    journal = Journal(tmp_path / "journal", max_bytes=1 << 26)
    gateway = Gateway(
        GatewayConfig(host="127.0.0.1", port=0, auto_register=True),
        journal=journal,
        store_factory=lambda: open_store(proxied, tmp_path),
    )
    host, gw_port = await gateway.start()
    device = TestDevice("13900000077")
    try:
        await device.connect(host, gw_port)
        assert await device.login()
        serials: list[int] = []
        for i in range(300):
            if i == 100:
                await proxy.cut()
                outage_started = len(serials)
            if i == 200:
                # Acknowledged during the outage: the journal, not the database, made them safe.
                await device.wait_acks(serials[outage_started:])
                assert journal.depth_bytes > 0
                await proxy.restore()
            serials.append(await device.report(121.4 + i * 1e-4, 31.2, T0_MS + i * 15_000))
            if i % 20 == 0:
                await asyncio.sleep(0.02)
        await device.wait_acks(serials)
        assert all(device.acked[s] == 0 for s in serials)
        await _wait_drained(journal, 30.0)
    finally:
        await device.close()
        await gateway.stop()
        journal.close()
        await proxy.close()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT fix_time) FROM positions p "
            "JOIN devices d ON d.id = p.device_id WHERE d.terminal = %s",
            ("013900000077",),
        ).fetchone()
    assert rows == (300, 300)


async def test_a_code_issued_during_an_outage_is_stored_once_the_database_is_back(
    pg_url: str, tmp_path: Path
) -> None:
    migrate(pg_url, tmp_path)
    proxy = TcpProxy("127.0.0.1", 5432)
    port = await proxy.start()
    journal = Journal(tmp_path / "journal", max_bytes=1 << 26)
    gateway = Gateway(
        GatewayConfig(host="127.0.0.1", port=0, auto_register=True),
        journal=journal,
        store_factory=lambda: open_store(_via(pg_url, port), tmp_path),
    )
    host, gw_port = await gateway.start()
    device = TestDevice("13900000078")
    try:
        await proxy.cut()
        await device.connect(host, gw_port)
        assert await device.login()  # registered and authenticated from memory
        await asyncio.sleep(1.0)  # the device record's first write fails
        await proxy.restore()
        deadline = time.monotonic() + 30
        code = None
        while code is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            with psycopg.connect(pg_url) as conn:
                row = conn.execute(
                    "SELECT auth_code FROM devices WHERE terminal = %s", ("013900000078",)
                ).fetchone()
            code = row[0] if row else None
        assert code is not None
        assert code == device.auth_code
    finally:
        await device.close()
        await gateway.stop()
        journal.close()
        await proxy.close()
