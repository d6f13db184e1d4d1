"""Simulated trackers over MQTT (contracts section 5), through the gateway's own client.

Trackers publish raw JT808 frames, one per message, to `lienwatch/up/{terminal}` and receive
platform frames on `lienwatch/down/{terminal}` (the terminal as the header's digits, leading
zeros kept). One client (ingest.mqtt: on the event loop, a read parsed in one pass, a pass's
publishes in one write) carries every simulated device, with QoS 1 both ways by default, so
the load generator costs a few microseconds per report and is not what a run measures.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Sequence
from urllib.parse import urlsplit

from ingest.jt808 import Edition
from ingest.mqtt.client import MqttClient
from ingest.mqtt.session import ClientSession
from ingest.mqtt_bridge import split_frames
from simulators.device import Device
from simulators.load import Fleet, Handshake
from simulators.wire import Clock

UP = "lienwatch/up/"
DOWN = "lienwatch/down/"
_UP = UP.encode()
HANDSHAKES_AT_ONCE = 200


def topic_terminal(terminal: str, edition: Edition) -> str:
    """The terminal as topics carry it: 12 digits (2011/2013) or 20 (2019)."""
    return terminal.rjust(20 if edition is Edition.V2019 else 12, "0")


def parse_mqtt_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"{url!r} is not mqtt://HOST:PORT")
    return parts.hostname, parts.port or 1883


def _client(host: str, port: int, qos: int, on_messages: object) -> MqttClient:
    session = ClientSession(
        f"lwsim-{uuid.uuid4().hex[:12]}",
        clean_session=True,
        keepalive_s=30,
        subscriptions=[(DOWN + "+", qos)],
        max_inflight=5000,
    )
    return MqttClient(host, port, session, on_messages)  # type: ignore[arg-type]


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
    inbox: deque[tuple[bytes, bytes]] = deque()
    client = _client(
        host, port, qos, lambda topics, payloads: inbox.extend(zip(topics, payloads, strict=True))
    )
    by_topic = {(DOWN + topic_terminal(d.terminal, d.edition)).encode(): d for d in devices}
    client.begin()
    generation = 0
    try:
        while not stop.is_set():
            now = clock.now_ms()
            link_up = client.ready
            while inbox:
                topic, payload = inbox.popleft()
                device = by_topic.get(topic)
                if device is not None and device.connected:
                    device.receive_frame(payload, now)
            for device in devices:
                if device.connected and (
                    not link_up or device.close_wanted or generation != client.connections
                ):
                    device.connection_lost(now)
                if link_up and device.wants_connection(now):
                    device.connection_made(now)
                device.tick(now)
                topic = _UP + topic_terminal(device.terminal, device.edition).encode()
                for frame in device.frames_to_send():
                    client.publish(topic, frame, qos)
            generation = client.connections if link_up else generation
            wake = min((d.next_timer_ms(now) for d in devices), default=now + 1000)
            await asyncio.sleep(min(0.05, clock.seconds_until(wake)))
    finally:
        await client.close(graceful=False)


class MqttTransport:
    """Load mode over MQTT: every device's frames through one client; answers go straight
    from the client's read into the fleet's inbox (handshakes into their codecs)."""

    def __init__(self, fleet: Fleet, qos: int = 1) -> None:
        self.fleet = fleet
        self.qos = qos
        cfg = fleet.cfg
        self.client = _client(cfg.host, cfg.port, qos, self._on_messages)
        terminals = [topic_terminal(t, cfg.edition) for t in fleet.terminals]
        self.topics = [(UP + t).encode() for t in terminals]
        self.index = {(DOWN + t).encode(): i for i, t in enumerate(terminals)}
        self.pending: dict[int, Handshake] = {}
        fleet.join_frames = False

    async def connect(self) -> None:
        cfg = self.fleet.cfg
        publish, topics, qos = self.client.publish, self.topics, self.qos

        def write(device: int, data: bytes) -> None:
            publish(topics[device], data, qos)

        self.fleet.write = write
        try:
            await self.client.start(cfg.connect_timeout_s)
        except OSError:
            return
        deadline = time.monotonic() + cfg.connect_timeout_s
        # At most HANDSHAKES_AT_ONCE registrations in flight: a broker holds only so many QoS 1
        # messages for one subscriber (Mosquitto: 20 in flight and 1000 queued by default) and
        # drops the rest of a burst.
        for d in range(cfg.devices):
            while len(self.pending) >= HANDSHAKES_AT_ONCE and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            hs = Handshake(self.fleet.terminals[d], d, cfg.edition)
            self.pending[d] = hs
            self._publish_all(d, hs.start())
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def _publish_all(self, device: int, data: bytes) -> None:
        for frame in split_frames(data):
            self.client.publish(self.topics[device], frame, self.qos)

    def _on_messages(self, topics: list[bytes], payloads: list[bytes]) -> None:
        received = time.monotonic()
        index, pending, inbox = self.index, self.pending, self.fleet.inbox
        for topic, payload in zip(topics, payloads, strict=True):
            d = index.get(topic)
            if d is None:
                continue  # someone else's traffic on a shared broker
            if not pending:
                inbox.append((d, received, payload))
                continue
            hs = pending.get(d)
            if hs is None:
                inbox.append((d, received, payload))
                continue
            self._publish_all(d, hs.feed(payload, whole_frame=True))
            if hs.done is not None:
                del pending[d]
                if hs.done:
                    self.fleet.online(d, hs)

    def poll(self) -> None:
        """The client's reads fill the inbox; a lost broker connection loses every device."""
        if not self.client.ready:
            self.fleet.alive[:] = False

    async def close(self) -> None:
        await self.client.close(graceful=False)


__all__ = [
    "DOWN",
    "UP",
    "MqttTransport",
    "parse_mqtt_url",
    "run_fleet_mqtt",
    "topic_terminal",
]
