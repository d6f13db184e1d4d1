"""`/api/v1/keys` (admins manage keys; a key is shown once, at creation) and `/api/v1/me`.

No `from __future__ import annotations` in route modules: FastAPI reads the dependency
aliases built inside `router()` from the live annotations.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import NAME_PATTERN, Identity, Role, key_record, new_key
from api.context import ApiContext
from api.errors import ApiError, not_found
from api.models import Deleted, KeyList, Me, NewKeyOut
from api.openapi import KEYED, MAX_ORG_ID, NO_NUL, ROLE, errors
from api.views import iso
from organizations import ROOT_ID
from store.interface import ApiKey


class NewKey(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "ops-viewer", "role": "viewer"}]}
    )

    name: str = Field(pattern=NAME_PATTERN.pattern, description="letters, digits, . _ @ -")
    role: Role
    org: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ORG_ID,
        description="the key's unit (default the caller's; in the caller's subtree)",
    )


def _key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "role": key.role,
        "prefix": key.prefix,
        "created": iso(key.created_ms),
        "org": key.org,
    }


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["keys"])
    admin = Annotated[Identity, Depends(ctx.auth.admin)]
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]

    @api.get("/me", response_model=None, responses={200: {"model": Me}, **errors(*KEYED)})
    async def me(who: viewer) -> dict[str, Any]:
        """The calling key's name, role and organization unit."""
        return {"name": who.name, "role": who.role.value, "org": who.org}

    @api.post(
        "/keys", status_code=201, responses={201: {"model": NewKeyOut}, **errors(*ROLE, 404, 409)}
    )
    async def create_key(body: NewKey, who: admin) -> JSONResponse:
        """Creates a key; the response is the only time the key itself is shown."""
        key = new_key()
        org = who.org if body.org is None else body.org
        record = key_record(body.name, body.role, key, ctx.clock_ms(), org)
        if not await ctx.scoped(who, lambda s: s.create_key(record)):
            raise ApiError(409, "conflict", f"name: a key named {body.name!r} exists")
        return JSONResponse({**_key_json(record), "key": key}, status_code=201)

    @api.get("/keys", response_model=None, responses={200: {"model": KeyList}, **errors(*ROLE)})
    async def list_keys(who: admin) -> dict[str, Any]:
        keys = await ctx.scoped(who, lambda s: s.keys())
        return {"keys": [_key_json(k) for k in keys]}

    @api.delete(
        "/keys/{name}",
        response_model=None,
        responses={200: {"model": Deleted}, **errors(*ROLE, 404, 409)},
    )
    async def delete_key(
        name: Annotated[str, Path(max_length=64, pattern=NO_NUL)], who: admin
    ) -> dict[str, str]:
        """Revokes a key of the caller's subtree at once; the last admin key, and the
        configured one (which would come back at the next start), cannot be deleted."""
        found = await ctx.scoped(who, lambda s: s.key(name))
        keys = await ctx.stores.run(lambda s: s.list_api_keys())  # the platform's admins
        if found is None:
            raise not_found(f"no key named {name!r}")
        if found.key_hash in ctx.fixed_keys:
            raise ApiError(
                409,
                "configured_key",
                f"{name!r} is the configured admin key, stored again at every start:"
                " change LIENWATCH_ADMIN_API_KEY to revoke it",
            )
        # The platform unit keeps an admin key: only its keys create tenants.
        platform_admins = sum(k.role == Role.ADMIN and k.org == ROOT_ID for k in keys)
        if found.role == Role.ADMIN and found.org == ROOT_ID and platform_admins == 1:
            raise ApiError(
                409,
                "last_admin",
                f"{name!r} is the platform's last admin key: create another first",
            )
        if not await ctx.scoped(who, lambda s: s.delete_key(name)):
            raise not_found(f"no key named {name!r}")
        return {"deleted": name}

    return api
