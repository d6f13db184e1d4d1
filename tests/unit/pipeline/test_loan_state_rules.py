"""`[loan_state.STATE.RULE]` overrides in RULES.toml: parsing, precedence over product and tenant,
and the engine watching a car with an overdue loan more closely than the others."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from alerts.model import Alert
from loans import LoanState
from pipeline.csv_positions import read_positions_csv
from pipeline.engine import Engine
from pipeline.fleet import Fleet, Vehicle
from pipeline.live import fleet_from_devices
from pipeline.replay import to_batch
from pipeline.thresholds import RuleBook, RulesError, Thresholds, parse_rules
from store.interface import Device
from tests.unit.pipeline.tracks import HOME, Fix, csv_bytes, minute_ms, of_type, run, stay

RULES = b"""
[offline]
after_s = 3600
[tenant.acme.offline]
after_s = 1800
[product.truck.offline]
after_s = 1200
[loan_state.overdue.offline]
after_s = 600
[loan_state.overdue.overspeed]
speed_kmh = 100
"""


def test_loan_state_overrides_win_over_product_over_tenant_over_defaults() -> None:
    book = parse_rules(RULES)
    assert book.for_vehicle(None, None).offline_after_s == 3600
    assert book.for_vehicle("acme", None).offline_after_s == 1800
    assert book.for_vehicle("acme", "truck").offline_after_s == 1200
    assert book.for_vehicle("acme", "truck", "overdue").offline_after_s == 600
    assert book.for_vehicle(None, None, "overdue").overspeed_speed_kmh == 100
    # Only the state named: an active loan keeps the others' thresholds.
    assert book.for_vehicle("acme", "truck", "active").offline_after_s == 1200
    assert book.for_vehicle(None, None, "active").overspeed_speed_kmh == 120


def test_without_loan_state_tables_an_overdue_car_keeps_the_defaults() -> None:
    assert RuleBook().for_vehicle(None, None, "overdue") == Thresholds()
    book = parse_rules(b"[offline]\nafter_s = 3600\n")
    assert book.loan_states == ()
    assert book.for_vehicle(None, None, "overdue") == book.defaults


def test_for_spec_reads_the_fleet_entry() -> None:
    book = parse_rules(RULES)
    assert book.for_spec(None) == book.defaults
    spec = Vehicle("V1", ("A",), tenant="acme", loan_state="overdue")
    assert book.for_spec(spec).offline_after_s == 600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            b"[loan_state.overdu.offline]\nafter_s = 1\n",
            "r.toml: field loan_state.overdu: unknown loan state",
        ),
        (
            b"[loan_state.overdue.offline]\nafter = 1\n",
            "r.toml: field loan_state.overdue.offline.after: unknown threshold",
        ),
        (
            b"[loan_state.overdue.offline]\nafter_s = -5\n",
            "r.toml: field loan_state.overdue.offline.after_s: expected a number >= 0",
        ),
        (b"loan_state = 3\n", "r.toml: field loan_state: expected tables"),
        (b"[loan_state]\noverdue = 3\n", "r.toml: field loan_state.overdue: expected a table"),
    ],
)
def test_a_bad_loan_state_table_names_the_field(text: bytes, message: str) -> None:
    with pytest.raises(RulesError, match=message.replace(".", r"\.")):
        parse_rules(text, "r.toml")


def test_the_lower_threshold_applies_to_the_overdue_car_only() -> None:
    fleet = Fleet((Vehicle("V1", ("A",), loan_state="overdue"), Vehicle("V2", ("B",))))
    fixes = stay("A", HOME, [0, 40]) + stay("B", HOME, [0, 70, 80])
    alerts = run(fixes, fleet_spec=fleet, rules=parse_rules(RULES))
    assert [(a.vehicle_id, a.time_ms) for a in of_type(alerts, "offline")] == [
        ("V1", minute_ms(10)),
        ("V1", minute_ms(50)),
        ("V2", minute_ms(60)),
    ]


def feed(engine: Engine, fixes: Sequence[Fix]) -> list[Alert]:
    return engine.process(to_batch(read_positions_csv(csv_bytes(fixes)), engine.devices))


def test_a_car_falling_overdue_live_gets_the_lower_threshold_from_the_next_swap() -> None:
    active = Fleet((Vehicle("V1", ("A",), loan_state="active"),))
    engine = Engine(fleet=active, rules=parse_rules(RULES))
    feed(engine, stay("A", HOME, [0]))
    assert engine.advance(minute_ms(20)) == []
    engine.set_fleet(Fleet((Vehicle("V1", ("A",), loan_state="overdue"),)))
    alerts = engine.advance(minute_ms(21))
    assert [(a.type.value, a.vehicle_id, a.time_ms) for a in alerts] == [
        ("offline", "V1", minute_ms(10))
    ]


def test_fleet_from_devices_gives_each_car_its_loan_state() -> None:
    devices = [
        Device("A", vehicle_id="V1"),
        Device("B", vehicle_id="V1"),
        Device("C", vehicle_id="V2"),
    ]
    fleet = fleet_from_devices(devices, {"V1": LoanState.OVERDUE, "V9": "active"})
    assert fleet.vehicles == (
        Vehicle("V1", ("A", "B"), loan_state="overdue"),
        Vehicle("V2", ("C",)),
    )
    assert fleet_from_devices(devices).vehicles[0].loan_state is None
