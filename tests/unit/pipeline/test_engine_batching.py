"""Vehicle incidents whose first episode is dated back: a change confirmed by a valid fix that
comes after an invalid report. Batches of one row must give what the whole file gives."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.model import Alert
from geofence import Fence
from tests.unit.pipeline.tracks import (
    HOME,
    Fix,
    circle,
    east,
    fences,
    fleet,
    minute_ms,
    of_type,
    run,
    stay,
)

PAWN = east(HOME, 5_000)
PAIR = fleet(V1=["W", "L"])


def _by_row_and_whole(
    fixes: list[Fix], kind: str, fence_list: Sequence[Fence] = ()
) -> list[list[tuple[str, int]]]:
    rows = sorted(fixes, key=lambda f: (f.minute, f.device))

    def brief(alerts: list[Alert]) -> list[tuple[str, int]]:
        return [(a.device_id, a.time_ms) for a in of_type(alerts, kind)]

    return [brief(run(rows, fence_list, PAIR, batch_rows=size)) for size in (1, 1 << 20)]


def test_an_overspeed_confirmed_after_an_invalid_report_covers_the_other_units_later_start() -> (
    None
):
    fixes = [
        Fix("W", 0.0, *HOME, speed_kmh=130),
        Fix("W", 1.5, *HOME, speed_kmh=130, status=0),  # no fix: says nothing about speed
        Fix("W", 2.0, *HOME, speed_kmh=130),  # W fast from 0: its episode opens at minute 1
        Fix("L", 0.5, *HOME, speed_kmh=130),
        Fix("L", 1.5, *HOME, speed_kmh=130),  # L fast from 0.5: opens at 1.5, inside W's
    ]
    by_row, whole = _by_row_and_whole(fixes, "overspeed")
    assert whole == [("W", minute_ms(1))]
    assert by_row == whole


def test_a_dwell_passed_during_invalid_reports_covers_the_other_units_later_dwell() -> None:
    fixes = (
        stay("W", PAWN, [0, 1])
        + stay("W", PAWN, [31, 35], status=0)  # positioned bit off: no evidence either way
        + stay("W", PAWN, [40])  # still inside: the dwell opened at minute 30
        + stay("L", PAWN, [2, 3, 33])  # L's dwell opens at minute 32, inside W's
    )
    pawn = fences(circle("pawn", "hotspot", PAWN, 100))
    by_row, whole = _by_row_and_whole(fixes, "hotspot_dwell", pawn)
    assert whole == [("W", minute_ms(30))]
    assert by_row == whole


def test_leaving_the_area_dated_back_to_before_an_invalid_report_is_one_incident() -> None:
    city = fences(circle("city", "allowed_area", HOME, 6_000, vehicles=["V1"]))
    away = east(HOME, -8_000)
    fixes = (
        stay("L", HOME, [0])
        + stay("L", away, [10])  # L's first fix outside...
        + stay("L", away, [21.5], status=0)
        + stay("L", away, [21.75])  # ...confirmed only now: L is out since minute 10
        + stay("W", HOME, [0])
        + stay("W", away, [20.25, 20.5])  # W out since 20.25, inside L's episode
    )
    by_row, whole = _by_row_and_whole(fixes, "leave_allowed_area", city)
    assert whole == [("L", minute_ms(10))]
    assert by_row == whole
