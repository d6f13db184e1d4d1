"""A client's MQTT session without I/O: packet ids, the inflight window, what to resend.

The asyncio shell (`ingest.mqtt.client`) hands it the bytes it reads and writes what it returns.
QoS 1 publishes take a packet id while fewer than `max_inflight` await their PUBACK; the rest
wait, in order, and go out as PUBACKs free the window. Everything unacknowledged survives a
lost connection: after the next CONNACK the inflight messages are sent again (DUP set) before
any waiting one, as MQTT 3.1.1 asks of a client that keeps its session (clean_session=False).
Every QoS 1 PUBLISH read is acknowledged in the same write as whatever else the pass produced.
"""

from __future__ import annotations

from collections import deque

from ingest.mqtt import codec
from ingest.mqtt.codec import (
    V5,
    ConnAck,
    Incoming,
    MqttProtocolError,
    Parser,
    ServerDisconnect,
    SubAck,
    UnsubAck,
)


class ClientSession:
    """One client's protocol state across connections."""

    def __init__(
        self,
        client_id: str,
        *,
        clean_session: bool,
        keepalive_s: int,
        subscriptions: list[tuple[str, int]],
        username: str | None = None,
        password: str | None = None,
        max_inflight: int = 1000,
        max_waiting: int = 200_000,
        version: int = V5,
        session_expiry_s: int = 3600,
    ) -> None:
        """`clean_session` False keeps the session at the server across connections (version
        5: for `session_expiry_s` after a connection ends, so a client that never comes back
        stops collecting messages; 3.1.1: until the server forgets it)."""
        if not 1 <= max_inflight <= 65_000:
            raise ValueError("max_inflight must be within 1..65000")
        self.client_id = client_id
        self.clean_session = clean_session
        self.keepalive_s = keepalive_s
        self.subscriptions = subscriptions
        self.username, self.password = username, password
        self.max_inflight = max_inflight
        self.max_waiting = max_waiting
        self.version = version
        self.session_expiry_s = 0 if clean_session else session_expiry_s
        self.connected = False  # CONNACK accepted on the current connection
        self.subscribed = False  # SUBACK for the current connection's SUBSCRIBE
        self.refused: int | None = None  # the last CONNACK's refusal code
        self.dropped = 0  # waiting publishes dropped over `max_waiting` (oldest first)
        self.inflight: dict[int, bytes] = {}  # packet id -> the PUBLISH as first sent
        self.waiting: deque[tuple[bytes, bytes, int]] = deque()  # (topic, payload, qos)
        self._parser = Parser(version=version)
        self._out: list[bytes] = []
        self._next_id = 0
        self._sub_id: int | None = None
        self._unsub_id: int | None = None
        self.leaving = False  # `unsubscribe` was called
        self.unsubscribed = False  # ... and the server confirmed it

    # ----------------------------------------------------------------- connection lifecycle

    def connection_made(self) -> None:
        """A new transport: CONNECT first; nothing else until the CONNACK."""
        self._parser = Parser(version=self.version)
        self._out = [
            codec.connect(
                self.client_id,
                clean_session=self.clean_session,
                keepalive_s=self.keepalive_s,
                username=self.username,
                password=self.password,
                version=self.version,
                session_expiry_s=self.session_expiry_s,
            )
        ]
        self.connected = self.subscribed = False

    def connection_lost(self) -> None:
        """Inflight messages stay for the next connection; unsent bytes are dropped (they are
        rebuilt from `inflight` and `waiting`)."""
        self.connected = self.subscribed = False
        self._out = []
        self._sub_id = self._unsub_id = None

    # ----------------------------------------------------------------- sending

    def publish(self, topic: bytes, payload: bytes, qos: int = 1) -> None:
        if not self.connected or (qos and len(self.inflight) >= self.max_inflight) or self.waiting:
            self.waiting.append((topic, payload, qos))
            if len(self.waiting) > self.max_waiting:
                self.waiting.popleft()
                self.dropped += 1
            return
        self._send(topic, payload, qos)

    def _send(self, topic: bytes, payload: bytes, qos: int) -> None:
        if not qos:
            self._out.append(codec.publish(topic, payload, 0, version=self.version))
            return
        pid = self._take_id()
        packet = codec.publish(topic, payload, 1, pid, version=self.version)
        self.inflight[pid] = packet
        self._out.append(packet)

    def _take_id(self) -> int:
        inflight = self.inflight
        pid = self._next_id
        while True:
            pid = pid % 65535 + 1
            if pid not in inflight and pid != self._sub_id and pid != self._unsub_id:
                self._next_id = pid
                return pid

    def ping(self) -> None:
        self._out.append(codec.PINGREQ)

    def unsubscribe(self) -> None:
        """Leaves every subscription, now or on the next connection, and subscribes no more (a
        process leaving a shared group: nothing is routed to it from then on)."""
        self.leaving = True
        if self.connected and self._unsub_id is None and not self.unsubscribed:
            self._unsub_id = self._take_id()
            self._out.append(
                codec.unsubscribe(self._unsub_id, [t for t, _ in self.subscriptions], self.version)
            )

    def disconnect(self) -> None:
        self._out.append(codec.DISCONNECT)

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    # ----------------------------------------------------------------- receiving

    def receive(self, data: bytes) -> Incoming:
        """Parses a read; acknowledges its QoS 1 messages, frees the window for the server's
        PUBACKs and fills it again from the waiting queue. Raises MqttProtocolError."""
        incoming = self._parser.feed(data)
        if incoming.to_ack:
            self._out.append(codec.pubacks(incoming.to_ack))
        if incoming.acked:
            inflight = self.inflight
            for pid in incoming.acked:
                inflight.pop(pid, None)  # an id we no longer hold: a duplicate PUBACK
        for packet in incoming.control:
            if isinstance(packet, ConnAck):
                self._connack(packet)
            elif isinstance(packet, SubAck) and packet.packet_id == self._sub_id:
                self._sub_id = None
                if any(code & 0x80 for code in packet.granted):
                    raise codec.MqttProtocolError(f"subscription refused: {packet.granted}")
                self.subscribed = True
            elif isinstance(packet, UnsubAck) and packet.packet_id == self._unsub_id:
                self._unsub_id = None
                self.unsubscribed = True
            elif isinstance(packet, ServerDisconnect):
                raise MqttProtocolError(f"the server disconnected (reason 0x{packet.reason:02x})")
        if self.connected:
            self._fill()
        return incoming

    def _connack(self, packet: ConnAck) -> None:
        if packet.code:  # 3.1.1: 1-5; version 5: 0x80 and above
            self.refused = packet.code
            return
        self.refused = None
        self.connected = True
        if self.leaving:
            if not self.unsubscribed:
                self.unsubscribe()
        else:
            self._sub_id = self._take_id()
            self._out.append(codec.subscribe(self._sub_id, self.subscriptions, self.version))
        for packet_bytes in self.inflight.values():  # in the order first sent
            self._out.append(bytes((packet_bytes[0] | 0x08,)) + packet_bytes[1:])

    def _fill(self) -> None:
        waiting = self.waiting
        room = self.max_inflight - len(self.inflight)
        while waiting and room > 0:
            topic, payload, qos = waiting.popleft()
            self._send(topic, payload, qos)
            room -= qos
