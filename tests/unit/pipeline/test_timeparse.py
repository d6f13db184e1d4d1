"""Fix times: the vectorized ISO 8601 path agrees with the standard library."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from pipeline.timeparse import parse_times_ms


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T14:30:00+08:00",
        "2024-03-01T06:30:00Z",
        "2024-02-29T23:59:59.250-05:00",
        "2023-12-31 23:59:59+00:00",
        "1970-01-01T00:00:00+14:00",
        "2024-03-01T06:30:00.5Z",
        "2024-03-01T06:30:00+0800",
    ],
)
def test_iso_times_with_offsets_match_the_standard_library(text: str) -> None:
    expected = round(datetime.fromisoformat(text).timestamp() * 1000)
    values, ok = parse_times_ms(np.array([text.encode()], dtype="S40"))
    assert ok.tolist() == [True]
    assert values.tolist() == [expected]


def test_epoch_seconds_are_accepted_and_junk_or_naive_times_are_not() -> None:
    raw = [b"1709274600", b"1709274600.5", b"junk", b"2024-03-01T14:30:00"]
    raw += [b"2024-02-30T00:00:00Z", b"2024-03-01T14:30:00+08:00x"]
    text = np.array(raw, dtype="S40")
    values, ok = parse_times_ms(text)
    assert ok.tolist() == [True, True, False, False, False, False]
    assert values[:2].tolist() == [1_709_274_600_000, 1_709_274_600_500]
