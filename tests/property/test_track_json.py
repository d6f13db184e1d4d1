"""The track answer's text writer gives exactly the bytes of the dicts it replaced, encoded by
`json.dumps`: same fields, types, order and spelling of every number and text."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from api.track_json import track_bytes, track_chunks
from api.views import json_bytes, positions_json
from positions import PositionBatch

MS_2000 = 946_656_000_000
MS_2100 = 4_102_416_000_000

TIMES = st.one_of(
    st.integers(MS_2000 - 10**9, MS_2100 + 10**9),
    st.integers(0, 2 * MS_2100),
    st.sampled_from([MS_2000, MS_2000 - 1, MS_2100, MS_2100 - 1, 0, 1_735_689_600_000]),
)
# Anywhere, in China (places with Chinese names), and the awkward ones: zero and its sign,
# values that round to zero or to 1e-06 (spelt with an exponent), the extremes.
AWKWARD = [0.0, -0.0, 1e-7, -4e-7, 5e-7, 1e-6, -1e-6, 9.9e-5, 1e-4, 90.0, -90.0, 180.0, -180.0]
LON = st.one_of(st.floats(-180, 180), st.floats(73, 135), st.sampled_from(AWKWARD))
LAT = st.one_of(st.floats(-90, 90), st.floats(18, 53), st.sampled_from(AWKWARD[:-2]))


def _batch(n: int, data: st.DataObject) -> PositionBatch:
    def column(dtype: str, elements: st.SearchStrategy[object]) -> np.ndarray:
        return data.draw(hnp.arrays(dtype, n, elements=elements))

    return PositionBatch.from_columns(
        {
            "device": np.zeros(n),
            "time_ms": column("int64", TIMES),
            "recv_ms": column("int64", TIMES),
            "device_time_ms": column("int64", TIMES),
            "lon": column("float64", LON),
            "lat": column("float64", LAT),
            "speed_kmh": column("float32", st.floats(0, 6553.5, width=32)),
            "course": column("int16", st.integers(-(2**15), 2**15 - 1)),
            "altitude_m": column("int32", st.integers(-(2**31), 2**31 - 1)),
            "alarm": column("uint32", st.integers(0, 2**32 - 1)),
            "status": column("uint32", st.integers(0, 2**32 - 1)),
            "flags": column("uint16", st.integers(0, 2**16 - 1)),
        }
    )


@settings(max_examples=300, deadline=None)  # the first example loads the boundaries
@given(n=st.integers(0, 40), rows=st.integers(1, 7), data=st.data())
def test_the_text_is_the_dicts_json_bytes_for_any_slicing(
    n: int, rows: int, data: st.DataObject
) -> None:
    batch = _batch(n, data)
    expected = json_bytes(positions_json(batch))
    assert track_bytes(batch) == expected
    assert b"".join(track_chunks(batch, rows)) == expected


@given(
    column=st.sampled_from(["lat", "lon", "speed_kmh"]),
    value=st.sampled_from([math.nan, math.inf, -math.inf]),
)
@settings(max_examples=20, deadline=None)
def test_a_value_json_cannot_hold_fails_before_any_piece(column: str, value: float) -> None:
    base = {"device": np.zeros(3), "time_ms": np.full(3, 1_735_689_600_000)}
    base |= {"lon": np.full(3, 121.0), "lat": np.full(3, 31.0), "speed_kmh": np.zeros(3)}
    base[column] = np.array([1.0, value, 2.0])
    batch = PositionBatch.from_columns(base)
    with pytest.raises(ValueError):
        json_bytes(positions_json(batch))
    with pytest.raises(ValueError):
        track_chunks(batch)


def test_a_long_track_is_written_in_pieces_of_the_rows_asked() -> None:
    n = 2_500
    batch = PositionBatch.from_columns(
        {
            "device": np.zeros(n),
            "time_ms": 1_735_689_600_000 + np.arange(n) * 1000,
            "recv_ms": 1_735_689_600_000 + np.arange(n) * 1000,
            "lon": 121.0 + np.arange(n) * 1e-5,
            "lat": np.full(n, 31.0),
        }
    )
    pieces = list(track_chunks(batch, 1000))
    assert len(pieces) == 3
    assert pieces[0].startswith(b"[{") and pieces[-1].endswith(b"}]")
    assert b"".join(pieces) == json_bytes(positions_json(batch))
