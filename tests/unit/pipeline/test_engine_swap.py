"""Live changes: the fleet and the fence set swapped between batches without losing state."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from alerts.model import Alert
from geofence import Fence
from pipeline.csv_positions import read_positions_csv
from pipeline.engine import Engine
from pipeline.fleet import Fleet, FleetError, Vehicle
from pipeline.replay import to_batch
from tests.unit.pipeline.tracks import (
    HOME,
    Fix,
    circle,
    csv_bytes,
    east,
    fences,
    fleet,
    minute_ms,
    stay,
)

PAWN = east(HOME, 5_000)
MARKET = east(HOME, 20_000)


def feed(engine: Engine, fixes: Sequence[Fix]) -> list[Alert]:
    return engine.process(to_batch(read_positions_csv(csv_bytes(fixes)), engine.devices))


def summary(alerts: Sequence[Alert]) -> list[tuple[str, str, str, int]]:
    return sorted((a.type.value, a.vehicle_id, a.device_id, a.time_ms) for a in alerts)


def test_binding_a_seen_device_to_a_vehicle_makes_later_incidents_vehicle_level() -> None:
    engine = Engine(fences=fences(circle("pawn", "hotspot", PAWN, 100)))
    feed(engine, stay("W", HOME, [0]) + stay("L", HOME, [0]))
    engine.set_fleet(fleet(V1=["W", "L"]))
    alerts = feed(engine, stay("W", PAWN, range(61, 102, 2)) + stay("L", PAWN, range(62, 103, 2)))
    alerts += engine.advance(minute_ms(120))
    dwell = [a for a in alerts if a.type.value == "hotspot_dwell"]
    assert [(a.vehicle_id, a.device_id, a.time_ms) for a in dwell] == [("V1", "W", minute_ms(91))]


def test_a_moved_device_keeps_its_offline_timer_and_reports_under_its_new_vehicle() -> None:
    engine = Engine()
    feed(engine, stay("W", HOME, [0]))
    engine.set_fleet(fleet(V1=["W"]))
    assert engine.advance(minute_ms(119)) == []
    assert summary(engine.advance(minute_ms(121))) == [("offline", "V1", "W", minute_ms(120))]


def test_a_fence_added_live_starts_counting_from_the_next_fixes() -> None:
    engine = Engine()
    feed(engine, stay("W", PAWN, range(10)))
    engine.set_fences(fences(circle("pawn", "hotspot", PAWN, 100)))
    alerts = feed(engine, stay("W", PAWN, range(10, 45)))
    assert summary(alerts) == [("hotspot_dwell", "W", "W", minute_ms(40))]


def test_a_stay_carries_over_a_swap_that_keeps_its_fence() -> None:
    pawn = circle("pawn", "hotspot", PAWN, 100)
    swapped = Engine(fences=fences(pawn))
    first = feed(swapped, stay("W", PAWN, range(20)))
    swapped.set_fences(fences(circle("market", "hotspot", MARKET, 300), pawn))
    first += feed(swapped, stay("W", PAWN, range(20, 40)))
    plain = Engine(fences=fences(pawn))
    expected = feed(plain, stay("W", PAWN, range(40)))
    assert summary(first) == summary(expected)
    assert [a.type.value for a in expected] == ["hotspot_dwell"]
    assert swapped.fence_rules is not None
    assert swapped.fence_rules.fences.version == 2


def test_a_fence_removed_during_a_stay_never_fires() -> None:
    engine = Engine(fences=fences(circle("pawn", "hotspot", PAWN, 100)))
    feed(engine, stay("W", PAWN, range(20)))
    engine.set_fences(fences(circle("market", "hotspot", MARKET, 300)))
    alerts = feed(engine, stay("W", PAWN, range(20, 60)))
    alerts += engine.advance(minute_ms(90))
    assert [a for a in alerts if a.type.value == "hotspot_dwell"] == []


def test_removing_every_fence_then_adding_one_back_works() -> None:
    pawn: list[Fence] = fences(circle("pawn", "hotspot", PAWN, 100))
    engine = Engine(fences=pawn)
    engine.set_fences([])
    assert engine.fence_rules is None
    feed(engine, stay("W", HOME, [0]))
    engine.set_fences(pawn)
    alerts = feed(engine, stay("W", PAWN, range(60, 100)))
    assert summary(alerts) == [("hotspot_dwell", "W", "W", minute_ms(90))]


def test_an_allowed_area_naming_no_fence_is_refused_and_changes_nothing() -> None:
    engine = Engine(fences=fences(circle("pawn", "hotspot", PAWN, 100)))
    feed(engine, stay("W", HOME, [0]))
    bad = Fleet((Vehicle("V1", ("W",), allowed_area="nowhere"),))
    with pytest.raises(FleetError, match="nowhere"):
        engine.set_fleet(bad)
    assert engine.vehicle_ids == ["W"]
    with pytest.raises(FleetError, match="nowhere"):
        Engine(fleet=bad).set_fences(fences(circle("pawn", "hotspot", PAWN, 100)))


def test_an_open_incident_moves_with_its_device_and_covers_the_new_vehicle() -> None:
    engine = Engine(fences=fences(circle("pawn", "hotspot", PAWN, 100)))
    first = feed(engine, stay("W", HOME, [0]) + stay("W", PAWN, range(60, 95)))
    assert summary(first) == [("hotspot_dwell", "W", "W", minute_ms(90))]
    engine.set_fleet(fleet(V1=["W", "L"]))
    later = feed(engine, stay("W", PAWN, range(95, 140)) + stay("L", PAWN, range(95, 140)))
    later += engine.advance(minute_ms(150))
    assert [a for a in later if a.type.value == "hotspot_dwell"] == []
