"""Two-person approval of dangerous commands: `/api/v1/approvals...`.

`POST /api/v1/devices/{terminal}/commands` answers a dangerous command
(`api.routes.commands.needs_approval`) with a request instead of sending it. An admin of the
device's unit or above, not the requester, approves it (the command is then sent exactly as
requested, `issued_by` the requester, `approved_by` the approver) or rejects it; unapproved, it
expires (`APPROVAL_TTL_MS`). A request outside the caller's subtree answers 404.

No `from __future__ import annotations`: FastAPI reads the dependency aliases built inside
`router()` from the live annotations.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from api.auth import Identity
from api.command_views import approval_json
from api.context import ApiContext
from api.errors import not_found
from api.models import ApprovalOut
from api.openapi import KEYED, ROLE, errors
from api.routes.approve import approve as approve_sent


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["commands"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    admin = Annotated[Identity, Depends(ctx.auth.admin)]

    approval_id_path = Annotated[int, Path(ge=1, le=2**63 - 1, description="the request's id")]

    @api.get(
        "/approvals",
        response_model=None,
        responses={200: {"model": list[ApprovalOut]}, **errors(*KEYED)},
    )
    async def list_approvals(
        who: viewer,
        state: Literal["pending", "approved", "rejected", "expired"] | None = None,
        after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Requests for dangerous commands in the caller's subtree, by id."""
        page = await ctx.scoped(
            who, lambda s: s.approvals(state=state, after_id=after_id, limit=limit)
        )
        return [approval_json(a) for a in page]

    @api.get(
        "/approvals/{approval_id}",
        response_model=None,
        responses={200: {"model": ApprovalOut}, **errors(*KEYED, 404)},
    )
    async def get_approval(approval_id: approval_id_path, who: viewer) -> dict[str, Any]:
        found = await ctx.scoped(who, lambda s: s.approval(approval_id))
        if found is None:
            raise not_found(f"no approval {approval_id}")
        return approval_json(found)

    decided = {200: {"model": ApprovalOut}, **errors(*ROLE, 404, 409)}

    @api.post("/approvals/{approval_id}/approve", response_model=None, responses=decided)
    async def approve(approval_id: approval_id_path, who: admin) -> JSONResponse:
        """An admin of the device's unit or above, not the requester, approves: the command
        is sent at once (queued for an offline tracker), and the request shows its
        `command_id`. 409 `own_request`, `expired`, `decided` or `approval_in_progress` when it
        cannot be approved; when the command cannot be sent (404 for a device no longer in
        the subtree, 409 `not_sent` when the queue refused it, 503) the request stays
        pending, with the reason in `last_error`."""
        return await approve_sent(ctx, who, approval_id)

    @api.post("/approvals/{approval_id}/reject", response_model=None, responses=decided)
    async def reject(approval_id: approval_id_path, who: admin) -> dict[str, Any]:
        """Refuses the request; it is never sent."""
        approval = await ctx.scoped(who, lambda s: s.reject(approval_id))
        return approval_json(approval)

    return api
