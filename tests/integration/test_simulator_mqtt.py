"""Simulated trackers through the real Mosquitto broker, against a test subscriber that plays
the platform (the gateway's own MQTT side: tests/e2e/test_serve_mqtt.py)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.jt808 import Edition, Jt808Connection, MessageReceived, Role, decode_frame
from ingest.jt808.messages import (
    LocationQuery,
    LocationQueryReply,
    LocationReport,
    Message,
    Register,
    RegisterResponse,
    TerminalGeneralResponse,
)
from simulators.device import Device, Habits, Parked
from simulators.load import LoadConfig, run_load
from simulators.mqtt import DOWN, UP, MqttTransport, parse_mqtt_url, run_fleet_mqtt, topic_terminal
from simulators.wire import Clock

pytestmark = pytest.mark.mqtt


class MqttPlatform:
    """Subscribes to the up topics, answers like a gateway on the down topics, records."""

    def __init__(self, host: str, port: int, terminals: set[str]) -> None:
        self.terminals = terminals
        self.conns: dict[str, Jt808Connection] = {}
        self.messages: list[tuple[str, Message]] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self.ready.set()
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(5)

    def _on_connect(self, client: paho.Client, *args: object) -> None:
        client.subscribe(UP + "+", qos=1)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        terminal = msg.topic[len(UP) :]
        if terminal not in self.terminals:
            return  # someone else's traffic on the shared broker
        conn = self.conns.setdefault(terminal, Jt808Connection(Role.PLATFORM))
        with self.lock:
            self.raw.append(bytes(msg.payload))
            conn.receive_frame(bytes(msg.payload))
            for event in conn.events():
                if not isinstance(event, MessageReceived):
                    continue
                self.messages.append((terminal, event.message))
                if isinstance(event.message, Register):
                    conn.send(RegisterResponse(event.header.serial, 0, "mq"))
                elif not isinstance(event.message, TerminalGeneralResponse | LocationQueryReply):
                    conn.answer(event.header)
            self._flush(terminal, conn)

    def _flush(self, terminal: str, conn: Jt808Connection) -> None:
        data = conn.data_to_send()
        for part in data.split(b"\x7e\x7e"):
            if part:
                frame = (b"" if part[:1] == b"\x7e" else b"\x7e") + part
                frame += b"" if frame[-1:] == b"\x7e" and len(frame) > 1 else b"\x7e"
                self.client.publish(DOWN + terminal, frame, qos=1)

    def command(self, terminal: str, message: Message) -> None:
        with self.lock:
            conn = self.conns[terminal]
            conn.send(message)
            self._flush(terminal, conn)

    def of_type(self, kind: type) -> list[tuple[str, Message]]:
        with self.lock:
            return [(t, m) for t, m in self.messages if isinstance(m, kind)]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def unique_terminals(n: int) -> list[str]:
    base = random.randrange(10**9, 10**10) * 100
    return [str(base + i) for i in range(n)]


@pytest.fixture
def broker(mqtt_url: str) -> tuple[str, int]:
    return parse_mqtt_url(mqtt_url)


@pytest.fixture
def platform_for(broker: tuple[str, int]) -> Iterator[object]:
    made: list[MqttPlatform] = []

    def make(terminals: set[str]) -> MqttPlatform:
        made.append(MqttPlatform(*broker, terminals))
        return made[-1]

    yield make
    for p in made:
        p.stop()


async def wait_for(condition: object, timeout_s: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout_s)


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
async def test_devices_round_trip_through_mosquitto(
    broker: tuple[str, int], platform_for: object, edition: Edition
) -> None:
    ids = unique_terminals(2)
    topics = {topic_terminal(t, edition) for t in ids}
    platform = platform_for(topics)  # type: ignore[operator]
    devices = [
        Device(t, Parked(121.5, 31.2), Habits(parked_interval_s=10), edition=edition) for t in ids
    ]
    stop = asyncio.Event()
    task = asyncio.create_task(run_fleet_mqtt(devices, *broker, Clock.start(20.0), stop))
    try:
        await wait_for(lambda: {t for t, _ in platform.of_type(LocationReport)} == topics)
        first = topic_terminal(ids[0], edition)
        platform.command(first, LocationQuery())
        await wait_for(lambda: platform.of_type(LocationQueryReply))
        await wait_for(lambda: all(d.stats.acknowledged >= 1 for d in devices))
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert len(platform.of_type(Register)) == 2
    with platform.lock:
        frames = list(platform.raw)
    assert all(decode_frame(f).header.edition is edition for f in frames)


async def test_load_mode_over_mqtt_is_acknowledged(
    broker: tuple[str, int], platform_for: object
) -> None:
    first = random.randrange(10**9, 10**10) * 100
    topics = {topic_terminal(str(first + i), Edition.V2013) for i in range(10)}
    platform_for(topics)  # type: ignore[operator]
    cfg = LoadConfig(*broker, devices=10, rate=200.0, duration_s=1.0, first_terminal=first)
    report = await run_load(cfg, transport=MqttTransport)
    assert report.connected == 10
    assert report.sent == 200
    assert report.acknowledged == 200
    assert report.errors == 0
