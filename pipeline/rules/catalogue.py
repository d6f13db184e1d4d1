"""The engine's rules in the order it runs them, and the thresholds their settings make.

The order is the order alerts of one batch come out in (and edges reach the incident merger),
kept from before rules had one shape so that a replay gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.rules.base import Rule, Setting
from pipeline.rules.device import (
    AntennaCut,
    FrozenPosition,
    GpsJump,
    Offline,
    Overspeed,
    PowerCut,
    Tow,
)
from pipeline.rules.fences import Fences
from pipeline.rules.gathering import Gathering
from pipeline.rules.nights import NightTrips, NotHome
from pipeline.rules.places import LongStay
from pipeline.rules.vehicle import Separation, VehicleSilences

RULE_CLASSES: tuple[type[Rule], ...] = (
    GpsJump,
    Offline,
    PowerCut,
    AntennaCut,
    Overspeed,
    Tow,
    FrozenPosition,
    Fences,
    LongStay,
    VehicleSilences,
    Separation,
    NotHome,
    NightTrips,
    Gathering,
)

SETTINGS: dict[str, Setting] = {s.name: s for rule in RULE_CLASSES for s in rule.settings}
# `rule_key` attribute names (Thresholds.offline_after_s): the names of the one dataclass the
# thresholds were before rules declared them.
_FLAT = {f"{s.table}_{s.key}": s.name for s in SETTINGS.values()}


class Thresholds:
    """Every rule setting's value, by `table.key` (defaults from the rules' declarations)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, float] | None = None) -> None:
        resolved = {name: float(s.default) for name, s in SETTINGS.items()}
        for name, value in (values or {}).items():
            if name not in resolved:
                raise KeyError(f"unknown setting {name}")
            resolved[name] = float(value)
        self._values = resolved

    def get(self, table: str, key: str) -> float:
        return self._values[f"{table}.{key}"]

    def with_values(self, values: Mapping[str, float]) -> Thresholds:
        return Thresholds({**self._values, **values})

    def as_dict(self) -> dict[str, float]:
        return dict(self._values)

    def __getattr__(self, name: str) -> float:
        full = _FLAT.get(name)
        if full is None:
            raise AttributeError(name)
        return self._values[full]

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Thresholds) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        return f"Thresholds({self._values!r})"
