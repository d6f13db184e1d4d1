"""`hotspot_dwell_critical`: the dwell incident escalated after 24 h; `hotspot_dwell` unchanged."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.model import Alert
from geofence import Fence
from pipeline.csv_positions import read_positions_csv
from pipeline.engine import Engine
from pipeline.replay import to_batch
from pipeline.thresholds import parse_rules
from tests.unit.pipeline.tracks import (
    HOME,
    Fix,
    circle,
    csv_bytes,
    east,
    fences,
    fleet,
    minute_ms,
    of_type,
    run,
    stay,
)

PAWN = east(HOME, 5_000)
DAY = 24 * 60
PARKED = 2  # positioned, ACC off


def pawn() -> list[Fence]:
    return fences(circle("pawn-17", "hotspot", PAWN, 100))


def critical(alerts: Sequence[Alert]) -> list[tuple[str, int]]:
    return [(a.vehicle_id, a.time_ms) for a in of_type(alerts, "hotspot_dwell_critical")]


def parked(device: str, at: tuple[float, float], minutes: range | list[float]) -> list[Fix]:
    return stay(device, at, minutes, status=PARKED)


def test_a_25_hour_stay_raises_the_dwell_then_the_critical_alert() -> None:
    fixes = parked("D1", HOME, [0]) + parked("D1", PAWN, range(10, 25 * 60, 30))
    alerts = run(fixes, pawn())
    dwell = of_type(alerts, "hotspot_dwell")
    assert [(a.time_ms, a.severity) for a in dwell] == [(minute_ms(40), "high")]
    escalated = of_type(alerts, "hotspot_dwell_critical")
    assert [(a.time_ms, a.severity, a.fence_id) for a in escalated] == [
        (minute_ms(10 + DAY), "critical", "pawn-17")
    ]
    assert escalated[0].details == {"entered": dwell[0].details["entered"], "dwell_s": 86_400}


def test_a_23_hour_stay_is_not_critical() -> None:
    fixes = parked("D1", PAWN, range(0, 23 * 60, 30)) + parked("D1", HOME, range(1400, 1600, 30))
    alerts = run(fixes, pawn())
    assert len(of_type(alerts, "hotspot_dwell")) == 1
    assert critical(alerts) == []


def test_an_exit_confirmed_after_the_deadline_is_the_evidence() -> None:
    # Last fix inside at 23.5 h; the exit, dated by its first fix at 24.5 h, is after 24 h.
    fixes = parked("D1", PAWN, range(0, 23 * 60 + 31, 30))
    fixes += parked("D1", HOME, [24.5 * 60, 24.6 * 60])
    assert critical(run(fixes, pawn())) == [("D1", minute_ms(DAY))]


def test_a_stay_still_open_at_the_end_of_the_file_escalates_by_the_clock() -> None:
    fixes = parked("D1", PAWN, range(0, 20 * 60, 60)) + parked("D2", HOME, range(0, 30 * 60, 60))
    fixes.sort(key=lambda f: f.minute)
    assert critical(run(fixes, pawn())) == [("D1", minute_ms(DAY))]


def test_the_clock_escalates_live_without_new_fixes() -> None:
    engine = Engine(fences=pawn())
    rows = read_positions_csv(csv_bytes(parked("D1", PAWN, [0, 1, 2])))
    engine.process(to_batch(rows, engine.devices))
    assert critical(engine.advance(minute_ms(DAY) - 1)) == []
    assert critical(engine.advance(minute_ms(DAY) + engine.lateness_ms)) == [("D1", minute_ms(DAY))]


def test_two_units_in_the_spot_make_one_critical_vehicle_incident() -> None:
    fixes = parked("W", PAWN, range(0, 26 * 60, 20)) + parked("L", PAWN, range(5, 26 * 60, 45))
    fixes.sort(key=lambda f: f.minute)
    alerts = run(fixes, pawn(), fleet(V1=["W", "L"]))
    assert critical(alerts) == [("V1", minute_ms(DAY))]
    assert len(of_type(alerts, "hotspot_dwell")) == 1


def test_each_long_stay_is_its_own_incident_and_a_stray_fix_does_not_split_one() -> None:
    first = parked("D1", PAWN, range(0, 25 * 60, 30))
    stray = parked("D1", HOME, [25 * 60 + 10])  # one fix outside: no confirmed exit
    first += stray + parked("D1", PAWN, range(25 * 60 + 20, 26 * 60, 30))
    away = parked("D1", HOME, range(27 * 60, 28 * 60, 30))
    second = parked("D1", PAWN, range(30 * 60, 56 * 60, 30))
    alerts = run(first + away + second, pawn())
    assert critical(alerts) == [("D1", minute_ms(DAY)), ("D1", minute_ms(30 * 60 + DAY))]


def test_invalid_fixes_inside_never_extend_a_stay() -> None:
    fixes = parked("D1", PAWN, range(0, 10 * 60, 30)) + parked("D1", HOME, [601, 602])
    fixes += stay("D1", PAWN, range(620, 30 * 60, 30), status=0)  # not positioned
    assert critical(run(fixes, pawn())) == []


def test_any_split_into_batches_gives_the_same_critical_alerts() -> None:
    fixes = parked("W", PAWN, range(0, 26 * 60, 40)) + parked("L", HOME, range(0, 26 * 60, 55))
    fixes += parked("L", PAWN, range(26 * 60, 27 * 60, 10))
    fixes.sort(key=lambda f: f.minute)
    whole = critical(run(fixes, pawn(), fleet(V1=["W", "L"])))
    assert whole == [("V1", minute_ms(DAY))]
    for rows in (1, 2, 5):
        assert critical(run(fixes, pawn(), fleet(V1=["W", "L"]), batch_rows=rows)) == whole


def test_rules_toml_sets_the_critical_threshold_and_keeps_it_after_the_dwell() -> None:
    fixes = parked("D1", PAWN, range(0, 5 * 60, 10))
    rules = parse_rules("[hotspot_dwell]\ncritical_after_s = 7200\n")
    assert critical(run(fixes, pawn(), rules=rules)) == [("D1", minute_ms(120))]
    # A critical threshold below the dwell's own escalates at the dwell, never before it.
    early = parse_rules("[hotspot_dwell]\nafter_s = 3600\ncritical_after_s = 600\n")
    alerts = run(fixes, pawn(), rules=early)
    assert critical(alerts) == [("D1", minute_ms(60))]
    assert [a.time_ms for a in of_type(alerts, "hotspot_dwell")] == [minute_ms(60)]
