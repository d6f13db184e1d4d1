"""However a byte stream is cut into reads, the splitter and the connection see the same thing."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.jt808.connection import Jt808Connection
from ingest.jt808.errors import Jt808ProtocolError
from ingest.jt808.framing import FrameSplitter
from ingest.jt808.ids import Role
from tests.support.jt808_strategies import corpus_frames

CHUNKING = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_FRAME = 2400
CORPUS = [f for f in corpus_frames() if len(f) < MAX_FRAME]


def _bad(frame: bytes, how: int) -> bytes:
    """A valid frame made bad in one of the contract's ways."""
    inner = frame[1:-1]
    if how == 0:  # check code changed
        return b"\x7e" + inner[:-1] + bytes(((inner[-1] + 1) & 0xFF,)) + b"\x7e"
    if how == 1:  # an escape byte followed by 0x03
        return b"\x7e" + inner[:5] + b"\x7d\x03" + inner[5:] + b"\x7e"
    if how == 2:  # cut short
        return b"\x7e" + inner[: len(inner) // 2] + b"\x7e"
    return b"\x7e" + inner[:12] + b"\x00" + inner[12:] + b"\x7e"  # one byte too many


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Several frames, some of them bad, with garbage (possibly flags) between them, and now and
    then a run of bytes longer than the frame limit."""
    parts: list[bytes] = [draw(st.binary(max_size=8))]
    for _ in range(draw(st.integers(1, 6))):
        frame = draw(st.sampled_from(CORPUS))
        how = draw(st.integers(0, 7))
        parts.append(frame if how > 3 else _bad(frame, how))
        parts.append(draw(st.one_of(st.just(b""), st.binary(max_size=6))))
    if draw(st.integers(0, 9)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), b"\x7e" + b"\x11" * (MAX_FRAME + 5))
    return b"".join(parts)


@st.composite
def cuts(draw: st.DrawFn, data: bytes) -> list[bytes]:
    points = sorted(draw(st.sets(st.integers(0, len(data)), max_size=12)))
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def _split(chunks: list[bytes]) -> tuple[list[bytes], bool, int]:
    splitter = FrameSplitter(MAX_FRAME)
    payloads: list[bytes] = []
    for chunk in chunks:
        payloads.extend(splitter.feed(chunk))
    return payloads, splitter.error is not None, splitter.discarded_bytes


def _connection_events(role: Role, chunks: list[bytes]) -> tuple[list[Any], bool]:
    kwargs: dict[str, Any] = {"terminal": "013912345678"} if role is Role.TERMINAL else {}
    conn = Jt808Connection(role, max_frame_bytes=MAX_FRAME, **kwargs)
    events: list[Any] = []
    broken = False
    for chunk in chunks:
        conn.receive_data(chunk, now_s=0.0)
        try:
            while (event := conn.next_event()) is not None:
                events.append(event)
        except Jt808ProtocolError:
            broken = True
            break
    return events, broken


@CHUNKING
@given(data=st.data())
def test_any_split_of_a_stream_gives_the_splitter_the_same_payloads_and_fault(
    data: st.DataObject,
) -> None:
    stream = data.draw(streams())
    chunks = data.draw(cuts(stream))
    assert b"".join(chunks) == stream
    assert _split(chunks) == _split([stream])
    bytewise = [stream[i : i + 1] for i in range(len(stream))]
    assert _split(bytewise) == _split([stream])


@CHUNKING
@given(data=st.data(), role=st.sampled_from(Role))
def test_any_split_of_a_stream_gives_a_connection_the_same_events(
    data: st.DataObject, role: Role
) -> None:
    stream = data.draw(streams())
    chunks = data.draw(cuts(stream))
    whole = _connection_events(role, [stream])
    assert _connection_events(role, chunks) == whole
    bytewise = [stream[i : i + 1] for i in range(len(stream))]
    assert _connection_events(role, bytewise) == whole


def test_the_generated_streams_do_reach_the_oversized_frame_fault() -> None:
    """Guards the strategy: a stream with an over-long run must break the connection."""
    stream = b"\x7e" + b"\x11" * (MAX_FRAME + 5)
    events, broken = _connection_events(Role.PLATFORM, [stream])
    assert broken
    assert events == []
