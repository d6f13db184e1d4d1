"""The HTTP API (contracts section 6). For now the unauthenticated operations endpoints:
`GET /healthz` and `GET /metrics`; the authenticated `/api/v1` routes build on `create_app`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException


def create_app(*, registry: CollectorRegistry, ready: Callable[[], bool]) -> FastAPI:
    """The application; `ready` says whether the process can take traffic (for /healthz)."""
    app = FastAPI(title="Lienwatch", version="0.1.0", docs_url="/api/docs", redoc_url=None)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        if ready():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "starting"}, status_code=503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Errors are JSON {"error": CODE, "detail": ...} with a 4xx status, in one place."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return JSONResponse({"error": "bad_request", "detail": detail}, status_code=400)
