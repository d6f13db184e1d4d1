"""The truth oracle on hand-made streams: times exactly as contracts section 3 defines them."""

from __future__ import annotations

import numpy as np

from simulators.fences import circle
from simulators.truth import FleetMap, Incident, Stream, evaluate

T0 = 1_709_481_600_000  # 2024-03-04T00:00:00+08:00
MIN = 60_000
LON, LAT = 121.47, 31.23
HOT = circle("hot-1", "pawn", LON, LAT, 100.0)
FLEET = FleetMap({"V1": ("D1",)}, {"V1": None})


def stream(rows: list[tuple[int, float, float, float, int, int]]) -> Stream:
    """rows: (minute, lon, lat, speed, alarm, status) of device D1."""
    arr = np.array(rows, dtype=np.float64)
    return Stream(
        ("D1",),
        np.zeros(len(rows), dtype=np.int32),
        (T0 + arr[:, 0] * MIN).astype(np.int64),
        arr[:, 1],
        arr[:, 2],
        arr[:, 3],
        arr[:, 4].astype(np.uint32),
        arr[:, 5].astype(np.uint32),
    )


def far(
    minute: float, alarm: int = 0, status: int = 2
) -> tuple[float, float, float, float, int, int]:
    return (minute, LON + 0.02, LAT, 0.0, alarm, status)


def at_hotspot(minute: float) -> tuple[float, float, float, float, int, int]:
    return (minute, LON, LAT, 0.0, 0, 2)


def test_dwell_alerts_at_entry_plus_30_min_once() -> None:
    rows = [far(0), *[at_hotspot(m) for m in range(5, 50, 5)], far(50), far(150)]
    incidents = evaluate(stream(rows), FLEET, [HOT]).incidents
    assert incidents == [Incident("hotspot_dwell", "D1", "V1", "hot-1", T0 + 35 * MIN)]


def test_a_stop_shorter_than_the_dwell_time_does_not_alert() -> None:
    rows = [far(0), *[at_hotspot(m) for m in range(5, 30, 5)], far(30), far(100)]
    assert evaluate(stream(rows), FLEET, [HOT]).incidents == []


def test_offline_is_last_report_plus_2_h_and_the_end_of_input_bounds_it() -> None:
    rows = [far(0), far(10), far(200), far(260)]
    incidents = evaluate(stream(rows), FLEET, []).incidents
    assert incidents == [Incident("offline", "D1", "V1", None, T0 + 130 * MIN)]


def test_a_gps_jump_is_flagged_excluded_and_still_counts_as_a_report() -> None:
    jump = (30.0, LON + 2.0, LAT, 0.0, 0, 2)  # 190 km in 30 min, outside the hotspot's town
    rows = [far(0), jump, far(145), far(150)]
    incidents = evaluate(stream(rows), FLEET, [HOT]).incidents
    assert incidents == [Incident("gps_jump", "D1", "V1", None, T0 + 30 * MIN)]


def test_invalid_fixes_neither_jump_nor_count_as_places() -> None:
    rows = [far(0), (1.0, 0.0, 0.0, 0.0, 0, 2), (2.0, LON, LAT, 0.0, 0, 0), far(3), far(100)]
    assert evaluate(stream(rows), FLEET, [HOT]).incidents == []


def test_power_cut_alerts_on_each_rising_edge_of_bit_8_valid_fix_or_not() -> None:
    rows = [far(0), far(5, 256, 0), far(10, 256), far(15), far(20, 256), far(25)]
    incidents = evaluate(stream(rows), FLEET, []).incidents
    assert [(i.type, i.time_ms) for i in incidents] == [
        ("power_cut", T0 + 5 * MIN),
        ("power_cut", T0 + 20 * MIN),
    ]


def test_a_row_older_than_the_newest_is_dropped_and_moves_nothing() -> None:
    rows = [far(0), far(10), far(5, 256), far(20)]
    result = evaluate(stream(rows), FLEET, [])
    assert result.incidents == []
    assert result.dropped_out_of_order == 1


def test_overspeed_alerts_60_s_after_the_first_fast_fix() -> None:
    fast = [(m / 6, LON + 0.001 * m, LAT, 140.0, 0, 3) for m in range(1, 10)]
    rows = [(0.0, LON, LAT, 80.0, 0, 3), *fast, (10 / 6, LON + 0.01, LAT, 90.0, 0, 3), far(30)]
    incidents = evaluate(stream(rows), FLEET, []).incidents
    assert incidents == [Incident("overspeed", "D1", "V1", None, T0 + MIN // 6 + MIN)]
