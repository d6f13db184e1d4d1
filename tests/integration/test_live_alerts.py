"""The live path end to end on the embedded store: a tracker reports through the real gateway,
the live detector raises the alert on its thread, the store keeps it (with its webhook outbox
row) and the fan-out delivers it to the hub and to the real Redis; a restart that sees the same
report again stores and sends nothing twice."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from alerts.delivery.fanout import Fanout
from alerts.delivery.hub import AlertHub, Subscription
from alerts.delivery.recorder import AlertRecorder
from alerts.delivery.redis_sink import RedisPublisher
from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from pipeline.live import LiveDetector
from store import open_store
from tests.support.device import TestDevice

POWER_CUT = 1 << 8
HOOK = "http://127.0.0.1:9/hook"


@dataclass
class Live:
    gateway: Gateway
    detector: LiveDetector
    fanout: Fanout
    subscription: Subscription
    data: Path


@pytest.fixture
def channel() -> str:
    return f"lienwatch:alerts:test:{uuid.uuid4().hex[:8]}"


async def start_live(data: Path, redis_url: str, channel: str) -> Live:
    open_store(None, data, migrate=True).close()
    hub = AlertHub()
    subscription = hub.subscribe()
    fanout = Fanout([hub, RedisPublisher(redis_url, channel=channel)])
    fanout.start()
    recorder = AlertRecorder(
        lambda: open_store(None, data), fanout.publish_threadsafe, webhook_urls=[HOOK]
    )
    detector = LiveDetector(recorder, tick_s=0.05)
    detector.start()
    journal = Journal(data / "journal", max_bytes=64 * 1024 * 1024)
    gateway = Gateway(
        GatewayConfig(host="127.0.0.1", port=0, auto_register=True),
        journal=journal,
        store_factory=lambda: open_store(None, data),
        on_positions=detector.on_positions,
    )
    host, port = await gateway.start()
    gateway.config = GatewayConfig(host=host, port=port, auto_register=True)
    return Live(gateway, detector, fanout, subscription, data)


async def stop_live(live: Live) -> None:
    await live.gateway.stop()
    live.gateway.journal.close()
    await asyncio.to_thread(live.detector.stop)
    await live.fanout.aclose()


@pytest.fixture
async def listener(redis_url: str, channel: str) -> AsyncIterator[list[dict[str, object]]]:
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    got: list[dict[str, object]] = []

    async def read() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                got.append(json.loads(message["data"]))

    task = asyncio.create_task(read())
    yield got
    task.cancel()
    await pubsub.aclose()
    await client.aclose()


def now_ms() -> int:
    """Wall time in whole seconds (the JT808 time field's resolution): no timer is due yet."""
    return time.time_ns() // 1_000_000_000 * 1000


async def report_power_cut(live: Live, terminal: str, time_ms: int) -> None:
    """One report with the main-power alarm bit."""
    device = TestDevice(terminal)
    await device.connect(live.gateway.config.host, live.gateway.config.port)
    assert await device.login()
    serial = await device.report(121.47, 31.23, time_ms, alarm=POWER_CUT)
    await device.wait_acks([serial])
    await device.close()


@pytest.mark.redis
async def test_a_power_cut_reported_through_the_gateway_is_stored_and_fanned_out(
    tmp_path: Path, redis_url: str, channel: str, listener: list[dict[str, object]]
) -> None:
    live = await start_live(tmp_path / "data", redis_url, channel)
    try:
        await report_power_cut(live, "13900000001", now_ms())
        alert = await asyncio.wait_for(live.subscription.get(), 10)
        for _ in range(500):
            if listener:
                break
            await asyncio.sleep(0.01)
    finally:
        await stop_live(live)
    assert (alert.alert.type.value, alert.alert.device_id) == ("power_cut", "013900000001")
    assert alert.alert.details == {"alarm": POWER_CUT}
    assert listener == [alert.to_json()]
    store = open_store(None, tmp_path / "data")
    try:
        assert store.get_alert(alert.id) == alert
        assert [(w.alert_id, w.url) for w in store.list_webhooks()] == [(alert.id, HOOK)]
    finally:
        store.close()


@pytest.mark.redis
async def test_after_a_restart_the_same_incident_is_neither_stored_nor_sent_again(
    tmp_path: Path, redis_url: str, channel: str
) -> None:
    data = tmp_path / "data"
    at = now_ms()
    first = await start_live(data, redis_url, channel)
    try:
        await report_power_cut(first, "13900000002", at)
        original = await asyncio.wait_for(first.subscription.get(), 10)
    finally:
        await stop_live(first)
    second = await start_live(data, redis_url, channel)
    try:
        await report_power_cut(second, "13900000002", at)  # a fresh engine sees it again
        assert await asyncio.to_thread(second.detector.wait_idle, 10.0)
        assert second.detector.stats.alerts == 1
        assert second.detector.stats.stored == 0
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(second.subscription.get(), 0.3)
    finally:
        await stop_live(second)
    store = open_store(None, data)
    try:
        assert [a.id for a in store.list_alerts()] == [original.id]
        assert len(store.list_webhooks()) == 1
    finally:
        store.close()
