"""`frozen_position`: one position repeated exactly while the car should be moving."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from alerts.model import Alert
from pipeline.thresholds import parse_rules
from tests.unit.pipeline import tracks
from tests.unit.pipeline.tracks import HOME, Fix, east, minute_ms, of_type, run

ACC_OFF = 2  # positioned, ACC off


def stay(device: str, at: tuple[float, float], minutes: Iterable[float], **kw: Any) -> list[Fix]:
    """One position repeated, with the ignition on unless `status` says otherwise."""
    kw.setdefault("status", 3)
    return tracks.stay(device, at, minutes, **kw)


def frozen(alerts: Sequence[Alert]) -> list[int]:
    return [a.time_ms for a in of_type(alerts, "frozen_position")]


def test_20_identical_fixes_with_the_ignition_on_alert_once_at_the_20th() -> None:
    fixes = stay("D1", HOME, range(30))  # status 3: ACC on
    alerts = of_type(run(fixes), "frozen_position")
    assert [(a.device_id, a.time_ms) for a in alerts] == [("D1", minute_ms(19))]
    assert alerts[0].severity == "medium"
    assert alerts[0].details["fixes"] == 20
    assert alerts[0].details["since"].startswith("2024-03-01T16:00:00")


def test_19_identical_fixes_are_not_enough() -> None:
    assert frozen(run(stay("D1", HOME, range(19)))) == []


def test_a_parked_car_with_acc_off_and_no_speed_may_hold_its_fix() -> None:
    fixes = stay("D1", HOME, range(60), status=ACC_OFF)
    assert frozen(run(fixes)) == []


def test_a_reported_speed_counts_without_the_ignition() -> None:
    fixes = stay("D1", HOME, range(25), status=ACC_OFF, speed_kmh=40.0)
    assert frozen(run(fixes)) == [minute_ms(19)]
    slow = stay("D1", HOME, range(25), status=ACC_OFF, speed_kmh=5.0)  # not above 5 km/h
    assert frozen(run(slow)) == []


def test_gps_noise_of_a_real_fix_is_not_frozen() -> None:
    fixes = [Fix("D1", m, *east(HOME, 0.3 * (m % 3))) for m in range(40)]
    assert frozen(run(fixes)) == []
    # One fix elsewhere breaks the run: 10 + 1 + 10 identical fixes never make 20.
    broken = stay("D1", HOME, range(10)) + stay("D1", east(HOME, 5), [10])
    broken += stay("D1", HOME, range(11, 21))
    assert frozen(run(broken)) == []


def test_acc_flapping_at_rest_breaks_the_run() -> None:
    fixes = [
        dataclasses.replace(f, status=ACC_OFF if i % 5 == 4 else 3)
        for i, f in enumerate(stay("D1", HOME, range(60)))
    ]
    assert frozen(run(fixes)) == []


def test_invalid_and_duplicate_fixes_never_count() -> None:
    invalid = stay("D1", HOME, range(30), status=1)  # ACC on, not positioned
    assert frozen(run(invalid)) == []
    duplicates = stay("D1", HOME, [m // 2 for m in range(30)])  # 15 distinct fix times
    assert frozen(run(duplicates)) == []
    # Invalid reports in between neither count nor break the run.
    mixed = stay("D1", HOME, range(10)) + stay("D1", HOME, range(10, 15), status=1)
    mixed += stay("D1", HOME, range(15, 25))
    assert frozen(run(mixed)) == [minute_ms(24)]


def test_a_new_run_after_moving_alerts_again() -> None:
    fixes = stay("D1", HOME, range(20)) + stay("D1", east(HOME, 800), range(20, 45))
    assert frozen(run(fixes)) == [minute_ms(19), minute_ms(39)]


def test_any_split_into_batches_gives_the_same_frozen_alerts() -> None:
    fixes = stay("D1", HOME, range(22)) + stay("D2", east(HOME, 50), range(5, 40))
    fixes.sort(key=lambda f: f.minute)
    whole = sorted(run(fixes), key=lambda a: (a.time_ms, a.device_id))
    assert [(a.device_id, a.time_ms) for a in of_type(whole, "frozen_position")] == [
        ("D1", minute_ms(19)),
        ("D2", minute_ms(24)),
    ]
    for rows in (1, 2, 3, 19):
        split = of_type(run(fixes, batch_rows=rows), "frozen_position")
        assert sorted((a.device_id, a.time_ms) for a in split) == [
            ("D1", minute_ms(19)),
            ("D2", minute_ms(24)),
        ]


def test_rules_toml_sets_the_frozen_position_thresholds() -> None:
    rules = parse_rules("[frozen_position]\nfixes = 5\nspeed_kmh = 50\n")
    fixes = stay("D1", HOME, range(8), status=ACC_OFF, speed_kmh=40.0)
    assert frozen(run(fixes, rules=rules)) == []
    assert frozen(run(stay("D1", HOME, range(8)), rules=rules)) == [minute_ms(4)]
