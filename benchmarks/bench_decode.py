"""`lienwatch bench decode`: 0x0200 frames per second, scalar decode_frame vs the vectorized path.

The scalar loop is the baseline; both decode the same realistic mix (benchmarks/jt808_frames.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.jt808_frames import location_frames
from ingest.jt808 import decode_frame
from ingest.jt808.batch import LOCATION, decode_location_frames

SCALAR_FRAMES = 100_000
VECTOR_FRAMES = 1_000_000


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    unique = location_frames(100_000)
    return unique * (VECTOR_FRAMES // len(unique))


def test_scalar_0200(benchmark: Any, frames: list[bytes]) -> None:
    sample = frames[:SCALAR_FRAMES]
    benchmark.extra_info["items"] = len(sample)

    def run() -> int:
        return sum(1 for frame in sample if decode_frame(frame).body.MSG_ID == 0x0200)

    assert benchmark.pedantic(run, rounds=3, iterations=1) == len(sample)


def test_vectorized_0200(benchmark: Any, frames: list[bytes]) -> None:
    benchmark.extra_info["items"] = len(frames)
    benchmark.extra_info["baseline"] = "test_scalar_0200"

    def run() -> int:
        return int((decode_location_frames(frames).kind == LOCATION).sum())

    assert benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1) == len(frames)
