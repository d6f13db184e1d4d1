"""RULES.toml and FLEET.json: overrides per tenant and product, and errors naming the field."""

from __future__ import annotations

import pytest

from pipeline.fleet import Fleet, FleetError, Vehicle, parse_fleet
from pipeline.thresholds import RulesError, parse_rules
from tests.unit.pipeline.tracks import HOME, minute_ms, of_type, run, stay

RULES = b"""
[offline]
after_s = 3600
[tenant.acme.offline]
after_s = 1800
[product.truck.offline]
after_s = 600
"""


def test_product_overrides_win_over_tenant_overrides_over_the_files_defaults() -> None:
    book = parse_rules(RULES)
    assert book.defaults.offline_after_s == 3600
    assert book.for_vehicle("acme", None).offline_after_s == 1800
    assert book.for_vehicle("acme", "truck").offline_after_s == 600
    assert book.for_vehicle(None, None).overspeed_speed_kmh == 120


def test_each_vehicle_gets_its_own_thresholds_in_the_engine() -> None:
    fleet = Fleet((Vehicle("V1", ("A",), tenant="acme"), Vehicle("V2", ("B",))))
    fixes = stay("A", HOME, [0, 40]) + stay("B", HOME, [0, 40, 100])
    alerts = run(fixes, fleet_spec=fleet, rules=parse_rules(RULES))
    assert [(a.vehicle_id, a.time_ms) for a in of_type(alerts, "offline")] == [
        ("V1", minute_ms(30)),
        ("V1", minute_ms(70)),
        ("V2", minute_ms(100)),
    ]
    assert of_type(run(fixes), "offline") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"[overspeed]\nspeed = 1\n", "r.toml: field overspeed.speed: unknown threshold"),
        (b"[offline]\nafter_s = -1\n", "r.toml: field offline.after_s: expected a number >= 0"),
        (b"[offline\n", "r.toml: field document: not valid TOML"),
    ],
)
def test_a_bad_rules_file_names_the_field(text: bytes, message: str) -> None:
    with pytest.raises(RulesError, match=message.replace(".", r"\.")):
        parse_rules(text, "r.toml")


def test_fleet_file_errors_name_the_field_and_a_device_belongs_to_one_vehicle() -> None:
    doc = b'{"vehicles": [{"vehicle_id": "V1", "devices": ["A"]},'
    doc += b' {"vehicle_id": "V2", "devices": ["A"]}]}'
    with pytest.raises(FleetError, match=r"vehicles\[1\]\.devices: device A already belongs to V1"):
        parse_fleet(doc, "f.json")
    with pytest.raises(FleetError, match=r"f\.json: field vehicles\[0\]\.vehicle_id"):
        parse_fleet(b'{"vehicles": [{"devices": []}]}', "f.json")
    fleet = parse_fleet(
        b'{"vehicles": [{"vehicle_id": "V1", "devices": ["A", "B"], "allowed_area": "city"}]}'
    )
    assert fleet.vehicles == (Vehicle("V1", ("A", "B"), "city"),)
