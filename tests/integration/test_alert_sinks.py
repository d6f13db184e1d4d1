"""The alert sinks against the real services: Redis and Mosquitto on 127.0.0.1, reachable, on a
closed port, and cut then restored through a TCP proxy."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest
import redis.asyncio as aioredis
from paho.mqtt.enums import CallbackAPIVersion

from alerts.delivery.fanout import Fanout
from alerts.delivery.hub import AlertHub
from alerts.delivery.mqtt_sink import MqttPublisher, parse_mqtt_url
from alerts.delivery.redis_sink import RedisPublisher
from alerts.lifecycle import StoredAlert, opened
from alerts.model import Alert, AlertType
from tests.support.tcp_proxy import TcpProxy


def stored(i: int, device: str = "013900000001") -> StoredAlert:
    alert = Alert(AlertType.POWER_CUT, device, "V1", 1_709_280_000_000 + i, details={"alarm": 256})
    return opened(i, alert, 1_709_280_000_000)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- Redis ------------------------------------------------------------------------------------


class RedisListener:
    """Subscribes straight to Redis (not through any proxy) and collects messages."""

    def __init__(self, url: str, channel: str) -> None:
        self.client = aioredis.Redis.from_url(url)
        self.pubsub = self.client.pubsub()
        self.channel = channel
        self.got: list[dict[str, object]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.subscribe(self.channel)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] == "message":
                self.got.append(json.loads(message["data"]))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.pubsub.aclose()
        await self.client.aclose()


@pytest.fixture
async def listener(redis_url: str) -> AsyncIterator[RedisListener]:
    found = RedisListener(redis_url, f"lienwatch:alerts:test:{uuid.uuid4().hex[:8]}")
    await found.start()
    yield found
    await found.close()


@pytest.mark.redis
async def test_alerts_are_published_on_the_redis_channel_as_their_json(
    redis_url: str, listener: RedisListener
) -> None:
    publisher = RedisPublisher(redis_url, channel=listener.channel)
    try:
        await publisher.send([stored(1), stored(2)])
        await until(lambda: len(listener.got) == 2)
    finally:
        await publisher.aclose()
    assert listener.got == [stored(1).to_json(), stored(2).to_json()]


@pytest.mark.redis
async def test_a_tenants_alerts_are_also_published_on_its_own_channel(redis_url: str) -> None:
    base = f"lienwatch:alerts:test:{uuid.uuid4().hex[:8]}"
    tenant = RedisListener(redis_url, f"{base}:7")
    await tenant.start()
    publisher = RedisPublisher(redis_url, channel=base)
    ours = replace(stored(1), org=12, org_path="/1/7/12/", tenant=7)
    theirs = replace(stored(2), org=8, org_path="/1/8/", tenant=8)
    try:
        await publisher.send([theirs, stored(3), ours])
        await until(lambda: len(tenant.got) == 1)
        await asyncio.sleep(0.1)
    finally:
        await publisher.aclose()
        await tenant.close()
    assert tenant.got == [ours.to_json()]


@pytest.mark.redis
async def test_redis_on_a_closed_port_fails_the_sink_only_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "lienwatch.alerts")
    hub = AlertHub()
    sub = hub.subscribe()
    publisher = RedisPublisher(f"redis://127.0.0.1:{closed_port()}/15", timeout_s=0.5)
    fanout = Fanout([publisher, hub], retry_min_s=0.01, retry_max_s=0.05)
    fanout.start()
    fanout.publish([stored(1)])
    fanout.publish([stored(2)])
    assert [(await sub.get()).id for _ in range(2)] == [1, 2]
    await until(lambda: fanout.status()[0].failures >= 3)
    status = fanout.status()[0]
    assert (status.name, status.failing, status.pending) == ("redis", True, 2)
    warnings = [r for r in caplog.records if "alerts to redis" in r.getMessage()]
    assert len(warnings) == 1
    await fanout.aclose(drain_timeout_s=0.05)


@pytest.mark.redis
async def test_redis_cut_then_restored_delivers_the_kept_alerts_in_order(
    redis_url: str, listener: RedisListener
) -> None:
    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    port = await proxy.start()
    publisher = RedisPublisher(
        f"redis://127.0.0.1:{port}{parts.path}", channel=listener.channel, timeout_s=0.5
    )
    fanout = Fanout([publisher], retry_min_s=0.02, retry_max_s=0.1)
    fanout.start()
    try:
        fanout.publish([stored(1)])
        await until(lambda: len(listener.got) == 1)
        await proxy.cut()
        fanout.publish([stored(2), stored(3)])
        await until(lambda: fanout.status()[0].failing)
        assert len(listener.got) == 1
        await proxy.restore()
        await until(lambda: len(listener.got) == 3)
        assert [a["id"] for a in listener.got] == [1, 2, 3]
        assert not fanout.status()[0].failing
    finally:
        await fanout.aclose()
        await proxy.close()


# -- MQTT -------------------------------------------------------------------------------------


class MqttListener:
    """A paho subscriber on lienwatch/alerts/#, keeping this test's messages (by device)."""

    def __init__(self, url: str, device: str, topic: str = "lienwatch/alerts/#") -> None:
        host, port, _, _ = parse_mqtt_url(url)
        self.device = device
        self.got: list[tuple[str, int, dict[str, object]]] = []
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(5)

    def _on_message(self, client: object, userdata: object, msg: paho.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        if body.get("device_id") == self.device:
            with self.lock:
                self.got.append((msg.topic, msg.qos, body))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.mqtt
async def test_alerts_are_published_on_their_type_topic_with_qos_1(mqtt_url: str) -> None:
    device = f"0139{uuid.uuid4().int % 10**8:08d}"
    listener = MqttListener(mqtt_url, device)
    publisher = MqttPublisher(mqtt_url)
    try:
        await until(lambda: publisher.connected)
        await publisher.send([stored(1, device), stored(2, device)])
        await until(lambda: len(listener.got) == 2)
    finally:
        await publisher.aclose()
        listener.close()
    assert [(t, q) for t, q, _ in listener.got] == [("lienwatch/alerts/power_cut", 1)] * 2
    assert [b for _, _, b in listener.got] == [
        stored(1, device).to_json(),
        stored(2, device).to_json(),
    ]


@pytest.mark.mqtt
async def test_a_tenants_alerts_are_also_on_its_own_topic(mqtt_url: str) -> None:
    device = f"0139{uuid.uuid4().int % 10**8:08d}"
    listener = MqttListener(mqtt_url, device, "lienwatch/tenants/#")
    publisher = MqttPublisher(mqtt_url)
    ours = replace(stored(1, device), org=12, org_path="/1/7/12/", tenant=7)
    try:
        await until(lambda: publisher.connected)
        await publisher.send([stored(2, device), ours])
        await until(lambda: len(listener.got) == 1)
        await asyncio.sleep(0.1)
    finally:
        await publisher.aclose()
        listener.close()
    assert listener.got == [("lienwatch/tenants/7/alerts/power_cut", 1, ours.to_json())]


@pytest.mark.mqtt
async def test_mqtt_cut_then_restored_delivers_the_kept_alerts(
    mqtt_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "lienwatch.alerts")
    device = f"0139{uuid.uuid4().int % 10**8:08d}"
    host, port, _, _ = parse_mqtt_url(mqtt_url)
    proxy = TcpProxy(host, port)
    proxy_port = await proxy.start()
    listener = MqttListener(mqtt_url, device)
    publisher = MqttPublisher(f"mqtt://127.0.0.1:{proxy_port}")
    fanout = Fanout([publisher], retry_min_s=0.05, retry_max_s=0.2)
    fanout.start()
    try:
        await until(lambda: publisher.connected)
        fanout.publish([stored(1, device)])
        await until(lambda: len(listener.got) == 1)
        await proxy.cut()
        await until(lambda: not publisher.connected)
        fanout.publish([stored(2, device)])
        await until(lambda: fanout.status()[0].failing)
        await proxy.restore()
        await until(lambda: {b["id"] for _, _, b in listener.got} == {1, 2}, timeout_s=20)
        await until(lambda: not fanout.status()[0].failing)
    finally:
        await fanout.aclose()
        listener.close()
        await proxy.close()
    messages = [r.getMessage() for r in caplog.records if "alerts to mqtt" in r.getMessage()]
    assert len(messages) == 2 and "failing" in messages[0]


def test_mqtt_urls_carry_host_port_and_optional_credentials() -> None:
    assert parse_mqtt_url("mqtt://broker") == ("broker", 1883, None, None)
    assert parse_mqtt_url("mqtt://u%40x:p%3A@h:1884") == ("h", 1884, "u@x", "p:")
    with pytest.raises(ValueError, match="not mqtt://"):
        parse_mqtt_url("tcp://h:1")
