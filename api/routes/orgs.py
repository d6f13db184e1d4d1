"""Organization units (`/api/v1/orgs`), moving a car between units, and the audit log.

Contracts section 6a: a tenant (parent null) is created by a key of the root unit; a branch or
dealer by an admin of an ancestor unit. Every key sees its unit's subtree only; a unit outside
it answers 404 as a missing one. `GET /api/v1/audit` is for admins, of their subtree.

No `from __future__ import annotations`: FastAPI reads the dependency aliases built inside
`router()` from the live annotations.
"""

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from api.auth import Identity
from api.context import ApiContext
from api.errors import bad_request, not_found
from api.models import AuditOut, OrgList, OrgOut, UnitRules, VehicleMoved
from api.openapi import KEYED, MAX_ORG_ID, NO_NUL, ROLE, errors
from api.paging import paged
from api.views import iso
from organizations import Unit, UnitKind
from pipeline.thresholds import RULE_KEYS, RulesError, unit_overrides
from store.audit import AuditEntry

_MAX_ID = 2**63 - 1
_NAME = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"  # printable, not blank
OrgId = Annotated[int, Path(ge=1, le=MAX_ORG_ID, description="the unit's id")]


class NewOrg(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Acme Finance", "kind": "tenant", "parent": None}],
            # A tenant has no parent; a branch or dealer has one.
            "anyOf": [
                {"properties": {"kind": {"const": "tenant"}, "parent": {"type": "null"}}},
                {
                    "properties": {"kind": {"enum": ["branch", "dealer"]}},
                    "required": ["parent"],
                    "not": {"properties": {"parent": {"type": "null"}}},
                },
            ],
        },
    )

    name: str = Field(min_length=1, max_length=200, pattern=_NAME)
    kind: Literal["tenant", "branch", "dealer"]
    parent: int | None = Field(default=None, ge=1, le=MAX_ORG_ID, description="null for a tenant")


class MoveVehicle(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"org": 7}]})

    org: int = Field(ge=1, le=MAX_ORG_ID, description="the unit the car goes to")


def _rules_schema() -> dict[str, Any]:
    """The overrides body as JSON Schema: rule -> key -> a number >= 0, names as RULES.toml."""
    rules: dict[str, dict[str, Any]] = {}
    for rule, key in RULE_KEYS:
        table = rules.setdefault(
            rule, {"type": "object", "properties": {}, "additionalProperties": False}
        )
        table["properties"][key] = {"type": "number", "minimum": 0}
    return {"type": "object", "properties": rules, "additionalProperties": False}


RULES_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": _rules_schema(),
            "examples": {"slower": {"value": {"overspeed": {"speed_kmh": 110}}}},
        }
    },
}


def org_json(unit: Unit) -> dict[str, Any]:
    return {
        "id": unit.id,
        "name": unit.name,
        "kind": unit.kind.value,
        "parent": unit.shown_parent,
        "created": iso(unit.created_ms),
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": iso(entry.at_ms),
        "actor": entry.actor,
        "actor_org": entry.actor_org,
        "org": entry.org,
        "action": entry.action,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
    }


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["orgs"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    admin = Annotated[Identity, Depends(ctx.auth.admin)]

    @api.post("/orgs", status_code=201, responses={201: {"model": OrgOut}, **errors(*ROLE, 404)})
    async def create_org(body: NewOrg, who: admin) -> JSONResponse:
        """Creates a unit: a tenant (parent null; root-unit keys only), or a branch or dealer
        under a unit of the caller's subtree."""
        unit = await ctx.scoped(
            who, lambda s: s.create_unit(body.name, UnitKind(body.kind), body.parent)
        )
        return JSONResponse(org_json(unit), status_code=201)

    @api.get("/orgs", response_model=None, responses={200: {"model": OrgList}, **errors(*KEYED)})
    async def list_orgs(who: viewer) -> dict[str, Any]:
        """The caller's unit and every unit under it, by id."""
        units = await ctx.scoped(who, lambda s: s.units())
        return {"orgs": [org_json(u) for u in units]}

    @api.get(
        "/orgs/{org_id}",
        response_model=None,
        responses={200: {"model": OrgOut}, **errors(*KEYED, 404)},
    )
    async def get_org(org_id: OrgId, who: viewer) -> dict[str, Any]:
        unit = await ctx.scoped(who, lambda s: s.unit(org_id))
        if unit is None:
            raise not_found(f"no org {org_id}")
        return org_json(unit)

    @api.get(
        "/orgs/{org_id}/rules",
        response_model=None,
        responses={200: {"model": UnitRules}, **errors(*KEYED, 404)},
    )
    async def get_rules(org_id: OrgId, who: viewer) -> dict[str, Any]:
        """The unit's own threshold overrides (`{}` when none)."""
        rules = await ctx.scoped(who, lambda s: s.rules_of(org_id))
        return {"org": org_id, "rules": rules}

    @api.put(
        "/orgs/{org_id}/rules",
        response_model=None,
        responses={200: {"model": UnitRules}, **errors(*ROLE, 404)},
        openapi_extra={"requestBody": RULES_BODY},
    )
    async def put_rules(org_id: OrgId, who: admin, request: Request) -> dict[str, Any]:
        """Replaces the unit's threshold overrides: the tables of RULES.toml as JSON
        (`{"overspeed": {"speed_kmh": 110}}`); `{}` removes them. They apply to the cars of
        the unit's subtree, a deeper unit's winning, within the detector's reload interval."""
        try:
            document = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad_request("body", f"not valid JSON: {exc}") from None
        try:
            unit_overrides(document, "body")
        except RulesError as exc:
            raise bad_request("body", str(exc).removeprefix("body: field ")) from None
        rules = await ctx.scoped(who, lambda s: s.set_rules(org_id, document))
        return {"org": org_id, "rules": rules}

    @api.post(
        "/vehicles/{vehicle_id}/move",
        response_model=None,
        responses={200: {"model": VehicleMoved}, **errors(*ROLE, 404)},
    )
    async def move_vehicle(
        vehicle_id: Annotated[str, Path(max_length=64, pattern=NO_NUL)],
        body: MoveVehicle,
        who: admin,
    ) -> dict[str, Any]:
        """Moves a car, with its devices, loans and alerts, to another unit of the subtree."""
        moved = await ctx.scoped(who, lambda s: s.move_vehicle(vehicle_id, body.org))
        return {"vehicle_id": vehicle_id, "org": body.org, "moved": moved}

    @api.get("/audit", responses={200: {"model": list[AuditOut]}, **errors(*ROLE)})
    async def audit(
        request: Request,
        who: admin,
        after_id: Annotated[int, Query(ge=0, le=_MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        """Changes made in the caller's subtree, oldest first; pages by `after_id`."""
        page = await ctx.scoped(who, lambda s: s.audit(after_id=after_id, limit=limit))
        return paged(request, [audit_json(e) for e in page], limit)

    return api
