"""The HTTP API (contracts section 6): `/healthz` and `/metrics` without a key; with an
`ApiContext`, the key-protected `/api/v1` routes (keys, devices, positions, fences, commands,
plus the context's extra routers) and the live map page at `/` and `/map`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import HTTPConnection

from api.context import ApiContext
from api.errors import bad_request, install_error_handlers
from api.routes import commands, devices, fences, keys, loans, pages


async def _sane_text(conn: HTTPConnection) -> None:
    """Path and query values the databases can hold: no NUL, valid UTF-8 (else a 400)."""
    values = [*conn.path_params.items(), *conn.query_params.multi_items()]
    for name, value in values:
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise bad_request(name, "contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(name, "is not valid UTF-8") from None


def create_app(
    *,
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    context: ApiContext | None = None,
) -> FastAPI:
    """The application; `ready` says whether the process can take traffic (for /healthz).

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
        dependencies=[Depends(_sane_text)],
    )

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        if ready():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "starting"}, status_code=503)

    @app.get("/metrics", tags=["operations"])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    if context is not None:
        for module in (keys, devices, fences, commands, loans):
            app.include_router(module.router(context))
        for extra in context.extra_routers:
            app.include_router(extra)
        app.include_router(pages.router())

    install_error_handlers(app)
    return app
