"""Segment helpers: the packed-key sort is the lexicographic sort it replaces."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from trajectory.segments import sort_order

columns = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 5), min_size=n, max_size=n),
        st.lists(st.integers(-(2**40), 2**62), min_size=n, max_size=n),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
    )
)


@given(columns, st.booleans())
def test_sort_order_is_a_stable_lexicographic_sort_major_key_first(
    keys: tuple[list[int], list[int], list[int]], narrow_times: bool
) -> None:
    vehicle, time_ms, device = (np.array(k, np.int64) for k in keys)
    if narrow_times:  # packed into one key; otherwise too wide, so lexsort does it
        time_ms = time_ms % 1000
    expected = np.lexsort((device, time_ms, vehicle))
    assert sort_order(vehicle, time_ms, device).tolist() == expected.tolist()


def test_an_empty_column_set_sorts_to_nothing() -> None:
    assert sort_order(np.zeros(0, np.int32), np.zeros(0, np.int64)).tolist() == []
