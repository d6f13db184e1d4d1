"""The client session without a socket: CONNECT first, the inflight window, PUBACKs in the
same write, and what a lost connection sends again."""

from __future__ import annotations

import pytest

from ingest.mqtt import codec
from ingest.mqtt.codec import V5, V311, MqttProtocolError, Parser
from ingest.mqtt.session import ClientSession


def server_view(data: bytes, version: int = V311) -> list[tuple[int, bytes]]:
    """The packets a client wrote, as (header byte, whole packet), split by their lengths."""
    out = []
    i = 0
    while i < len(data):
        j = i + 1
        length = shift = 0
        while True:
            byte = data[j]
            j += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        out.append((data[i], data[i : j + length]))
        i = j + length
    return out


def connected(max_inflight: int = 3, version: int = V311) -> ClientSession:
    s = ClientSession(
        "c",
        clean_session=False,
        keepalive_s=30,
        subscriptions=[("up/+", 1)],
        max_inflight=max_inflight,
        version=version,
    )
    s.connection_made()
    assert server_view(s.data_to_send())[0][0] == 0x10  # CONNECT
    s.receive(b"\x20\x02\x00\x00")
    sub = server_view(s.data_to_send())
    assert [h for h, _ in sub] == [0x82]
    pid = (sub[0][1][2] << 8) | sub[0][1][3]
    props = b"\x00" if version == V5 else b""
    s.receive(bytes((0x90, 3 + len(props))) + pid.to_bytes(2, "big") + props + b"\x01")
    assert s.subscribed
    return s


def publish_ids(data: bytes) -> list[int]:
    got = Parser().feed(data)
    return got.to_ack


def test_nothing_is_published_before_the_connack() -> None:
    s = ClientSession("c", clean_session=True, keepalive_s=30, subscriptions=[("a", 1)])
    s.connection_made()
    s.publish(b"t", b"x")
    assert [h for h, _ in server_view(s.data_to_send())] == [0x10]
    s.receive(b"\x20\x02\x00\x00")
    heads = [h for h, _ in server_view(s.data_to_send())]
    assert heads == [0x82, 0x32]  # SUBSCRIBE, then the waiting PUBLISH


def test_the_window_holds_at_most_max_inflight_and_refills_on_puback() -> None:
    s = connected(max_inflight=3)
    for i in range(5):
        s.publish(b"t", bytes((i,)))
    first = publish_ids(s.data_to_send())
    assert len(first) == 3 and len(s.waiting) == 2
    s.receive(codec.pubacks(first[:2]))
    second = Parser().feed(s.data_to_send())
    assert second.payloads == [b"\x03", b"\x04"]
    assert len(s.inflight) == 3 and not s.waiting


def test_publishes_read_are_acknowledged_in_the_same_write_as_new_publishes() -> None:
    s = connected()
    s.receive(codec.publish(b"up/1", b"a", 1, 40) + codec.publish(b"up/2", b"b", 1, 41))
    s.publish(b"down/1", b"ack")
    packets = server_view(s.data_to_send())  # one buffer: one write
    assert b"".join(p for _, p in packets[:2]) == codec.pubacks([40, 41])
    assert [h for h, _ in packets[2:]] == [0x32]


def test_after_a_lost_connection_the_unacknowledged_go_again_marked_dup() -> None:
    s = connected(max_inflight=2)
    for i in range(3):
        s.publish(b"t", bytes((i,)))
    sent = publish_ids(s.data_to_send())
    s.receive(codec.pubacks(sent[:1]))
    s.data_to_send()
    s.connection_lost()
    s.publish(b"t", b"\x09")
    s.connection_made()
    s.data_to_send()
    s.receive(b"\x20\x02\x01\x00")
    packets = server_view(s.data_to_send())
    assert packets[0][0] == 0x82  # SUBSCRIBE again
    again = [p for h, p in packets if h & 0xF0 == 0x30]
    assert [p[0] & 0x08 for p in again] == [0x08, 0x08]  # payloads 1 and 2, DUP set
    assert Parser().feed(b"".join(again)).payloads == [b"\x01", b"\x02"]
    assert list(s.waiting) == [(b"t", b"\x09", 1)]


def test_packet_ids_skip_those_still_in_flight() -> None:
    s = connected(max_inflight=2)
    s._next_id = 65534
    s.publish(b"t", b"a")
    s.publish(b"t", b"b")
    assert publish_ids(s.data_to_send()) == [65535, 1]


def test_a_refused_connack_or_subscription_is_reported() -> None:
    s = ClientSession("c", clean_session=True, keepalive_s=30, subscriptions=[("a", 1)])
    s.connection_made()
    s.receive(b"\x20\x02\x00\x05")
    assert s.refused == 5 and not s.connected
    s = connected()
    s.unsubscribe()
    s.data_to_send()
    s2 = ClientSession("c", clean_session=True, keepalive_s=30, subscriptions=[("a", 1)])
    s2.connection_made()
    s2.receive(b"\x20\x02\x00\x00")
    sub = server_view(s2.data_to_send())[0][1]
    with pytest.raises(MqttProtocolError):
        s2.receive(b"\x90\x03" + sub[2:4] + b"\x80")


def test_v5_server_disconnect_is_an_error_and_keeps_the_inflight() -> None:
    s = connected(version=V5)
    s.publish(b"t", b"x")
    s.data_to_send()
    with pytest.raises(MqttProtocolError):
        s.receive(b"\xe0\x01\x8b")
    s.connection_lost()
    assert len(s.inflight) == 1


def test_waiting_past_its_bound_drops_the_oldest() -> None:
    s = ClientSession("c", clean_session=True, keepalive_s=30, subscriptions=[], max_waiting=2)
    for i in range(4):
        s.publish(b"t", bytes((i,)))
    assert [p for _, p, _ in s.waiting] == [b"\x02", b"\x03"]
    assert s.dropped == 2
