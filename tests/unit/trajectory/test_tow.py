"""`tow`: moving with the ignition off, and the confounders that must not alert."""

from __future__ import annotations

import dataclasses
import random

from pipeline.thresholds import parse_rules
from tests.unit.pipeline.tracks import HOME, Fix, drive, east, minute_ms, of_type, run, stay

ACC_OFF = 2  # positioned, ACC off
ACC_ON = 3


def towed(
    start: tuple[float, float],
    speed_kmh: float,
    minutes: list[float],
    reported: float | None = None,
) -> list[Fix]:
    """Due east with ACC off; `reported` replaces the reported speed (0: a tracker that
    reports none while its positions travel)."""
    fixes = drive("D1", start, speed_kmh, minutes)
    speed = speed_kmh if reported is None else reported
    return [dataclasses.replace(f, status=ACC_OFF, speed_kmh=speed) for f in fixes]


def quarter_minutes(start: float, end: float) -> list[float]:
    return [start + q / 4 for q in range(int((end - start) * 4) + 1)]


def test_a_tow_at_30_kmh_alerts_once_when_2_min_and_500_m_are_both_reached() -> None:
    fixes = stay("D1", HOME, [-5, -1]) + towed(HOME, 30, quarter_minutes(0, 6))
    alerts = of_type(run(fixes), "tow")
    assert [(a.device_id, a.time_ms) for a in alerts] == [("D1", minute_ms(2))]
    assert alerts[0].severity == "high"
    assert alerts[0].details["distance_m"] == 1000
    assert alerts[0].details["since"].startswith("2024-03-01T16:00:00")


def test_implied_speed_counts_when_the_tracker_reports_zero() -> None:
    fixes = towed(HOME, 40, quarter_minutes(0, 5), reported=0.0)
    # The first fix has no previous one to imply a speed from: the run starts at the second.
    assert [a.time_ms for a in of_type(run(fixes), "tow")] == [minute_ms(2.25)]


def test_reported_speed_counts_when_positions_barely_move() -> None:
    # A tow truck crawling in traffic whose fixes lag: the reported speed is the evidence,
    # the 500 m still has to be covered.
    fixes = towed(HOME, 16, quarter_minutes(0, 4), reported=25.0)
    assert [a.time_ms for a in of_type(run(fixes), "tow")] == [minute_ms(2)]


def test_driving_with_the_ignition_on_is_not_a_tow() -> None:
    fixes = drive("D1", HOME, 60, quarter_minutes(0, 20))
    assert of_type(run(fixes), "tow") == []


def test_slow_or_short_movement_without_ignition_is_not_a_tow() -> None:
    slow = towed(HOME, 15, quarter_minutes(0, 10))  # under 20 km/h
    short = towed(HOME, 40, quarter_minutes(0, 1.75))  # 1.75 min, over 1 km
    near = towed(HOME, 30, quarter_minutes(0, 4), reported=30.0)
    near = [dataclasses.replace(f, lon=HOME[0] + (i % 2) * 0.004) for i, f in enumerate(near)]
    for fixes in (slow, short, near):  # near: back and forth, never 500 m from the start
        assert of_type(run(fixes), "tow") == []


def test_gps_noise_around_a_parked_car_never_adds_up_to_a_tow() -> None:
    rng = random.Random(7)
    fixes = [
        Fix("D1", s / 12, *east(HOME, rng.uniform(-80, 80)), speed_kmh=0.0, status=ACC_OFF)
        for s in range(12 * 60)
    ]
    alerts = run(fixes)
    assert of_type(alerts, "tow") == []


def test_acc_flapping_during_a_drive_never_builds_a_run() -> None:
    fixes = drive("D1", HOME, 60, [m / 2 for m in range(60)])
    flapping = [
        dataclasses.replace(f, status=ACC_OFF if (i // 2) % 2 else ACC_ON)
        for i, f in enumerate(fixes)
    ]
    assert of_type(run(flapping), "tow") == []


def test_invalid_fixes_never_count() -> None:
    fixes = [dataclasses.replace(f, status=0) for f in towed(HOME, 40, quarter_minutes(0, 10))]
    assert of_type(run(fixes), "tow") == []
    # Invalid reports inside a tow neither add evidence nor end it.
    tow = towed(HOME, 30, quarter_minutes(0, 6))
    mixed = [dataclasses.replace(f, status=0) if 4 <= i < 8 else f for i, f in enumerate(tow)]
    assert [a.time_ms for a in of_type(run(mixed), "tow")] == [minute_ms(2)]


def test_a_pause_keeps_one_incident_until_the_ignition_comes_back() -> None:
    first = towed(HOME, 30, quarter_minutes(0, 4))
    end = (first[-1].lon, first[-1].lat)
    paused = [dataclasses.replace(f, status=ACC_OFF) for f in stay("D1", end, [5, 10, 15])]
    again = towed(end, 30, quarter_minutes(16, 20))
    later = (again[-1].lon, again[-1].lat)
    ignition = stay("D1", later, [21], status=ACC_ON)
    third = towed(later, 30, quarter_minutes(22, 26))
    alerts = of_type(run(first + paused + again + ignition + third), "tow")
    assert [a.time_ms for a in alerts] == [minute_ms(2), minute_ms(24)]


def test_any_split_into_batches_gives_the_same_tow_alerts() -> None:
    fixes = towed(HOME, 30, quarter_minutes(0, 4)) + stay("D1", HOME, [5], status=ACC_ON)
    fixes += towed(east(HOME, 300), 25, quarter_minutes(6, 12), reported=0.0)
    whole = [a.time_ms for a in of_type(run(fixes), "tow")]
    assert len(whole) == 2
    for rows in (1, 2, 3, 7):
        assert [a.time_ms for a in of_type(run(fixes, batch_rows=rows), "tow")] == whole


def test_rules_toml_sets_the_tow_thresholds() -> None:
    fixes = towed(HOME, 15, quarter_minutes(0, 10))
    rules = parse_rules("[tow]\nspeed_kmh = 10\nduration_s = 300\ndistance_m = 1000\n")
    assert [a.time_ms for a in of_type(run(fixes, rules=rules), "tow")] == [minute_ms(5)]


def test_an_outlier_fix_of_a_sparsely_reporting_parked_car_is_not_a_tow() -> None:
    # Parked, ACC off, a fix every 10 min; one lands 1 km away: both the way out and the way
    # back imply a speed (6 or 60 km/h), yet the car never left where it stood.
    for gap in (10, 1):
        minutes = [gap * i for i in range(8)]
        fixes = stay("D1", HOME, minutes[:4]) + stay("D1", east(HOME, 1_000), [minutes[4]])
        fixes += stay("D1", HOME, minutes[5:])
        assert of_type(run(fixes), "tow") == []
