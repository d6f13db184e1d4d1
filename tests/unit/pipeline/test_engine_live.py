"""The engine on the live path: batches as they come, timers on wall time via `advance`."""

from __future__ import annotations

from pipeline.csv_positions import read_positions_csv
from pipeline.engine import Engine
from pipeline.replay import to_batch
from tests.unit.pipeline.tracks import HOME, circle, csv_bytes, east, fences, fleet, minute_ms, stay

PAWN = east(HOME, 5_000)


def _engine() -> Engine:
    return Engine(fleet=fleet(V1=["W", "L"]), fences=fences(circle("pawn", "hotspot", PAWN, 100)))


def test_a_vehicle_alert_waiting_on_a_silent_unit_is_decided_once_it_is_late_enough() -> None:
    engine = _engine()
    fixes = stay("L", PAWN, [0]) + stay("W", PAWN, range(0, 41, 2))
    alerts = engine.process(to_batch(read_positions_csv(csv_bytes(fixes)), engine.devices))
    assert alerts == []  # the wireless unit has not reported past minute 30 yet
    assert engine.advance(minute_ms(35)) == []  # 10 minutes of lateness not yet over
    late = engine.advance(minute_ms(41))
    assert [(a.type.value, a.vehicle_id, a.time_ms) for a in late] == [
        ("hotspot_dwell", "V1", minute_ms(30))
    ]


def test_the_offline_timer_fires_on_wall_time_without_new_data() -> None:
    engine = _engine()
    engine.process(to_batch(read_positions_csv(csv_bytes(stay("W", HOME, [0]))), engine.devices))
    assert engine.advance(minute_ms(119)) == []
    fired = engine.advance(minute_ms(121))
    assert [(a.type.value, a.device_id, a.time_ms) for a in fired] == [
        ("offline", "W", minute_ms(120))
    ]
    assert engine.advance(minute_ms(200)) == []
