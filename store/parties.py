"""Cars and borrowers as records (`loans.parties`), of organization units. SQL written once for
both databases (`store.statements`); `store.scoped` checks the caller's subtree around it."""

from __future__ import annotations

from typing import Any

from loans import Borrower, Vehicle
from organizations import Scope
from store.orgs import scope_condition
from store.statements import StatementRunner

_VEHICLE_FIELDS = "vehicle_id, org_id, vin, plate, make, model, colour, dealer_id"
_BORROWER_FIELDS = "id, org_id, name, id_number, phone, created_ms"


def _vehicle(row: tuple[Any, ...] | list[Any]) -> Vehicle:
    vehicle_id, org, vin, plate, make, model, colour, dealer = row
    return Vehicle(
        str(vehicle_id), int(org), vin, plate, make, model, colour,
        None if dealer is None else int(dealer),
    )  # fmt: skip


def _borrower(row: tuple[Any, ...] | list[Any]) -> Borrower:
    i, org, name, id_number, phone, created = row
    return Borrower(int(i), int(org), str(name), id_number, phone, int(created))


def get_vehicle(runner: StatementRunner, vehicle_id: str) -> Vehicle | None:
    rows = runner._run(
        "read vehicle",
        f"SELECT {_VEHICLE_FIELDS} FROM vehicles WHERE vehicle_id = ?",
        (vehicle_id,),
    ).rows
    return _vehicle(rows[0]) if rows else None


def put_vehicle(runner: StatementRunner, vehicle: Vehicle) -> None:
    """Creates the car or replaces its fields (its unit included)."""
    runner._run(
        "write vehicle",
        "INSERT INTO vehicles (vehicle_id, org_id, vin, plate, make, model, colour, dealer_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (vehicle_id) DO UPDATE SET"
        " org_id = excluded.org_id, vin = excluded.vin, plate = excluded.plate,"
        " make = excluded.make, model = excluded.model, colour = excluded.colour,"
        " dealer_id = excluded.dealer_id",
        (
            vehicle.vehicle_id,
            vehicle.org,
            vehicle.vin,
            vehicle.plate,
            vehicle.make,
            vehicle.model,
            vehicle.colour,
            vehicle.dealer,
        ),
    )


def find_vehicles(runner: StatementRunner, scope: Scope, after: str, limit: int) -> list[Vehicle]:
    where, params = "vehicle_id > ?", [after]
    within, scope_params = scope_condition(scope)
    if within is not None:
        where, params = f"{where} AND {within}", [*params, *scope_params]
    rows = runner._run(
        "list vehicles",
        f"SELECT {_VEHICLE_FIELDS} FROM vehicles WHERE {where} ORDER BY vehicle_id LIMIT ?",
        (*params, limit),
    ).rows
    return [_vehicle(r) for r in rows]


def add_borrower(runner: StatementRunner, borrower: Borrower) -> Borrower:
    row = runner._run(
        "create borrower",
        "INSERT INTO borrowers (org_id, name, id_number, phone, created_ms)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (borrower.org, borrower.name, borrower.id_number, borrower.phone, borrower.created_ms),
    ).rows[0]
    return Borrower(
        int(row[0]),
        borrower.org,
        borrower.name,
        borrower.id_number,
        borrower.phone,
        borrower.created_ms,
    )


def get_borrower(runner: StatementRunner, borrower_id: int) -> Borrower | None:
    rows = runner._run(
        "read borrower",
        f"SELECT {_BORROWER_FIELDS} FROM borrowers WHERE id = ?",
        (borrower_id,),
    ).rows
    return _borrower(rows[0]) if rows else None


def find_borrowers(
    runner: StatementRunner, scope: Scope, after_id: int, limit: int
) -> list[Borrower]:
    where, params = "id > ?", [after_id]
    within, scope_params = scope_condition(scope)
    if within is not None:
        where, params = f"{where} AND {within}", [*params, *scope_params]
    rows = runner._run(
        "list borrowers",
        f"SELECT {_BORROWER_FIELDS} FROM borrowers WHERE {where} ORDER BY id LIMIT ?",
        (*params, limit),
    ).rows
    return [_borrower(r) for r in rows]
