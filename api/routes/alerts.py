"""Alerts over HTTP: list, read, acknowledge and resolve; and the live stream (contracts §6).

- `GET /api/v1/alerts?type=&since=ISO&vehicle_id=&state=&after_id=&limit=` → a JSON array of
  alerts (section 3's fields plus `id`, `state` and the lifecycle fields), by id; when the page
  is full, `X-Next-After-Id` (and a `Link: rel="next"`) gives the cursor for the next page.
- `GET /api/v1/alerts/{id}` → one alert.
- `POST /api/v1/alerts/{id}/acknowledge` and `/resolve`, body `{"note": "..."}` or none → the
  alert after the move; the actor is the API key's name; a move the lifecycle forbids is a 409.
- `POST /api/v1/alerts/{id}/assign` `{"assignee": NAME or null, "note"?}` → the alert handed to
  someone (its state stays); a resolved alert is a 409.
- `WS /api/v1/alerts/stream?type=a,b` → each new alert as one JSON text message, as it fires;
  with `&changes=true` also each acknowledged or resolved alert again, with its new state.
  A client too slow to keep up is closed with 1013 (try again later) and a reason.

Every alert these answer carries `place` (`api.alert_places`: where the vehicle was).

No `from __future__ import annotations`: FastAPI reads the routes' dependencies, built inside
`alerts_router`, from the live annotations.
"""

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, WebSocket, WebSocketDisconnect, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from alerts.delivery.hub import AlertHub, SubscriptionClosed
from alerts.lifecycle import AlertState, StoredAlert, TransitionError, alert_text
from alerts.model import AlertType
from api import params
from api.alert_places import alert_places
from api.errors import ApiError, bad_request, not_found
from api.models import AlertOut
from api.openapi import KEYED, NO_NUL, ROLE, errors
from api.stores import StoreAccess
from organizations import ROOT_ID, Scope
from store import AlertNotFoundError, StoreError
from store.scoped import ScopedStore

_TYPES = frozenset(t.value for t in AlertType)
_MAX_ID = 2**63 - 1
PLACED_ALERTS = 4096  # places of recent alerts kept for the stream
SETTLED_MS = 60_000  # an alert this old has its fixes stored, if it ever will
# `type=a,b`: an array of alert types in one comma-separated value (form style, not exploded).
# The route reads it itself, so the document carries it by hand.
TYPE_PARAMETER: dict[str, Any] = {
    "name": "type",
    "in": "query",
    "required": False,
    "style": "form",
    "explode": False,
    "description": "alert type(s), comma-separated",
    "schema": {"type": "array", "items": {"enum": sorted(_TYPES)}},
}


class _Named(Protocol):
    """What the auth dependency gives: the caller, whose `name` is recorded as the actor and
    whose `scope` (its unit's subtree) is all it sees."""

    @property
    def name(self) -> str: ...

    @property
    def scope(self) -> Scope: ...


class NoteBody(BaseModel):
    """Body of acknowledge/resolve: an optional note kept with the alert."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "called the driver"}]}
    )

    note: str | None = Field(default=None, max_length=2000)


class AssignBody(BaseModel):
    """Body of assign: who handles the alert (`null`: nobody), and an optional note."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"assignee": "collector-7"}]}
    )

    assignee: str | None = Field(min_length=1, max_length=64, pattern=r"^[^\x00]*\S[^\x00]*$")
    note: str | None = Field(default=None, max_length=2000)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def alert_types(value: str | None, field: str = "type") -> frozenset[str] | None:
    """`a,b` → the set of alert types, or a 400 naming the field and the unknown type."""
    if value is None or not value:
        return None
    wanted = frozenset(value.split(","))
    unknown = sorted(wanted - _TYPES)
    if unknown:
        raise bad_request(field, f"unknown alert type {unknown[0]!r}")
    return wanted


def alerts_router(
    stores: StoreAccess,
    hub: AlertHub,
    auth: Callable[..., Any],
    *,
    act: Callable[..., Any] | None = None,
    clock_ms: Callable[[], int] = _wall_clock_ms,
    max_limit: int = 1000,
    moved: Callable[[StoredAlert], None] | None = None,
) -> APIRouter:
    """The alert routes. `auth` is a FastAPI dependency (HTTP and WebSocket) returning the
    caller (an object with `name`) or refusing; `act` (default `auth`) guards acknowledge and
    resolve, e.g. `ApiContext.auth.viewer` and `.officer`. `moved` is told of each alert
    acknowledged or resolved here, after this process's stream (other processes' streams)."""
    api = APIRouter(prefix="/api/v1", tags=["alerts"])
    reader = Annotated[_Named, Depends(auth)]
    actor = Annotated[_Named, Depends(act or auth)]
    alert_id_path = Annotated[int, Path(ge=1, le=_MAX_ID, description="the alert's id")]

    placed: OrderedDict[int, Any] = OrderedDict()  # alert id -> place, shared by all answers

    async def with_places(found: list[StoredAlert]) -> list[dict[str, Any]]:
        """The alerts' JSON with their `place`: where the vehicle was does not change, so each
        alert's is read once (the last `PLACED_ALERTS` kept), by lists, reads and streams."""
        missing = [a for a in found if a.id not in placed]
        if missing:
            fresh = await stores.run(lambda s: alert_places(s, missing))
            now = clock_ms()
            for alert, place in zip(missing, fresh, strict=True):
                # No fix found for a fresh alert may only mean its fixes are still on their way
                # from the journal to the store: ask again next time.
                if place is not None or now - alert.opened_ms > SETTLED_MS:
                    placed[alert.id] = place
            while len(placed) > PLACED_ALERTS:
                placed.popitem(last=False)
            fresh_of = {a.id: p for a, p in zip(missing, fresh, strict=True)}
        else:
            fresh_of = {}
        return [
            {**a.to_json(), "place": placed[a.id] if a.id in placed else fresh_of.get(a.id)}
            for a in found
        ]

    async def placed_text(alert: StoredAlert) -> str:
        """A streamed alert with its place; without it while the store cannot be read (the
        alert must still go out)."""
        try:
            (body,) = await with_places([alert])
        except StoreError:
            return alert_text(alert)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    @api.get(
        "/alerts",
        responses={200: {"model": list[AlertOut]}, **errors(*KEYED)},
        openapi_extra={"parameters": [TYPE_PARAMETER]},
    )
    async def list_alerts(
        request: Request,
        who: reader,
        since: Annotated[params.QueryTime | None, Query()] = None,
        vehicle_id: Annotated[
            str | None, Query(min_length=1, max_length=64, pattern=NO_NUL)
        ] = None,
        state: AlertState | None = None,
        after_id: Annotated[int, Query(ge=0, le=_MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=max_limit)] = 100,
    ) -> JSONResponse:
        """Alerts matching every filter given, by id (alert time at or after `since`)."""
        given = request.query_params.getlist("type")
        types = alert_types(",".join(given) if given else None, "query.type")
        since_ms = since
        wanted_state = state

        def query(store: ScopedStore) -> list[StoredAlert]:
            if types is None or len(types) == 1:
                return list(
                    store.alerts(
                        alert_type=next(iter(types)) if types else None,
                        since_ms=since_ms,
                        vehicle_id=vehicle_id,
                        state=wanted_state,
                        after_id=after_id,
                        limit=limit,
                    )
                )
            merged: list[StoredAlert] = []
            for kind in sorted(types):
                merged += store.alerts(
                    alert_type=kind,
                    since_ms=since_ms,
                    vehicle_id=vehicle_id,
                    state=wanted_state,
                    after_id=after_id,
                    limit=limit,
                )
            return sorted(merged, key=lambda a: a.id)[:limit]

        page = await stores.scoped(who.scope, who.name, query, clock_ms)
        headers: dict[str, str] = {}
        if len(page) == limit:
            cursor = str(page[-1].id)
            headers["X-Next-After-Id"] = cursor
            following = {k: v for k, v in request.query_params.items() if k != "after_id"}
            following["after_id"] = cursor
            headers["Link"] = f'<{request.url.path}?{urlencode(following)}>; rel="next"'
        return JSONResponse(await with_places(page), headers=headers)

    @api.get(
        "/alerts/{alert_id}",
        response_model=None,
        responses={200: {"model": AlertOut}, **errors(*KEYED, 404)},
    )
    async def get_alert(alert_id: alert_id_path, who: reader) -> dict[str, Any]:
        found = await stores.scoped(who.scope, who.name, lambda s: s.alert(alert_id), clock_ms)
        if found is None:
            raise not_found(f"no alert {alert_id}")
        return (await with_places([found]))[0]

    async def change(
        alert_id: int, who: _Named, call: Callable[[ScopedStore], StoredAlert]
    ) -> dict[str, Any]:
        """One change of an alert in the caller's scope, streamed and told about."""
        try:
            changed = await stores.scoped(who.scope, who.name, call, clock_ms)
        except AlertNotFoundError:
            raise not_found(f"no alert {alert_id}") from None
        except TransitionError as exc:
            raise ApiError(409, "invalid_transition", str(exc)) from None
        hub.publish_changes([changed])
        if moved is not None:
            moved(changed)
        return (await with_places([changed]))[0]

    async def move(
        alert_id: int, target: AlertState, who: _Named, body: NoteBody | None
    ) -> dict[str, Any]:
        note = body.note if body is not None else None
        return await change(
            alert_id, who, lambda s: s.transition_alert(alert_id, target, note, clock_ms())
        )

    move_answers = {200: {"model": AlertOut}, **errors(*ROLE, 404, 409)}

    @api.post("/alerts/{alert_id}/acknowledge", response_model=None, responses=move_answers)
    async def acknowledge(
        alert_id: alert_id_path, who: actor, body: NoteBody | None = None
    ) -> dict[str, Any]:
        """open → acknowledged; acknowledging twice is a 409."""
        return await move(alert_id, AlertState.ACKNOWLEDGED, who, body)

    @api.post("/alerts/{alert_id}/resolve", response_model=None, responses=move_answers)
    async def resolve(
        alert_id: alert_id_path, who: actor, body: NoteBody | None = None
    ) -> dict[str, Any]:
        """open or acknowledged → resolved (final)."""
        return await move(alert_id, AlertState.RESOLVED, who, body)

    @api.post("/alerts/{alert_id}/assign", response_model=None, responses=move_answers)
    async def assign(alert_id: alert_id_path, body: AssignBody, who: actor) -> dict[str, Any]:
        """Hands an open or acknowledged alert to someone (`assignee`, a name); the state
        stays. Assigning a resolved alert is a 409."""
        return await change(
            alert_id,
            who,
            lambda s: s.assign_alert(alert_id, body.assignee, body.note, clock_ms()),
        )

    @api.websocket("/alerts/stream")
    async def stream(
        websocket: WebSocket,
        who: reader,
        kinds: Annotated[str | None, Query(alias="type")] = None,
        changes: Annotated[bool, Query(description="also acknowledged/resolved alerts")] = False,
    ) -> None:
        """Each new alert as a JSON text message; optional `type=a,b` filter; with
        `changes=true`, an alert is sent again when it is acknowledged or resolved."""
        try:
            types = alert_types(kinds)
        except ApiError as exc:
            await websocket.close(status.WS_1008_POLICY_VIOLATION, exc.detail)
            return
        await websocket.accept()
        subscription = hub.subscribe(types, changes=changes)
        paths: dict[int, str | None] = {}  # unit id -> path: units never move

        async def visible(alert: StoredAlert) -> bool:
            if alert.org_path is not None:
                return who.scope.contains(alert.org_path)
            org = ROOT_ID if alert.org is None else alert.org
            if org not in paths:
                paths[org] = await stores.run(lambda s: s.org_path(org))
            path = paths[org]
            return path is not None and who.scope.contains(path)

        listener = asyncio.create_task(_until_disconnect(websocket))
        try:
            while True:
                getter = asyncio.ensure_future(subscription.get())
                done, _ = await asyncio.wait(
                    {getter, listener}, return_when=asyncio.FIRST_COMPLETED
                )
                if listener in done:
                    getter.cancel()
                    return
                try:
                    alert = getter.result()
                except SubscriptionClosed as closed:
                    await websocket.close(status.WS_1013_TRY_AGAIN_LATER, closed.reason[:120])
                    return
                if await visible(alert):  # only the caller's subtree
                    await websocket.send_text(await placed_text(alert))
        except (WebSocketDisconnect, RuntimeError):
            return  # the client went away mid-send
        finally:
            hub.unsubscribe(subscription)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await listener

    return api


async def _until_disconnect(websocket: WebSocket) -> None:
    """Reads (and ignores) what the client sends until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
