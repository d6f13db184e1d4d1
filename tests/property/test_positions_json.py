"""The column-at-a-time JSON of a track equals the decoder's view of each row."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from api.views import position_json, positions_json
from positions import PositionBatch

MS_2000 = 946_656_000_000
MS_2100 = 4_102_416_000_000


@settings(max_examples=200, deadline=None)  # the first example loads the boundaries
@given(
    n=st.integers(0, 30),
    data=st.data(),
)
def test_columns_equal_the_per_row_view(n: int, data: st.DataObject) -> None:
    def column(dtype: str, elements: st.SearchStrategy[object]) -> np.ndarray:
        return data.draw(hnp.arrays(dtype, n, elements=elements))

    times = st.one_of(
        st.integers(MS_2000 - 10**9, MS_2100 + 10**9),
        st.integers(0, 2 * MS_2100),
        st.sampled_from([MS_2000, MS_2000 - 1, MS_2100, MS_2100 - 1, 0]),
    )
    batch = PositionBatch.from_columns(
        {
            "device": np.zeros(n),
            "time_ms": column("int64", times),
            "recv_ms": column("int64", times),
            "device_time_ms": column("int64", times),
            "lon": column("float64", st.floats(-180, 180)),
            "lat": column("float64", st.floats(-90, 90)),
            "speed_kmh": column("float32", st.floats(0, 400, width=32)),
            "course": column("int16", st.integers(0, 359)),
            "altitude_m": column("int32", st.integers(-500, 9000)),
            "alarm": column("uint32", st.integers(0, 2**32 - 1)),
            "status": column("uint32", st.integers(0, 2**32 - 1)),
            "flags": column("uint16", st.integers(0, 2**16 - 1)),
        }
    )
    assert positions_json(batch) == [position_json(batch, i) for i in range(n)]
