"""Per-tenant thresholds reach every rule of the catalogue (but the gps_jump gate): two cars
do the same, one of a tenant whose `[tenant.NAME.RULE]` table changes a threshold, and only
that car's alerts change. Unit overrides and loan-state tables take the same path
(`RuleBook.for_spec` -> each device's `Limits` -> `Rule.per_vehicle`)."""

from __future__ import annotations

from collections.abc import Sequence

from geofence import Fence
from pipeline.fleet import Fleet, Vehicle
from pipeline.thresholds import parse_rules
from tests.unit.pipeline.test_gathering_rule import fixes as gathering_fixes
from tests.unit.pipeline.tracks import (
    HOME,
    Fix,
    circle,
    drive,
    east,
    fences,
    minute_ms,
    of_type,
    run,
    stay,
)


def two_cars(
    track: Sequence[Fix],
    rules: str,
    kind: str,
    devices: Sequence[str] = ("W",),
    fence_list: Sequence[Fence] = (),
) -> dict[str, list[int]]:
    """`track` (of devices `devices`) done by car S (tenant `strict`: the rules' tables) and
    by car D (the defaults), each with devices of its own; the times of their `kind` alerts."""
    fixes: list[Fix] = []
    vehicles = []
    for car in ("S", "D"):
        fixes += [
            Fix(f"{car}{f.device}", f.minute, f.lon, f.lat, f.speed_kmh, f.alarm, f.status)
            for f in track
        ]
        tenant = "strict" if car == "S" else None
        vehicles.append(Vehicle(car, tuple(f"{car}{d}" for d in devices), tenant=tenant))
    fixes.sort(key=lambda f: (f.minute, f.device))
    found = of_type(run(fixes, fence_list, Fleet(tuple(vehicles)), rules=parse_rules(rules)), kind)
    return {car: [a.time_ms for a in found if a.vehicle_id == car] for car in ("S", "D")}


def test_tow() -> None:
    towed = stay("W", HOME, [0]) + drive("W", HOME, 30.0, [m / 2 for m in range(1, 13)])
    for f in towed:
        object.__setattr__(f, "status", 2)  # valid fix, ignition off
    found = two_cars(towed, "[tenant.strict.tow]\nspeed_kmh = 40\n", "tow")
    assert found["S"] == [] and len(found["D"]) == 1


def test_frozen_position() -> None:
    frozen = stay("W", HOME, range(25), status=3)  # ignition on, never moving
    found = two_cars(frozen, "[tenant.strict.frozen_position]\nfixes = 10\n", "frozen_position")
    assert found == {"S": [minute_ms(9)], "D": [minute_ms(19)]}


def test_partial_and_all_devices_offline() -> None:
    # W and L report together; L stops at minute 10, W at 120; X (another car) keeps time.
    track = stay("W", HOME, range(0, 121, 10)) + stay("L", HOME, range(0, 11, 10))
    rules = "[tenant.strict.partial_offline]\nafter_s = 1800\n"
    found = two_cars(track, rules, "partial_offline", devices=("W", "L"))
    assert found == {"S": [minute_ms(40)], "D": []}
    rules = "[tenant.strict.all_devices_offline]\nparked_after_s = 3600\n"
    clock = stay("X", HOME, range(0, 300, 30))
    found = two_cars(track + clock, rules, "all_devices_offline", devices=("W", "L"))
    assert found == {"S": [minute_ms(180)], "D": []}


def test_device_separation() -> None:
    apart = stay("W", HOME, range(0, 60, 2)) + stay("L", east(HOME, 1500), range(1, 60, 2))
    rules = "[tenant.strict.device_separation]\ndistance_m = 1000\n"
    found = two_cars(apart, rules, "device_separation", devices=("W", "L"))
    assert len(found["S"]) == 1 and found["D"] == []


def test_hotspot_repeat() -> None:
    pawn = east(HOME, 3000)
    track = (
        stay("W", HOME, [0, 1]) + stay("W", pawn, range(10, 30)) + stay("W", HOME, range(40, 50))
    )
    track += stay("W", pawn, range(100, 120)) + stay("W", HOME, range(130, 140))
    hotspot = fences(circle("pawn", "hotspot", pawn, 100))
    rules = "[tenant.strict.hotspot_repeat]\nvisits = 3\n"
    found = two_cars(track, rules, "hotspot_repeat", fence_list=hotspot)
    assert found["S"] == [] and len(found["D"]) == 1


def test_long_stay() -> None:
    # A night at home (16:00 local is minute 0), then 10 h parked 5 km away.
    track = stay("W", HOME, range(300, 960, 10)) + stay(
        "W", east(HOME, 5000), range(1000, 1600, 10)
    )
    found = two_cars(track, "[tenant.strict.long_stay]\nafter_s = 21600\n", "long_stay")
    assert found == {"S": [minute_ms(1360)], "D": []}


def test_gathering() -> None:
    """Four cars of four borrowers: places need five by default, three for the tenant."""
    cars = gathering_fixes(4)
    tenant = parse_rules("[tenant.strict.gathering]\ncars = 3\n")
    vehicles = sorted({f.device for f in cars})
    for name, found in (("strict", 1), (None, 0)):
        spec = Fleet(tuple(Vehicle(v, (v,), tenant=name) for v in vehicles))
        assert len(of_type(run(cars, fleet_spec=spec, rules=tenant), "gathering")) == found
    slow = parse_rules("[tenant.strict.gathering]\ncars = 3\nstop_s = 14400\n")
    spec = Fleet(tuple(Vehicle(v, (v,), tenant="strict") for v in vehicles))
    assert of_type(run(cars, fleet_spec=spec, rules=slow), "gathering") == []  # 3 h stays
