"""Candidate risk spots: `/api/v1/spot-candidates` (the `gathering` rule's proposals).

- `GET /api/v1/spot-candidates?status=&after_id=&limit=` → the caller's subtree's candidates by
  id (any viewer); a full page sets `X-Next-After-Id`. A candidate is a tenant's when every car
  of its evidence is in that tenant's subtree, else the platform's.
- `GET /api/v1/spot-candidates/{id}` → one candidate.
- `POST /api/v1/spot-candidates/{id}/accept` (admin), body `{"fence_id", "name", "radius_m",
  "note"}` all optional → the candidate, accepted: a `hotspot` fence (a circle at the candidate's
  place, its radius unless given; id `spot-{id}` unless given) is in the candidate's unit's spot
  library (a tenant's hotspot applies to its own cars), and the running engine reloads it.
- `POST /api/v1/spot-candidates/{id}/dismiss` (admin), body `{"note"}` optional.
Deciding a candidate no longer proposed, or accepting into an existing fence id, is a 409.

No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
"""

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from alerts.model import format_time
from api.auth import Identity
from api.context import ApiContext
from api.errors import ApiError, not_found
from api.openapi import KEYED, NO_NUL, ROLE, errors
from api.routes.parties import borrower_json
from geofence.model import MAX_RADIUS_M, MIN_RADIUS_M
from store.interface import FenceFeature, SpotCandidate, SpotCandidateError
from store.loan_borrowers import BORROWER_KEY
from store.scoped import FenceTakenError, NotInScopeError, ScopedStore

_MAX_ID = 2**63 - 1
Status = Literal["proposed", "accepted", "dismissed"]


class SpotCandidateOut(BaseModel):
    """A candidate spot: where, the evidence (visits: which cars, when) and the decision."""

    id: int
    org: int = Field(
        description="a tenant when every car of the evidence is in its subtree,"
        " else the platform (1)"
    )
    alert_id: int | None
    lon: float
    lat: float
    radius_m: float
    borrowers: int
    visits: list[dict[str, Any]] = Field(
        description="the evidence: each `vehicle_id`, `device_id`, `borrower`, `arrived`,"
        " `parked_until_at_least`, `lon`, `lat`, and `borrower_record` (the borrower record"
        " the visit's loan names, masked for viewers; null when none)"
    )
    proposed: str
    status: Status
    fence_id: str | None
    decided: str | None
    decided_by: str | None
    note: str | None


class AcceptBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "yard on Binjiang Rd", "radius_m": 80}]},
    )

    fence_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_NUL)
    name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    radius_m: float | None = Field(default=None, ge=MIN_RADIUS_M, le=MAX_RADIUS_M)
    note: str | None = Field(default=None, max_length=2000)


class DismissBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


def candidate_json(
    c: SpotCandidate, borrowers: dict[int, dict[str, Any] | None] | None = None
) -> dict[str, Any]:
    """A candidate as answered; `borrowers` (record id -> the record as the caller may see it)
    adds each visit's `borrower_record` (null when the visit's borrower is no record)."""
    shown = borrowers or {}
    return {
        "id": c.id,
        "org": c.org,
        "alert_id": c.alert_id,
        "lon": c.lon,
        "lat": c.lat,
        "radius_m": c.radius_m,
        "borrowers": c.borrowers,
        "visits": [
            {**visit, "borrower_record": shown.get(record_of(visit) or 0)} for visit in c.evidence
        ],
        "proposed": format_time(c.proposed_ms),
        "status": c.status,
        "fence_id": c.fence_id,
        "decided": None if c.decided_ms is None else format_time(c.decided_ms),
        "decided_by": c.decided_by,
        "note": c.note,
    }


def record_of(visit: dict[str, Any]) -> int | None:
    """The borrower record a visit names (`borrower` is `borrower:{id}` live), else None."""
    key = visit.get("borrower")
    if isinstance(key, str) and key.startswith(BORROWER_KEY) and key[len(BORROWER_KEY) :].isdigit():
        return int(key[len(BORROWER_KEY) :])
    return None


def shown_borrowers(
    s: ScopedStore, who: Identity, found: Sequence[SpotCandidate]
) -> dict[int, dict[str, Any] | None]:
    """The borrower records the candidates' visits name, as `who` may see them (masked for a
    viewer, as everywhere; one outside the caller's subtree is not shown)."""
    ids = {r for c in found for v in c.evidence if (r := record_of(v)) is not None}
    out: dict[int, dict[str, Any] | None] = {}
    for record in sorted(ids):
        borrower = s.borrower(record)
        out[record] = None if borrower is None else borrower_json(borrower, who)
    return out


def spot_fence(c: SpotCandidate, body: AcceptBody) -> FenceFeature:
    """The hotspot fence an accepted candidate becomes (a circle, WGS-84)."""
    fence_id = body.fence_id or f"spot-{c.id}"
    feature = {
        "type": "Feature",
        "properties": {
            "id": fence_id,
            "name": body.name or f"gathering place {c.id}",
            "kind": "hotspot",
            "radius_m": body.radius_m if body.radius_m is not None else c.radius_m,
        },
        "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]},
    }
    return FenceFeature(fence_id, "hotspot", json.dumps(feature, ensure_ascii=False))


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["spot candidates"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    admin = Annotated[Identity, Depends(ctx.auth.admin)]
    candidate_id = Annotated[int, Path(ge=1, le=_MAX_ID, description="the candidate's id")]

    @api.get(
        "/spot-candidates",
        response_model=None,
        responses={200: {"model": list[SpotCandidateOut]}, **errors(*KEYED)},
    )
    async def list_candidates(
        who: viewer,
        status: Status | None = None,
        after_id: Annotated[int, Query(ge=0, le=_MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        """Candidate spots of the caller's subtree by id, those in `status` only when given:
        a tenant's own (every car of the evidence in its subtree); the platform's keys see
        every one, those whose evidence spans tenants included."""

        def read(s: ScopedStore) -> list[dict[str, Any]]:
            page = s.spot_candidates(status=status, after_id=after_id, limit=limit)
            shown = shown_borrowers(s, who, page)
            return [candidate_json(c, shown) for c in page]

        page = await ctx.scoped(who, read)
        headers = {"X-Next-After-Id": str(page[-1]["id"])} if len(page) == limit else {}
        return JSONResponse(page, headers=headers)

    @api.get(
        "/spot-candidates/{candidate_id}",
        response_model=None,
        responses={200: {"model": SpotCandidateOut}, **errors(*KEYED, 404)},
    )
    async def get_candidate(candidate_id: candidate_id, who: viewer) -> dict[str, Any]:
        def read(s: ScopedStore) -> dict[str, Any] | None:
            found = s.spot_candidate(candidate_id)
            return (
                None if found is None else candidate_json(found, shown_borrowers(s, who, [found]))
            )

        answer = await ctx.scoped(who, read)
        if answer is None:
            raise not_found(f"no spot candidate {candidate_id}")
        return answer

    async def decide(
        candidate_id: int, who: Identity, body: AcceptBody | None, accept: bool, note: str | None
    ) -> dict[str, Any]:
        def change(s: ScopedStore) -> dict[str, Any]:
            found = s.spot_candidate(candidate_id)
            if found is None:
                raise NotInScopeError(f"no spot candidate {candidate_id}")
            fence = spot_fence(found, body or AcceptBody()) if accept else None
            done = s.decide_spot_candidate(candidate_id, fence, note)
            return candidate_json(done, shown_borrowers(s, who, [done]))

        try:
            return await ctx.scoped(who, change)
        except FenceTakenError as exc:
            raise ApiError(409, "fence_exists", str(exc)) from None
        except NotInScopeError as exc:
            raise not_found(str(exc)) from None
        except SpotCandidateError as exc:
            if exc.reason == "missing":
                raise not_found(str(exc)) from None
            raise ApiError(409, "already_decided", str(exc)) from None

    answers = {200: {"model": SpotCandidateOut}, **errors(*ROLE, 404, 409)}

    @api.post("/spot-candidates/{candidate_id}/accept", response_model=None, responses=answers)
    async def accept(
        candidate_id: candidate_id, who: admin, body: AcceptBody | None = None
    ) -> dict[str, Any]:
        """proposed → accepted: the place becomes a hotspot fence in the spot library."""
        return await decide(candidate_id, who, body, True, body.note if body else None)

    @api.post("/spot-candidates/{candidate_id}/dismiss", response_model=None, responses=answers)
    async def dismiss(
        candidate_id: candidate_id, who: admin, body: DismissBody | None = None
    ) -> dict[str, Any]:
        """proposed → dismissed (not a risk spot)."""
        return await decide(candidate_id, who, None, False, body.note if body else None)

    return api
