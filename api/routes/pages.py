"""The live map page at `/` and `/map`, and its files under `/static/`.

Self-contained and offline: the page, its script and style, and MapLibre GL JS (vendored under
api/static/vendor/maplibre by scripts/build_maplibre, with its licence) are served by this
process; no CDN. The page asks for an API key in the browser, then reads `/api/v1` with it and
follows `WS /api/v1/alerts/stream`. The only other origin it may reach is the optional tile
service of `LIENWATCH_MAP_TILES_URL`, which the Content-Security-Policy names.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.errors import not_found
from api.map_options import MapOptions

STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE = STATIC / "map.html"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
# The files the page loads, read once: nothing else under api/static is served.
FILES = (
    "map.js",
    "map.css",
    "vendor/maplibre/maplibre-gl-csp.js",
    "vendor/maplibre/maplibre-gl-csp-worker.js",
    "vendor/maplibre/maplibre-gl.css",
    "vendor/maplibre/LICENSE.txt",
)


def content_security_policy(options: MapOptions) -> str:
    """Only this origin's scripts, styles, API and WebSocket, and the tile service if set."""
    tiles = f" {options.tiles_origin}" if options.tiles_origin else ""
    return (
        "default-src 'self'; script-src 'self'; worker-src 'self' blob:;"
        " style-src 'self' 'unsafe-inline';"
        f" connect-src 'self' ws: wss:{tiles}; img-src 'self' data: blob:{tiles}"
    )


def router(options: MapOptions | None = None) -> APIRouter:
    api = APIRouter(tags=["map"])
    html = PAGE.read_text(encoding="utf-8")
    files = {name: (STATIC / name).read_bytes() for name in FILES}
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": content_security_policy(options or MapOptions()),
    }

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    @api.get("/map", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    @api.get("/static/{name:path}", include_in_schema=False)
    async def static(name: str) -> Response:
        body = files.get(name)
        if body is None:
            raise not_found(f"no file /static/{name}")
        kind = _TYPES[Path(name).suffix]
        return Response(body, media_type=kind, headers={"Cache-Control": "no-cache"})

    return api
