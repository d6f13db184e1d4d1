"""The MQTT side of the gateway (contracts sections 5 and 9): trackers behind a broker.

Trackers publish raw JT808 frames, one per message, to `lienwatch/up/{terminal}` and receive the
platform's frames on `lienwatch/down/{terminal}`. Each terminal gets the same link session a TCP
connection gets (registration, authentication, the handshake deadline, reports acknowledged only
once durable, commands down), driven by an `MqttLink`: whole frames in, and what the session
writes published, one frame per message, on the terminal's down topic.

The client (ingest.mqtt) runs on the event loop: one read of the broker's socket is parsed in
one pass, its reports go to the group commit like TCP reads (a plain 0x0200 of an idle
authenticated session straight to it), and the read's PUBACKs go out in one write. The 0x8001
acknowledgements of a commit are published after it, gathered into one write. Several gateways
share the trackers through a shared subscription (`$share/GROUP/lienwatch/up/+`); whichever
gateway receives a terminal's frames holds its session and publishes its down topic. Every frame
of a terminal must reach the same gateway, which a broker choosing the member by topic does
(EMQX `hash_topic`) and Mosquitto, dealing messages out in turn, does not.

When the gateway pauses reading (journal full, too many reports waiting), the bridge holds what
still arrives without acknowledging it, so the broker stops at its window (Receive Maximum) and
keeps the rest queued (Mosquitto: up to `max_queued_messages`, dropping beyond); PUBACKs for the
gateway's own publishes, pings and reconnects go on meanwhile. The broker is not where
reliability comes from: a report is acknowledged (0x8001) only once durable, and a tracker
re-sends what was not acknowledged, as over TCP. The session is persistent (no clean start, a
stable client id), so a reconnect to the broker gets the QoS 1 messages it had not taken yet,
and the acknowledgements not yet taken by the broker are sent again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Protocol

from alerts.delivery.mqtt_sink import parse_mqtt_url
from ingest.jt808.link import LinkSession
from ingest.link import Link, LinkHost
from ingest.mqtt.client import MqttClient
from ingest.mqtt.session import ClientSession
from ingest.mqtt_adoption import Adoption

log = logging.getLogger("lienwatch.mqtt")

UP = "lienwatch/up/"
DOWN = "lienwatch/down/"
_UP = UP.encode()
_DOWN = DOWN.encode()
_FLAG = 0x7E


class MqttHost(LinkHost, Protocol):
    """What the bridge needs of the gateway."""

    reading_paused: bool

    def new_session(self) -> LinkSession: ...

    def link_opened(self, link: Link, address: str | None) -> bool: ...

    @property
    def shares_sessions(self) -> bool:
        """Whether other gateways may hold this one's terminals (`ingest.mqtt_adoption`)."""
        ...

    async def held_elsewhere(self, terminal: str) -> bool: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Runs `coro` in the background; a failure is logged, never lost."""
        ...


def up_subscription(share_group: str) -> str:
    """`$share/GROUP/lienwatch/up/+`, or the plain `lienwatch/up/+` when the group is empty."""
    return f"$share/{share_group}/{UP}+" if share_group else UP + "+"


def stable_client_id(data_dir: Path | str) -> str:
    """A client id unique per gateway (host and data directory, which holds its journal) and
    the same across its restarts, so the broker keeps its session for it."""
    key = f"{socket.gethostname()}\0{Path(data_dir).resolve()}"
    return "lienwatch-gw-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def split_frames(data: bytes) -> list[bytes]:
    """Frames written back to back (each 0x7E ... 0x7E, no 0x7E inside) one by one."""
    if data.find(b"\x7e", 1) == len(data) - 1:
        return [data]
    return [b"\x7e" + part + b"\x7e" for part in data[1:-1].split(b"\x7e\x7e") if part]


class MqttLink(Link):
    """One terminal's session over the broker: publishes what the session writes."""

    def __init__(self, bridge: MqttBridge, terminal: str) -> None:
        super().__init__(bridge.gateway, bridge.gateway.new_session(), f"mqtt:{terminal}")
        self._bridge = bridge
        self._publish = bridge.client.publish
        self.topic_terminal = terminal
        self.down_topic = _DOWN + terminal.encode()

    def transmit(self, data: bytes) -> None:
        if data and data[0] == _FLAG and data.find(b"\x7e", 1) == len(data) - 1:
            self._publish(self.down_topic, data)  # one frame: the usual acknowledgement
            return
        for frame in split_frames(data):
            self._publish(self.down_topic, frame)

    def write_frames(self, data: bytes) -> None:
        if not self.closed:
            self.transmit(data)

    def close_transport(self) -> None:
        self._bridge.forget(self)

    def resume(self) -> None:
        """Reading pauses for the whole bridge (it looks at the gateway); resuming delivers."""
        self._bridge.wake()


class MqttBridge:
    """Subscribes to the up topics and runs one gateway session per terminal."""

    def __init__(
        self,
        gateway: MqttHost,
        url: str,
        *,
        client_id: str = "",
        share_group: str = "lienwatch",
        keepalive_s: int = 30,
        max_inflight: int = 2000,
    ) -> None:
        """`client_id`: unique per gateway process and stable across its restarts (a second
        client with the same id would take the connection over; see `stable_client_id`); a
        random one, with a clean session, when empty. `share_group`: the shared subscription's
        group; empty subscribes to every up topic alone."""
        self.gateway = gateway
        self.host, self.port, user, password = parse_mqtt_url(url)
        persistent = bool(client_id)
        if not client_id:
            client_id = f"lienwatch-gateway-{time.time_ns() % 10**12:012d}"
        self.subscription = up_subscription(share_group)
        self.session = ClientSession(
            client_id,
            clean_session=not persistent,
            keepalive_s=keepalive_s,
            subscriptions=[(self.subscription, 1)],
            username=user,
            password=password,
            max_inflight=max_inflight,
        )
        self.client = MqttClient(self.host, self.port, self.session, self._on_messages)
        self.sessions: dict[str, MqttLink] = {}
        self.received = 0
        self.rejected_topics = 0
        self._held: list[tuple[list[bytes], list[bytes]]] = []
        # Sessions other gateways of the share group hold, taken over (split deployments).
        self.adoption = (
            Adoption(gateway.held_elsewhere, gateway.spawn)
            if share_group and gateway.shares_sessions
            else None
        )
        self._intake = True
        self._recheck: asyncio.TimerHandle | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, timeout_s: float = 10.0) -> None:
        """Connects and subscribes; returns once the broker has taken the subscription."""
        await self.client.start(timeout_s)
        log.info(
            "MQTT bridge subscribed to %s on %s:%d as %s",
            self.subscription,
            self.host,
            self.port,
            self.session.client_id,
        )

    def stop_intake(self) -> None:
        """Leaves the subscription (the broker routes the up topics to the other gateways of
        the group, or holds them) and takes no more messages: any still on their way, or held
        while reading was paused, are dropped unacknowledged, so the broker keeps them for this
        session and their trackers send them again anyway. Sessions can still publish, and the
        socket is still read, so the gateway's last acknowledgements go out and the broker's
        PUBACKs for them come in."""
        self._intake = False
        self._held = []
        self.client.pause_reading()  # what still comes is not acknowledged: the broker keeps it
        self.client.leave()

    async def close(self) -> None:
        """Closes the sessions, waits for the broker to take every publish (and the
        unsubscription) and disconnects."""
        self.stop_intake()
        if self._recheck is not None:
            self._recheck.cancel()
        for link in list(self.sessions.values()):
            link.close("gateway stopping")
        await self.client.close(graceful=True, leave=True)

    # -- delivery ------------------------------------------------------------------------------
    def _on_messages(self, topics: list[bytes], payloads: list[bytes]) -> None:
        if not self._intake:
            return  # taken from the broker while stopping: the trackers send them again
        if self.gateway.reading_paused or self._held:
            self._held.append((topics, payloads))
            self._pause()
            return
        self._deliver(topics, payloads)

    def _pause(self) -> None:
        self.client.pause_reading()
        if self._recheck is None:  # look again soon; resuming sessions also wake us
            self._recheck = asyncio.get_running_loop().call_later(0.1, self.wake)

    def wake(self) -> None:
        """Reading resumed: deliver what waited and read the broker again."""
        self._recheck = None
        if not self._intake:
            return  # stopping: the socket is read, messages are not taken
        if self.gateway.reading_paused:
            self._pause()
            return
        held, self._held = self._held, []
        for topics, payloads in held:
            self._deliver(topics, payloads)
        if self._reading_paused():  # a delivery may have paused it
            self._pause()
        else:
            self.client.resume_reading()

    def _reading_paused(self) -> bool:
        return self.gateway.reading_paused

    def _deliver(self, topics: list[bytes], payloads: list[bytes]) -> None:
        now = time.monotonic()
        sessions = self.sessions
        queue_frame = self.gateway.group.queue_frame
        adoption = self.adoption
        up = len(_UP)
        self.received += len(topics)
        for topic, payload in zip(topics, payloads, strict=True):
            try:
                terminal = topic[up:].decode("ascii")
            except UnicodeDecodeError:
                terminal = ""
            link = sessions.get(terminal)
            if link is None or link.closed:
                link = self._open(topic, terminal)
                if link is None:
                    continue
            if link.session.take_whole_report(payload, now):  # the hot path, as over TCP
                queue_frame(link, payload, now)
            elif adoption is None or not adoption.offer(link, terminal, payload, now):
                link.receive_frame(payload, now)

    def _open(self, topic: bytes, terminal: str) -> MqttLink | None:
        # A terminal as topics carry it: the header's digits (12, or 20 for 2019), nothing else.
        if not topic.startswith(_UP) or not terminal.isdigit() or not 1 <= len(terminal) <= 20:
            self.rejected_topics += 1
            self.received -= 1
            return None
        link = MqttLink(self, terminal)
        if not self.gateway.link_opened(link, None):  # no caps over the broker
            return None
        self.sessions[terminal] = link
        return link

    def forget(self, link: MqttLink) -> None:
        """A session closed (idle, handshake timeout, too many errors, replaced, stopping)."""
        if self.sessions.get(link.topic_terminal) is link:
            del self.sessions[link.topic_terminal]
