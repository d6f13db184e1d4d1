"""One rule shape: settings come from the rules' declarations, RULES.toml tables from them."""

from __future__ import annotations

import pytest

from pipeline.engine import Engine
from pipeline.rules.catalogue import RULE_CLASSES, SETTINGS, Thresholds
from pipeline.thresholds import RulesError, parse_rules


def test_rule_names_and_settings_are_unique_and_every_default_is_a_threshold() -> None:
    names = [r.name for r in RULE_CLASSES]
    assert len(names) == len(set(names))
    declared = [s.name for r in RULE_CLASSES for s in r.settings]
    assert len(declared) == len(set(declared)) == len(SETTINGS)
    defaults = Thresholds()
    for setting in SETTINGS.values():
        assert defaults.get(setting.table, setting.key) == setting.default


def test_the_old_attribute_names_still_read_the_thresholds() -> None:
    t = Thresholds({"overspeed.speed_kmh": 100})
    assert t.overspeed_speed_kmh == 100 and t.offline_after_s == 7200
    assert t.hotspot_dwell_critical_after_s == 86400 and t.gathering_cars == 5
    with pytest.raises(AttributeError):
        _ = t.no_such_threshold


def test_new_rules_read_their_tables_from_rules_toml() -> None:
    book = parse_rules("[gathering]\ncars = 8\n[not_home]\nnights = 5\n[night_trips]\nto_h = 4\n")
    engine = Engine(rules=book)
    assert engine.rule("gathering").finder.settings.cars == 8  # type: ignore[attr-defined]
    assert engine.rule("not_home").rule.settings.nights == 5  # type: ignore[attr-defined]
    assert engine.rule("night_trips").rule.settings.to_h == 4  # type: ignore[attr-defined]
    with pytest.raises(RulesError, match=r"gathering\.borrowers: unknown threshold"):
        parse_rules("[gathering]\nborrowers = 3\n")


def test_per_vehicle_settings_are_the_ones_tenant_tables_change() -> None:
    """Every threshold but the glitch gate's (it decides which fixes every rule sees, before
    any vehicle's rules run) is a vehicle's own (tests/unit/pipeline/test_tenant_thresholds)."""
    fixed = {name for name, s in SETTINGS.items() if not s.per_vehicle}
    assert fixed == {"gps_jump.speed_kmh", "gps_jump.reanchor_fixes"}
