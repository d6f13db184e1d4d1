"""Loans on the collateral cars and their post-loan work: `/api/v1/loans...`.

Admins create loans; viewers read them (with days past due and the bucket for today, the car's
devices and its unresolved alerts); officers record payments, move the loan's state and log
collection actions, each entry in the loan's append-only log with the key's name as the actor.
Every change is told to `ctx.loan_changed` (the live side watches overdue cars more closely).
The meaning (allowed moves, DPD, stages) is the `loans` package's; the store applies each change
atomically.

No `from __future__ import annotations`: FastAPI reads the dependency aliases built inside
`router()` from the live annotations.
"""

import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from starlette.requests import Request

from alerts.lifecycle import AlertState, StoredAlert
from api.auth import Identity, Role
from api.context import ApiContext
from api.errors import ApiError, bad_request, not_found
from api.loan_views import action_json, loan_json, local_date
from api.models import ActionOut, LoanChanged, LoanDetail, LoanOut
from api.openapi import KEYED, MAX_ORG_ID, NO_NUL, ROLE, errors
from api.paging import paged
from api.routes.lookup import online_of
from api.routes.parties import borrower_json
from api.views import device_json, position_json
from loans import (
    Borrower,
    Bucket,
    CaseAction,
    Channel,
    Loan,
    LoanClosedError,
    LoanState,
    LoanTransitionError,
    Outcome,
    PaymentError,
    Stage,
    apply_payment,
    log_collection,
    new_loan,
    paid_through_after,
    transition,
)
from store import Device, DeviceClock
from store.interface import LoanChange, LoanExistsError, LoanFilter, LoanNotFoundError
from store.scoped import ScopedStore

_LOAN_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ID_TEXT = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"  # printable ASCII, no edge spaces
_MAX_ID = 2**63 - 1
_MAX_LISTED = 1000  # devices and alerts shown with one loan
# What `_text` accepts: no control character but tab and newline, and not only white space.
_FREE_TEXT = r"^[^\x00-\x08\x0b-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b-\x1f\x7f]*$"
# What one loan's page reads: the loan, its borrower, its car's devices, their latest positions
# and clocks, and the car's unresolved alerts.
LoanRead = tuple[
    Loan, Borrower | None, list[Device], Any, dict[str, DeviceClock], list[StoredAlert]
]
LoanNo = Annotated[str, Path(pattern=_LOAN_NO.pattern, description="letters, digits, . _ -")]


def _text(value: str | None) -> str | None:
    """Free text the databases can hold: no control characters, valid UTF-8, not blank."""
    if value is None:
        return None
    if any((ord(c) < 0x20 and c not in "\t\n") or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid UTF-8") from None
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _date_text(value: object) -> object:
    """Dates come as `YYYY-MM-DD` text only, as documented (not as a number of seconds)."""
    if not isinstance(value, str | date):
        raise ValueError("a date is text: YYYY-MM-DD")
    return value


TextDate = Annotated[date, BeforeValidator(_date_text)]


class NewLoan(BaseModel):
    """POST body: a loan on one car (`vehicle_id`, as devices are bound to it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "loan_no": "L-2024-0001",
                    "borrower_name": "Example Borrower",
                    "vehicle_id": "V1",
                    "principal": "150000.00",
                    "start_date": "2024-01-15",
                    "due_day": 15,
                }
            ]
        },
    )

    loan_no: str = Field(pattern=_LOAN_NO.pattern, description="letters, digits, . _ -")
    borrower_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=_FREE_TEXT,
        description="default the borrower record's name; one of the two is needed",
    )
    borrower_id: int | None = Field(
        default=None, ge=1, le=_MAX_ID, description="the borrower's record (POST /borrowers)"
    )
    vehicle_id: str = Field(min_length=1, max_length=64, pattern=_ID_TEXT)
    principal: str = Field(
        pattern=r"^([1-9][0-9]{0,13}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$",
        description="a positive decimal as text, at most 2 places (no float rounding)",
    )
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    start_date: TextDate
    due_day: int = Field(
        strict=True, ge=1, le=28, description="day of the month installments fall due"
    )
    grace_days: int = Field(default=0, strict=True, ge=0, le=365)
    paid_through: TextDate | None = None
    branch: str | None = Field(default=None, min_length=1, max_length=64, pattern=_ID_TEXT)
    org: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ORG_ID,
        description="the owning unit (default the car's, else the caller's; in its subtree)",
    )

    clean_name = field_validator("borrower_name")(_text)

    @model_validator(mode="after")
    def _named(self) -> "NewLoan":
        if self.borrower_name is None and self.borrower_id is None:
            raise ValueError("give borrower_name or borrower_id")
        return self


class Payment(BaseModel):
    """POST body: the new paid-through date, or how many more installments were paid."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"installments": 1}],
            "anyOf": [
                {
                    "required": ["paid_through"],
                    "properties": {
                        "paid_through": {"type": "string"},
                        "installments": {"type": "null"},
                    },
                },
                {
                    "required": ["installments"],
                    "properties": {
                        "installments": {"type": "integer"},
                        "paid_through": {"type": "null"},
                    },
                },
            ],
        },
    )

    paid_through: TextDate | None = None
    installments: int | None = Field(default=None, strict=True, ge=1, le=600)
    note: str | None = Field(default=None, max_length=2000, pattern=_FREE_TEXT)

    clean_note = field_validator("note")(_text)

    @model_validator(mode="after")
    def _one_of(self) -> "Payment":
        if (self.paid_through is None) == (self.installments is None):
            raise ValueError("give exactly one of paid_through and installments")
        return self


class Move(BaseModel):
    """POST body: the state to move the loan to."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"to": "overdue"}]})

    to: LoanState
    note: str | None = Field(default=None, max_length=2000, pattern=_FREE_TEXT)

    clean_note = field_validator("note")(_text)


class Action(BaseModel):
    """POST body: one collection step taken on the case."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"stage": "phone", "channel": "phone", "outcome": "promised_to_pay"}]
        },
    )

    stage: Stage
    channel: Channel
    outcome: Outcome
    note: str | None = Field(default=None, max_length=2000, pattern=_FREE_TEXT)

    clean_note = field_validator("note")(_text)


def loan_number(value: str) -> str:
    if not _LOAN_NO.match(value):
        raise bad_request("loan_no", f"{value!r} is not a loan number (letters, digits, . _ -)")
    return value


def bucket_param(value: str) -> Bucket:
    """`M0`..`M4+`; a `+` typed into a URL arrives as a space, and `M4` means `M4+`."""
    text = value.strip().upper()
    if text == "M4":
        text = "M4+"
    try:
        return Bucket(text)
    except ValueError:
        raise bad_request("bucket", f"{value!r} is not one of M0, M1, M2, M3, M4+") from None


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["loans"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    officer = Annotated[Identity, Depends(ctx.auth.officer)]
    admin = Annotated[Identity, Depends(ctx.auth.admin)]

    def today() -> date:
        return local_date(ctx.clock_ms())

    async def change(loan_no: str, apply: LoanChange, who: Identity) -> dict[str, Any]:
        number = loan_number(loan_no)
        try:
            loan, action = await ctx.scoped(who, lambda s: s.update_loan(number, apply))
        except LoanNotFoundError:
            raise not_found(f"no loan {number}") from None
        except LoanTransitionError as exc:
            raise ApiError(409, "invalid_transition", str(exc)) from None
        except LoanClosedError as exc:
            raise ApiError(409, "loan_closed", str(exc)) from None
        except PaymentError as exc:
            raise bad_request(f"body.{exc.field}", str(exc).partition(": ")[2]) from None
        if ctx.loan_changed is not None:
            ctx.loan_changed(loan, action)
        return {"loan": loan_json(loan, today()), "action": action_json(action)}

    @api.post(
        "/loans", status_code=201, responses={201: {"model": LoanOut}, **errors(*ROLE, 404, 409)}
    )
    async def create(body: NewLoan, who: admin) -> JSONResponse:
        """Records a loan on a car; 409 when the loan number is taken."""
        if body.paid_through is not None and body.paid_through < body.start_date:
            raise bad_request("body.paid_through", "is before start_date")
        borrower_id = body.borrower_id
        name = body.borrower_name
        if name is None:
            found = await ctx.scoped(
                who, lambda s: None if borrower_id is None else s.borrower(borrower_id)
            )
            if found is None:
                raise not_found(f"borrower_id: no borrower {borrower_id}")
            name = found.name
        loan = new_loan(
            loan_no=body.loan_no,
            borrower_name=name,
            vehicle_id=body.vehicle_id,
            principal=Decimal(body.principal),
            currency=body.currency,
            start_date=body.start_date,
            due_day=body.due_day,
            grace_days=body.grace_days,
            branch=body.branch,
            paid_through=body.paid_through,
            now_ms=ctx.clock_ms(),
        )
        loan = replace(loan, borrower_id=borrower_id)
        try:
            stored = await ctx.scoped(who, lambda s: s.create_loan(loan, body.org))
        except LoanExistsError:
            raise ApiError(409, "conflict", f"loan {body.loan_no} already exists") from None
        return JSONResponse(loan_json(stored, today()), status_code=201)

    @api.get("/loans", responses={200: {"model": list[LoanOut]}, **errors(*KEYED)})
    async def list_loans(
        request: Request,
        who: viewer,
        state: LoanState | None = None,
        bucket: Annotated[
            str | None,
            Query(
                pattern=r"^[Mm]([0-3]|4[+ ]?)$",
                description="M0, M1, M2, M3 or M4+ (M4, or M4 and a space: a raw `+`)",
            ),
        ] = None,
        stage: Stage | None = None,
        vehicle_id: Annotated[
            str | None, Query(min_length=1, max_length=64, pattern=NO_NUL)
        ] = None,
        branch: Annotated[str | None, Query(min_length=1, max_length=64, pattern=NO_NUL)] = None,
        after_id: Annotated[int, Query(ge=0, le=_MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        """Loans matching every filter given, by id; `bucket` is counted on today."""
        day = today()
        where = LoanFilter(
            state=state,
            bucket=None if bucket is None else bucket_param(bucket),
            today=day,
            stage=stage,
            vehicle_id=vehicle_id,
            branch=branch,
        )
        page = await ctx.scoped(who, lambda s: s.loans(where, after_id=after_id, limit=limit))
        return paged(request, [loan_json(loan, day) for loan in page], limit)

    @api.get(
        "/loans/{loan_no}",
        response_model=None,
        responses={200: {"model": LoanDetail}, **errors(*KEYED, 404)},
    )
    async def get_loan(loan_no: LoanNo, who: viewer) -> dict[str, Any]:
        """The loan with its DPD and bucket for today, its borrower (masked for viewers), its
        car's devices (latest position, online state) and the car's unresolved alerts."""
        number = loan_number(loan_no)

        def read(store: ScopedStore) -> LoanRead | None:
            loan = store.loan(number)
            if loan is None:
                return None
            borrower = None if loan.borrower_id is None else store.borrower(loan.borrower_id)
            devices = store.devices(vehicle_id=loan.vehicle_id, limit=_MAX_LISTED)
            latest = store.latest(devices)
            clocks = store.clocks(devices)
            alerts: list[StoredAlert] = []
            for state in (AlertState.OPEN, AlertState.ACKNOWLEDGED):
                alerts += store.alerts(vehicle_id=loan.vehicle_id, state=state, limit=_MAX_LISTED)
            return loan, borrower, devices, latest, clocks, sorted(alerts, key=lambda a: a.id)

        found = await ctx.scoped(who, read)
        if found is None:
            raise not_found(f"no loan {number}")
        loan, borrower, devices, latest, clocks, alerts = found
        terminals = [d.terminal for d in devices]
        positions = {
            terminals[int(d)]: position_json(latest, i) for i, d in enumerate(latest.device)
        }
        online = await online_of(ctx, terminals)
        return {
            **loan_json(loan, today()),
            "borrower": None if borrower is None else borrower_json(borrower, who),
            "devices": [
                device_json(
                    d,
                    online=online(d.terminal),
                    latest=positions.get(d.terminal),
                    with_latest=True,
                    show_auth_code=who.can(Role.ADMIN),
                    clock=clocks.get(d.terminal),
                )
                for d in devices
            ],
            "alerts": [a.to_json() for a in alerts],
        }

    changed = {200: {"model": LoanChanged}, **errors(*ROLE, 404, 409)}

    @api.post("/loans/{loan_no}/payments", response_model=None, responses=changed)
    async def pay(loan_no: LoanNo, body: Payment, who: officer) -> dict[str, Any]:
        """Moves paid-through forward; an overdue loan no longer past due becomes active."""
        day, now_ms = today(), ctx.clock_ms()

        def apply(loan: Loan) -> tuple[Loan, CaseAction]:
            through = body.paid_through or paid_through_after(loan, body.installments or 1)
            return apply_payment(loan, through, who.name, body.note, day, now_ms)

        return await change(loan_no, apply, who)

    @api.post("/loans/{loan_no}/transition", response_model=None, responses=changed)
    async def move(loan_no: LoanNo, body: Move, who: officer) -> dict[str, Any]:
        """Moves the loan to `to`; a move the loan model forbids is a 409 naming from and to."""
        now_ms = ctx.clock_ms()
        return await change(
            loan_no, lambda loan: transition(loan, body.to, who.name, body.note, now_ms), who
        )

    @api.post(
        "/loans/{loan_no}/actions",
        status_code=201,
        responses={201: {"model": LoanChanged}, **errors(*ROLE, 404, 409)},
    )
    async def act(loan_no: LoanNo, body: Action, who: officer) -> JSONResponse:
        """Logs a collection step; the case stage moves forward to it (never back)."""
        now_ms = ctx.clock_ms()
        out = await change(
            loan_no,
            lambda loan: log_collection(
                loan, body.stage, body.channel, body.outcome, who.name, body.note, now_ms
            ),
            who,
        )
        return JSONResponse(out, status_code=201)

    @api.get(
        "/loans/{loan_no}/actions",
        responses={200: {"model": list[ActionOut]}, **errors(*KEYED, 404)},
    )
    async def actions(
        request: Request,
        loan_no: LoanNo,
        who: viewer,
        after_id: Annotated[int, Query(ge=0, le=_MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        """The loan's log (collection steps, payments, state moves), oldest first."""
        number = loan_number(loan_no)
        try:
            page = await ctx.scoped(
                who, lambda s: s.loan_actions(number, after_id=after_id, limit=limit)
            )
        except LoanNotFoundError:
            raise not_found(f"no loan {number}") from None
        return paged(request, [action_json(a) for a in page], limit)

    return api
