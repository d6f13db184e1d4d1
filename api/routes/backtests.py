"""Backtests: `/api/v1/backtests` (an officer tries new thresholds on stored history).

- `POST /api/v1/backtests` (officer), body `{"since", "until", "rules", "tolerance_h"}`: `since`
  and `until` ISO 8601 with an offset (at most 92 days apart), `rules` RULES.toml text (absent:
  the default thresholds), `tolerance_h` (default 6) → 202 with the job (`state` `queued`) and
  `Location`. At most 8 wait at once (429 beyond).
- `GET /api/v1/backtests?after_id=&limit=` (officer) → the subtree's jobs by id, no reports.
- `GET /api/v1/backtests/{id}` (officer) → the job: `state` (`queued`, `running`, `done`,
  `failed`), `progress` (`fraction` of the time range read, `positions`), and when done the
  comparison `report` (per type `fired`, `new`, `kept`, `moved`, `added`, `removed`; then the
  alerts added, removed and moved), as `lienwatch replay --from-store --report` writes it.
A job covers the requester's unit's subtree (its cars, their positions, its alerts) and belongs
to that unit; jobs are kept in the store, so any API process answers them, and one whose process
stopped before it finished reads as `failed` with the reason.

No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api import params
from api.auth import Identity
from api.backtests import STALE_MS, Backtests, QueueFull, Work, job_json, now_ms
from api.context import ApiContext
from api.errors import ApiError, bad_request, not_found
from api.openapi import ROLE, errors
from pipeline.thresholds import RuleBook, RulesError, parse_rules

MAX_RANGE_MS = 92 * 86_400_000
MAX_RULES_CHARS = 64 * 1024
LATEST_MS = 4_102_444_800_000  # 2100-01-01


class BacktestBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "since": "2024-03-01T00:00:00+08:00",
                    "until": "2024-03-31T00:00:00+08:00",
                    "rules": "[offline]\nafter_s = 3600\n",
                }
            ]
        },
    )

    since: params.QueryTime
    until: params.QueryTime
    rules: str | None = Field(default=None, max_length=MAX_RULES_CHARS)
    tolerance_h: float = Field(default=6.0, ge=0, le=24 * 31)


class BacktestOut(BaseModel):
    id: int
    org: int = Field(description="the requester's unit: the backtest covers its subtree")
    state: str
    since: str
    until: str
    rules: str | None
    tolerance_h: float
    requested_by: str
    created: str
    started: str | None
    finished: str | None
    progress: dict[str, float]
    error: str | None
    report: dict[str, Any] | None = None


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["backtests"])
    officer = Annotated[Identity, Depends(ctx.auth.officer)]
    jobs = Backtests(ctx.stores)
    job_id = Annotated[int, Path(ge=1, le=2**63 - 1, description="the backtest's id")]

    @api.post(
        "/backtests",
        status_code=202,
        response_model=None,
        responses={202: {"model": BacktestOut}, **errors(*ROLE, 429)},
    )
    async def start(body: BacktestBody, who: officer) -> JSONResponse:
        """Starts a backtest of `rules` over the stored history from `since` to `until`, over
        the caller's unit's subtree: its cars, their positions and its alerts (a platform key:
        every tenant's)."""
        since_ms, until_ms = body.since, body.until
        for name, value in (("since", since_ms), ("until", until_ms)):
            if not 0 <= value <= LATEST_MS:
                raise bad_request(f"body.{name}", "must be between 1970 and 2100")
        if until_ms <= since_ms:
            raise bad_request("body.until", "must be after since")
        if until_ms - since_ms > MAX_RANGE_MS:
            raise bad_request("body.until", "at most 92 days after since")
        rules = ctx.rules or RuleBook()  # the deployment's, unless the body brings its own
        if body.rules is not None:
            if "\x00" in body.rules:
                raise bad_request("body.rules", "contains a NUL character")
            try:
                rules = parse_rules(body.rules, "body.rules")
            except RulesError as exc:
                raise ApiError(400, "bad_rules", str(exc)) from None
        tolerance_ms = int(body.tolerance_h * 3_600_000)
        try:
            jobs.reserve()
        except QueueFull as exc:
            raise ApiError(429, "too_many_backtests", str(exc)) from None
        try:
            job = await ctx.scoped(
                who,
                lambda s: s.add_backtest_job(
                    since_ms, until_ms, body.rules, tolerance_ms, jobs.runner, now_ms()
                ),
            )
        except BaseException:
            jobs.release()
            raise
        jobs.submit(Work(job.id, since_ms, until_ms, rules, tolerance_ms, who.scope))
        return JSONResponse(
            job_json(job), status_code=202, headers={"Location": f"/api/v1/backtests/{job.id}"}
        )

    @api.get(
        "/backtests",
        response_model=None,
        responses={200: {"model": list[BacktestOut]}, **errors(*ROLE)},
    )
    async def list_jobs(
        who: officer,
        after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        """The subtree's backtests by id, without their reports; a full page sets
        `X-Next-After-Id`."""
        stale = now_ms() - STALE_MS
        page = await ctx.scoped(
            who, lambda s: s.backtest_jobs(after_id=after_id, limit=limit, stale_before_ms=stale)
        )
        headers = {"X-Next-After-Id": str(page[-1].id)} if len(page) == limit else {}
        return JSONResponse([job_json(j) for j in page], headers=headers)

    @api.get(
        "/backtests/{backtest_id}",
        response_model=None,
        responses={200: {"model": BacktestOut}, **errors(*ROLE, 404)},
    )
    async def get(backtest_id: job_id, who: officer) -> dict[str, Any]:
        stale = now_ms() - STALE_MS
        job = await ctx.scoped(who, lambda s: s.backtest_job(backtest_id, stale))
        if job is None:
            raise not_found(f"no backtest {backtest_id}")
        return job_json(job)

    return api
