"""The gateway's socket options from the settings: the handshake timeout and SO_REUSEPORT.

A connection that never authenticates is closed after `handshake_timeout_s` (contracts §8),
one that authenticated stays; with `reuse_port` two gateways bind one port (contracts §9).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from store import open_store
from tests.support.device import TestDevice


@asynccontextmanager
async def running(data: Path, config: GatewayConfig) -> AsyncIterator[tuple[Gateway, int]]:
    """A gateway on its own SQLite data dir, stopped and closed on exit."""
    open_store(None, data, migrate=True).close()
    journal = Journal(data / "journal", max_bytes=64 * 1024 * 1024)
    gateway = Gateway(config, journal=journal, store_factory=lambda: open_store(None, data))
    try:
        _, port = await gateway.start()
        yield gateway, port
    finally:
        await gateway.stop()
        journal.close()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float | None:
    """Seconds until the server closed the connection, or None if it is still open."""
    started = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(4096), seconds):
            pass
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return time.monotonic() - started


async def test_a_connection_that_never_authenticates_is_closed(tmp_path: Path) -> None:
    config = GatewayConfig(port=0, auto_register=True, handshake_timeout_s=1.0)
    async with running(tmp_path / "data", config) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            after = await closed_within(reader, 5.0)
        finally:
            writer.close()
    assert after is not None, "an unauthenticated connection was left open"
    assert 0.9 <= after <= 3.5


async def test_an_authenticated_connection_outlives_the_handshake_timeout(tmp_path: Path) -> None:
    config = GatewayConfig(port=0, auto_register=True, handshake_timeout_s=1.0)
    async with running(tmp_path / "data", config) as (_, port):
        device = TestDevice("13900000001")
        await device.connect("127.0.0.1", port)
        try:
            assert await device.login()
            assert device.reader is not None
            assert await closed_within(device.reader, 3.0) is None
        finally:
            await device.close()


async def test_with_reuse_port_two_gateways_share_one_port(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        first = GatewayConfig(host="127.0.0.1", port=0, reuse_port=True)
        _, port = await stack.enter_async_context(running(tmp_path / "a", first))
        second = GatewayConfig(host="127.0.0.1", port=port, reuse_port=True)
        _, again = await stack.enter_async_context(running(tmp_path / "b", second))
        assert again == port


async def test_without_reuse_port_the_second_gateway_cannot_bind(tmp_path: Path) -> None:
    async with running(tmp_path / "a", GatewayConfig(host="127.0.0.1", port=0)) as (_, port):
        with pytest.raises(OSError):
            async with running(tmp_path / "b", GatewayConfig(host="127.0.0.1", port=port)):
                pass
