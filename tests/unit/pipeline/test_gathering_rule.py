"""`gathering` through the engine: cars with a learned home parking hours at one place."""

from __future__ import annotations

from pipeline.fleet import Fleet, Vehicle
from pipeline.live import fleet_from_devices
from store.interface import Device
from tests.unit.pipeline.tracks import HOME, Fix, circle, east, fences, of_type, run, stay

DAY = 1440
SPOT = east(HOME, -8_000)


def car(n: int) -> list[Fix]:
    """Car n: home 1 km apart from the others', a night there, then 3 h at the spot on day 1."""
    home = (HOME[0], HOME[1] + 0.01 * n)
    device = f"W{n}"
    fixes = stay(device, home, range(300, 960, 10))  # the first night at home
    fixes += stay(device, SPOT, range(DAY + 600 + 20 * n, DAY + 780 + 20 * n, 5))
    fixes += stay(device, home, range(DAY + 800 + 20 * n, DAY + 900 + 20 * n, 10))
    return fixes


def fixes(cars: int) -> list[Fix]:
    return sorted((f for n in range(cars) for f in car(n)), key=lambda f: f.minute)


def test_five_borrowers_parking_at_an_unknown_place_propose_it() -> None:
    [alert] = of_type(run(fixes(6)), "gathering")
    assert alert.details["borrowers"] == 5 and alert.vehicle_id == "W4"
    assert abs(alert.details["lon"] - SPOT[0]) < 1e-4
    assert {v["vehicle_id"] for v in alert.details["visits"]} == {f"W{n}" for n in range(5)}


def test_a_hotspot_there_or_too_few_borrowers_propose_nothing() -> None:
    assert of_type(run(fixes(6), fences(circle("pawn", "hotspot", SPOT, 100))), "gathering") == []
    assert of_type(run(fixes(4)), "gathering") == []
    one_borrower = Fleet(tuple(Vehicle(f"W{n}", (f"W{n}",), borrower="B") for n in range(6)))
    assert of_type(run(fixes(6), fleet_spec=one_borrower), "gathering") == []


def test_the_same_spot_for_any_batch_size() -> None:
    whole = of_type(run(fixes(6)), "gathering")
    for rows in (1, 17, 100):
        assert of_type(run(fixes(6), batch_rows=rows), "gathering") == whole


def test_live_cars_of_one_loans_borrower_count_once() -> None:
    """The live fleet names each car's borrower from its loan (`Store.loan_borrowers`): two
    cars of one borrower are one borrower's evidence; a car with no loan is its own."""
    devices = [Device(f"W{n}", vehicle_id=f"W{n}") for n in range(6)]
    shared = {"W0": "borrower:7", "W1": "borrower:7"}
    [alert] = of_type(run(fixes(6), fleet_spec=fleet_from_devices(devices, borrowers=shared)),
                      "gathering")  # fmt: skip
    assert alert.details["borrowers"] == 5 and alert.vehicle_id == "W5"
    assert {v["borrower"] for v in alert.details["visits"]} >= {"borrower:7", "W5"}
    five = fleet_from_devices(devices[:5], borrowers=shared)
    assert of_type(run(fixes(5), fleet_spec=five), "gathering") == []
