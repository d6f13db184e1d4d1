"""Simulated trackers over MQTT (contracts section 5), with paho-mqtt in its network thread.

Trackers publish raw JT808 frames, one per message, to `lienwatch/up/{terminal}` and receive
platform frames on `lienwatch/down/{terminal}` (the terminal as the header's digits, leading
zeros kept). paho's thread only queues what arrives; the asyncio side drains the queue, so
devices and the load fleet see every frame on one thread. paho publishes ~5x faster than aiomqtt
on this machine (architecture.md), hence paho.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ingest.jt808 import Edition
from simulators.device import Device
from simulators.load import Fleet, Handshake
from simulators.wire import Clock

_FRAME = re.compile(rb"\x7e[^\x7e]+\x7e")
UP = "lienwatch/up/"
DOWN = "lienwatch/down/"


def topic_terminal(terminal: str, edition: Edition) -> str:
    """The terminal as topics carry it: 12 digits (2011/2013) or 20 (2019)."""
    return terminal.rjust(20 if edition is Edition.V2019 else 12, "0")


def parse_mqtt_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"{url!r} is not mqtt://HOST:PORT")
    return parts.hostname, parts.port or 1883


class _Client:
    """One paho client: connects, subscribes to every down topic, queues what arrives."""

    def __init__(self, host: str, port: int, qos: int) -> None:
        self.host, self.port, self.qos = host, port, qos
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"lwsim-{uuid.uuid4().hex[:12]}"
        )
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.inbox: deque[tuple[str, float, bytes]] = deque()
        self.up = False
        self.subscribed = False
        self.generation = 0  # bumped on every (re)connection

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(DOWN + "+", qos=self.qos)
            self.generation += 1
            self.up = True

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.up = False

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.inbox.append((message.topic[len(DOWN) :], time.monotonic(), bytes(message.payload)))

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def publish(self, terminal: str, frame: bytes) -> None:
        self.client.publish(UP + terminal, frame, qos=self.qos)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


async def run_fleet_mqtt(
    devices: Sequence[Device],
    host: str,
    port: int,
    clock: Clock,
    stop: asyncio.Event,
    *,
    qos: int = 1,
) -> None:
    """Runs sans-IO devices over one MQTT client until `stop` is set.

    The client's connection is every device's link: devices connect (authenticate) while it is
    up and lose their link when it drops; a device that asks to close re-authenticates later.
    """
    client = _Client(host, port, qos)
    by_topic = {topic_terminal(d.terminal, d.edition): d for d in devices}
    client.start()
    generation = 0
    try:
        while not stop.is_set():
            now = clock.now_ms()
            link_up = client.up
            while client.inbox:
                terminal, _, payload = client.inbox.popleft()
                device = by_topic.get(terminal)
                if device is not None and device.connected:
                    device.receive_frame(payload, now)
            for device in devices:
                if device.connected and (
                    not link_up or device.close_wanted or generation != client.generation
                ):
                    device.connection_lost(now)
                if link_up and device.wants_connection(now):
                    device.connection_made(now)
                device.tick(now)
                topic = topic_terminal(device.terminal, device.edition)
                for frame in device.frames_to_send():
                    client.publish(topic, frame)
            generation = client.generation if link_up else generation
            wake = min((d.next_timer_ms(now) for d in devices), default=now + 1000)
            await asyncio.sleep(min(0.05, clock.seconds_until(wake)))
    finally:
        client.stop()


class MqttTransport:
    """Load mode over MQTT: every device's frames through one paho client."""

    def __init__(self, fleet: Fleet, qos: int = 0) -> None:
        self.fleet = fleet
        cfg = fleet.cfg
        self.client = _Client(cfg.host, cfg.port, qos)
        self.topics = [topic_terminal(t, cfg.edition) for t in fleet.terminals]
        self.index = {t: i for i, t in enumerate(self.topics)}
        self.pending: dict[int, Handshake] = {}
        fleet.join_frames = False

    async def connect(self) -> None:
        cfg = self.fleet.cfg
        publish, topics = self.client.publish, self.topics

        def write(device: int, data: bytes) -> None:
            publish(topics[device], data)

        self.fleet.write = write
        self.client.start()
        deadline = time.monotonic() + cfg.connect_timeout_s
        while not self.client.up and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not self.client.up:
            return
        await asyncio.sleep(0.1)  # let the subscription settle before the first publish
        for first in range(0, cfg.devices, cfg.connect_concurrency):
            for d in range(first, min(cfg.devices, first + cfg.connect_concurrency)):
                hs = Handshake(self.fleet.terminals[d], d, cfg.edition)
                self.pending[d] = hs
                self._publish_all(d, hs.start())
            await asyncio.sleep(0)
        while self.pending and time.monotonic() < deadline:
            self.poll()
            await asyncio.sleep(0.005)

    def _publish_all(self, device: int, data: bytes) -> None:
        for frame in _FRAME.findall(data):
            self.client.publish(self.topics[device], frame)

    def poll(self) -> None:
        inbox = self.client.inbox
        fleet = self.fleet
        while inbox:
            terminal, received, payload = inbox.popleft()
            d = self.index.get(terminal)
            if d is None:
                continue
            hs = self.pending.get(d)
            if hs is None:
                fleet.inbox.append((d, received, payload))
                continue
            self._publish_all(d, hs.feed(payload, whole_frame=True))
            if hs.done is not None:
                del self.pending[d]
                if hs.done:
                    fleet.online(d, hs)
        if not self.client.up:
            fleet.alive[:] = False

    async def close(self) -> None:
        await asyncio.sleep(0)
        self.client.stop()


__all__ = [
    "DOWN",
    "UP",
    "MqttTransport",
    "parse_mqtt_url",
    "run_fleet_mqtt",
    "topic_terminal",
]
