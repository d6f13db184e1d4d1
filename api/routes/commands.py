"""Commands down to trackers: `POST /api/v1/devices/{terminal}/commands`, `GET
/api/v1/commands/{id}` and a device's recent commands.

Kinds: `set_parameters` (0x8103), `query_location` (0x8201), `track` (0x8202, temporary
tracking), `terminal_control` (0x8105) and `vehicle_control` (0x8500). Dangerous ones wait for a
second admin's approval (`needs_approval`). The injected sender (the gateway) sends to an online
terminal and awaits its answer, or queues the command for an offline one. Every command gets an
id: a queued one has the queue's, one answered (or failed) at once is recorded with its final
state. The command log keeps who asked, the request and the terminal's answer.
"""

import json
import struct
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api import params
from api.auth import Identity
from api.command_views import KINDS, approval_json
from api.context import ApiContext
from api.errors import ApiError, bad_request, not_found
from api.models import ApprovalOut, CommandList, CommandOut
from api.openapi import KEYED, ROLE, errors
from api.routes.devices import Terminal
from api.routes.lookup import device_or_404
from api.views import iso
from ingest.commands import reply_json
from ingest.jt808.errors import Jt808UsageError
from ingest.jt808.fields import encode_text
from ingest.jt808.ids import DWORD_PARAMS, Edition, ParamId
from ingest.jt808.messages import (
    LocationQuery,
    Message,
    SetParameters,
    TemporaryTracking,
    TerminalControl,
    VehicleControl,
)
from store import CommandState, Device, QueuedCommand
from store.interface import CommandLog
from store.scoped import ScopedStore

_BY_NAME = {name: msg_id for msg_id, name in KINDS.items()}
# 0x8105 command words (JT/T 808-2013 table 25).
CONTROL_WORDS = {
    "upgrade": 1,
    "connect_server": 2,
    "power_off": 3,
    "reset": 4,
    "factory_reset": 5,
    "close_data": 6,
    "close_wireless": 7,
}


ControlWord = Literal[
    "upgrade",
    "connect_server",
    "power_off",
    "reset",
    "factory_reset",
    "close_data",
    "close_wireless",
]


class _Strict(BaseModel):
    # Strict: JSON types as documented (no `true` for 1, no "5" for 5).
    model_config = ConfigDict(extra="forbid", strict=True)

    kind: str


class SetParametersIn(_Strict):
    params: dict[str, int | str] = Field(min_length=1, max_length=255)


class QueryLocationIn(_Strict):
    pass


class TrackIn(_Strict):
    interval_s: int = Field(ge=0, le=0xFFFF, description="0 stops temporary tracking")
    validity_s: int = Field(default=0, ge=0, le=0xFFFFFFFF)


class TerminalControlIn(_Strict):
    command: int | ControlWord
    params: str = Field(default="", max_length=1024)


class ControlTypeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: int = Field(
        ge=1,
        le=0xFFFF,
        description="JT/T 808-2019 control type: 1 the doors; 0xF001-0xFFFF the maker's",
    )
    param: int = Field(ge=0, le=0xFF, description="its parameter BYTE (doors: 0 unlock, 1 lock)")


class VehicleControlIn(_Strict):
    flags: int = Field(
        ge=0,
        le=0xFF,
        description="the 0x8500 control flag byte: bit 0 locks the doors; further bits as the"
        " tracker's maker defines (cut fuel and power)",
    )
    controls: list[ControlTypeIn] = Field(
        default_factory=list,
        min_length=1,
        max_length=255,
        description="what a JT/T 808-2019 tracker is sent instead of `flags` (default: the doors"
        " from flag bit 0); needed there when `flags` sets bits 1-7",
    )


_MODELS: dict[int, type[_Strict]] = {
    0x8103: SetParametersIn,
    0x8201: QueryLocationIn,
    0x8202: TrackIn,
    0x8105: TerminalControlIn,
    0x8500: VehicleControlIn,
}


def _documented(model: type[_Strict], kind: str) -> dict[str, Any]:
    """A command model's JSON Schema with `kind` narrowed to its name and message id."""
    schema = model.model_json_schema()
    schema["properties"]["kind"] = {"enum": [kind, f"0x{_BY_NAME[kind]:04x}"]}
    schema["required"] = sorted({"kind", *schema.get("required", [])})
    return schema


def command_body() -> dict[str, Any]:
    """The request body as JSON Schema (the route parses it itself, to name the field at fault
    exactly). Which parameters take numbers and which text, and text the terminal's encoding
    cannot carry, are checked by the route (a 400 naming the parameter)."""
    names = "|".join(p.name.lower() for p in ParamId)
    value = {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 0xFFFFFFFF},
            {"type": "string", "maxLength": 255},
        ]
    }
    set_parameters = _documented(SetParametersIn, "set_parameters")
    set_parameters["properties"]["params"] = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 255,
        "propertyNames": {"pattern": f"^(0[xX][0-9a-fA-F]{{1,8}}|{names})$"},
        "additionalProperties": value,
        "description": "parameter name (`ingest.jt808.ids.ParamId` in lower case) or hex id",
    }
    control = _documented(TerminalControlIn, "terminal_control")
    control["properties"]["command"] = {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 255},
            {"enum": list(CONTROL_WORDS)},
        ]
    }
    vehicle = _documented(VehicleControlIn, "vehicle_control")
    vehicle["properties"]["controls"]["items"] = vehicle.pop("$defs")["ControlTypeIn"]
    track = _documented(TrackIn, "track")
    track["anyOf"] = [  # tracking needs a validity; interval 0 stops it
        {"properties": {"interval_s": {"const": 0}}},
        {"properties": {"validity_s": {"minimum": 1}}, "required": ["validity_s"]},
    ]
    variants = [
        set_parameters,
        _documented(QueryLocationIn, "query_location"),
        track,
        control,
        vehicle,
    ]
    for variant in variants:
        variant.pop("title", None)
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": variants},
                "examples": {
                    "locate": {"value": {"kind": "query_location"}},
                    "interval": {
                        "value": {"kind": "set_parameters", "params": {"default_interval_s": 30}}
                    },
                    "track": {"value": {"kind": "track", "interval_s": 5, "validity_s": 600}},
                },
            }
        },
    }


def _param_id(key: str) -> int:
    field = f"params.{key}"
    if key.lower().startswith("0x"):
        try:
            value = int(key, 16)
        except ValueError:
            raise bad_request(field, "not a hex parameter id") from None
        if not 0 <= value <= 0xFFFFFFFF:
            raise bad_request(field, "parameter id out of range")
        return value
    try:
        return int(ParamId[key.upper()])
    except KeyError:
        known = ", ".join(p.name.lower() for p in ParamId)
        raise bad_request(field, f"unknown parameter (a hex id, or one of {known})") from None


def _param_bytes(key: str, param_id: int, value: int | str) -> bytes:
    field = f"params.{key}"
    known = param_id in ParamId._value2member_map_
    if isinstance(value, int):
        if known and param_id not in DWORD_PARAMS:
            raise bad_request(field, "this parameter is text, not a number")
        if not 0 <= value <= 0xFFFFFFFF:
            raise bad_request(field, "out of range [0, 4294967295]")
        return struct.pack(">I", value)
    if param_id in DWORD_PARAMS:
        raise bad_request(field, "this parameter is a number")
    try:
        encoded = encode_text(value)
    except Jt808UsageError as exc:
        raise bad_request(field, str(exc)) from None
    if len(encoded) > 0xFF:
        raise bad_request(field, "longer than 255 bytes")
    return encoded


def parse_command(body: dict[str, Any]) -> tuple[Message, dict[str, Any]]:
    """The platform message a request asks for, and the request as it will be logged."""
    kind = body.get("kind")
    if not isinstance(kind, str):
        raise bad_request("kind", f"required: one of {', '.join(_BY_NAME)}")
    msg_id = _BY_NAME.get(kind)
    if msg_id is None and kind.lower() in {f"0x{m:04x}" for m in KINDS}:
        msg_id = int(kind, 16)
    if msg_id is None:
        raise bad_request("kind", f"unknown kind {kind!r} (one of {', '.join(_BY_NAME)})")
    try:
        parsed = _MODELS[msg_id].model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise bad_request(where, first["msg"]) from None
    request: dict[str, Any] = {"kind": KINDS[msg_id]}
    message: Message
    if isinstance(parsed, SetParametersIn):
        pairs = []
        for key, value in parsed.params.items():
            param_id = _param_id(key)
            pairs.append((param_id, _param_bytes(key, param_id, value)))
            request.setdefault("params", {})[f"0x{param_id:04x}"] = value
        message = SetParameters(tuple(pairs))
    elif isinstance(parsed, TrackIn):
        if parsed.interval_s > 0 and parsed.validity_s == 0:
            raise bad_request("validity_s", "required (seconds, > 0) when interval_s > 0")
        message = TemporaryTracking(parsed.interval_s, parsed.validity_s)
        request.update(interval_s=parsed.interval_s, validity_s=parsed.validity_s)
    elif isinstance(parsed, TerminalControlIn):
        word = parsed.command
        code = CONTROL_WORDS[word] if isinstance(word, str) else word
        if not 1 <= code <= 0xFF:
            raise bad_request("command", "out of range [1, 255]")
        try:
            TerminalControl(code, parsed.params).encode_body()
        except Jt808UsageError as exc:
            raise bad_request("params", str(exc)) from None
        message = TerminalControl(code, parsed.params)
        request.update(command=code, params=parsed.params)
    elif isinstance(parsed, VehicleControlIn):
        controls = tuple((c.type, c.param) for c in parsed.controls)
        message = VehicleControl(parsed.flags, controls)
        request.update(flags=parsed.flags)
        if controls:
            request["controls"] = [{"type": t, "param": v} for t, v in controls]
    else:
        message = LocationQuery()
    return message, request


def message_for(body: dict[str, Any], device: Device) -> tuple[Message, dict[str, Any]]:
    """`parse_command` for one device: the message as that device will be sent it. A vehicle
    control takes the body of the edition the device last connected with (the gateway
    re-encodes it for the session's own edition when it sends it at once; a queued command
    keeps this body); a 2019 tracker needs control types for flag bits 1-7 (400)."""
    message, request = parse_command(body)
    if isinstance(message, VehicleControl) and device.edition == Edition.V2019:
        message = replace(message, edition=Edition.V2019)
        try:
            message.encode_body()
        except Jt808UsageError as exc:
            reason = f"required for this JT/T 808-2019 tracker: {exc}"
            raise bad_request("controls", reason) from None
    return message, request


# Commands that can lose a tracker for good need a second person (an admin of the device's
# unit or above, not the requester) before they are sent: parameters that move it to another
# server or network (APN, dial-up user and password, server addresses and ports), and
# terminal control upgrade, connect_server, power_off, factory_reset and close_wireless; and
# every vehicle control (0x8500: cut fuel and power, for a repossession).
DANGEROUS_PARAMS = frozenset(range(0x0010, 0x001A))
DANGEROUS_CONTROL = frozenset(
    CONTROL_WORDS[w]
    for w in ("upgrade", "connect_server", "power_off", "factory_reset", "close_wireless")
)
APPROVAL_TTL_MS = 60 * 60 * 1000  # an unapproved request expires after an hour


def needs_approval(message: Message) -> bool:
    if isinstance(message, VehicleControl):  # cuts fuel and power: always two people
        return True
    if isinstance(message, SetParameters):
        return any(param_id in DANGEROUS_PARAMS for param_id, _ in message.params)
    if isinstance(message, TerminalControl):
        return message.command in DANGEROUS_CONTROL
    return False


def command_json(command: QueuedCommand, log: CommandLog | None) -> dict[str, Any]:
    request = json.loads(log.request) if log else None
    approved_by = request.pop("approved_by", None) if isinstance(request, dict) else None
    # The answer as the API logged it, else as the gateway that delivered the command kept it.
    reply = (log.reply if log else None) or command.reply
    return {
        "id": command.id,
        "terminal": command.terminal,
        "kind": KINDS.get(command.msg_id, f"0x{command.msg_id:04x}"),
        "msg_id": f"0x{command.msg_id:04x}",
        "state": command.state.value,
        "created": iso(command.created_ms),
        "updated": iso(command.updated_ms),
        "expires": iso(command.expires_ms),
        "attempts": command.attempts,
        "issued_by": log.issued_by if log else None,
        "approved_by": approved_by,
        "request": request,
        "reply": json.loads(reply) if reply else None,
        "org": log.org if log else None,
    }


async def read_command(ctx: ApiContext, who: Identity, command_id: int) -> dict[str, Any] | None:
    found = await ctx.scoped(who, lambda s: s.command(command_id))
    if found is None:
        return None
    command, log = found
    out = command_json(command, log)
    if log is None:  # recorded outside the API: the device's unit
        device = await ctx.scoped(who, lambda s: s.device(command.terminal))
        out["org"] = None if device is None else device.org
    return out


async def deliver(
    ctx: ApiContext,
    who: Identity,
    device: Device,
    message: Message,
    request: dict[str, Any],
    by: str,
) -> JSONResponse:
    """Sends (or queues) the command, records who issued it, answers with it."""
    if ctx.send_command is None:
        raise ApiError(503, "commands_unavailable", "this process does not run the gateway")
    outcome = await ctx.send_command(device.terminal, message)
    msg_id, encoded = int(message.MSG_ID), message.encode_body()
    text = json.dumps(request, ensure_ascii=False)
    reply = reply_json(outcome.reply)

    def record(store: ScopedStore) -> int:
        return store.record_command(
            device,
            command_id=outcome.command_id,
            msg_id=msg_id,
            body=encoded,
            state=outcome.state,
            request=text,
            reply=reply,
            issued_by=by,
        )

    command_id = await ctx.scoped(who, record)
    out = await read_command(ctx, who, command_id)
    waiting = outcome.state in (CommandState.QUEUED, CommandState.SENT)
    return JSONResponse(out, status_code=202 if waiting else 200)


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["commands"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    officer = Annotated[Identity, Depends(ctx.auth.officer)]

    @api.post(
        "/devices/{terminal}/commands",
        responses={
            200: {"model": CommandOut, "description": "sent and answered (or failed)"},
            202: {
                "model": CommandOut | ApprovalOut,
                "description": "queued for an offline terminal, or sent and not answered yet"
                " (a command), or waiting for a second person's approval (a dangerous command:"
                " an approval request)",
            },
            **errors(*ROLE, 404),
        },
        openapi_extra={"requestBody": command_body()},
    )
    async def send(terminal: Terminal, who: officer, http: Request) -> JSONResponse:
        """Sends the command and waits for the terminal's answer; 202 when it was queued for
        an offline terminal, or (through another gateway process) sent and not answered within
        the command timeout, or is a dangerous command waiting for its approval (poll
        `GET /api/v1/commands/{id}`)."""
        term = params.terminal(terminal)
        try:
            body = json.loads(await http.body())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad_request("body", f"not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise bad_request("body", "must be a JSON object")
        parse_command(body)  # a bad body is a 400 before the device is looked up
        device = await device_or_404(ctx, who, term)
        message, request = message_for(body, device)
        if needs_approval(message):
            msg_id, encoded = int(message.MSG_ID), message.encode_body()
            text = json.dumps(request, ensure_ascii=False)
            approval = await ctx.scoped(
                who,
                lambda s: s.request_approval(device, msg_id, encoded, text, APPROVAL_TTL_MS),
            )
            return JSONResponse(approval_json(approval), status_code=202)
        return await deliver(ctx, who, device, message, request, who.name)

    @api.get(
        "/commands/{command_id}",
        response_model=None,
        responses={200: {"model": CommandOut}, **errors(*KEYED, 404)},
    )
    async def get_command(
        command_id: Annotated[int, Path(ge=1, le=2**63 - 1)], who: viewer
    ) -> dict[str, Any]:
        out = await read_command(ctx, who, command_id)
        if out is None:
            raise not_found(f"no command {command_id}")
        return out

    @api.get(
        "/devices/{terminal}/commands",
        response_model=None,
        responses={200: {"model": CommandList}, **errors(*KEYED, 404)},
    )
    async def device_commands(
        terminal: Terminal, who: viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> dict[str, Any]:
        """The device's most recent commands, newest first."""
        term = params.terminal(terminal)
        device = await device_or_404(ctx, who, term)

        def recent(store: ScopedStore) -> list[dict[str, Any]]:
            return [command_json(c, log) for c, log in store.commands(device, limit)]

        out = await ctx.scoped(who, recent)
        for command in out:
            command["org"] = device.org if command["org"] is None else command["org"]
        return {"commands": out}

    return api
