"""The JSON answers as pydantic models, for the OpenAPI document only: routes still build their
bodies with api/views.py and friends, and the schemathesis conformance test
(tests/e2e/test_openapi_conformance.py) checks that what they build matches these.

Closed sets are enums, from the same enums the code uses, so the document cannot drift from them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from alerts.lifecycle import AlertState
from alerts.model import AlertType
from api.auth import Role
from geofence import FenceKind
from loans import ActionKind, Bucket, Channel, LoanState, Outcome, Stage
from store import CommandState

CommandKind = Literal[
    "set_parameters", "query_location", "track", "terminal_control", "vehicle_control"
]
FlagName = Literal[
    "backfill", "invalid_fix", "implausible", "duplicate", "out_of_order", "future", "bad_time",
    "batch", "clock_corrected", "clock_reset", "clock_stuck",
]  # fmt: skip
ClockStateName = Literal[
    "ok", "corrected_hours", "rollover", "reset", "stuck", "future"
]  # fmt: skip
Time = str  # ISO 8601 in the trackers' local time with its offset


class Health(BaseModel):
    status: Literal["ok", "degraded", "starting", "stopping"]
    reasons: list[str] | None = Field(
        None, description="what is degraded or why not serving; absent when ok"
    )


class Me(BaseModel):
    name: str
    role: Role
    org: int = Field(description="the key's organization unit")


class KeyOut(BaseModel):
    name: str
    role: Role
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    created: Time | None
    org: int = Field(description="the unit whose subtree the key sees")


class NewKeyOut(KeyOut):
    key: str = Field(description="the key itself, shown this once")


class KeyList(BaseModel):
    keys: list[KeyOut]


class Deleted(BaseModel):
    deleted: str


class PlaceOut(BaseModel):
    """The administrative unit a point lies in (China's boundaries, offline); null at sea or
    abroad."""

    province: str = Field(examples=["浙江省"])
    city: str = Field(examples=["杭州市"])
    district: str = Field(examples=["西湖区"])
    adcode: str = Field(description="the county's 6-digit code", examples=["330106"])


class Position(BaseModel):
    """Contracts section 2's location body, plus the receive time, flags and validity."""

    lat: float
    lon: float
    altitude_m: int
    speed_kmh: float
    course: int
    time: Time | None = Field(
        description="the fix time: the device's, corrected for a clock known to be off, or the"
        " receive time when the device's is unusable (see `flags` and the device's `clock`)"
    )
    time_raw: str | None = Field(default=None, description="the BCD time when it is no date")
    device_time: Time | None = Field(description="the fix time as the device sent it")
    alarm: int
    status: int
    received: Time | None
    flags: list[FlagName]
    valid: bool
    place: PlaceOut | None = Field(default=None, description="where the fix lies")


class LatestPosition(Position):
    terminal: str


class IdentityOut(BaseModel):
    """What the tracker said it is (contracts section 8); a field not recorded yet is null."""

    maker_id: str | None = Field(description="of its first 0x0100")
    model: str | None = Field(description="of its first 0x0100")
    terminal_id: str | None = Field(description="the hardware's id in its first 0x0100")
    imei: str | None = Field(description="of its first 2019 0x0102")


class DeviceClock(BaseModel):
    """The device's clock as of its latest report."""

    state: ClockStateName = Field(
        description="ok; corrected_hours or rollover: fix times are corrected by `offset_s`;"
        " reset, stuck or future: its fix times are unusable and kept out of the location rules"
    )
    offset_s: float = Field(
        description="the correction added to its fix times (for reset, stuck and future: how far"
        " its latest fix time was behind the receive time)"
    )
    since: Time = Field(description="when its reports began to show this state")


class DeviceOut(BaseModel):
    terminal: str
    org: int = Field(description="the owning organization unit")
    vehicle_id: str | None
    edition: int | None
    registered: Time | None = Field(
        description="the registration that recorded its identity or issued its current code"
    )
    last_seen: Time | None
    online: bool | None = Field(default=None, description="absent when the process cannot tell")
    auth_code: str | None = Field(default=None, description="admins only")
    identity: IdentityOut | None = Field(
        default=None, description="admins only; null until the first registration"
    )
    latest: Position | None = Field(default=None, description="where asked")
    clock: DeviceClock | None = Field(
        default=None, description="null until the device has reported a position"
    )


class DevicePage(BaseModel):
    devices: list[DeviceOut]
    next: str | None = Field(description="pass back as `after` for the next page")


class Vehicle(BaseModel):
    vehicle_id: str
    org: int = Field(description="the owning organization unit")
    vin: str | None = None
    plate: str | None = None
    make: str | None = None
    model: str | None = None
    colour: str | None = None
    dealer: int | None = Field(default=None, description="the dealer unit that sold it")
    devices: list[DeviceOut]


class FenceProperties(BaseModel):
    id: str
    kind: FenceKind
    name: str | None = None
    notify: list[Literal["enter", "exit"]] | None = None
    vehicles: list[str] | None = None
    radius_m: float | None = None
    buffer_m: float | None = None
    org: int | None = Field(default=None, description="the owning organization unit")


class Feature(BaseModel):
    type: Literal["Feature"]
    properties: FenceProperties
    geometry: dict[str, Any]


class FenceCollection(BaseModel):
    type: Literal["FeatureCollection"]
    version: int
    features: list[Feature]


class FencesPut(BaseModel):
    version: int = Field(description="the fence-set version after the change")
    ids: list[str]


class FenceDeleted(Deleted):
    version: int


class CommandOut(BaseModel):
    id: int
    terminal: str
    kind: CommandKind | str = Field(description="a kind, or the message id of another command")
    msg_id: str = Field(pattern=r"^0x[0-9a-f]{4}$")
    state: CommandState
    created: Time | None
    updated: Time | None
    expires: Time | None
    attempts: int
    issued_by: str | None
    request: dict[str, Any] | None
    reply: dict[str, Any] | None
    org: int = Field(description="the owning organization unit")
    approved_by: str | None = Field(default=None, description="the second person, when needed")


class CommandList(BaseModel):
    commands: list[CommandOut]


class AlertOut(BaseModel):
    """Contracts section 3's alert plus `id`, `state` and the lifecycle fields."""

    id: int
    type: AlertType
    org: int | None = Field(description="its vehicle's unit, else its device's")
    device_id: str
    vehicle_id: str
    time: Time
    fence_id: str | None
    severity: str
    details: dict[str, Any]
    state: AlertState
    opened_at: Time
    updated_at: Time
    acknowledged_by: str | None
    acknowledged_at: Time | None
    resolved_by: str | None
    resolved_at: Time | None
    note: str | None
    place: PlaceOut | None = Field(
        default=None,
        description="where the vehicle was: the device's last valid fix at or before the"
        " alert's time (within 6 h)",
    )
    assignee: str | None
    assigned_by: str | None
    assigned_at: Time | None


class LoanOut(BaseModel):
    id: int
    org: int = Field(description="the owning organization unit")
    borrower_id: int | None = Field(description="the borrower's record, when linked")
    loan_no: str
    borrower_name: str
    vehicle_id: str
    principal: str = Field(description="decimal, 2 places, as text")
    currency: str
    start_date: str
    due_day: int
    next_due_date: str
    paid_through: str | None
    grace_days: int
    state: LoanState
    stage: Stage | None
    branch: str | None
    created_at: Time | None
    updated_at: Time | None
    as_of: str
    dpd: int | None = Field(description="days past due; null once settled or written off")
    bucket: Bucket | None
    monitored: bool


class BorrowerOut(BaseModel):
    id: int
    org: int
    name: str
    id_number: str | None = Field(description="masked for viewers (`**************1234`)")
    phone: str | None = Field(description="masked for viewers (`138****5678`)")
    created: Time | None


class LoanDetail(LoanOut):
    borrower: BorrowerOut | None = Field(description="its record, masked for viewers")
    devices: list[DeviceOut]
    alerts: list[AlertOut]


class ActionOut(BaseModel):
    id: int
    loan_no: str
    kind: ActionKind
    actor: str
    at: Time | None
    stage: Stage | None
    channel: Channel | None
    outcome: Outcome | None
    note: str | None
    details: dict[str, Any] | None


class LoanChanged(BaseModel):
    loan: LoanOut
    action: ActionOut


class OrgOut(BaseModel):
    id: int
    name: str
    kind: Literal["platform", "tenant", "branch", "dealer"]
    parent: int | None = Field(description="null for a tenant (and the platform root)")
    created: Time | None


class OrgList(BaseModel):
    orgs: list[OrgOut]


class VehicleMoved(BaseModel):
    vehicle_id: str
    org: int
    moved: int = Field(description="devices, loans and alerts moved with the car")


class AuditOut(BaseModel):
    id: int
    at: Time
    actor: str = Field(description="the API key that made the change")
    actor_org: int = Field(description="that key's unit")
    org: int = Field(description="the unit of the changed record")
    action: str = Field(description="e.g. device.create, fence.delete, command.approved")
    target: str = Field(description="kind:id of the changed record")
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ApprovalOut(BaseModel):
    id: int
    terminal: str
    org: int
    kind: str
    msg_id: str = Field(pattern=r"^0x[0-9a-f]{4}$")
    request: dict[str, Any]
    state: Literal["pending", "approved", "rejected", "expired"]
    requested_by: str
    requested: Time
    expires: Time
    decided_by: str | None
    decided: Time | None
    command_id: int | None = Field(description="the command sent once approved")
    last_error: str | None = Field(
        default=None,
        description="why the last approval's command could not be sent (the request stays"
        " pending); null once approved",
    )
    command: CommandOut | None = Field(default=None, description="in the approval's answer")


class EndpointOut(BaseModel):
    id: int
    org: int = Field(description="the unit whose alerts (its subtree's) it gets")
    url: str
    created_by: str
    created: Time | None


class NewEndpointOut(EndpointOut):
    secret: str = Field(description="the HMAC-SHA256 key of its signatures, shown this once")


class EndpointList(BaseModel):
    webhooks: list[EndpointOut]


class VehicleRecord(BaseModel):
    vehicle_id: str
    org: int
    vin: str | None
    plate: str | None
    make: str | None
    model: str | None
    colour: str | None
    dealer: int | None = Field(description="the dealer unit that sold it")


class VehicleList(BaseModel):
    vehicles: list[VehicleRecord]
    next: str | None = Field(description="pass back as `after` for the next page")


class UnitRules(BaseModel):
    org: int
    rules: dict[str, dict[str, float]] = Field(
        description="the unit's own threshold overrides, as the tables of RULES.toml"
    )
