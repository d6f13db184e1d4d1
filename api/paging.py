"""Pages of a JSON array by id: the cursor of the next page in headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi.responses import JSONResponse
from starlette.requests import Request


def paged(request: Request, items: list[dict[str, Any]], limit: int) -> JSONResponse:
    """A JSON array; a full page carries `X-Next-After-Id` and a `Link: rel="next"`."""
    headers: dict[str, str] = {}
    if items and len(items) == limit:
        cursor = str(items[-1]["id"])
        headers["X-Next-After-Id"] = cursor
        following = {k: v for k, v in request.query_params.items() if k != "after_id"}
        following["after_id"] = cursor
        headers["Link"] = f'<{request.url.path}?{urlencode(following)}>; rel="next"'
    return JSONResponse(items, headers=headers)
