"""The API served for real (uvicorn on 127.0.0.1): the live map page and key checks on a
WebSocket, which a browser authenticates with `?key=` since it cannot send headers.

No `from __future__ import annotations`: FastAPI reads the route's dependency from the live
annotation.
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
import websockets
from fastapi import APIRouter, Depends, WebSocket
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect

from api.app import READY, create_app
from api.auth import Identity, ensure_admin_key
from api.context import ApiContext
from api.server import ApiServer
from api.stores import StoreAccess
from store import migrate, open_store


def _stream_router(context: ApiContext) -> APIRouter:
    """A stand-in for the alert stream: says who connected, using the same dependency."""
    router = APIRouter()

    @router.websocket("/api/v1/alerts/stream")
    async def stream(
        websocket: WebSocket, who: Annotated[Identity, Depends(context.auth.viewer)]
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"type": "hello", "name": who.name})
        await websocket.close()

    return router


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    migrate(None, tmp_path)
    store = open_store(None, tmp_path)
    try:
        key = ensure_admin_key(store, None)
    finally:
        store.close()
    assert key is not None
    context = ApiContext(stores=StoreAccess(lambda: open_store(None, tmp_path)))
    context.extra_routers.append(_stream_router(context))
    app = create_app(registry=CollectorRegistry(), ready=lambda: READY, context=context)
    server = ApiServer(app, "127.0.0.1", 0)
    host, port = await server.start()
    try:
        yield f"{host}:{port}", key
    finally:
        await server.stop()
        context.stores.close()


async def test_the_map_page_is_served_and_refers_only_to_local_assets(
    served: tuple[str, str],
) -> None:
    address, _ = served
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        for path in ("/", "/map"):
            page = await http.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            policy = page.headers["content-security-policy"]
            assert "default-src 'self'" in policy and "script-src 'self';" in policy
        html = page.text
        # No external script, style, image or font: every reference is to this server.
        references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html, re.I)
        assert "/static/vendor/maplibre/maplibre-gl-csp.js" in references
        assert all(ref.startswith(("/static/", "data:")) for ref in references), references
        assert not re.search(r"https?://", html)
        script = ""
        for ref in references:
            if ref.startswith("/static/"):
                asset = await http.get(ref)  # the page's files need no key
                assert asset.status_code == 200, ref
                assert asset.headers["content-type"].split(";")[0] in (
                    "text/javascript",
                    "text/css",
                )
                if ref == "/static/map.js":
                    script = asset.text
        worker = await http.get("/static/vendor/maplibre/maplibre-gl-csp-worker.js")
        assert worker.status_code == 200
        licence = await http.get("/static/vendor/maplibre/LICENSE.txt")
        assert licence.status_code == 200 and "Copyright" in licence.text
        # Only the listed files are served: no path escapes api/static.
        for outside in ("/static/../app.py", "/static/map.html", "/static/vendor/x.js"):
            assert (await http.get(outside)).status_code == 404
    # The page reads the API with the key it asks for and follows the contract's stream.
    for path in ("/api/v1/map/cars", "/api/v1/fences", "/api/v1/alerts/stream"):
        assert path in script
    assert "Authorization" in script and "Bearer" in script
    assert not re.search(r"https?://", script)


async def test_a_websocket_is_authenticated_by_its_key_parameter(
    served: tuple[str, str],
) -> None:
    address, key = served
    async with connect(f"ws://{address}/api/v1/alerts/stream?key={key}") as ws:
        assert await ws.recv() == '{"type":"hello","name":"admin"}'
    for query in ("", "?key=lw_wrong"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(f"ws://{address}/api/v1/alerts/stream{query}"):
                pass
        assert refused.value.response.status_code == 403
