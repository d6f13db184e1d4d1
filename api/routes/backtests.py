"""Backtests: `/api/v1/backtests` (an officer tries new thresholds on stored history).

- `POST /api/v1/backtests` (officer), body `{"since", "until", "rules", "tolerance_h"}`: `since`
  and `until` ISO 8601 with an offset (at most 92 days apart), `rules` RULES.toml text (absent:
  the default thresholds), `tolerance_h` (default 6) → 202 with the job (`state` `queued`) and
  `Location`. At most 8 wait at once (429 beyond).
- `GET /api/v1/backtests/{id}` (officer) → the job: `state` (`queued`, `running`, `done`,
  `failed`), `progress` (`fraction` of the time range read, `positions`), and when done the
  comparison `report` (per type `fired`, `new`, `kept`, `moved`, `added`, `removed`; then the
  alerts added, removed and moved), as `lienwatch replay --from-store --report` writes it.

No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api import params
from api.auth import Identity
from api.backtests import Backtests, QueueFull
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
        """Starts a backtest of `rules` over the stored history from `since` to `until`. It
        runs over every tenant's cars and compares with every alert: a key of the platform
        unit only (403 for a key of a tenant, branch or dealer)."""
        if not who.scope.is_root:
            raise ApiError(403, "forbidden", "a backtest covers every tenant: a platform key")
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
        try:
            job = jobs.submit(
                since_ms, until_ms, rules, body.rules, int(body.tolerance_h * 3_600_000),
                who.name, ctx.clock_ms(),
            )  # fmt: skip
        except QueueFull as exc:
            raise ApiError(429, "too_many_backtests", str(exc)) from None
        return JSONResponse(
            job.to_json(), status_code=202, headers={"Location": f"/api/v1/backtests/{job.id}"}
        )

    @api.get(
        "/backtests/{backtest_id}",
        response_model=None,
        responses={200: {"model": BacktestOut}, **errors(*ROLE, 404)},
    )
    async def get(backtest_id: job_id, who: officer) -> dict[str, Any]:
        job = jobs.get(backtest_id) if who.scope.is_root else None
        if job is None:
            raise not_found(f"no backtest {backtest_id}")
        return job.to_json()

    return api
