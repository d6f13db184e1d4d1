"""The MQTT side of the gateway (contracts section 5): trackers behind a broker.

Trackers publish raw JT808 frames, one per message, to `lienwatch/up/{terminal}` and receive the
platform's frames on `lienwatch/down/{terminal}`. Each terminal gets the same link session a TCP
connection gets (registration, authentication, the handshake deadline, reports acknowledged only
once durable, commands down), driven by an `MqttLink`: whole frames in, and what the session
writes published, one frame per message, on the terminal's down topic.

paho runs its network loop in its own thread; that thread only queues what arrives, and the
event loop delivers the queue to the sessions. When the gateway pauses reading (journal full, too
many reports waiting), delivery stops, the queue fills to its bound, and then paho's thread waits:
it stops reading from the broker, which holds what it can. The broker is not where reliability
comes from: a report is acknowledged (0x8001 on the down topic) only once it is durable, and a
tracker re-sends what was not acknowledged, as over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
import uuid
from collections import deque
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from alerts.delivery.mqtt_sink import parse_mqtt_url
from ingest.jt808.link import LinkSession
from ingest.link import Link, LinkHost

log = logging.getLogger("lienwatch.mqtt")

UP = "lienwatch/up/"
DOWN = "lienwatch/down/"
_FRAME = re.compile(rb"\x7e[^\x7e]+\x7e")
# A terminal as topics carry it: the header's digits (12, or 20 for 2019), nothing else.
_TERMINAL = re.compile(r"^[0-9]{1,20}$")


class MqttHost(LinkHost, Protocol):
    """What the bridge needs of the gateway."""

    reading_paused: bool

    def new_session(self) -> LinkSession: ...

    def link_opened(self, link: Link, address: str | None) -> bool: ...


class MqttLink(Link):
    """One terminal's session over the broker: publishes what the session writes."""

    def __init__(self, bridge: MqttBridge, terminal: str) -> None:
        super().__init__(bridge.gateway, bridge.gateway.new_session(), f"mqtt:{terminal}")
        self._bridge = bridge
        self.topic_terminal = terminal

    def transmit(self, data: bytes) -> None:
        for frame in _FRAME.findall(data):
            self._bridge.publish(self.topic_terminal, frame)

    def close_transport(self) -> None:
        self._bridge.forget(self)

    def resume(self) -> None:
        """Reading pauses for the whole bridge (it looks at the gateway); resuming delivers."""
        self._bridge.wake()


class MqttBridge:
    """Subscribes to every up topic and runs one gateway session per terminal."""

    def __init__(
        self,
        gateway: MqttHost,
        url: str,
        *,
        client_id: str = "",
        max_queued: int = 100_000,
    ) -> None:
        """`client_id`: unique per gateway process (a second client with the same id would
        take the connection over); a random one when empty."""
        self.gateway = gateway
        self.host, self.port, user, password = parse_mqtt_url(url)
        self.max_queued = max_queued
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"lienwatch-gateway-{uuid.uuid4().hex[:8]}",
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.sessions: dict[str, MqttLink] = {}
        self.received = 0
        self.rejected_topics = 0
        self._inbox: deque[tuple[str, bytes]] = deque()
        self._room = threading.Event()
        self._room.set()
        self._scheduled = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._intake = True
        self._connected = asyncio.Event()

    # -- lifecycle (event loop) ----------------------------------------------------------------
    async def start(self, timeout_s: float = 10.0) -> None:
        """Connects and subscribes; returns once the broker has taken the subscription."""
        self._loop = asyncio.get_running_loop()
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            self.client.loop_stop()
            raise OSError(f"MQTT broker {self.host}:{self.port} did not answer") from None
        log.info("MQTT bridge subscribed to %s+ on %s:%d", UP, self.host, self.port)

    def stop_intake(self) -> None:
        """Stops delivering messages (they stay with the broker); sessions can still publish,
        so the gateway's last acknowledgements go out."""
        self._intake = False
        self._room.set()  # never leave paho's thread waiting

    async def close(self) -> None:
        self.stop_intake()
        for link in list(self.sessions.values()):
            link.close("gateway stopping")
        await asyncio.to_thread(self._disconnect)

    def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()

    # -- paho's thread -------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker refused the gateway: %s", reason)
            return
        client.subscribe(UP + "+", qos=1)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._connected.set)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._intake:
            log.warning("MQTT broker connection lost (%s); reconnecting", reason)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        # Over the bound: wait here, so paho stops reading and the broker keeps the rest.
        while not self._room.wait(1.0):
            if not self._intake:
                return
        if not self._intake:
            return
        with self._lock:
            self._inbox.append((message.topic, bytes(message.payload)))
            if len(self._inbox) >= self.max_queued:
                self._room.clear()
            schedule = not self._scheduled
            self._scheduled = True
        if schedule and self._loop is not None:
            self._loop.call_soon_threadsafe(self._deliver)

    # -- the event loop ------------------------------------------------------------------------
    def wake(self) -> None:
        """Reading resumed: deliver what waited."""
        with self._lock:
            if self._scheduled or not self._inbox:
                return
            self._scheduled = True
        asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            self._scheduled = False
            if not self._intake:
                return
            if self.gateway.reading_paused:  # look again soon; resuming sessions also wake us
                self._scheduled = True
                asyncio.get_running_loop().call_later(0.1, self._deliver)
                return
            items = list(self._inbox)
            self._inbox.clear()
            self._room.set()
        for topic, payload in items:
            self._on_frame(topic, payload)

    def _on_frame(self, topic: str, payload: bytes) -> None:
        terminal = topic[len(UP) :]
        if not topic.startswith(UP) or not _TERMINAL.match(terminal):
            self.rejected_topics += 1
            return
        self.received += 1
        link = self.sessions.get(terminal)
        if link is None or link.closed:
            link = MqttLink(self, terminal)
            if not self.gateway.link_opened(link, None):  # no caps over the broker
                return
            self.sessions[terminal] = link
        link.receive_frame(payload, time.monotonic())

    def publish(self, terminal: str, frame: bytes) -> None:
        self.client.publish(DOWN + terminal, frame, qos=1)

    def forget(self, link: MqttLink) -> None:
        """A session closed (idle, handshake timeout, too many errors, replaced, stopping)."""
        if self.sessions.get(link.topic_terminal) is link:
            del self.sessions[link.topic_terminal]
