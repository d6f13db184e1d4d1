"""What a `LinkSession` asks of the code around it: events out, one kind per class."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.jt808.header import Header
from ingest.jt808.messages import Authenticate, BatchLocationReport, Message, Register


class ReportsReceived:
    """Undecoded single-frame 0x0200 reports (the escaped bytes between the flags), in order,
    for the vectorized decoder: one event per run of reports, not one per frame."""

    __slots__ = ("payloads", "received_s")

    def __init__(self, payloads: list[bytes], received_s: float) -> None:
        self.payloads = payloads
        self.received_s = received_s


@dataclass(frozen=True, slots=True)
class BatchReceived:
    """A decoded 0x0704 (or a 0x0200 the payload path passes over, as a batch of one); to be
    answered with `msg_id` and `serial` once durable."""

    report: BatchLocationReport
    serial: int
    msg_id: int
    received_s: float


@dataclass(frozen=True, slots=True)
class RegistrationRequested:
    """A 0x0100 to decide: answer with `registration_decided` or `registration_deferred`."""

    header: Header
    message: Register


@dataclass(frozen=True, slots=True)
class AuthenticationRequested:
    """A 0x0102 to decide: answer with `authentication_decided`."""

    header: Header
    message: Authenticate


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The link now speaks for `terminal` (the 20- or 12-digit id of its header)."""

    terminal: str


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """The link no longer speaks for `terminal` (deregistered, or logging in again)."""

    terminal: str
    deregistered: bool


@dataclass(frozen=True, slots=True)
class CommandAnswered:
    serial: int
    reply: Message


@dataclass(frozen=True, slots=True)
class CommandFailed:
    serial: int
    reason: str  # "timeout" (no answer in time) or "closed" (the link closed first)


@dataclass(frozen=True, slots=True)
class FrameCounted:
    """A frame for the metrics: `msg_id` received and handled (location batches excepted, the
    decoder counts those), or `rejected` with its reason when it could not be used."""

    msg_id: int
    rejected: str | None = None


@dataclass(frozen=True, slots=True)
class Closed:
    """The link closed; the shell closes its transport. Final."""

    reason: str


LinkEvent = (
    ReportsReceived
    | BatchReceived
    | RegistrationRequested
    | AuthenticationRequested
    | Authenticated
    | LoggedOut
    | CommandAnswered
    | CommandFailed
    | FrameCounted
    | Closed
)
