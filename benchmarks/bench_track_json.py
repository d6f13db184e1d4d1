"""`lienwatch bench track_json`: a 100,000-point track's API answer (GET .../track), rows/s.

`text_writer` is the route's writer (api.track_json: each field's text a column at a time,
numbers by orjson over numpy arrays, rows joined, in pieces of 1,024 rows); the baseline
`dicts_json_dumps` is what the route did before, and what a competent engineer writes first:
`positions_json` (one dict per row, its columns computed by numpy) then one `json.dumps` with
the API's settings. Both write the same rows, the same rounds, and the bytes are asserted
equal. Besides the rate: the longest single piece of the writer and the longest single call of
the baseline (its `json.dumps`), each a time the writing thread holds the interpreter while
the gateway's thread (in the default one-process `serve`) waits.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from api.track_json import track_bytes, track_chunks
from api.views import json_bytes, positions_json
from positions import Flag, PositionBatch

ROWS = 100_000
ROUNDS = 5


@pytest.fixture(scope="module")
def batch() -> PositionBatch:
    """A car's day and more at one fix a second around Shanghai: moving, some flagged rows,
    receive times with milliseconds."""
    rng = np.random.default_rng(3)
    t = 1_735_689_600_000 + np.arange(ROWS) * 1000
    flags = np.where(rng.random(ROWS) < 0.02, int(Flag.DUPLICATE), 0)
    track = PositionBatch.from_columns(
        {
            "device": np.zeros(ROWS),
            "time_ms": t,
            "recv_ms": t + rng.integers(200, 3000, ROWS),
            "device_time_ms": t,
            "lon": 121.2 + np.cumsum(rng.normal(0, 1e-4, ROWS)),
            "lat": 31.1 + np.cumsum(rng.normal(0, 1e-4, ROWS)),
            "speed_kmh": rng.uniform(0, 120, ROWS).round(1),
            "course": rng.integers(0, 360, ROWS),
            "altitude_m": rng.integers(0, 50, ROWS),
            "status": np.full(ROWS, 3),
            "flags": flags,
        }
    )
    assert track_bytes(track) == json_bytes(positions_json(track))  # and loads the places
    return track


def test_dicts_json_dumps(benchmark: Any, batch: PositionBatch) -> None:
    longest: list[float] = []

    def run() -> int:
        rows = positions_json(batch)
        began = time.perf_counter()
        body = json_bytes(rows)
        longest.append(time.perf_counter() - began)
        return len(body)

    benchmark.extra_info["items"] = ROWS
    assert benchmark.pedantic(run, rounds=ROUNDS, iterations=1) > 0
    benchmark.extra_info["longest_call_ms"] = round(min(longest) * 1000, 1)


def test_text_writer(benchmark: Any, batch: PositionBatch) -> None:
    longest: list[float] = []

    def run() -> int:
        size, most = 0, 0.0
        pieces = track_chunks(batch)
        while True:
            began = time.perf_counter()
            piece = next(pieces, None)
            most = max(most, time.perf_counter() - began)
            if piece is None:
                break
            size += len(piece)
        longest.append(most)
        return size

    benchmark.extra_info["items"] = ROWS
    benchmark.extra_info["baseline"] = "test_dicts_json_dumps"
    assert benchmark.pedantic(run, rounds=ROUNDS, iterations=1) > 0
    benchmark.extra_info["longest_call_ms"] = round(min(longest) * 1000, 1)
