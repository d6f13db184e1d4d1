"""The gateway's MQTT side against the real Mosquitto: delivery waits while the gateway pauses
reading and resumes with nothing lost; odd topics are refused; sessions follow terminals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.jt808 import Edition, Jt808Connection, Role
from ingest.jt808.messages import Heartbeat
from ingest.mqtt_bridge import UP, MqttBridge
from store import open_store

pytestmark = pytest.mark.mqtt


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    data = tmp_path / "data"
    open_store(None, data, migrate=True).close()
    journal = Journal(data / "journal", max_bytes=64 * 1024 * 1024)
    gw = Gateway(
        GatewayConfig(host="127.0.0.1", port=0, auto_register=True),
        journal=journal,
        store_factory=lambda: open_store(None, data),
    )
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()
        journal.close()


def heartbeat(terminal: str) -> bytes:
    conn = Jt808Connection(Role.TERMINAL, terminal=terminal, edition=Edition.V2013)
    conn.send(Heartbeat())
    return conn.data_to_send()


async def until(condition: object, timeout_s: float = 5.0) -> bool:
    for _ in range(int(timeout_s / 0.02)):
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return False


async def test_delivery_waits_while_reading_is_paused_and_loses_nothing(
    gateway: Gateway, mqtt_url: str
) -> None:
    # A group of its own: the broker is shared with other test runs.
    bridge = MqttBridge(gateway, mqtt_url, share_group=f"t{uuid.uuid4().hex[:8]}")
    await bridge.start()
    tag = uuid.uuid4().int % 10**6
    terminals = [f"0139{tag:06d}{i:02d}" for i in range(20)]
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    host, port = bridge.host, bridge.port
    publisher.connect(host, port)
    publisher.loop_start()
    try:
        gateway._set_paused(True)
        for terminal in terminals:
            publisher.publish(UP + terminal, heartbeat(terminal), qos=1).wait_for_publish(5)
        publisher.publish(UP + "not-a-terminal", heartbeat(terminals[0]), qos=1)
        await asyncio.sleep(0.5)
        assert bridge.received == 0  # held: the bridge stopped reading the broker
        gateway._set_paused(False)
        # Others' trackers may share the broker: look at ours.
        assert await until(lambda: set(terminals) <= set(bridge.sessions))
        assert await until(lambda: bridge.rejected_topics >= 1)
        assert bridge.received >= len(terminals)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        await bridge.close()
    assert bridge.sessions == {}
