"""Rule thresholds: the rules' declared defaults (pipeline.rules), overridden by RULES.toml,
per tenant and per product.

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
from dataclasses import dataclass, field
from typing import Any

from pipeline.fleet import Vehicle
from pipeline.rules.catalogue import SETTINGS, Thresholds

__all__ = ["SETTINGS", "RuleBook", "RulesError", "Thresholds", "parse_rules"]


class RulesError(ValueError):
    """The rules file is unusable; the message names the file and the field."""


def _keys() -> dict[tuple[str, str], str]:
    """(table, key) as written in RULES.toml -> the setting's full name."""
    return {(s.table, s.key): name for name, s in SETTINGS.items()}


_KEYS = _keys()
# (rule, key) pairs as RULES.toml and a unit's overrides name them.
RULE_KEYS: tuple[tuple[str, str], ...] = tuple(sorted(_KEYS))


@dataclass(frozen=True, slots=True)
class RuleBook:
    """Defaults plus per-tenant, per-product and per-loan-state overrides, resolved per
    vehicle. No loan-state overrides unless RULES.toml has them."""

    defaults: Thresholds = field(default_factory=Thresholds)
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
                    chosen = chosen.with_values(overrides)
        return chosen

    def for_spec(self, spec: Vehicle | None) -> Thresholds:
        """A fleet entry's thresholds (the defaults for a vehicle the fleet does not list)."""
        if spec is None:
            return self.defaults
        chosen = self.for_vehicle(spec.tenant, spec.product)
        if spec.unit_rules:
            chosen = chosen.with_values(dict(spec.unit_rules))
        for key, overrides in self.loan_states:
            if key == spec.loan_state:
                chosen = chosen.with_values(overrides)
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
    defaults = Thresholds(_overrides(document, source, ""))
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
    tables of RULES.toml) -> `table.key` setting values; RulesError naming the field."""
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
