"""Collection cases: the stages a case moves through, and how and with what result a step went."""

from __future__ import annotations

import enum

from loans.states import LoanState


class Stage(enum.StrEnum):
    """Collection stages, in the order a case moves through them."""

    REMINDER = "reminder"
    PHONE = "phone"
    VISIT = "visit"
    OUTSOURCED = "outsourced"
    LEGAL = "legal"
    REPOSSESSION = "repossession"
    STORAGE = "storage"
    DISPOSAL = "disposal"
    WRITE_OFF = "write_off"


STAGE_ORDER: dict[Stage, int] = {stage: i for i, stage in enumerate(Stage)}


class Channel(enum.StrEnum):
    SMS = "sms"
    PHONE = "phone"
    VISIT = "visit"
    LETTER = "letter"
    EMAIL = "email"
    AGENCY = "agency"
    COURT = "court"
    GPS = "gps"  # located or recovered by the trackers' positions
    OTHER = "other"


class Outcome(enum.StrEnum):
    CONTACTED = "contacted"
    NO_ANSWER = "no_answer"
    PROMISED_TO_PAY = "promised_to_pay"
    PAID = "paid"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    VEHICLE_LOCATED = "vehicle_located"
    VEHICLE_RECOVERED = "vehicle_recovered"
    ESCALATED = "escalated"
    OTHER = "other"


# A transition into these states takes the case at least to this stage.
STAGE_OF_STATE: dict[LoanState, Stage] = {
    LoanState.REPOSSESSED: Stage.REPOSSESSION,
    LoanState.DISPOSED: Stage.DISPOSAL,
    LoanState.WRITTEN_OFF: Stage.WRITE_OFF,
}


def advance_stage(current: Stage | None, reached: Stage) -> Stage:
    """A case only moves forward: an earlier step again (one more reminder) keeps the stage."""
    if current is None or STAGE_ORDER[reached] > STAGE_ORDER[current]:
        return reached
    return current
