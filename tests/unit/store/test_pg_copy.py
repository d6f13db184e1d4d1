"""The numpy binary COPY codec: the layout PostgreSQL expects, and back."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from positions import PositionBatch
from store import pg_copy

PG_EPOCH_MS = 946_684_800_000


def test_one_row_has_the_documented_wire_layout() -> None:
    batch = PositionBatch.from_columns(
        {
            "device": [0],
            "time_ms": [PG_EPOCH_MS + 1],
            "recv_ms": [PG_EPOCH_MS + 2],
            "device_time_ms": [PG_EPOCH_MS + 3],
            "lon": [121.5],
            "lat": [-31.25],
            "speed_kmh": [60.5],
            "course": [359],
            "altitude_m": [-12],
            "alarm": [0xFFFFFFFF],
            "status": [3],
            "flags": [0x8001],
        }
    )
    stream = pg_copy.encode(batch, np.array([77], dtype=np.int32))
    assert stream.startswith(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
    assert stream.endswith(b"\xff\xff")
    row = stream[19:-2]
    expected = struct.pack(
        ">hiiiqiqiqididifihiiiqiqii",
        12,
        4, 77,
        8, 1000,
        8, 2000,
        8, 3000,
        8, 121.5,
        8, -31.25,
        4, 60.5,
        2, 359,
        4, -12,
        8, 0xFFFFFFFF,
        8, 3,
        4, 0x8001,
    )  # fmt: skip
    assert row == expected


@given(
    st.lists(
        st.tuples(
            st.integers(-(2**40), 2**42),
            st.floats(-180, 180),
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**16 - 1),
        ),
        max_size=30,
    )
)
def test_decode_inverts_encode(rows: list[tuple[int, float, int, int]]) -> None:
    batch = PositionBatch.from_columns(
        {
            "device": np.zeros(len(rows)),
            "time_ms": [r[0] for r in rows],
            "recv_ms": [r[0] + 5 for r in rows],
            "lon": [r[1] for r in rows],
            "alarm": [r[2] for r in rows],
            "flags": [r[3] for r in rows],
        }
    )
    back = pg_copy.decode(pg_copy.encode(batch, np.array([9], dtype=np.int32)))
    for name, column in batch.columns().items():
        expected = np.full(len(rows), 9) if name == "device" else column
        np.testing.assert_array_equal(getattr(back, name), expected, err_msg=name)


def test_streams_of_another_shape_are_refused() -> None:
    with pytest.raises(pg_copy.CopyFormatError, match="not a binary COPY"):
        pg_copy.decode(b"1\t2\n")
    good = pg_copy.encode(PositionBatch.from_columns({"device": [0]}), np.zeros(1, np.int32))
    with pytest.raises(pg_copy.CopyFormatError, match="fixed width"):
        pg_copy.decode(good[:-3] + good[-2:])


@given(st.integers(0, 40), st.integers(1, 9), st.integers(0, 2**40))
def test_chunked_stream_with_sequence_numbers_equals_the_whole_one(
    n: int, per_chunk: int, first_seq: int
) -> None:
    batch = PositionBatch.from_columns(
        {
            "device": np.arange(n) % 3,
            "time_ms": PG_EPOCH_MS + np.arange(n) * 1000,
            "recv_ms": PG_EPOCH_MS + np.arange(n) * 1000,
            "lat": np.linspace(-30, 30, n),
        }
    )
    keys = np.array([5, 6, 7], dtype=np.int32)
    whole = pg_copy.encode(batch, keys, first_seq)
    assert b"".join(pg_copy.encode_chunks(batch, keys, first_seq, per_chunk)) == whole
    back, seq = pg_copy.decode_with_seq(whole)
    assert seq.tolist() == list(range(first_seq, first_seq + n))
    np.testing.assert_array_equal(back.device, keys[batch.device])
    np.testing.assert_array_equal(back.lat, batch.lat)
