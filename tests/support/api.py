"""An API over a real store for tests: the app, an admin key, keys of each role, store access.

httpx drives the app in process (ASGITransport). `api_under_test` runs it in a background event
loop behind a blocking client, as plain tests like; `async_api_under_test` runs it in the
test's own loop, beside a gateway the test starts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import numpy as np
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from alerts.delivery.hub import AlertHub
from api.app import READY, create_app
from api.auth import ensure_admin_key
from api.context import ApiContext, CommandSender
from api.routes.alerts import alerts_router
from api.stores import StoreAccess
from positions import PositionBatch
from store import Device, Store, migrate, open_store


class BlockingClient:
    """The app's lifespan and an httpx client in a background event loop, called blockingly."""

    def __init__(self, app: FastAPI, portal: anyio.from_thread.BlockingPortal) -> None:
        self._portal = portal
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self._portal.call(
            partial(self._client.request, method, url, **kwargs)
        )
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)


@contextlib.contextmanager
def blocking_client(app: FastAPI) -> Iterator[BlockingClient]:
    with anyio.from_thread.start_blocking_portal() as portal:
        lifespan = app.router.lifespan_context(app)
        portal.call(lifespan.__aenter__)
        client = BlockingClient(app, portal)
        try:
            yield client
        finally:
            client.close()
            portal.call(lifespan.__aexit__, None, None, None)


@dataclass
class ApiUnderTest:
    client: Any  # BlockingClient or httpx.AsyncClient
    context: ApiContext
    url: str | None
    data_dir: Path
    admin_key: str
    changed: list[Device] = field(default_factory=list)

    def store(self) -> Store:
        return open_store(self.url, self.data_dir)

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.auth(self.admin_key)

    def key(self, role: str, name: str | None = None) -> dict[str, str]:
        """Headers with a new key of that role, created through the API (blocking client)."""
        answer = self.client.post(
            "/api/v1/keys", json={"name": name or f"k-{role}", "role": role}, headers=self.admin
        )
        assert answer.status_code == 201, answer.text
        return self.auth(answer.json()["key"])

    def write(self, terminal: str, rows: list[dict[str, Any]]) -> None:
        """Stores positions of one terminal: dicts of PositionBatch columns (`time_ms` needed)."""
        names = {name for row in rows for name in row} | {"recv_ms", "status"}
        defaults = [{"recv_ms": r["time_ms"] + 500, "status": 3} for r in rows]
        columns = {
            name: [row.get(name, d.get(name, 0)) for row, d in zip(rows, defaults, strict=True)]
            for name in names
        }
        columns["device"] = [0] * len(rows)
        batch = PositionBatch.from_columns({k: np.asarray(v) for k, v in columns.items()})
        store = self.store()
        try:
            store.write_positions(batch, [terminal])
        finally:
            store.close()


def online_where(connected: Callable[[str], bool]) -> Callable[[list[str]], Awaitable[set[str]]]:
    """`ApiContext.online` answering by a predicate on each terminal."""

    async def online(terminals: list[str]) -> set[str]:
        return {t for t in terminals if connected(t)}

    return online


def _build(
    url: str | None,
    data_dir: Path,
    send_command: CommandSender | None,
    online: Callable[[str], bool] | None,
    max_track_points: int,
    with_alerts: bool = False,
) -> tuple[FastAPI, ApiContext, str, list[Device]]:
    migrate(url, data_dir)
    store = open_store(url, data_dir)
    try:
        admin_key = ensure_admin_key(store, None)
    finally:
        store.close()
    assert admin_key is not None
    changed: list[Device] = []
    context = ApiContext(
        stores=StoreAccess(lambda: open_store(url, data_dir), threads=2),
        send_command=send_command,
        online=online_where(online or (lambda terminal: terminal.endswith("1"))),
        device_changed=changed.append,
        device_reprovisioned=changed.append,
        max_track_points=max_track_points,
    )
    if with_alerts:  # as the composition root adds them
        context.extra_routers.append(
            alerts_router(
                context.stores,
                AlertHub(),
                context.auth.viewer,
                act=context.auth.officer,
                clock_ms=context.clock_ms,
            )
        )
    app = create_app(registry=CollectorRegistry(), ready=lambda: READY, context=context)
    return app, context, admin_key, changed


def api_under_test(
    url: str | None,
    data_dir: Path,
    *,
    send_command: CommandSender | None = None,
    online: Callable[[str], bool] | None = None,
    max_track_points: int = 100_000,
    with_alerts: bool = False,
) -> Iterator[ApiUnderTest]:
    """Migrates the store, bootstraps an admin key and serves the app to a blocking client
    (with the alert routes when asked)."""
    app, context, admin_key, changed = _build(
        url, data_dir, send_command, online, max_track_points, with_alerts
    )
    with blocking_client(app) as client:
        yield ApiUnderTest(client, context, url, data_dir, admin_key, changed)


@contextlib.asynccontextmanager
async def async_api_under_test(
    url: str | None,
    data_dir: Path,
    *,
    send_command: CommandSender | None = None,
    online: Callable[[str], bool] | None = None,
) -> AsyncIterator[ApiUnderTest]:
    """The same, served to an httpx.AsyncClient in the running event loop."""
    app, context, admin_key, changed = _build(url, data_dir, send_command, online, 100_000)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        yield ApiUnderTest(client, context, url, data_dir, admin_key, changed)


def wait_for_backtest(
    api: ApiUnderTest, location: str, headers: dict[str, str], timeout_s: float = 60.0
) -> dict[str, Any]:
    """Polls a backtest job (`location`, its URL) until it is `done` or `failed`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.client.get(location, headers=headers).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("the backtest did not finish")


def error(answer: Any, status: int, code: str, field: str | None = None) -> str:
    """Checks a JSON error answer (`{"error": CODE, "detail": ...}`, the detail naming `field`
    first when given); returns its detail."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == code, body
    if field is not None:
        assert body["detail"].startswith(field), body
    return str(body["detail"])
