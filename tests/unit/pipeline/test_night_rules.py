"""`not_home` and `night_trips` through the engine, on hand-made tracks (T0 is 16:00 local:
a night runs from minute 360 to 900, plus 1440 per day)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.fleet import Fleet, Vehicle
from pipeline.thresholds import parse_rules
from tests.unit.pipeline.tracks import HOME, Fix, drive, east, fleet, minute_ms, of_type, run, stay

DAY = 1440
NIGHT = (360, 900)  # 22:00 to 07:00 local, in minutes after T0
AWAY = east(HOME, 5_000)


def nights(device: str, at: tuple[float, float], days: range) -> list[Fix]:
    """Parked at `at` through each night of `days` (a fix every 30 min)."""
    return [
        f for d in days for f in stay(device, at, range(d * DAY + NIGHT[0], d * DAY + NIGHT[1], 30))
    ]


def morning(device: str, at: tuple[float, float], day: int) -> list[Fix]:
    """A fix at 08:00 local after night `day`: it shows that night is over."""
    return stay(device, at, [day * DAY + NIGHT[1] + 60])


def at_night_end(day: int) -> int:
    return minute_ms(day * DAY + NIGHT[1])


def test_not_home_after_three_nights_away_dated_at_the_end_of_the_third() -> None:
    fixes = nights("W1", HOME, range(3)) + nights("W1", AWAY, range(3, 7))
    alerts = of_type(run(fixes), "not_home")
    assert [a.time_ms for a in alerts] == [at_night_end(5)]
    assert alerts[0].details["nights"] == 3
    assert alerts[0].severity == "medium"


def test_a_night_at_home_ends_the_incident_and_a_new_run_alerts_again() -> None:
    fixes = (
        nights("W1", HOME, range(3))
        + nights("W1", AWAY, range(3, 6))
        + nights("W1", HOME, range(6, 7))
        + nights("W1", AWAY, range(7, 10))
        + morning("W1", AWAY, 9)
    )
    alerts = of_type(run(fixes), "not_home")
    assert [a.time_ms for a in alerts] == [at_night_end(5), at_night_end(9)]


def test_nights_without_fixes_neither_count_nor_break_the_run() -> None:
    fixes = nights("W1", HOME, range(3)) + nights("W1", AWAY, range(3, 5))
    fixes += nights("W1", AWAY, range(7, 8)) + morning("W1", AWAY, 7)  # none on nights 5, 6
    assert [a.time_ms for a in of_type(run(fixes), "not_home")] == [at_night_end(7)]


def test_no_alert_before_a_home_is_learned_or_while_at_home() -> None:
    assert of_type(run(nights("W1", AWAY, range(5))), "not_home") == []
    assert of_type(run(nights("W1", HOME, range(8))), "not_home") == []


def test_two_devices_of_one_car_give_one_not_home() -> None:
    fixes = []
    for device in ("W1", "L1"):
        fixes += nights(device, HOME, range(3)) + nights(device, AWAY, range(3, 6))
        fixes += morning(device, AWAY, 5)
    alerts = of_type(
        run(sorted(fixes, key=lambda f: f.minute), fleet_spec=fleet(V1=["W1", "L1"])), "not_home"
    )
    assert len(alerts) == 1 and alerts[0].vehicle_id == "V1"


def trip(device: str, start_minute: float, minutes: int, speed: float = 60.0) -> list[Fix]:
    return drive(device, HOME, speed, [start_minute + m for m in range(minutes + 1)])


def test_night_trip_alerts_where_the_distance_passes_5_km() -> None:
    # 01:00 local is minute 540; at 60 km/h a km a minute: the 5th km is at minute 545.
    alerts = of_type(run(trip("W1", 540, 10)), "night_trips")
    assert [a.time_ms for a in alerts] == [minute_ms(545)]
    assert alerts[0].details["distance_m"] >= 5000


def test_day_trips_and_short_night_trips_do_not_alert() -> None:
    assert of_type(run(trip("W1", 60, 30)), "night_trips") == []  # 17:00 local
    assert of_type(run(trip("W1", 540, 3)), "night_trips") == []


def test_one_night_trips_alert_per_vehicle_and_night() -> None:
    fixes = trip("W1", 540, 10) + trip("W1", 600, 10) + trip("W1", 540 + DAY, 10)
    fixes += trip("L1", 550, 10)
    fixes.sort(key=lambda f: f.minute)
    alerts = of_type(run(fixes, fleet_spec=fleet(V1=["W1", "L1"])), "night_trips")
    assert [a.time_ms for a in alerts] == [minute_ms(545), minute_ms(545 + DAY)]


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=400))
def test_night_rules_do_not_depend_on_batch_cuts(batch_rows: int) -> None:
    fixes = nights("W1", HOME, range(3)) + nights("W1", AWAY, range(3, 7))
    fixes += trip("W2", 540, 10) + trip("W2", 545 + DAY, 12)
    fixes.sort(key=lambda f: f.minute)
    whole = [a for a in run(fixes) if a.type.value in {"not_home", "night_trips"}]
    cut = [
        a for a in run(fixes, batch_rows=batch_rows) if a.type.value in {"not_home", "night_trips"}
    ]
    assert cut == whole
    assert {a.type.value for a in whole} == {"not_home", "night_trips"}


TENANT_RULES = """
[tenant.strict.not_home]
nights = 2
[tenant.strict.night_trips]
distance_m = 2000
from_h = 1
"""


def test_a_tenants_thresholds_apply_to_its_cars_only() -> None:
    """W1 (tenant `strict`) and W2 (no tenant) do the same: 3 nights away, a night trip."""
    fixes = []
    for device in ("W1", "W2"):
        fixes += nights(device, HOME, range(3)) + nights(device, AWAY, range(3, 7))
        fixes += trip(device, 480 + 7 * DAY, 10)  # 00:00-00:10 local: 10 km
        fixes += trip(device, 540 + 8 * DAY, 3)  # 01:00-01:03 local: 3 km
    fixes.sort(key=lambda f: f.minute)
    spec = Fleet((Vehicle("W1", ("W1",), tenant="strict"), Vehicle("W2", ("W2",))))
    alerts = run(fixes, fleet_spec=spec, rules=parse_rules(TENANT_RULES))
    away = {a.vehicle_id: a.time_ms for a in of_type(alerts, "not_home")}
    assert away == {"W1": at_night_end(4), "W2": at_night_end(5)}  # 2 nights instead of 3
    trips = sorted((a.vehicle_id, a.time_ms) for a in of_type(alerts, "night_trips"))
    # W2's window opens at midnight (the 5 km come at 00:05); W1's at 01:00 and 2 km suffice.
    assert trips == [("W1", minute_ms(542 + 8 * DAY)), ("W2", minute_ms(485 + 7 * DAY))]
