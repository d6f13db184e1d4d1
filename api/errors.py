"""Every API error is JSON `{"error": CODE, "detail": ...}` (contracts section 6), mapped here.

Routes raise `ApiError` (or FastAPI's HTTPException); storage and validation failures are
mapped in one place so bad input is always a 4xx naming the field, never a 500.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geofence import FenceError
from organizations import OrgError, OrgForbiddenError
from store import SchemaError, StoreError, StoreUnavailableError
from store.scoped import ApprovalError, NotInScopeError

log = logging.getLogger("lienwatch.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "bad_request",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answer: HTTP status, a stable snake_case code and a readable detail."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def bad_request(field: str, reason: str) -> ApiError:
    """A 400 whose detail starts with the field at fault."""
    return ApiError(400, "bad_request", f"{field}: {reason}")


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.detail), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        headers = exc.headers
        if exc.status_code == 405:
            allowed = allowed_methods(request, (headers or {}).get("Allow"))
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            body = error_body(
                "method_not_allowed", f"{request.method} is not allowed here: {', '.join(allowed)}"
            )
        elif isinstance(detail, dict) and {"error", "detail"} <= detail.keys():
            body = {"error": str(detail["error"]), "detail": str(detail["detail"])}
        else:
            body = error_body(_CODES.get(exc.status_code, "http_error"), str(detail))
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("bad_request", validation_detail(exc)), status_code=400)

    @app.exception_handler(NotInScopeError)
    async def hidden(request: Request, exc: NotInScopeError) -> JSONResponse:
        # Outside the caller's subtree reads exactly as missing (contracts section 6a).
        return JSONResponse(error_body("not_found", str(exc)), status_code=404)

    @app.exception_handler(OrgError)
    async def bad_unit(request: Request, exc: OrgError) -> JSONResponse:
        if isinstance(exc, OrgForbiddenError):
            return JSONResponse(error_body("forbidden", str(exc)), status_code=403)
        return JSONResponse(error_body("bad_request", str(exc)), status_code=400)

    @app.exception_handler(ApprovalError)
    async def undecidable(request: Request, exc: ApprovalError) -> JSONResponse:
        return JSONResponse(error_body(exc.reason, str(exc)), status_code=409)

    @app.exception_handler(FenceError)
    async def bad_fence(request: Request, exc: FenceError) -> JSONResponse:
        return JSONResponse(error_body("bad_fence", str(exc)), status_code=400)

    @app.exception_handler(StoreUnavailableError)
    async def store_down(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.warning("store unavailable: %s", exc)
        return JSONResponse(
            error_body("store_unavailable", "the database cannot be reached now; retry later"),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(SchemaError)
    async def schema(request: Request, exc: SchemaError) -> JSONResponse:
        return JSONResponse(error_body("schema", str(exc)), status_code=503)

    @app.exception_handler(StoreError)
    async def store_failed(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)
        return JSONResponse(error_body("store_error", "a storage operation failed"), 500)


_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def _method_table(app: Any) -> list[tuple[re.Pattern[str], set[str]]]:
    """(path regex, methods) of each path of the OpenAPI document, built once per app."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "methods", None)
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            parts = re.split(r"\{[^}/]+\}", template)
            regex = re.compile("[^/]+".join(re.escape(part) for part in parts))
            table.append((regex, {m.upper() for m in item if m.upper() in _ORDER}))
        app.state.methods = table
    return table


def allowed_methods(request: Request, fallback: str | None) -> list[str]:
    """The methods the OpenAPI document lists at this path (Starlette's 405 names only the
    first route's, though a path's methods are spread over several routes); for a path the
    document does not show (the map page), Starlette's own list."""
    methods: set[str] = set()
    for regex, listed in _method_table(request.app):
        if regex.fullmatch(request.url.path):
            methods |= listed
    if not methods and fallback:
        methods = {m.strip() for m in fallback.split(",") if m.strip()}
    return sorted(methods, key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m))


def validation_detail(exc: RequestValidationError) -> str:
    """`where: what` of the first problem, e.g. `query.from: Field required`."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first: dict[str, Any] = dict(errors[0])
    loc = [str(p) for p in first.get("loc", ())]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        return f"body: not valid JSON{f' ({reason})' if reason else ''}"
    where = ".".join(loc)
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "string_pattern_mismatch":
        pattern = (first.get("ctx") or {}).get("pattern", "")
        message = f"{first.get('input')!r} does not match {pattern}"
    return f"{where}: {message}" if where else message
