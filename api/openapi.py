"""What the OpenAPI document says beyond FastAPI's defaults, so clients generated from it are right.

- `ErrorBody` is the one error shape (`{"error", "detail"}`, contracts section 6) and
  `errors(...)` declares it for the statuses a route can answer, keeping routes terse.
- `BEARER` is the API-key security scheme: a route depending on it is documented as needing
  `Authorization: Bearer KEY`, so generated clients (and schemathesis) send the key.
- `finish(schema)` drops FastAPI's default 422 `HTTPValidationError`: the app answers bad
  input with a 400 `ErrorBody` (api/errors.py), never with that body.
"""

from __future__ import annotations

from typing import Any

from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from api.idempotency import KEY_PATTERN

BEARER_SCHEME = "bearer"
# Free text in a path or query: anything the databases can hold (no NUL).
# Organization unit ids stay exact as JSON numbers in every client (2^53 - 1).
MAX_ORG_ID = 2**53 - 1
NO_NUL = r"^[^\x00]*$"


class ErrorBody(BaseModel):
    """Every 4xx and 503 answer."""

    error: str = Field(description="a stable snake_case code", examples=["bad_request"])
    detail: str = Field(description="what went wrong; for bad input it starts with the field")


_WHY: dict[int, str] = {
    400: "bad input (`bad_request`, `bad_fence`, `bad_rules`, `bad_webhook`): the detail names"
    " the field",
    401: "no key, or a key the store does not know (`unauthorized`)",
    403: "the key's role is too low (`forbidden`)",
    404: "no such thing (`not_found`, `no_position`)",
    409: "the state forbids it (`conflict`, `last_admin`, `configured_key`,"
    " `invalid_transition`, `loan_closed`, `identity_recorded`, `already_decided`,"
    " `fence_exists`, `own_request`, `expired`, `decided`, `approval_in_progress`, `not_sent`),"
    " or the `Idempotency-Key`"
    " was used for another request (`idempotency_key_reused`) or its first request still runs"
    " (`idempotency_in_progress`)",
    413: "the body is too large (`too_large`)",
    429: "too many backtests are waiting already (`too_many_backtests`)",
    503: "the database cannot be reached (`store_unavailable`, `schema`) or no gateway runs"
    " in this process (`commands_unavailable`)",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}},
}

# Statuses any key-protected route can answer: bad path/query text, no key, database down.
KEYED = (400, 401, 503)
# ... and a route that needs more than the viewer role.
ROLE = (*KEYED, 403)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries: `ErrorBody` for each status, with its meaning and headers."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        entry: dict[str, Any] = {"model": ErrorBody, "description": _WHY[status]}
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        out[status] = entry
    return out


class BearerKey(SecurityBase):
    """`Authorization: Bearer KEY` as a security scheme; on a WebSocket (where a browser cannot
    set headers) the `key` query parameter stands in. Gives the key, or None."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description="an API key: `lw_` and 43 characters")
        self.scheme_name = BEARER_SCHEME

    async def __call__(self, conn: HTTPConnection) -> str | None:
        header = conn.headers.get("authorization")
        if header:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
        if conn.scope["type"] == "websocket":
            return conn.query_params.get("key") or None
        return None


BEARER = BearerKey()


_IDEMPOTENCY_HEADER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "makes a retry safe: the first answer to this key (and the same request) is"
    " given again, marked `Idempotent-Replayed: true`, and nothing changes twice; kept 24 h",
    "schema": {"type": "string", "pattern": KEY_PATTERN, "minLength": 1, "maxLength": 255},
}


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    """Removes the 422 answers FastAPI adds by default, and their component schemas; declares
    `Idempotency-Key` (api/idempotency.py) with its 409 and the body bound's 413 on every POST
    under `/api/v1/`."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if method == "post" and path.startswith("/api/v1/"):
                operation.setdefault("parameters", []).append(dict(_IDEMPOTENCY_HEADER))
                for status, entry in errors(409, 413).items():
                    responses.setdefault(str(status), _as_schema(entry))
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def _as_schema(entry: dict[str, Any]) -> dict[str, Any]:
    """An `errors()` entry as the OpenAPI response object FastAPI would have written."""
    out: dict[str, Any] = {
        "description": entry["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    if "headers" in entry:
        out["headers"] = entry["headers"]
    return out
