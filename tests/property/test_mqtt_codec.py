"""The MQTT codec on any input: what is encoded parses back whole however the stream is cut;
arbitrary bytes give packets or MqttProtocolError, nothing else; the session's window holds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.mqtt import codec
from ingest.mqtt.codec import V5, V311, MqttProtocolError, Parser
from ingest.mqtt.session import ClientSession

messages = st.lists(
    st.tuples(
        st.binary(min_size=1, max_size=40),  # topic
        st.binary(max_size=400),  # payload (two-byte lengths past 127)
        st.sampled_from([0, 1]),
        st.integers(1, 65535),
        st.booleans(),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(messages, st.sampled_from([V311, V5]), st.lists(st.integers(0, 10_000), max_size=8))
def test_publishes_parse_back_whatever_the_cuts(
    msgs: list[tuple[bytes, bytes, int, int, bool]], version: int, cuts: list[int]
) -> None:
    stream = b"".join(
        codec.publish(t, p, q, i if q else 0, dup and q == 1, version) for t, p, q, i, dup in msgs
    ) + codec.pubacks([i for *_, i, _ in msgs])
    parser = Parser(version=version)
    topics, payloads, to_ack, acked = [], [], [], []
    at = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        got = parser.feed(stream[at:cut])
        at = cut
        topics += got.topics
        payloads += got.payloads
        to_ack += got.to_ack
        acked += got.acked
    assert topics == [t for t, *_ in msgs]
    assert payloads == [p for _, p, *_ in msgs]
    assert to_ack == [i for _, _, q, i, _ in msgs if q == 1]
    assert acked == [i for *_, i, _ in msgs]
    assert parser.buffered == 0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([V311, V5]))
def test_any_bytes_give_packets_or_a_protocol_error(data: bytes, version: int) -> None:
    parser = Parser(max_packet=200, version=version)
    try:
        got = parser.feed(data)
    except MqttProtocolError:
        return
    assert len(got.topics) == len(got.payloads)
    assert parser.buffered <= len(data)
    assert parser.buffered < 200 + 5  # never more than one bounded partial packet


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 8),
    st.lists(
        st.one_of(
            st.tuples(st.just("publish"), st.integers(0, 1)),
            st.tuples(st.just("ack"), st.integers(0, 20)),
            st.tuples(st.just("reconnect"), st.booleans()),
        ),
        max_size=60,
    ),
)
def test_the_session_keeps_its_window_and_loses_no_publish(
    window: int, steps: list[tuple[str, int]]
) -> None:
    """Whatever the interleaving of publishes, PUBACKs and reconnects: at most `window`
    inflight, every QoS 1 publish is acknowledged or still held, none is held twice."""
    s = ClientSession(
        "c", clean_session=False, keepalive_s=30, subscriptions=[("a", 1)], max_inflight=window
    )
    s.connection_made()
    s.receive(b"\x20\x02\x00\x00")
    made = 0
    acked: set[bytes] = set()
    for kind, arg in steps:
        if kind == "publish":
            s.publish(b"t", made.to_bytes(4, "big"), qos=1)
            made += 1
        elif kind == "ack" and s.inflight:
            pids = list(s.inflight)[: arg + 1]
            for pid in pids:
                acked.add(Parser(version=V5).feed(s.inflight[pid]).payloads[0])
            s.receive(codec.pubacks(pids))
        elif kind == "reconnect":
            s.connection_lost()
            s.connection_made()
            if arg:
                s.receive(b"\x20\x02\x01\x00")
        s.data_to_send()
        assert len(s.inflight) <= window
    held = [Parser(version=V5).feed(p).payloads[0] for p in s.inflight.values()]
    held += [p for _, p, _ in s.waiting]
    assert len(held) == len(set(held))
    assert acked | set(held) == {i.to_bytes(4, "big") for i in range(made)}
    assert not acked & set(held)
