"""Rule thresholds: contract defaults, overridden by RULES.toml, per tenant and per product.

RULES.toml has one table per rule name (`[overspeed] speed_kmh = 110`); `[tenant.NAME.RULE]` and
`[product.NAME.RULE]` tables override them for the vehicles of that tenant or product, and
`[loan_state.STATE.RULE]` tables for the cars whose open loan is in that state (`overdue`:
watched more closely). The organization units a car belongs to (its unit and those above it)
may carry their own overrides, stored with the units (`unit_overrides` validates them; the
composition root hands each car the merged result, `Vehicle.unit_rules`). Loan state wins
over the units, the units over product, product over tenant, tenant over the file's defaults.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from typing import Any

from pipeline.fleet import Vehicle

MINUTE_S = 60
HOUR_S = 3600


class RulesError(ValueError):
    """The rules file is unusable; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every tunable number, named `<rule>.<key>` in RULES.toml."""

    overspeed_speed_kmh: float = 120.0
    overspeed_duration_s: float = 60.0
    offline_after_s: float = 2 * HOUR_S
    hotspot_dwell_after_s: float = 30 * MINUTE_S
    hotspot_dwell_critical_after_s: float = 24 * HOUR_S
    device_separation_distance_m: float = 2000.0
    device_separation_duration_s: float = 30 * MINUTE_S
    device_separation_window_s: float = 10 * MINUTE_S
    gps_jump_speed_kmh: float = 250.0
    gps_jump_reanchor_fixes: float = 3
    partial_offline_after_s: float = 2 * HOUR_S
    hotspot_repeat_visits: float = 2
    hotspot_repeat_window_s: float = 7 * 24 * HOUR_S
    all_devices_offline_after_s: float = 6 * HOUR_S
    all_devices_offline_parked_after_s: float = 24 * HOUR_S
    long_stay_after_s: float = 72 * HOUR_S
    long_stay_radius_m: float = 1000.0
    tow_speed_kmh: float = 20.0
    tow_duration_s: float = 2 * MINUTE_S
    tow_distance_m: float = 500.0
    frozen_position_fixes: float = 20
    frozen_position_speed_kmh: float = 5.0


RULES = (
    "all_devices_offline",
    "device_separation",
    "frozen_position",
    "gps_jump",
    "hotspot_dwell",
    "hotspot_repeat",
    "long_stay",
    "offline",
    "overspeed",
    "partial_offline",
    "tow",
)


def _keys() -> dict[tuple[str, str], str]:
    """(rule, key) as written in RULES.toml -> Thresholds field; the longest rule name wins."""
    keys: dict[tuple[str, str], str] = {}
    for f in fields(Thresholds):
        rule = max((r for r in RULES if f.name.startswith(r + "_")), key=len)
        keys[(rule, f.name.removeprefix(rule + "_"))] = f.name
    return keys


_KEYS = _keys()
# (rule, key) pairs as RULES.toml and a unit's overrides name them.
RULE_KEYS: tuple[tuple[str, str], ...] = tuple(sorted(_KEYS))


@dataclass(frozen=True, slots=True)
class RuleBook:
    """Defaults plus per-tenant, per-product and per-loan-state overrides, resolved per
    vehicle. No loan-state overrides unless RULES.toml has them."""

    defaults: Thresholds = Thresholds()
    tenants: tuple[tuple[str, dict[str, float]], ...] = ()
    products: tuple[tuple[str, dict[str, float]], ...] = ()
    loan_states: tuple[tuple[str, dict[str, float]], ...] = ()

    def for_vehicle(
        self, tenant: str | None, product: str | None, loan_state: str | None = None
    ) -> Thresholds:
        chosen = self.defaults
        for name, table in (
            (tenant, self.tenants),
            (product, self.products),
            (loan_state, self.loan_states),
        ):
            for key, overrides in table:
                if key == name:
                    chosen = replace(chosen, **overrides)
        return chosen

    def for_spec(self, spec: Vehicle | None) -> Thresholds:
        """A fleet entry's thresholds (the defaults for a vehicle the fleet does not list)."""
        if spec is None:
            return self.defaults
        chosen = self.for_vehicle(spec.tenant, spec.product)
        if spec.unit_rules:
            chosen = replace(chosen, **dict(spec.unit_rules))
        for key, overrides in self.loan_states:
            if key == spec.loan_state:
                chosen = replace(chosen, **overrides)
        return chosen


def parse_rules(data: bytes | str, source: str = "rules.toml") -> RuleBook:
    try:
        text = data.decode() if isinstance(data, bytes) else data
        document = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(f"{source}: field document: not valid TOML: {exc}") from None
    tenants = document.pop("tenant", {})
    products = document.pop("product", {})
    loan_states = document.pop("loan_state", {})
    defaults = replace(Thresholds(), **_overrides(document, source, ""))
    # Imported here: only a rules file needs the loan states (replay's start is spared them).
    from loans import LoanState

    for state, _ in _tables(loan_states, source, "loan_state"):
        if state not in {s.value for s in LoanState}:
            known = ", ".join(s.value for s in LoanState)
            raise RulesError(
                f"{source}: field loan_state.{state}: unknown loan state (one of {known})"
            )
    return RuleBook(
        defaults,
        tuple(
            (k, _overrides(v, source, f"tenant.{k}."))
            for k, v in _tables(tenants, source, "tenant")
        ),
        tuple(
            (k, _overrides(v, source, f"product.{k}."))
            for k, v in _tables(products, source, "product")
        ),
        tuple(
            (k, _overrides(v, source, f"loan_state.{k}."))
            for k, v in _tables(loan_states, source, "loan_state")
        ),
    )


def unit_overrides(document: Any, source: str = "rules") -> dict[str, float]:
    """A unit's overrides as the API takes them (`{"overspeed": {"speed_kmh": 110}}`, the
    tables of RULES.toml) -> Thresholds field values; RulesError naming the field."""
    return _overrides(document, source, "")


def _tables(value: Any, source: str, name: str) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        raise RulesError(f"{source}: field {name}: expected tables")
    return sorted(value.items())


def _overrides(document: Any, source: str, prefix: str) -> dict[str, float]:
    if not isinstance(document, dict):
        raise RulesError(f"{source}: field {prefix.rstrip('.')}: expected a table")
    out: dict[str, float] = {}
    for rule, table in document.items():
        if not isinstance(table, dict):
            raise RulesError(f"{source}: field {prefix}{rule}: expected a table of thresholds")
        for key, value in table.items():
            name = _KEYS.get((rule, key))
            if name is None:
                raise RulesError(f"{source}: field {prefix}{rule}.{key}: unknown threshold")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise RulesError(f"{source}: field {prefix}{rule}.{key}: expected a number >= 0")
            out[name] = float(value)
    return out
