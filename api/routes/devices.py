"""Devices, their positions and vehicles: `/api/v1/devices...` and `/api/v1/vehicles/{id}`.

Positions come from the store's `latest` and `track` (contracts section 6), each in the JSON of
`lienwatch decode`'s location body (section 2). Provisioning (PUT) and re-provisioning replaced
hardware (POST .../reprovision: a new identity and auth code, contracts section 8) are for
admins.
"""

import secrets
import time
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api import params
from api.auth import Identity, Role
from api.context import ApiContext
from api.errors import ApiError, bad_request, not_found
from api.long_answers import LongAnswers, fresh
from api.models import DeviceOut, DevicePage, LatestPosition, Position, Vehicle
from api.openapi import KEYED, MAX_ORG_ID, NO_NUL, ROLE, errors
from api.routes.lookup import device_or_404, online_of
from api.routes.parties import vehicle_json
from api.track_answers import TrackAnswers, digest
from api.track_json import track_chunks
from api.views import device_json, position_json
from loans import Vehicle as CarRecord
from positions import PositionBatch
from store import Device, DeviceClock
from store.scoped import ScopedStore

_TEXT = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"  # printable ASCII, no edge spaces
Terminal = Annotated[
    str,
    Path(pattern=r"^[0-9]{1,20}$", description="BCD digits; zero-padded to 12 (or 20) digits"),
]


class HardwareIdentity(BaseModel):
    """The hardware as its 0x0100 describes it (and a 2019 tracker's 0x0102 IMEI)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"maker_id": "70111", "model": "GT06", "terminal_id": "A1"}]
        },
    )

    maker_id: str = Field(max_length=30, pattern=NO_NUL)
    model: str = Field(max_length=30, pattern=NO_NUL)
    terminal_id: str = Field(max_length=30, pattern=NO_NUL, description="the hardware's own id")
    imei: str | None = Field(default=None, min_length=1, max_length=15, pattern=NO_NUL)


_CODE = Field(
    default=None,
    min_length=1,
    max_length=64,
    pattern=_TEXT,
    description="the code the tracker must send in 0x0102; give a device model's fixed code",
)


class Provision(BaseModel):
    """PUT body: the collateral car the device is fitted to (`null` takes it off its car; left
    out, the binding stays), optionally its auth code, and optionally its identity (only while
    none is recorded: replaced hardware is re-provisioned instead)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"vehicle_id": "V1"}]}
    )

    vehicle_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=_TEXT)
    auth_code: str | None = _CODE
    identity: HardwareIdentity | None = None
    org: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ORG_ID,
        description="the owning unit (default: the car's, else the device's, else the caller's)",
    )


class Reprovision(BaseModel):
    """POST body for replaced hardware: its identity (left out or null, its first 0x0100
    records it) and auth code (left out or null, its registration is issued a new one)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{}, {"auth_code": "123456"}]}
    )

    identity: HardwareIdentity | None = None
    auth_code: str | None = _CODE


def _with_identity(device: Device, identity: HardwareIdentity | None) -> Device:
    if identity is None:
        return device
    return replace(
        device,
        maker_id=identity.maker_id,
        model=identity.model,
        terminal_id=identity.terminal_id,
        imei=identity.imei,
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    """`If-None-Match` names this answer (a list of tags, weak or strong, or `*`)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return etag in tags or "*" in tags


def router(ctx: ApiContext) -> APIRouter:
    # Building a long track's answer is CPU work in this process, shared with the gateway:
    # one read at a time and one encoding thread, so a crowd of map tabs costs what one does.
    long_answers = LongAnswers(ctx.long_answer_share)
    answers = TrackAnswers()
    api = APIRouter(prefix="/api/v1", tags=["devices"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    admin = Annotated[Identity, Depends(ctx.auth.admin)]

    async def latest_of(devices: list[Device], who: Identity) -> dict[str, dict[str, Any]]:
        if not devices:
            return {}
        terminals = [d.terminal for d in devices]
        batch = await ctx.scoped(who, lambda s: s.latest(devices))
        return {terminals[int(d)]: position_json(batch, i) for i, d in enumerate(batch.device)}

    async def devices_json(
        devices: list[Device], *, with_latest: bool, who: Identity
    ) -> list[dict[str, Any]]:
        latest = await latest_of(devices, who) if with_latest else {}
        clocks = await ctx.scoped(who, lambda s: s.clocks(devices)) if devices else {}
        online = await online_of(ctx, [d.terminal for d in devices])
        return [
            device_json(
                d,
                online=online(d.terminal),
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
        page = await ctx.scoped(
            who, lambda s: s.devices(vehicle_id=vehicle_id, after=after, limit=limit)
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
        device = await device_or_404(ctx, who, params.terminal(terminal))
        return (await devices_json([device], with_latest=True, who=who))[0]

    @api.put(
        "/devices/{terminal}",
        responses={
            200: {"model": DeviceOut, "description": "updated"},
            201: {"model": DeviceOut, "description": "created"},
            **errors(*ROLE, 404, 409),
        },
    )
    async def provision(terminal: Terminal, body: Provision, who: admin) -> JSONResponse:
        """Creates the device (with a fresh auth code unless one is given) or updates it;
        binds it to `vehicle_id`. 201 when created, 200 when it existed. An `identity` is
        recorded while none is; another than the recorded one is a 409 `identity_recorded`."""
        term = params.terminal(terminal)

        def check(known: Device) -> None:
            if body.identity is not None:
                _check_identity(known, body.identity)

        def upsert(store: ScopedStore) -> tuple[bool, Device, DeviceClock | None]:
            # A fresh code is used only when the device is new (an existing one keeps its own).
            code = body.auth_code or secrets.token_hex(8)
            keep = body.auth_code is None and store.device(term) is not None
            given = Device(term, auth_code=None if keep else code, vehicle_id=body.vehicle_id)
            created, stored = store.provision(
                _with_identity(given, body.identity),
                org=body.org,
                unbind=body.vehicle_id is None and "vehicle_id" in body.model_fields_set,
                check=check,
            )
            return created, stored, store.clocks([stored]).get(term)

        created, device, clock = await ctx.scoped(who, upsert)
        if ctx.device_changed is not None:
            ctx.device_changed(device)
        online = await online_of(ctx, [term])
        out = device_json(device, online=online(term), show_auth_code=True, clock=clock)
        return JSONResponse(out, status_code=201 if created else 200)

    @api.post(
        "/devices/{terminal}/reprovision",
        response_model=None,
        responses={200: {"model": DeviceOut}, **errors(*ROLE, 404)},
    )
    async def reprovision(terminal: Terminal, body: Reprovision, who: admin) -> dict[str, Any]:
        """Replaced hardware: the identity and auth code become exactly those given (left
        out: recorded and issued at the new hardware's first registration). The connection of
        the old hardware, if any, is closed; the car binding and queued commands stay."""
        term = params.terminal(terminal)
        given = _with_identity(Device(term, auth_code=body.auth_code), body.identity)
        device = await ctx.scoped(who, lambda s: s.reprovision(given))
        if device is None:
            raise not_found(f"no device {term}")
        if ctx.device_reprovisioned is not None:
            ctx.device_reprovisioned(device)
        online = await online_of(ctx, [term])
        return device_json(device, online=online(term), show_auth_code=True)

    @api.get(
        "/devices/{terminal}/latest",
        response_model=None,
        responses={200: {"model": LatestPosition}, **errors(*KEYED, 404)},
    )
    async def latest_position(terminal: Terminal, who: viewer) -> dict[str, Any]:
        """The newest valid fix (contracts section 6)."""
        term = params.terminal(terminal)
        device = await device_or_404(ctx, who, term)
        found = await latest_of([device], who)
        if term not in found:
            raise ApiError(404, "no_position", f"device {term} has no position yet")
        return {"terminal": term, **found[term]}

    @api.get(
        "/devices/{terminal}/track",
        response_model=None,
        responses={
            200: {"model": list[Position]},
            304: {"description": "`If-None-Match` names the answer's ETag: the rows are the same"},
            **errors(*KEYED, 404),
        },
    )
    async def track(
        request: Request,
        terminal: Terminal,
        who: viewer,
        from_: Annotated[params.QueryTime, Query(alias="from")],
        to: Annotated[params.QueryTime | None, Query(description="default now")] = None,
        max_points: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
        interval_s: Annotated[float | None, Query(gt=0, le=86_400 * 366)] = None,
    ) -> Response:
        """Positions with from <= fix time <= to, in time order; optionally thinned to one per
        `interval_s` and then to at most `max_points`."""
        term = params.terminal(terminal)
        start = from_
        end = to if to is not None else ctx.clock_ms()
        device = await device_or_404(ctx, who, term)
        if end < start:
            return Response(b"[]", media_type="application/json")  # an empty range
        interval_ms = None if interval_s is None else max(1, round(interval_s * 1000))
        limit = ctx.max_track_points

        def read(store: ScopedStore) -> tuple[PositionBatch, str] | None:
            began = time.thread_time()
            batch = store.track(
                device, start, end + 1, max_points=max_points, interval_ms=interval_ms, limit=limit
            )
            found = None if len(batch) > limit else (batch, digest(batch))
            long_answers.charge(time.thread_time() - began)
            return found

        found = await long_answers.read(lambda: ctx.scoped(who, read))  # one at a time
        if found is None:
            raise bad_request(
                "max_points",
                f"more than {limit} positions in range: pass max_points or interval_s, or"
                " narrow from/to",
            )
        batch, tag = found
        etag = f'"{tag}"'
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={"ETag": etag})
        key = (who.path, term, start, end, max_points, interval_ms)
        kept = answers.get(key, tag)
        return await long_answers.stream(
            iter(kept) if kept is not None else fresh(track_chunks(batch)),
            headers={"ETag": etag},
            written=None if kept is not None else lambda pieces: answers.put(key, tag, pieces),
        )

    @api.get(
        "/vehicles/{vehicle_id}",
        response_model=None,
        responses={200: {"model": Vehicle}, **errors(*KEYED, 404)},
    )
    async def vehicle(
        vehicle_id: Annotated[str, Path(pattern=NO_NUL)], who: viewer
    ) -> dict[str, Any]:
        """The car's record (VIN, plate, make, model, colour, dealer; null when not
        recorded) and its devices, each with its latest position and connection state."""

        def bound(store: ScopedStore) -> tuple[CarRecord | None, list[Device]]:
            found: list[Device] = []
            while not found or len(found) % 1000 == 0:
                after = found[-1].terminal if found else ""
                page = store.devices(vehicle_id=vehicle_id, after=after, limit=1000)
                if not page:
                    break
                found.extend(page)
            return store.vehicle(vehicle_id), found

        record, devices = await ctx.scoped(who, bound)
        if record is None and not devices:
            raise not_found(f"no vehicle {vehicle_id!r}")
        details = {k: v for k, v in vehicle_json(record).items() if k != "org"} if record else {}
        return {
            **details,
            "vehicle_id": vehicle_id,
            "org": devices[0].org if record is None else record.org,
            "devices": await devices_json(devices, with_latest=True, who=who),
        }

    return api


def _check_identity(known: Device, given: HardwareIdentity) -> None:
    """A 409 when `given` differs from an identity field already recorded."""
    differs = [
        name
        for name, value in given.model_dump().items()
        if value is not None and getattr(known, name) not in (None, value)
    ]
    if differs:
        raise ApiError(
            409,
            "identity_recorded",
            f"device {known.terminal} already has another {', '.join(differs)}: re-provision"
            f" replaced hardware with POST /api/v1/devices/{known.terminal}/reprovision",
        )
