"""FLEET.json (contracts section 3): which devices make one vehicle, and its allowed area.

Optional `tenant` and `product` keys on a vehicle select threshold overrides (RULES.toml);
an optional `borrower` names who owes its loan (`gathering` counts different borrowers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass


class FleetError(ValueError):
    """The fleet file is unusable; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Vehicle:
    vehicle_id: str
    devices: tuple[str, ...]
    allowed_area: str | None = None
    tenant: str | None = None
    product: str | None = None
    # The state of the car's open loan (the worst of several): selects `[loan_state.*]`
    # threshold overrides. Read from the store live; not a FLEET.json key.
    loan_state: str | None = None
    # Threshold overrides of the organization units the car belongs to, merged from the
    # platform down (`table.key` setting, value). Read from the store live; not a FLEET.json key.
    unit_rules: tuple[tuple[str, float], ...] = ()
    # Who owes the loan (FLEET.json `borrower`; absent: the vehicle is its own borrower):
    # `gathering` counts cars of different borrowers.
    borrower: str | None = None


@dataclass(frozen=True, slots=True)
class Fleet:
    vehicles: tuple[Vehicle, ...] = ()

    def by_device(self) -> dict[str, Vehicle]:
        return {device: v for v in self.vehicles for device in v.devices}


def parse_fleet(data: bytes | str, source: str = "fleet.json") -> Fleet:
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        raise FleetError(f"{source}:{line}: field document: not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("vehicles"), list):
        raise FleetError(f"{source}:1: field vehicles: expected an object with a vehicles list")
    vehicles: list[Vehicle] = []
    owner: dict[str, str] = {}
    for i, item in enumerate(document["vehicles"]):
        where = f"{source}: field vehicles[{i}]"
        if not isinstance(item, dict):
            raise FleetError(f"{where}: expected an object")
        vehicle_id = item.get("vehicle_id")
        if not isinstance(vehicle_id, str) or not vehicle_id:
            raise FleetError(f"{where}.vehicle_id: expected a non-empty string")
        devices = item.get("devices", [])
        if not isinstance(devices, list) or not all(isinstance(d, str) and d for d in devices):
            raise FleetError(f"{where}.devices: expected a list of device id strings")
        for device in devices:
            if device in owner:
                raise FleetError(
                    f"{where}.devices: device {device} already belongs to {owner[device]}"
                )
            owner[device] = vehicle_id
        extras: dict[str, str | None] = {}
        for key in ("allowed_area", "tenant", "product", "borrower"):
            value = item.get(key)
            if value is not None and not isinstance(value, str):
                raise FleetError(f"{where}.{key}: expected a string or null")
            extras[key] = value
        vehicles.append(
            Vehicle(
                vehicle_id,
                tuple(devices),
                extras["allowed_area"],
                extras["tenant"],
                extras["product"],
                borrower=extras["borrower"],
            )
        )
    return Fleet(tuple(vehicles))
