"""The MQTT codec on bytes written out by hand from the 3.1.1 and 5 specifications."""

from __future__ import annotations

import pytest

from ingest.mqtt import codec
from ingest.mqtt.codec import (
    V5,
    V311,
    ConnAck,
    MqttProtocolError,
    Parser,
    PingResp,
    ServerDisconnect,
    SubAck,
    UnsubAck,
)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_is_the_spec_varint(n: int, encoded: bytes) -> None:
    assert codec.varint(n) == encoded


def test_a_remaining_length_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        codec.varint(268_435_456)


def test_connect_3_1_1_with_credentials() -> None:
    packet = codec.connect(
        "gw", clean_session=False, keepalive_s=30, username="u", password="p", version=V311
    )
    body = b"\x00\x04MQTT\x04\xc0\x00\x1e" + b"\x00\x02gw" + b"\x00\x01u" + b"\x00\x01p"
    assert packet == b"\x10" + bytes((len(body),)) + body


def test_connect_5_says_its_receive_maximum_and_session_expiry() -> None:
    packet = codec.connect(
        "gw", clean_session=False, keepalive_s=30, version=V5, session_expiry_s=3600
    )
    props = b"\x21\xff\xff" + b"\x11\x00\x00\x0e\x10"
    body = b"\x00\x04MQTT\x05\x00\x00\x1e" + bytes((len(props),)) + props + b"\x00\x02gw"
    assert packet == b"\x10" + bytes((len(body),)) + body


def test_clean_connect_5_has_no_session_expiry() -> None:
    packet = codec.connect("c", clean_session=True, keepalive_s=10, version=V5)
    assert packet == b"\x10\x11\x00\x04MQTT\x05\x02\x00\x0a\x03\x21\xff\xff\x00\x01c"


def test_subscribe_and_unsubscribe() -> None:
    assert codec.subscribe(7, [("a/+", 1)]) == b"\x82\x08\x00\x07\x00\x03a/+\x01"
    assert codec.subscribe(7, [("a/+", 1)], V5) == b"\x82\x09\x00\x07\x00\x00\x03a/+\x01"
    assert codec.unsubscribe(8, ["a/+"]) == b"\xa2\x07\x00\x08\x00\x03a/+"
    assert codec.unsubscribe(8, ["a/+"], V5) == b"\xa2\x08\x00\x08\x00\x00\x03a/+"


def test_publish_qos1_qos0_dup_and_v5_properties() -> None:
    assert codec.publish(b"t", b"xy", 1, 0x0102) == b"\x32\x07\x00\x01t\x01\x02xy"
    assert codec.publish(b"t", b"xy", 1, 5, dup=True) == b"\x3a\x07\x00\x01t\x00\x05xy"
    assert codec.publish(b"t", b"xy", 0) == b"\x30\x05\x00\x01txy"
    assert codec.publish(b"t", b"xy", 1, 5, version=V5) == b"\x32\x08\x00\x01t\x00\x05\x00xy"
    big = codec.publish(b"t", b"z" * 200, 1, 1)
    assert big[:3] == b"\x32\xcd\x01"  # 205 = 0xcd 0x01


def test_pubacks_of_a_pass_are_one_buffer() -> None:
    assert codec.pubacks([1, 0x1234]) == b"\x40\x02\x00\x01\x40\x02\x12\x34"


def test_one_read_of_mixed_packets_is_parsed_in_one_pass() -> None:
    data = (
        b"\x20\x02\x01\x00"  # CONNACK, session present
        + b"\x90\x03\x00\x01\x01"  # SUBACK id 1, QoS 1
        + codec.publish(b"up/1", b"A", 1, 9)
        + b"\x40\x02\x00\x05"  # PUBACK 5
        + codec.publish(b"up/2", b"B", 0)
        + b"\xb0\x02\x00\x02"  # UNSUBACK 2
        + b"\xd0\x00"  # PINGRESP
    )
    got = Parser().feed(data)
    assert got.topics == [b"up/1", b"up/2"]
    assert got.payloads == [b"A", b"B"]
    assert got.to_ack == [9]
    assert got.acked == [5]
    assert got.control == [ConnAck(True, 0), SubAck(1, [1]), UnsubAck(2), PingResp()]


def test_v5_skips_properties_and_reads_reason_codes() -> None:
    parser = Parser(version=V5)
    data = (
        b"\x20\x06\x00\x00\x03\x21\x00\x14"  # CONNACK with Receive Maximum 20
        + b"\x90\x04\x00\x01\x00\x80"  # SUBACK refused
        + b"\x32\x0b\x00\x01t\x00\x07\x03\x23\x00\x01xy"  # PUBLISH with a topic alias prop
        + b"\x40\x03\x00\x05\x10"  # PUBACK with reason "no matching subscribers"
        + b"\xe0\x01\x8b"  # DISCONNECT: server shutting down
    )
    got = parser.feed(data)
    assert got.control == [ConnAck(False, 0), SubAck(1, [0x80]), ServerDisconnect(0x8B)]
    assert got.payloads == [b"xy"]
    assert got.to_ack == [7]
    assert got.acked == [5]


def test_partial_packets_wait_for_the_rest() -> None:
    whole = codec.publish(b"t", b"x" * 300, 1, 3)  # a two-byte remaining length
    parser = Parser()
    for cut in (1, 2, 3, 10, len(whole) - 1):
        assert not parser.feed(whole[:cut]).topics
        parser = Parser()
    got = Parser()
    assert not got.feed(whole[:2]).topics
    assert got.buffered == 2
    assert got.feed(whole[2:]).payloads == [b"x" * 300]
    assert got.buffered == 0


@pytest.mark.parametrize(
    "data",
    [
        b"\x34\x05\x00\x01t\x00\x01",  # QoS 2
        b"\x10\x00",  # CONNECT: not for a client
        b"\x40\x03\x00\x01\x00",  # a 3.1.1 PUBACK of length 3
        b"\x30\xff\xff\xff\xff\x01",  # a five-byte remaining length
        b"\x32\x03\x00\x05t",  # topic longer than the packet
        b"\x20\x01\x00",  # short CONNACK
        b"\x20\x02\x02\x00",  # reserved CONNACK flags
        b"\xd0\x01\x00",  # PINGRESP with a body
    ],
)
def test_malformed_packets_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(MqttProtocolError):
        Parser().feed(data)


def test_a_packet_over_the_bound_is_refused_before_it_is_buffered() -> None:
    with pytest.raises(MqttProtocolError):
        Parser(max_packet=1000).feed(b"\x30\x80\x80\x01")  # says 16384 bytes
