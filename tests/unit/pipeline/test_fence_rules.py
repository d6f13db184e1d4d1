"""Fence rules through the engine: hotspot dwell, zone enter/exit, leaving the allowed area."""

from __future__ import annotations

from typing import Any

from tests.unit.pipeline.tracks import (
    HOME,
    Fix,
    circle,
    drive,
    east,
    fences,
    fleet,
    minute_ms,
    of_type,
    run,
    stay,
)

PAWN = east(HOME, 5_000)


def pawn(**props: Any) -> dict[str, Any]:
    return circle("pawn-17", "hotspot", PAWN, 100, **props)


def test_a_20_minute_stop_at_a_pawn_shop_does_not_alert() -> None:
    fixes = stay("D1", PAWN, range(0, 21, 2)) + stay("D1", HOME, range(30, 60, 5))
    assert of_type(run(fixes, fences(pawn())), "hotspot_dwell") == []


def test_30_minutes_in_a_hotspot_alerts_once_at_entry_plus_30_minutes() -> None:
    fixes = stay("D1", HOME, [0, 2]) + stay("D1", PAWN, range(10, 100, 5))
    alerts = of_type(run(fixes, fences(pawn())), "hotspot_dwell")
    assert [(a.fence_id, a.time_ms, a.severity) for a in alerts] == [
        ("pawn-17", minute_ms(40), "high")
    ]


def test_a_drive_by_past_a_pawn_shop_does_not_alert() -> None:
    fixes = drive("D1", east(PAWN, -2_000), 40, [m * 0.25 for m in range(30)])
    assert of_type(run(fixes, fences(pawn())), "hotspot_dwell") == []


def test_a_dwell_still_open_at_the_end_of_the_file_fires_when_the_clock_passes_it() -> None:
    fixes = stay("D1", PAWN, [0, 1, 2]) + stay("D2", HOME, range(0, 100, 10))
    alerts = of_type(run(fixes, fences(pawn())), "hotspot_dwell")
    assert [a.time_ms for a in alerts] == [minute_ms(30)]


def test_two_units_dwelling_together_make_one_vehicle_incident() -> None:
    fixes = stay("W", PAWN, range(0, 60, 2)) + stay("L", PAWN, range(1, 60, 5))
    alerts = of_type(run(fixes, fences(pawn()), fleet(V1=["W", "L"])), "hotspot_dwell")
    assert [(a.vehicle_id, a.time_ms) for a in alerts] == [("V1", minute_ms(30))]


def test_zone_enter_and_exit_need_two_valid_fixes_and_take_the_first_ones_time() -> None:
    zone = circle("depot", "zone", PAWN, 500, notify=["enter", "exit"])
    near = east(PAWN, 1_000)
    fixes = stay("D1", HOME, [0, 1]) + stay("D1", PAWN, [10]) + stay("D1", near, [11])
    fixes += stay("D1", PAWN, [20, 21, 22]) + stay("D1", near, [30, 31])
    alerts = run(fixes, fences(zone))
    assert [(a.type.value, a.time_ms) for a in alerts] == [
        ("geofence_enter", minute_ms(20)),
        ("geofence_exit", minute_ms(30)),
    ]


def test_an_invalid_fix_neither_starts_nor_ends_a_zone_condition() -> None:
    zone = circle("depot", "zone", PAWN, 500, notify=["enter"])
    fixes = stay("D1", HOME, [0, 1]) + stay("D1", PAWN, [10])
    fixes += [Fix("D1", 11, 0.0, 0.0, status=0), *stay("D1", PAWN, [12])]
    alerts = run(fixes, fences(zone))
    assert [(a.type.value, a.time_ms) for a in alerts] == [("geofence_enter", minute_ms(10))]


def test_leaving_the_allowed_area_alerts_at_the_first_of_two_fixes_outside() -> None:
    city = circle("city", "allowed_area", HOME, 20_000, vehicles=["V1"])
    out = east(HOME, 30_000)
    fixes = stay("W", HOME, [0, 10]) + stay("W", out, [40, 41, 42])
    alerts = of_type(run(fixes, fences(city), fleet(V1=["W"])), "leave_allowed_area")
    assert [(a.vehicle_id, a.fence_id, a.time_ms, a.severity) for a in alerts] == [
        ("V1", "city", minute_ms(40), "high")
    ]


def test_a_vehicle_first_seen_outside_its_allowed_area_is_alerted() -> None:
    city = circle("city", "allowed_area", HOME, 20_000, vehicles=["V1"])
    fixes = stay("W", east(HOME, 30_000), [0, 5, 10])
    alerts = of_type(run(fixes, fences(city), fleet(V1=["W"])), "leave_allowed_area")
    assert [a.time_ms for a in alerts] == [minute_ms(0)]


def test_a_single_fix_outside_the_allowed_area_is_not_a_departure() -> None:
    city = circle("city", "allowed_area", HOME, 20_000, vehicles=["V1"])
    fixes = stay("W", HOME, [0, 10]) + stay("W", east(HOME, 30_000), [40]) + stay("W", HOME, [50])
    assert run(fixes, fences(city), fleet(V1=["W"])) == []


def test_two_separate_visits_of_five_minutes_within_a_week_alert_hotspot_repeat() -> None:
    other = circle("market-3", "hotspot", east(HOME, -5_000), 100)
    day = 24 * 60
    fixes = stay("D1", PAWN, range(8)) + stay("D1", HOME, range(20, 30, 5))
    fixes += stay("D1", east(HOME, -5_000), range(day, day + 10)) + stay("D1", HOME, [day + 25])
    alerts = of_type(run(fixes, fences(pawn(), other)), "hotspot_repeat")
    assert [(a.fence_id, a.time_ms, a.details["visits"]) for a in alerts] == [
        ("market-3", minute_ms(day + 5), ["pawn-17", "market-3"])
    ]


def test_a_stop_of_three_minutes_is_not_a_visit() -> None:
    near = east(PAWN, 500)
    fixes = stay("D1", PAWN, range(4)) + stay("D1", near, range(4, 8))
    fixes += stay("D1", PAWN, range(60, 64)) + stay("D1", near, range(64, 68))
    assert of_type(run(fixes, fences(pawn())), "hotspot_repeat") == []
