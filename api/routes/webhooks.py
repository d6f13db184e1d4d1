"""Webhook receivers of organization units: `/api/v1/webhooks` (admins).

A receiver registered for a unit gets every alert of that unit and the units under it, as the
platform-wide `LIENWATCH_WEBHOOK_URLS` get every alert: the same JSON body, POSTed through the
same durable outbox, signed (`X-Lienwatch-Signature`) with the receiver's own secret, shown
once when it is registered.

No `from __future__ import annotations`: FastAPI reads the dependency aliases built inside
`router()` from the live annotations.
"""

import asyncio
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from alerts.delivery.targets import resolved_refusal
from api.auth import Identity
from api.context import ApiContext
from api.errors import ApiError, not_found
from api.models import Deleted, EndpointList, NewEndpointOut
from api.openapi import MAX_ORG_ID, ROLE, errors
from api.views import iso
from store.endpoints import Endpoint


class NewEndpoint(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://hooks.example.com/lienwatch"}]},
    )

    url: str = Field(
        max_length=2000, pattern=r"^https?://[^\s/?#]+[^\s]*$", description="http(s) URL"
    )
    org: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ORG_ID,
        description="the unit whose alerts it gets (default the caller's; in its subtree)",
    )


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "org": endpoint.org,
        "url": endpoint.url,
        "created_by": endpoint.created_by,
        "created": iso(endpoint.created_ms),
    }


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["webhooks"])
    admin = Annotated[Identity, Depends(ctx.auth.admin)]

    @api.post(
        "/webhooks",
        status_code=201,
        responses={201: {"model": NewEndpointOut}, **errors(*ROLE, 400, 404, 409)},
    )
    async def add(body: NewEndpoint, who: admin) -> JSONResponse:
        """Registers a receiver of the unit's alerts; the answer's `secret` (the HMAC key of
        its signatures) is shown this once. 400 `bad_webhook` for a URL the platform does not
        POST to: not http(s), with credentials, or whose host is or resolves to a loopback,
        link-local, private, multicast, unspecified or reserved address (unless
        `LIENWATCH_WEBHOOK_ALLOW_PRIVATE`)."""
        allow = ctx.webhook_allow_private
        refused = await asyncio.to_thread(resolved_refusal, body.url, allow)
        if refused is not None:
            raise ApiError(400, "bad_webhook", f"url: {refused}")
        secret = secrets.token_urlsafe(32)
        added = await ctx.scoped(who, lambda s: s.add_endpoint(body.url, secret, body.org))
        if added is None:
            raise ApiError(409, "conflict", f"url: the unit already has {body.url!r}")
        return JSONResponse({**endpoint_json(added), "secret": secret}, status_code=201)

    @api.get(
        "/webhooks", response_model=None, responses={200: {"model": EndpointList}, **errors(*ROLE)}
    )
    async def listed(who: admin) -> dict[str, Any]:
        """The receivers of the caller's subtree, by id."""
        found = await ctx.scoped(who, lambda s: s.endpoints())
        return {"webhooks": [endpoint_json(e) for e in found]}

    @api.delete(
        "/webhooks/{endpoint_id}",
        response_model=None,
        responses={200: {"model": Deleted}, **errors(*ROLE, 404)},
    )
    async def remove(
        endpoint_id: Annotated[int, Path(ge=1, le=2**63 - 1)], who: admin
    ) -> dict[str, str]:
        """Stops new alerts going to it (deliveries already in the outbox still go)."""
        if not await ctx.scoped(who, lambda s: s.remove_endpoint(endpoint_id)):
            raise not_found(f"no webhook {endpoint_id}")
        return {"deleted": str(endpoint_id)}

    return api
