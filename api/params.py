"""Parsing of path and query values that plain type hints cannot check: terminals and times.

Each parser raises a 400 `ApiError` whose detail starts with the parameter's name.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from api.errors import ApiError, bad_request

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A "+08:00" offset typed into a URL arrives as " 08:00" (a plus is a space in a query string).
_SPACED_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")
_EPOCH_SECONDS = re.compile(r"^-?\d+(\.\d+)?$")
# Times an answer can still write in any UTC offset: a day inside the calendar at both ends
# (year 1 to 9999). A time beyond them is taken as the nearest of them: no position is stored
# before 1970 or after 9999, so the range means the same, and an answer showing it back (a
# trip list's `from`) never fails.
_FIRST_MS = (datetime(1, 1, 2, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_LAST_MS = (datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


def terminal(value: str, field: str = "terminal") -> str:
    """A terminal id as the gateway stores it: BCD digits, zero-padded to 12 (2011/2013) or
    20 (2019) digits, so the 11-digit SIM number of a tracker finds its device."""
    digits = value.strip()
    if not digits.isascii() or not digits.isdigit():
        raise bad_request(field, f"{value!r} is not a terminal id (digits only)")
    if len(digits) > 20:
        raise bad_request(field, f"{value!r} has more than 20 digits")
    return digits.zfill(12 if len(digits) <= 12 else 20)


def time_ms(value: str, field: str) -> int:
    """ISO 8601 with a UTC offset or Z, or epoch seconds, as epoch ms."""
    text = _SPACED_OFFSET.sub(r"+\1", value.strip())
    if _EPOCH_SECONDS.match(text):
        seconds = float(text)
        if not math.isfinite(seconds) or abs(seconds) > 1e13:
            raise bad_request(field, f"{value!r} is out of range")
        return _within_calendar(round(seconds * 1000))
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(
            field, f"{value!r} is not an ISO 8601 time (e.g. 2024-03-01T08:00:00+08:00)"
        ) from None
    if stamp.tzinfo is None:
        raise bad_request(field, f"{value!r} needs a UTC offset (+08:00 or Z)")
    return _within_calendar((stamp - _EPOCH) // timedelta(milliseconds=1))


def _within_calendar(ms: int) -> int:
    return min(max(ms, _FIRST_MS), _LAST_MS)


def _query_time(value: object) -> object:
    """`time_ms` as a pydantic validator: a bad time is a validation error (a 400 naming it)."""
    if not isinstance(value, str):
        return value
    try:
        return time_ms(value, "time")
    except ApiError as exc:
        raise ValueError(exc.detail.partition(": ")[2]) from None


# A query time: the handler gets epoch ms. Documented as what `time_ms` reads (ISO 8601 with an
# offset, or epoch seconds); the spaced offset a raw `+` becomes is accepted as well.
QueryTime = Annotated[
    int,
    BeforeValidator(_query_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "pattern": r"^-?[0-9]{1,13}(\.[0-9]{1,6})?$"},
            ],
            "description": "ISO 8601 with a UTC offset or Z, or epoch seconds",
        }
    ),
]
