"""The HTTP API (contracts section 6): `/healthz` and `/metrics` without a key; with an
`ApiContext`, the key-protected `/api/v1` routes (keys, devices, positions, fences, commands,
plus the context's extra routers) and the live map page at `/` and `/map`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import HTTPConnection

from api import openapi
from api.context import ApiContext
from api.errors import bad_request, install_error_handlers
from api.idempotency import BodyLimit, Idempotency
from api.models import Health
from api.routes import (
    approvals,
    backtests,
    commands,
    devices,
    exports,
    fences,
    figures,
    keys,
    loans,
    map_data,
    orgs,
    pages,
    parties,
    spots,
    webhooks,
    whereabouts,
)


async def _sane_text(conn: HTTPConnection) -> None:
    """Path and query values the databases can hold: no NUL, valid UTF-8 (else a 400)."""
    values = [
        *((f"path.{k}", v) for k, v in conn.path_params.items()),
        *((f"query.{k}", v) for k, v in conn.query_params.multi_items()),
    ]
    for name, value in values:
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise bad_request(name, "contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(name, "is not valid UTF-8") from None


@dataclass(frozen=True, slots=True)
class Readiness:
    """What /healthz answers: `ok` and `degraded` serve (200), the rest do not (503)."""

    status: Literal["ok", "degraded", "starting", "stopping"] = "ok"
    reasons: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        return self.status in ("ok", "degraded")

    @classmethod
    def of(cls, reasons: Sequence[str]) -> Readiness:
        """`ok`, or `degraded` for these reasons."""
        return cls("degraded", tuple(reasons)) if reasons else cls()


READY = Readiness()


def create_app(
    *,
    registry: CollectorRegistry,
    ready: Callable[[], Readiness],
    context: ApiContext | None = None,
) -> FastAPI:
    """The application; `ready` says whether the process serves, and what is degraded
    (for /healthz).

    Without `context` only the operations endpoints exist. With it, the app closes the
    context's store access when it shuts down (unless `context.close_stores` is off).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if context is not None and context.close_stores:
                context.stores.close()

    app = FastAPI(
        title="Lienwatch",
        version="0.1.0",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )

    @app.get(
        "/healthz",
        tags=["operations"],
        responses={
            200: {
                "model": Health,
                "description": "serving: `ok`, or `degraded` with the reasons (alive and"
                " working, e.g. waiting for the database or for disk space: not a reason to"
                " restart it)",
            },
            503: {"model": Health, "description": "not serving: `starting` or `stopping`"},
        },
    )
    def healthz() -> JSONResponse:
        state = ready()
        body: dict[str, object] = {"status": state.status}
        if state.reasons:
            body["reasons"] = list(state.reasons)
        return JSONResponse(body, status_code=200 if state.serving else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=PlainTextResponse,
        responses={200: {"description": "Prometheus text exposition"}},
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    if context is not None:
        checked = [Depends(_sane_text)]
        modules = (
            keys,
            orgs,
            devices,
            parties,
            fences,
            commands,
            approvals,
            loans,
            webhooks,
            whereabouts,
            spots,
            backtests,
            figures,
            exports,
        )
        for module in modules:
            app.include_router(module.router(context), dependencies=checked)
        app.include_router(map_data.router(context, context.map_options), dependencies=checked)
        for extra in context.extra_routers:
            app.include_router(extra, dependencies=checked)
        app.include_router(pages.router(context.map_options))
        # Outermost last: the body bound acts before anything reads a body.
        app.add_middleware(Idempotency, stores=context.stores, clock_ms=context.clock_ms)
        app.add_middleware(
            BodyLimit,
            max_bytes=context.max_body_bytes,
            limits={"/api/v1/fences": max(fences.MAX_BODY_BYTES, context.max_body_bytes)},
        )

    install_error_handlers(app)

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.finish(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]
    return app
