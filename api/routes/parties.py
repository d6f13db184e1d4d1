"""Cars and borrowers as records: `/api/v1/vehicles` and `/api/v1/borrowers`.

A car: VIN, plate, make and model, colour, the dealer unit that sold it, its unit; its devices
are those bound to its id (`PUT /api/v1/devices/{terminal}`), and `GET /api/v1/vehicles/{id}`
shows both. A borrower: name, identity number and phone, shown whole to officers and admins
and masked for viewers (`loans.parties.masked`). Every record keeps to the caller's subtree.

No `from __future__ import annotations`: FastAPI reads the dependency aliases built inside
`router()` from the live annotations.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from api.auth import Identity, Role
from api.context import ApiContext
from api.errors import not_found
from api.models import BorrowerOut, VehicleList, VehicleRecord
from api.openapi import KEYED, MAX_ORG_ID, NO_NUL, ROLE, errors
from api.paging import paged
from api.views import iso
from loans import Borrower, Vehicle, masked

_TEXT = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"  # printable, not blank
VehicleId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]
_ORG = Field(
    default=None,
    ge=1,
    le=MAX_ORG_ID,
    description="the owning unit (default the caller's; in its subtree)",
)


class VehicleIn(BaseModel):
    """PUT body: the car's details (each left out is cleared)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"vin": "LSVAU2180N2183294", "plate": "沪A12345", "make": "VW"}]
        },
    )

    vin: str | None = Field(
        default=None, pattern=r"^[A-HJ-NPR-Z0-9]{17}$", description="17 characters, ISO 3779"
    )
    plate: str | None = Field(default=None, min_length=1, max_length=16, pattern=_TEXT)
    make: str | None = Field(default=None, min_length=1, max_length=64, pattern=_TEXT)
    model: str | None = Field(default=None, min_length=1, max_length=64, pattern=_TEXT)
    colour: str | None = Field(default=None, min_length=1, max_length=32, pattern=_TEXT)
    dealer: int | None = Field(
        default=None, ge=1, le=MAX_ORG_ID, description="the dealer unit that sold it"
    )
    org: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ORG_ID,
        description="the owning unit (default: a known car's own, else the caller's); another"
        " unit moves a known car there with its devices, loans and alerts",
    )


class BorrowerIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Example Borrower",
                    "id_number": "110101199001011234",
                    "phone": "13812345678",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200, pattern=_TEXT)
    id_number: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{6,32}$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,20}$")
    org: int | None = _ORG


def vehicle_json(vehicle: Vehicle) -> dict[str, Any]:
    return {
        "vehicle_id": vehicle.vehicle_id,
        "org": vehicle.org,
        "vin": vehicle.vin,
        "plate": vehicle.plate,
        "make": vehicle.make,
        "model": vehicle.model,
        "colour": vehicle.colour,
        "dealer": vehicle.dealer,
    }


def borrower_json(borrower: Borrower, who: Identity) -> dict[str, Any]:
    """Whole for officers and admins, masked for viewers."""
    shown = borrower if who.can(Role.OFFICER) else masked(borrower)
    return {
        "id": shown.id,
        "org": shown.org,
        "name": shown.name,
        "id_number": shown.id_number,
        "phone": shown.phone,
        "created": iso(shown.created_ms),
    }


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["records"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    admin = Annotated[Identity, Depends(ctx.auth.admin)]

    @api.put(
        "/vehicles/{vehicle_id}",
        responses={
            200: {"model": VehicleRecord, "description": "updated"},
            201: {"model": VehicleRecord, "description": "created"},
            **errors(*ROLE, 404),
        },
    )
    async def put_vehicle(vehicle_id: VehicleId, body: VehicleIn, who: admin) -> JSONResponse:
        """Records a car or replaces its details."""
        given = Vehicle(
            vehicle_id, 0, body.vin, body.plate, body.make, body.model, body.colour, body.dealer
        )
        created, stored = await ctx.scoped(who, lambda s: s.put_vehicle(given, body.org))
        return JSONResponse(vehicle_json(stored), status_code=201 if created else 200)

    @api.get(
        "/vehicles",
        response_model=None,
        responses={200: {"model": VehicleList}, **errors(*KEYED)},
    )
    async def list_vehicles(
        who: viewer,
        after: Annotated[str, Query(max_length=64, pattern=NO_NUL)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """A page of the subtree's cars by id; pass `next` back as `after`."""
        page = await ctx.scoped(who, lambda s: s.vehicles(after=after, limit=limit))
        return {
            "vehicles": [vehicle_json(v) for v in page],
            "next": page[-1].vehicle_id if len(page) == limit else None,
        }

    @api.post(
        "/borrowers",
        status_code=201,
        responses={201: {"model": BorrowerOut}, **errors(*ROLE, 404)},
    )
    async def create_borrower(body: BorrowerIn, who: admin) -> JSONResponse:
        stored = await ctx.scoped(
            who, lambda s: s.create_borrower(body.name, body.id_number, body.phone, body.org)
        )
        return JSONResponse(borrower_json(stored, who), status_code=201)

    @api.get("/borrowers", responses={200: {"model": list[BorrowerOut]}, **errors(*KEYED)})
    async def list_borrowers(
        request: Request,
        who: viewer,
        after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        """The subtree's borrowers by id (identity number and phone masked for viewers)."""
        page = await ctx.scoped(who, lambda s: s.borrowers(after_id=after_id, limit=limit))
        return paged(request, [borrower_json(b, who) for b in page], limit)

    @api.get(
        "/borrowers/{borrower_id}",
        response_model=None,
        responses={200: {"model": BorrowerOut}, **errors(*KEYED, 404)},
    )
    async def get_borrower(
        borrower_id: Annotated[int, Path(ge=1, le=2**63 - 1)], who: viewer
    ) -> dict[str, Any]:
        found = await ctx.scoped(who, lambda s: s.borrower(borrower_id))
        if found is None:
            raise not_found(f"no borrower {borrower_id}")
        return borrower_json(found, who)

    return api
