"""The batch-fed histogram exposes exactly what prometheus_client's own would."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from ingest.metrics import BatchHistogram

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if line.startswith("lat_")]


@given(
    st.lists(
        st.lists(st.sampled_from([0.0, 0.001, 0.0011, 0.01, 0.5, 1.0, 7.0, -1.0]), max_size=8),
        max_size=5,
    )
)
def test_batches_expose_the_same_buckets_count_and_sum_as_single_observations(
    batches: list[list[float]],
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch_histogram = BatchHistogram("lat", "latency", BUCKETS, ours)
    reference = Histogram("lat", "latency", buckets=BUCKETS, registry=theirs)
    for values in batches:
        batch_histogram.observe_many(np.array(values, dtype=np.float64))
        for value in values:
            reference.observe(value)
    ours_lines = [line for line in exposition(ours) if "_created" not in line]
    theirs_lines = [line for line in exposition(theirs) if "_created" not in line]
    exact = [line for line in theirs_lines if not line.startswith("lat_sum")]
    assert [line for line in ours_lines if not line.startswith("lat_sum")] == exact
    (our_sum,) = (float(line.split()[1]) for line in ours_lines if line.startswith("lat_sum"))
    (their_sum,) = (float(line.split()[1]) for line in theirs_lines if line.startswith("lat_sum"))
    assert our_sum == pytest.approx(their_sum)
