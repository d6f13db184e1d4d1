"""What a connection may cost before it authenticates, over real TCP: caps on connections, a
handshake deadline that garbage does not move, rate-limited registration lookups, no packet held
before authentication, metric labels from a closed set; and the link timer driving the codec's
reassembly timeouts and 0x8003 requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry

from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.jt808.messages import PassThrough, RawMessage, ResendRequest
from store import open_store
from tests.support.device import TestDevice

BIG = PassThrough(0x41, bytes(range(256)) * 9)  # three packets


@asynccontextmanager
async def running(data: Path, config: GatewayConfig) -> AsyncIterator[tuple[Gateway, int]]:
    open_store(None, data, migrate=True).close()
    journal = Journal(data / "journal", max_bytes=64 * 1024 * 1024)
    gateway = Gateway(config, journal=journal, store_factory=lambda: open_store(None, data))
    try:
        _, port = await gateway.start()
        yield gateway, port
    finally:
        await gateway.stop()
        journal.close()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float | None:
    """Seconds until the server closed the connection, or None if it stayed open."""
    started = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(4096), seconds):
            pass
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return time.monotonic() - started


async def test_connections_past_a_cap_are_closed_at_once(tmp_path: Path) -> None:
    config = GatewayConfig(port=0, max_connections_per_address=3, max_connections=5)
    async with running(tmp_path / "data", config) as (gateway, port):
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        try:
            kept = [await closed_within(r, 0.5) for r, _ in opened[:3]]
            assert kept == [None, None, None]
            assert await closed_within(opened[3][0], 2.0) is not None
            registry = gateway.metrics.registry
            assert sample(registry, "lienwatch_connections_refused_total", cap="address") == 1
            assert sample(registry, "lienwatch_connections_open") == 3
        finally:
            for _, writer in opened:
                writer.close()
        await asyncio.sleep(0.2)  # the closes reach the gateway: the address has room again
        again = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_within(again[0], 0.5) is None
        again[1].close()


async def test_garbage_does_not_move_the_handshake_deadline(tmp_path: Path) -> None:
    config = GatewayConfig(port=0, handshake_timeout_s=1.0, max_errors=1000)
    async with running(tmp_path / "data", config) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        closed = asyncio.create_task(closed_within(reader, 5.0))
        while not closed.done() and time.monotonic() - started < 4.0:
            writer.write(b"\x7e\x00\x02\x00\x00garbage\x7e")  # frames that never decode
            await asyncio.sleep(0.1)
        after = await closed
        writer.close()
    # closed while the garbage still flowed (it would have kept a refreshed deadline away)
    assert after is not None and 0.9 <= after < 4.0


async def test_registration_lookups_of_unknown_terminals_are_rate_limited(
    tmp_path: Path,
) -> None:
    async with running(tmp_path / "data", GatewayConfig(port=0)) as (gateway, port):
        devices = [TestDevice(f"1390000{i:04d}") for i in range(80)]
        await asyncio.gather(*(d.connect("127.0.0.1", port) for d in devices))
        started = time.monotonic()
        logins = await asyncio.gather(*(d.login() for d in devices))
        took = time.monotonic() - started
        assert not any(logins)  # none of them is known
        registry = gateway.metrics.registry
        made = sample(registry, "lienwatch_registration_lookups_total", outcome="made")
        deferred = sample(registry, "lienwatch_registration_lookups_total", outcome="deferred")
        assert made + deferred == 80
        limits = gateway.admission.limits
        assert made <= limits.lookup_burst + limits.lookups_per_s * took + 1
        assert deferred >= 80 - made > 0
        answered = sum(1 for d in devices if any(True for _ in d.received))
        assert answered == made  # a deferred registration gets no answer at all
        await asyncio.gather(*(d.close() for d in devices))


async def test_no_packet_is_held_before_authentication_and_ids_are_labelled_from_a_closed_set(
    tmp_path: Path,
) -> None:
    config = GatewayConfig(port=0, auto_register=True)
    async with running(tmp_path / "data", config) as (gateway, port):
        stranger = TestDevice("13900000001")
        await stranger.connect("127.0.0.1", port)
        serials = [await stranger.send(BIG), await stranger.send(RawMessage(0x0F0F, b"x"))]
        await stranger.wait_acks(serials)
        assert [stranger.acked[s] for s in serials] == [1, 1]  # refused, nothing reassembled
        device = TestDevice("13900000002")
        await device.connect("127.0.0.1", port)
        assert await device.login()
        serial = await device.send(RawMessage(0x0F0F, b"x"))
        await device.wait_acks([serial])
        assert device.acked[serial] == 3  # unsupported
        registry = gateway.metrics.registry
        assert sample(registry, "lienwatch_frames_in_total", msg_id="other") == 1
        assert registry.get_sample_value("lienwatch_frames_in_total", {"msg_id": "0x0f0f"}) is None
        await stranger.close()
        await device.close()


async def test_the_link_timer_asks_for_missing_packets_then_drops_the_message(
    tmp_path: Path,
) -> None:
    config = GatewayConfig(port=0, auto_register=True, reassembly_timeout_s=0.5)
    async with running(tmp_path / "data", config) as (gateway, port):
        device = TestDevice("13900000003")
        await device.connect("127.0.0.1", port)
        assert await device.login()
        device.conn.send(BIG)
        frames = device.conn.data_to_send()
        first = frames[: frames.index(b"\x7e", 1) + 1]
        await device.send_raw(first)
        quiet_until = time.monotonic() + 2.0  # two requests 0.5 s apart, then it is dropped
        while time.monotonic() < quiet_until:
            await device.pump(quiet_until - time.monotonic())
        requests = [m for m in device.received if isinstance(m, ResendRequest)]
        assert [r.packet_indexes for r in requests] == [(2, 3), (2, 3)]
        registry = gateway.metrics.registry
        for _ in range(20):
            if sample(registry, "lienwatch_frames_rejected_total", reason="packets_abandoned"):
                break
            await asyncio.sleep(0.1)
        assert sample(registry, "lienwatch_frames_rejected_total", reason="packets_abandoned") == 1
        await device.close()
