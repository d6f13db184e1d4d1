"""device_separation opens once per incident whether the clock or the data reaches it first."""

from __future__ import annotations

import numpy as np

from trajectory.separation import SeparationRule, SeparationSettings, SeparationStarts

MIN = 60_000
T0 = 1_700_000_000_000
FAR = 0.05  # degrees of longitude: about 5 km apart


def feed(rule: SeparationRule, times: list[int], watermark_ms: float) -> SeparationStarts:
    """Both devices of vehicle 0 report at each time, 5 km apart, parked."""
    n = len(times)
    return rule.fixes(
        vehicle=np.zeros(2 * n, np.int32),
        device=np.tile(np.array([0, 1], np.int32), n),
        time_ms=np.repeat(np.array(times, np.int64), 2),
        lon=np.tile(np.array([120.0, 120.0 + FAR]), n),
        lat=np.full(2 * n, 30.0),
        speed_kmh=np.zeros(2 * n, np.float32),
        watermark_ms=np.array([watermark_ms]),
    )


def new_rule() -> SeparationRule:
    rule = SeparationRule(SeparationSettings(duration_ms=5 * MIN))
    rule.set_vehicles({0: [0, 1]}, n_vehicles=1, n_devices=2)
    return rule


def test_the_timer_firing_first_is_not_followed_by_a_second_open_from_later_fixes() -> None:
    rule = new_rule()
    assert len(feed(rule, [T0], T0).vehicle) == 0  # the run starts
    fired = rule.advance(T0 + 6 * MIN)  # the clock passes the deadline before the data does
    assert fired.time_ms.tolist() == [T0 + 5 * MIN]
    later = feed(rule, [T0 + m * MIN for m in range(1, 9)], T0 + 8 * MIN)
    assert len(later.vehicle) == 0
    assert len(rule.advance(T0 + 20 * MIN).vehicle) == 0


def test_the_data_reaching_it_first_is_not_followed_by_the_timer() -> None:
    rule = new_rule()
    opened = feed(rule, [T0 + m * MIN for m in range(7)], T0 + 6 * MIN)
    assert opened.time_ms.tolist() == [T0 + 5 * MIN]
    assert len(rule.advance(T0 + 20 * MIN).vehicle) == 0


def test_the_timer_firing_while_the_data_is_behind_stays_fired() -> None:
    rule = new_rule()
    feed(rule, [T0], T0)
    assert len(rule.advance(T0 + 6 * MIN).vehicle) == 1
    assert len(feed(rule, [T0 + MIN], T0 + MIN).vehicle) == 0  # data still before the deadline
    assert len(rule.advance(T0 + 7 * MIN).vehicle) == 0
    assert len(feed(rule, [T0 + 6 * MIN], T0 + 6 * MIN).vehicle) == 0
