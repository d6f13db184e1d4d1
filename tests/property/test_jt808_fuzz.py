"""Whatever bytes arrive, the codec answers with a Frame, a FrameError, events, or (for a broken
stream) Jt808ProtocolError: never any other exception."""

from __future__ import annotations

import itertools
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.jt808.codec import Frame, decode_frame
from ingest.jt808.connection import Jt808Connection
from ingest.jt808.errors import FrameError, Jt808ProtocolError
from ingest.jt808.events import FrameRejected
from ingest.jt808.ids import ErrorCode, Role
from ingest.jt808.jsonview import decode_hex_line
from tests.support.jt808_strategies import corpus_frames, header_2013, seal_by_hand

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STREAM_FUZZ = settings(
    max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CONTRACT_CODES = {code.value for code in ErrorCode}


CORPUS = corpus_frames()
PACKETS = [f for f in CORPUS if len(f) > 900]


def valid_frames() -> st.SearchStrategy[bytes]:
    return st.sampled_from(CORPUS)


def some_packets() -> st.SearchStrategy[bytes]:
    """Some packets of a sub-packaged message, in any order, possibly repeated."""
    return st.lists(st.sampled_from(PACKETS), max_size=3).map(b"".join)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid frame with bits flipped, a cut, a flag doubled or a byte inserted."""
    frame = bytearray(draw(valid_frames()))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.integers(0, 4))
        at = draw(st.integers(0, len(frame) - 1))
        if how == 0:
            frame[at] ^= 1 << draw(st.integers(0, 7))
        elif how == 1:
            frame = frame[:at] if draw(st.booleans()) else frame[at:]
        elif how == 2:
            frame[at:at] = b"\x7e"
        elif how == 3:
            frame[at:at] = draw(st.sampled_from((b"\x7d", b"\x7e\x7e", b"\x00", b"\xff")))
        else:
            del frame[at]
        if not frame:
            frame = bytearray(b"\x7e")
    return bytes(frame)


def frame_inputs() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=80),
        st.binary(max_size=40).map(lambda b: b"\x7e" + b + b"\x7e"),
        mutated_frames(),
    )


def _decode_or_error(data: bytes) -> Frame | FrameError:
    try:
        return decode_frame(data)
    except FrameError as exc:
        return exc


@FUZZ
@given(data=frame_inputs())
def test_decode_frame_gives_a_frame_or_a_frame_error_for_any_bytes(data: bytes) -> None:
    result = _decode_or_error(data)
    if isinstance(result, FrameError):
        assert result.code in ErrorCode
        assert result.detail
    else:
        assert isinstance(result, Frame)
        assert 0 <= result.header.msg_id <= 0xFFFF


@FUZZ
@given(data=frame_inputs())
def test_the_json_view_of_any_hex_line_is_one_serializable_object(data: bytes) -> None:
    out = decode_hex_line(data.hex())
    json.dumps(out, ensure_ascii=False)
    if "error" in out:
        assert out["error"] in CONTRACT_CODES
        assert isinstance(out["detail"], str)
        assert out["hex"] == data.hex()
    else:
        assert set(out) >= {"msg_id", "terminal", "serial", "edition", "body"}


def _mutate(frame: bytes, rng: random.Random) -> bytes:
    out = bytearray(frame)
    for _ in range(rng.randint(0, 3)):
        at = rng.randrange(len(out) + 1)
        how = rng.randrange(5)
        if how == 0 and at < len(out):
            out[at] ^= 1 << rng.randrange(8)
        elif how == 1:
            out = out[:at] if rng.random() < 0.5 else out[at:]
        elif how == 2:
            out[at:at] = rng.choice((b"\x7e", b"\x7d", b"\x7e\x7e", b"\x00"))
        elif at < len(out):
            del out[at]
    return bytes(out)


def _packet_of(rng: random.Random) -> bytes:
    """One sound packet whose count and index are whatever a peer may declare."""
    count = rng.choice((rng.randrange(1, 8), rng.randrange(1, 0x10000)))
    index = rng.randrange(0, count + 2)
    head = header_2013(0x0900, 2, "013912345678", rng.randrange(0x10000), props=1 << 13)
    return seal_by_hand(
        head + count.to_bytes(2, "big") + (index & 0xFFFF).to_bytes(2, "big") + b"ab"
    )


@st.composite
def stream_reads(draw: st.DrawFn) -> list[bytes]:
    """Valid frames (mutated or not) and random bytes in a stream, cut into reads.

    Frames, mutations and cut points come from one drawn seed: ten thousand examples must stay cheap
    to generate, and a failing seed still replays exactly.
    """
    noise = draw(st.binary(max_size=24))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    frames = [rng.choice(CORPUS) for _ in range(rng.randrange(4))]
    if rng.random() < 0.2:
        frames.append(_packet_of(rng))
    pieces = [_mutate(f, rng) if rng.random() < 0.6 else f for f in frames]
    pieces.insert(rng.randrange(len(pieces) + 1), noise)
    stream = b"".join(pieces)
    points = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.randrange(4)))
    edges = [0, *points, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


@STREAM_FUZZ
@given(reads=stream_reads(), role=st.sampled_from(Role), location_payloads=st.booleans())
def test_a_connection_fed_any_bytes_gives_events_or_a_protocol_error(
    reads: list[bytes], role: Role, location_payloads: bool
) -> None:
    terminal = "013912345678" if role is Role.TERMINAL else None
    conn = Jt808Connection(
        role, terminal=terminal, max_frame_bytes=2400, location_payloads=location_payloads
    )
    try:
        for now_s, data in enumerate(reads):
            conn.receive_data(data, now_s=float(now_s))
            conn.check_timeouts(float(now_s) * 40.0)
            for event in conn.events():
                if isinstance(event, FrameRejected):
                    assert event.code in ErrorCode
    except Jt808ProtocolError:
        assert conn.broken is not None
    conn.data_to_send()
