"""Core non-fence rules on small hand-made tracks: positives and the confounders that must not
alert."""

from __future__ import annotations

from tests.unit.pipeline.tracks import (
    HOME,
    Fix,
    drive,
    east,
    fleet,
    minute_ms,
    of_type,
    run,
    stay,
)


def test_a_gap_over_two_hours_alerts_offline_at_last_report_plus_two_hours() -> None:
    fixes = stay("D1", HOME, [0, 10]) + stay("D1", HOME, [200])
    alerts = of_type(run(fixes), "offline")
    assert [a.time_ms for a in alerts] == [minute_ms(130)]
    assert alerts[0].severity == "medium"


def test_a_100_minute_gap_is_not_offline() -> None:
    fixes = stay("D1", HOME, [0, 100, 200, 300])
    assert of_type(run(fixes), "offline") == []


def test_a_device_silent_until_the_end_of_the_file_goes_offline_by_the_data_clock() -> None:
    fixes = stay("D1", HOME, [0]) + stay("D2", HOME, range(0, 300, 10))
    alerts = of_type(run(fixes), "offline")
    assert [(a.device_id, a.time_ms) for a in alerts] == [("D1", minute_ms(120))]


def test_power_cut_alerts_once_when_bit_8_rises_and_not_while_it_stays_set() -> None:
    fixes = stay("D1", HOME, [0, 1]) + stay("D1", HOME, [2, 3, 4], alarm=1 << 8)
    fixes += stay("D1", HOME, [5]) + stay("D1", HOME, [6], alarm=1 << 8)
    alerts = of_type(run(fixes), "power_cut")
    assert [a.time_ms for a in alerts] == [minute_ms(2), minute_ms(6)]
    assert alerts[0].severity == "critical"


def test_antenna_cut_reads_the_alarm_word_of_invalid_fixes_too() -> None:
    fixes = [*stay("D1", HOME, [0]), Fix("D1", 1, 0.0, 0.0, alarm=1 << 5, status=0)]
    assert [a.time_ms for a in of_type(run(fixes), "antenna_cut")] == [minute_ms(1)]


def test_125_kmh_for_30_seconds_is_not_overspeed() -> None:
    fixes = drive("D1", HOME, 125, [0, 0.25, 0.5]) + drive("D1", HOME, 90, [1, 2], t0=0)
    assert of_type(run(fixes), "overspeed") == []


def test_above_120_kmh_for_60_seconds_alerts_once_at_the_start_plus_60_seconds() -> None:
    minutes = [m / 4 for m in range(12)]
    fixes = drive("D1", HOME, 130, minutes)
    alerts = of_type(run(fixes), "overspeed")
    assert [a.time_ms for a in alerts] == [minute_ms(1)]


def test_invalid_fixes_at_zero_zero_neither_break_overspeed_nor_count_as_jumps() -> None:
    fixes = drive("D1", HOME, 130, [0, 0.5])
    fixes += [Fix("D1", 0.75, 0.0, 0.0, speed_kmh=0, status=2)]
    fixes += drive("D1", HOME, 130, [1.0, 1.25], t0=0)
    alerts = run(fixes)
    assert [a.time_ms for a in of_type(alerts, "overspeed")] == [minute_ms(1)]
    assert of_type(alerts, "gps_jump") == []


def test_one_gps_jump_alerts_and_the_fix_after_it_is_measured_from_the_last_accepted_one() -> None:
    far = east(HOME, 300_000)
    fixes = [*stay("D1", HOME, [0, 1]), Fix("D1", 2, *far), *stay("D1", HOME, [3, 4])]
    alerts = run(fixes)
    assert [a.time_ms for a in of_type(alerts, "gps_jump")] == [minute_ms(2)]
    assert len(alerts) == 1


def test_a_relocated_tracker_is_re_anchored_after_three_consistent_fixes() -> None:
    far = east(HOME, 300_000)
    fixes = stay("D1", HOME, [0, 1]) + stay("D1", far, [2, 3, 4, 5, 6])
    jumps = of_type(run(fixes), "gps_jump")
    assert [a.time_ms for a in jumps] == [minute_ms(2)]


def test_two_units_50_m_apart_at_100_kmh_reporting_at_different_times_are_not_separated() -> None:
    wired = drive("W", HOME, 100, [m * 0.5 for m in range(120)])
    wireless = drive("L", east(HOME, 50), 100, [0.2 + 7 * k for k in range(9)], t0=0.0)
    alerts = run(wired + wireless, fleet_spec=fleet(V1=["W", "L"]))
    assert of_type(alerts, "device_separation") == []


def test_a_unit_left_behind_alerts_separation_at_first_moment_plus_30_minutes() -> None:
    wired = stay("W", HOME, [0, 5]) + drive("W", HOME, 60, range(10, 80, 1), t0=9)
    wireless = stay("L", HOME, range(0, 80, 5))
    alerts = of_type(run(wired + wireless, fleet_spec=fleet(V1=["W", "L"])), "device_separation")
    assert len(alerts) == 1
    assert (alerts[0].vehicle_id, alerts[0].severity) == ("V1", "critical")
    # Leaving at minute 9 at 60 km/h: at minute 10 the units are 1 km apart (together); the
    # wired fixes up to 14 are within the motion allowance of the wireless fix at 10; the
    # wireless fix at 15 against the wired fix at 15 (6 km) is the first firm evidence.
    assert alerts[0].time_ms == minute_ms(15 + 30)


def test_units_apart_for_less_than_30_minutes_are_not_separated() -> None:
    wired = drive("W", HOME, 60, range(20), t0=0) + stay("W", HOME, range(25, 90, 5))
    wireless = stay("L", HOME, range(0, 90, 5))
    alerts = run(wired + wireless, fleet_spec=fleet(V1=["W", "L"]))
    assert of_type(alerts, "device_separation") == []


def test_overspeed_of_two_units_of_one_car_is_one_vehicle_incident() -> None:
    minutes = [m / 4 for m in range(12)]
    fixes = drive("W", HOME, 130, minutes) + drive("L", HOME, 131, [m + 0.1 for m in minutes])
    alerts = of_type(run(fixes, fleet_spec=fleet(V1=["W", "L"])), "overspeed")
    assert [(a.vehicle_id, a.device_id, a.time_ms) for a in alerts] == [("V1", "W", minute_ms(1))]


def test_duplicates_and_out_of_order_rows_move_no_rule_state() -> None:
    fixes = stay("D1", HOME, [0, 10]) + stay("D1", HOME, [5], alarm=1 << 8)
    fixes += stay("D1", HOME, [10, 20])
    assert run(fixes) == []


def test_a_unit_silent_while_the_other_keeps_reporting_alerts_partial_offline_once() -> None:
    wired = stay("W", HOME, range(0, 30, 5))
    wireless = stay("L", HOME, range(0, 400, 45))
    alerts = run(wired + wireless, fleet_spec=fleet(V1=["W", "L"]))
    partial = of_type(alerts, "partial_offline")
    assert [(a.vehicle_id, a.device_id, a.time_ms) for a in partial] == [
        ("V1", "W", minute_ms(25 + 120))
    ]
    assert of_type(alerts, "all_devices_offline") == []


def test_every_unit_silent_for_24_hours_after_parking_alerts_all_devices_offline() -> None:
    fixes = stay("W", HOME, range(0, 30, 5)) + stay("L", HOME, [10])
    fixes += stay("X", HOME, range(0, 30 * 60, 60))  # another car keeps the clock going
    alerts = run(fixes, fleet_spec=fleet(V1=["W", "L"]))
    everyone = of_type(alerts, "all_devices_offline")
    assert [(a.vehicle_id, a.time_ms) for a in everyone] == [("V1", minute_ms(25 + 24 * 60))]
    assert of_type(alerts, "partial_offline") == []


def test_a_car_last_seen_moving_goes_all_devices_offline_after_6_hours() -> None:
    fixes = drive("W", HOME, 50, range(10)) + stay("X", HOME, range(0, 600, 60))
    everyone = of_type(run(fixes), "all_devices_offline")
    assert [(a.vehicle_id, a.time_ms) for a in everyone] == [("W", minute_ms(9 + 6 * 60))]


def _night_at_home_then(minutes_away: int, where: tuple[float, float]) -> list[Fix]:
    """Parked at home over the first night (16:00 to 07:00 local), then a 10-minute drive east
    at 60 km/h and a stay at `where` (hourly fixes)."""
    fixes = stay("D1", HOME, range(0, 901, 60))
    fixes += [Fix("D1", 900 + k, *east(HOME, 1_000 * k), speed_kmh=60) for k in range(1, 11)]
    fixes += stay("D1", where, range(911, 911 + minutes_away, 60))
    return fixes


def test_a_car_parked_for_72_hours_far_from_home_alerts_long_stay() -> None:
    away = east(HOME, 10_000)
    alerts = of_type(run(_night_at_home_then(80 * 60, away)), "long_stay")
    assert [a.time_ms for a in alerts] == [minute_ms(910 + 72 * 60)]


def test_a_car_parked_for_days_at_home_is_not_a_long_stay() -> None:
    fixes = stay("D1", HOME, range(0, 901, 60))
    fixes += [Fix("D1", 900 + k, *east(HOME, 1_000 * k), speed_kmh=60) for k in range(1, 11)]
    fixes += [
        Fix("D1", 910 + k, *east(HOME, 10_000 - 1_000 * k), speed_kmh=60) for k in range(1, 11)
    ]
    fixes += stay("D1", HOME, range(921, 921 + 80 * 60, 60))
    assert of_type(run(fixes), "long_stay") == []
