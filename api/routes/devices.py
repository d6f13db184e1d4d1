"""Devices, their positions and vehicles: `/api/v1/devices...` and `/api/v1/vehicles/{id}`.

Positions come from the store's `latest` and `track` (contracts section 6), each in the JSON of
`lienwatch decode`'s location body (section 2). Provisioning (PUT) is for admins.
"""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api import params
from api.auth import Identity, Role
from api.context import ApiContext
from api.errors import ApiError, bad_request, not_found
from api.models import DeviceOut, DevicePage, LatestPosition, Position, Vehicle
from api.openapi import KEYED, NO_NUL, ROLE, errors
from api.routes.lookup import device_or_404, is_online
from api.views import device_json, position_json, positions_json
from positions import PositionBatch
from store import Device, DeviceClock, Store

_TEXT = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"  # printable ASCII, no edge spaces
Terminal = Annotated[
    str,
    Path(pattern=r"^[0-9]{1,20}$", description="BCD digits; zero-padded to 12 (or 20) digits"),
]


class Provision(BaseModel):
    """PUT body: the collateral car the device is fitted to (`null` takes it off its car; left
    out, the binding stays), and optionally its auth code."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"vehicle_id": "V1"}]}
    )

    vehicle_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=_TEXT)
    auth_code: str | None = Field(default=None, min_length=1, max_length=64, pattern=_TEXT)


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["devices"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    admin = Annotated[Identity, Depends(ctx.auth.admin)]

    async def latest_of(terminals: list[str]) -> dict[str, dict[str, Any]]:
        if not terminals:
            return {}
        batch = await ctx.stores.run(lambda s: s.latest(terminals))
        return {terminals[int(d)]: position_json(batch, i) for i, d in enumerate(batch.device)}

    async def devices_json(
        devices: list[Device], *, with_latest: bool, who: Identity
    ) -> list[dict[str, Any]]:
        terminals = [d.terminal for d in devices]
        latest = await latest_of(terminals) if with_latest else {}
        clocks = await ctx.stores.run(lambda s: s.device_clocks(terminals)) if terminals else {}
        return [
            device_json(
                d,
                online=is_online(ctx, d.terminal),
                latest=latest.get(d.terminal),
                with_latest=with_latest,
                show_auth_code=who.can(Role.ADMIN),
                clock=clocks.get(d.terminal),
            )
            for d in devices
        ]

    @api.get(
        "/devices", response_model=None, responses={200: {"model": DevicePage}, **errors(*KEYED)}
    )
    async def list_devices(
        who: viewer,
        vehicle_id: Annotated[
            str | None, Query(min_length=1, max_length=64, pattern=NO_NUL)
        ] = None,
        after: Annotated[
            str, Query(max_length=20, pattern=NO_NUL, description="`next` of the last page")
        ] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        latest: Annotated[bool, Query(description="include each latest position")] = False,
    ) -> dict[str, Any]:
        """A page of devices by terminal; pass `next` back as `after` for the next page."""
        page = await ctx.stores.run(
            lambda s: s.find_devices(vehicle_id=vehicle_id, after=after, limit=limit)
        )
        return {
            "devices": await devices_json(page, with_latest=latest, who=who),
            "next": page[-1].terminal if len(page) == limit else None,
        }

    @api.get(
        "/devices/{terminal}",
        response_model=None,
        responses={200: {"model": DeviceOut}, **errors(*KEYED, 404)},
    )
    async def get_device(terminal: Terminal, who: viewer) -> dict[str, Any]:
        device = await device_or_404(ctx, params.terminal(terminal))
        return (await devices_json([device], with_latest=True, who=who))[0]

    @api.put(
        "/devices/{terminal}",
        responses={
            200: {"model": DeviceOut, "description": "updated"},
            201: {"model": DeviceOut, "description": "created"},
            **errors(*ROLE),
        },
    )
    async def provision(terminal: Terminal, body: Provision, who: admin) -> JSONResponse:
        """Creates the device (with a fresh auth code unless one is given) or updates it;
        binds it to `vehicle_id`. 201 when created, 200 when it existed."""
        term = params.terminal(terminal)

        def upsert(store: Store) -> tuple[bool, Device, DeviceClock | None]:
            known = store.get_device(term)
            code = body.auth_code
            if known is None and code is None:
                code = secrets.token_hex(8)
            store.upsert_device(Device(term, auth_code=code, vehicle_id=body.vehicle_id))
            if body.vehicle_id is None and "vehicle_id" in body.model_fields_set:
                store.unbind_device(term)
            stored = store.get_device(term)
            assert stored is not None
            return known is None, stored, store.device_clocks([term]).get(term)

        created, device, clock = await ctx.stores.run(upsert)
        if ctx.device_changed is not None:
            ctx.device_changed(device)
        out = device_json(device, online=is_online(ctx, term), show_auth_code=True, clock=clock)
        return JSONResponse(out, status_code=201 if created else 200)

    @api.get(
        "/devices/{terminal}/latest",
        response_model=None,
        responses={200: {"model": LatestPosition}, **errors(*KEYED, 404)},
    )
    async def latest_position(terminal: Terminal, who: viewer) -> dict[str, Any]:
        """The newest valid fix (contracts section 6)."""
        term = params.terminal(terminal)
        await device_or_404(ctx, term)
        found = await latest_of([term])
        if term not in found:
            raise ApiError(404, "no_position", f"device {term} has no position yet")
        return {"terminal": term, **found[term]}

    @api.get(
        "/devices/{terminal}/track",
        response_model=None,
        responses={200: {"model": list[Position]}, **errors(*KEYED, 404)},
    )
    async def track(
        terminal: Terminal,
        who: viewer,
        from_: Annotated[params.QueryTime, Query(alias="from")],
        to: Annotated[params.QueryTime | None, Query(description="default now")] = None,
        max_points: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
        interval_s: Annotated[float | None, Query(gt=0, le=86_400 * 366)] = None,
    ) -> list[dict[str, Any]]:
        """Positions with from <= fix time <= to, in time order; optionally thinned to one per
        `interval_s` and then to at most `max_points`."""
        term = params.terminal(terminal)
        start = from_
        end = to if to is not None else ctx.clock_ms()
        await device_or_404(ctx, term)
        if end < start:
            return []  # an empty range holds no position
        interval_ms = None if interval_s is None else max(1, round(interval_s * 1000))
        batch: PositionBatch = await ctx.stores.run(
            lambda s: s.track(term, start, end + 1, max_points=max_points, interval_ms=interval_ms)
        )
        if len(batch) > ctx.max_track_points:
            raise bad_request(
                "max_points",
                f"{len(batch)} positions in range, more than {ctx.max_track_points}:"
                " pass max_points or interval_s, or narrow from/to",
            )
        return positions_json(batch)

    @api.get(
        "/vehicles/{vehicle_id}",
        response_model=None,
        responses={200: {"model": Vehicle}, **errors(*KEYED, 404)},
    )
    async def vehicle(
        vehicle_id: Annotated[str, Path(pattern=NO_NUL)], who: viewer
    ) -> dict[str, Any]:
        """The vehicle's devices, each with its latest position and connection state."""

        def bound(store: Store) -> list[Device]:
            found: list[Device] = []
            while not found or len(found) % 1000 == 0:
                after = found[-1].terminal if found else ""
                page = store.find_devices(vehicle_id=vehicle_id, after=after, limit=1000)
                if not page:
                    break
                found.extend(page)
            return found

        devices = await ctx.stores.run(bound)
        if not devices:
            raise not_found(f"no device is bound to vehicle {vehicle_id!r}")
        return {
            "vehicle_id": vehicle_id,
            "devices": await devices_json(devices, with_latest=True, who=who),
        }

    return api
