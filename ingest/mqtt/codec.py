"""MQTT 3.1.1 and 5 packets as bytes: encoders for what a client sends, one parser for what it
reads. Version 5 matters for one reason here: a 3.1.1 subscriber gets at most the broker's
configured window of unacknowledged QoS 1 messages (Mosquitto: 20), a version 5 one as many as
its Receive Maximum says (up to 65535), so a busy subscriber is not held to one round trip per
20 messages. Properties are sent only where a client needs them and skipped on reading.

Sans-IO: bytes in, packets out. The parser takes every whole packet of a read in one pass and
returns them grouped (PUBLISH topics and payloads, the packet ids to acknowledge, the ids the
server acknowledged, control packets), so a caller pays per read, not per message, wherever
it can. Only what a client needs is here: a client never receives CONNECT, SUBSCRIBE or PINGREQ,
and one that subscribes at QoS 1 at most never receives QoS 2 (refused as a protocol error).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MAX_REMAINING = 268_435_455  # the largest remaining length four varint bytes can say

CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP, SERVER_DISCONNECT = 2, 3, 4, 9, 11, 13, 14
V311, V5 = 4, 5  # protocol levels

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_PUBACK = struct.Struct(">BBH")
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


class MqttProtocolError(ValueError):
    """The server sent something a 3.1.1 client must not accept: close the connection."""


# ---------------------------------------------------------------------------- encoders


def varint(n: int) -> bytes:
    """The remaining-length encoding (1 to 4 bytes)."""
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError(f"remaining length {n} out of range")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(s: bytes) -> bytes:
    if len(s) > 0xFFFF:
        raise ValueError("an MQTT string holds at most 65535 bytes")
    return _U16.pack(len(s)) + s


def connect(
    client_id: str,
    *,
    clean_session: bool,
    keepalive_s: int,
    username: str | None = None,
    password: str | None = None,
    version: int = V311,
    receive_maximum: int = 65535,
    session_expiry_s: int = 0,
) -> bytes:
    """CONNECT. Version 5: clean start is `clean_session`; the session outlives the connection
    by `session_expiry_s`; the server may have `receive_maximum` QoS 1 messages unacknowledged."""
    if version not in (V311, V5):
        raise ValueError(f"MQTT protocol level {version} is not 4 (3.1.1) or 5")
    flags = 0x02 if clean_session else 0
    payload = _string(client_id.encode())
    if username is not None:
        flags |= 0x80
        payload += _string(username.encode())
        if password is not None:
            flags |= 0x40
            payload += _string(password.encode())
    props = b""
    if version == V5:
        props = b"\x21" + _U16.pack(receive_maximum)
        if session_expiry_s:
            props += b"\x11" + _U32.pack(session_expiry_s)
        props = varint(len(props)) + props
    body = _string(b"MQTT") + bytes((version, flags)) + _U16.pack(keepalive_s) + props + payload
    return b"\x10" + varint(len(body)) + body


def subscribe(packet_id: int, topics: list[tuple[str, int]], version: int = V311) -> bytes:
    body = (
        _U16.pack(packet_id)
        + (b"\x00" if version == V5 else b"")
        + b"".join(_string(t.encode()) + bytes((q,)) for t, q in topics)
    )
    return b"\x82" + varint(len(body)) + body


def unsubscribe(packet_id: int, topics: list[str], version: int = V311) -> bytes:
    body = (
        _U16.pack(packet_id)
        + (b"\x00" if version == V5 else b"")
        + b"".join(_string(t.encode()) for t in topics)
    )
    return b"\xa2" + varint(len(body)) + body


def publish(
    topic: bytes,
    payload: bytes,
    qos: int = 1,
    packet_id: int = 0,
    dup: bool = False,
    version: int = V311,
) -> bytes:
    """One PUBLISH (`topic` already encoded; `packet_id` only for QoS 1; no properties)."""
    props = b"\x00" if version == V5 else b""
    if qos:
        length = 4 + len(topic) + len(props) + len(payload)
        head = 0x3A if dup else 0x32
        if length < 128:  # the usual small message: one header pack
            return (
                _U16.pack((head << 8) | length)
                + _U16.pack(len(topic))
                + topic
                + _U16.pack(packet_id)
                + props
                + payload
            )
        return (
            bytes((head,))
            + varint(length)
            + _string(topic)
            + _U16.pack(packet_id)
            + props
            + payload
        )
    body = _string(topic) + props + payload
    return b"\x30" + varint(len(body)) + body


def pubacks(packet_ids: list[int]) -> bytes:
    """PUBACKs for every id, as one write."""
    pack = _PUBACK.pack
    return b"".join([pack(0x40, 2, i) for i in packet_ids])


# ---------------------------------------------------------------------------- parser


@dataclass(slots=True)
class ConnAck:
    session_present: bool
    code: int  # 0 accepted; 1-5 refused (version, identifier, unavailable, credentials, auth)


@dataclass(slots=True)
class SubAck:
    packet_id: int
    granted: list[int]  # per topic: the QoS granted, or 0x80 for a refusal


@dataclass(slots=True)
class UnsubAck:
    packet_id: int


@dataclass(slots=True)
class PingResp:
    pass


@dataclass(slots=True)
class ServerDisconnect:
    """Version 5: the server closes the connection, saying why."""

    reason: int


Control = ConnAck | SubAck | UnsubAck | PingResp | ServerDisconnect


@dataclass(slots=True)
class Incoming:
    """Everything one read held, in arrival order within each kind."""

    topics: list[bytes] = field(default_factory=list)  # of each PUBLISH
    payloads: list[bytes] = field(default_factory=list)
    to_ack: list[int] = field(default_factory=list)  # packet ids of the QoS 1 PUBLISHes
    acked: list[int] = field(default_factory=list)  # PUBACKs from the server: our ids
    control: list[Control] = field(default_factory=list)


class Parser:
    """Buffers partial packets across reads; `feed` returns what the bytes completed."""

    def __init__(self, max_packet: int = 1 << 20, version: int = V311) -> None:
        self.max_packet = max_packet
        self.version = version
        self._buf = b""

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> Incoming:
        buf = self._buf + data if self._buf else data
        out = Incoming()
        n = len(buf)
        i = 0
        topics, payloads, to_ack, acked = out.topics, out.payloads, out.to_ack, out.acked
        v5 = self.version == V5
        while n - i >= 2:
            head = buf[i]
            length = buf[i + 1]
            j = i + 2
            if length & 0x80:  # a longer remaining length: up to four bytes in all
                length &= 0x7F
                shift = 7
                whole = False
                while j < n:
                    byte = buf[j]
                    j += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        whole = True
                        break
                    shift += 7
                    if shift > 21:
                        raise MqttProtocolError("remaining length longer than four bytes")
                if not whole:
                    break  # the length itself is not whole yet
            if length > self.max_packet:
                raise MqttProtocolError(
                    f"packet of {length} bytes over the {self.max_packet} limit"
                )
            end = j + length
            if end > n:
                break
            kind = head >> 4
            if kind == PUBLISH:
                qos = (head >> 1) & 3
                if length < 2:
                    raise MqttProtocolError("PUBLISH without a topic")
                tlen = (buf[j] << 8) | buf[j + 1]
                k = j + 2 + tlen
                if qos == 1:
                    if k + 2 > end:
                        raise MqttProtocolError("PUBLISH shorter than its topic and id")
                    to_ack.append((buf[k] << 8) | buf[k + 1])
                    k += 2
                elif qos:
                    raise MqttProtocolError(f"PUBLISH at QoS {qos}: this client takes 0 or 1")
                if v5:  # properties: skipped (none is the usual case)
                    if k < end and buf[k] == 0:
                        k += 1
                    else:
                        plen, k = _varint_at(buf, k, end)
                        k += plen
                if k > end:
                    raise MqttProtocolError("PUBLISH shorter than its header says")
                topics.append(buf[j + 2 : j + 2 + tlen])
                payloads.append(buf[k:end])
            elif kind == PUBACK:
                if length != 2 and not (v5 and length > 2):
                    raise MqttProtocolError("PUBACK of a length other than 2")
                acked.append((buf[j] << 8) | buf[j + 1])  # a v5 refusal frees the id too
            else:
                out.control.append(_control(kind, head, buf[j:end], v5))
            i = end
        self._buf = buf[i:] if i < n else b""
        return out


def _varint_at(buf: bytes, k: int, end: int) -> tuple[int, int]:
    """A variable byte integer at `k` (not past `end`): its value and the index after it."""
    value = shift = 0
    while True:
        if k >= end or shift > 21:
            raise MqttProtocolError("malformed variable byte integer")
        byte = buf[k]
        k += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, k
        shift += 7


def _skip_props(body: bytes, k: int) -> int:
    plen, k = _varint_at(body, k, len(body))
    if k + plen > len(body):
        raise MqttProtocolError("properties longer than their packet")
    return k + plen


def _control(kind: int, head: int, body: bytes, v5: bool = False) -> Control:
    if kind == CONNACK:
        if len(body) < 2 or body[0] & 0xFE or (len(body) != 2 and not v5):
            raise MqttProtocolError("malformed CONNACK")
        return ConnAck(bool(body[0] & 1), body[1])
    if kind == SUBACK:
        if len(body) < 3:
            raise MqttProtocolError("malformed SUBACK")
        codes = body[_skip_props(body, 2) :] if v5 else body[2:]
        return SubAck(_U16.unpack_from(body)[0], list(codes))
    if kind == UNSUBACK:
        if len(body) < 2 or (len(body) != 2 and not v5):
            raise MqttProtocolError("malformed UNSUBACK")
        return UnsubAck(_U16.unpack_from(body)[0])
    if kind == PINGRESP:
        if body:
            raise MqttProtocolError("malformed PINGRESP")
        return PingResp()
    if kind == SERVER_DISCONNECT and v5:
        return ServerDisconnect(body[0] if body else 0)
    raise MqttProtocolError(f"packet type {kind} (header 0x{head:02x}) is not for a client")
