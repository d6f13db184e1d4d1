"""The gateway's MQTT side when the broker goes away and when gateways share the trackers:
a private Mosquitto restarted mid-load loses no acknowledged report and the bridge carries on by
itself; two bridges in one shared-subscription group split the trackers between them."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.jt808 import Edition, Jt808Connection, Role
from ingest.jt808.messages import Heartbeat
from ingest.mqtt.client import MqttClient
from ingest.mqtt.session import ClientSession
from ingest.mqtt_bridge import UP, MqttBridge
from simulators.load import LoadConfig, run_load
from simulators.mqtt import MqttTransport
from store import open_store

pytestmark = pytest.mark.mqtt
MOSQUITTO = "/usr/sbin/mosquitto"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A Mosquitto of this test's own on a free port, to stop and start at will."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not Path(MOSQUITTO).exists():
        pytest.fail(f"{MOSQUITTO} is missing: scripts/services installs Mosquitto")
    b = Broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


async def _gateway(data: Path) -> Gateway:
    open_store(None, data, migrate=True).close()
    journal = Journal(data / "journal", max_bytes=64 * 1024 * 1024)
    gw = Gateway(
        GatewayConfig(host="127.0.0.1", port=0, auto_register=True),
        journal=journal,
        store_factory=lambda: open_store(None, data),
    )
    await gw.start()
    return gw


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = await _gateway(tmp_path / "data")
    try:
        yield gw
    finally:
        await gw.stop()
        gw.journal.close()


def _stored(data: Path) -> int:
    with sqlite3.connect(data / "lienwatch.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM positions").fetchone()[0])


async def test_a_broker_restart_mid_load_loses_no_acknowledged_report(
    broker: Broker, gateway: Gateway, tmp_path: Path
) -> None:
    bridge = MqttBridge(gateway, broker.url, client_id=f"gw-{uuid.uuid4().hex[:8]}")
    await bridge.start()
    try:
        cfg = LoadConfig("127.0.0.1", broker.port, devices=20, rate=400.0, duration_s=3.0)
        load = asyncio.create_task(run_load(cfg, transport=MqttTransport))
        await asyncio.sleep(2.0)  # handshakes and about a second of reports
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(broker.start)
        first = await load
        assert 0 < first.acknowledged < first.sent  # the outage cut some off
        # The bridge reconnects by itself: a fresh fleet is served in full.
        assert await bridge.client.wait_ready(10.0)
        cfg = LoadConfig(
            "127.0.0.1",
            broker.port,
            devices=10,
            rate=200.0,
            duration_s=1.0,
            first_terminal=13_950_000_000,  # other devices: no fix time shared
        )
        second = await run_load(cfg, transport=MqttTransport)
        assert second.connected == 10
        assert second.sent == second.acknowledged == 200
    finally:
        await bridge.close()
    acknowledged = first.acknowledged + second.acknowledged
    data = tmp_path / "data"
    deadline = time.monotonic() + 15
    while _stored(data) < acknowledged and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert _stored(data) >= acknowledged  # every acknowledged report is durable


def _heartbeat(terminal: str) -> bytes:
    conn = Jt808Connection(Role.TERMINAL, terminal=terminal, edition=Edition.V2013)
    conn.send(Heartbeat())
    return conn.data_to_send()


async def test_two_bridges_in_one_shared_group_split_the_trackers(
    broker: Broker, gateway: Gateway, tmp_path: Path
) -> None:
    other = await _gateway(tmp_path / "other")
    group = f"g{uuid.uuid4().hex[:6]}"
    one = MqttBridge(gateway, broker.url, share_group=group)
    two = MqttBridge(other, broker.url, share_group=group)
    publisher = MqttClient(
        "127.0.0.1",
        broker.port,
        ClientSession("pub", clean_session=True, keepalive_s=30, subscriptions=[("x/none", 0)]),
        lambda topics, payloads: None,
    )
    try:
        await one.start()
        await two.start()
        await publisher.start()
        terminals = [f"0139{i:08d}" for i in range(40)]
        for t in terminals:
            publisher.publish((UP + t).encode(), _heartbeat(t))
        deadline = time.monotonic() + 10
        while one.received + two.received < len(terminals) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert one.received > 0 and two.received > 0  # both took a share
        assert set(one.sessions).isdisjoint(two.sessions)  # each terminal in one place
        assert set(one.sessions) | set(two.sessions) == set(terminals)
    finally:
        await publisher.close()
        await one.close()
        await two.close()
        await other.stop()
        other.journal.close()
