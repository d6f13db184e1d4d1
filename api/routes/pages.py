"""The live map page at `/` and `/map`: one self-contained HTML file (no CDN, no internet).

It asks for an API key in the browser, then reads `/api/v1` with it and follows
`WS /api/v1/alerts/stream`.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

PAGE = Path(__file__).resolve().parent.parent / "static" / "map.html"


def router() -> APIRouter:
    api = APIRouter(tags=["map"])
    html = PAGE.read_text(encoding="utf-8")
    headers = {
        "Cache-Control": "no-cache",
        # Only this origin's scripts, styles, API and WebSocket: the page stays self-contained.
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline';"
            " connect-src 'self' ws: wss:; img-src 'self' data:"
        ),
    }

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    @api.get("/map", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    return api
