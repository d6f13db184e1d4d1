"""BCD[6] device times (GMT+8) against datetime as the oracle."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.jt808.errors import Jt808UsageError
from ingest.jt808.fields import bcd_time_iso, bcd_time_to_ms, ms_to_bcd_time
from tests.support.jt808_strategies import FIRST_BCD_S, GMT8, LAST_BCD_S, bcd_of_epoch_s

BCD = settings(max_examples=2000, deadline=None)


@BCD
@given(epoch_s=st.integers(FIRST_BCD_S, LAST_BCD_S), sub_ms=st.integers(0, 999))
def test_every_second_of_2000_to_2099_survives_bcd_and_back(epoch_s: int, sub_ms: int) -> None:
    raw = ms_to_bcd_time(epoch_s * 1000 + sub_ms)
    assert raw == bcd_of_epoch_s(epoch_s)
    assert bcd_time_to_ms(raw) == epoch_s * 1000
    local = dt.datetime.fromtimestamp(epoch_s, tz=GMT8)
    assert bcd_time_iso(raw) == local.isoformat()


def _oracle_ms(raw: bytes) -> int | None:
    digits = raw.hex()
    if not digits.isdigit():
        return None
    yy, mo, dd, hh, mi, ss = (int(digits[i : i + 2]) for i in range(0, 12, 2))
    try:
        when = dt.datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=GMT8)
    except ValueError:
        return None
    return int(when.timestamp()) * 1000


@BCD
@given(raw=st.binary(min_size=6, max_size=6))
def test_any_six_bytes_give_the_time_they_spell_or_none(raw: bytes) -> None:
    assert bcd_time_to_ms(raw) == _oracle_ms(raw)
    assert (bcd_time_iso(raw) is None) == (_oracle_ms(raw) is None)


@BCD
@given(
    digits=st.tuples(*(st.integers(0, 99) for _ in range(6))).map(
        lambda t: bytes.fromhex("".join(f"{v:02d}" for v in t))
    )
)
def test_decimal_digits_that_are_not_a_date_give_none(digits: bytes) -> None:
    assert bcd_time_to_ms(digits) == _oracle_ms(digits)


@pytest.mark.parametrize(
    "text",
    ["230229120000", "240230000000", "241301000000", "240100000000", "240101240000",
     "240101006000", "240101000060", "2401010000"],
)  # fmt: skip
def test_invalid_calendar_values_give_none_rather_than_an_error(text: str) -> None:
    assert bcd_time_to_ms(bytes.fromhex(text)) is None


def test_a_leap_day_is_a_valid_time() -> None:
    assert bcd_time_to_ms(bytes.fromhex("240229235959")) == int(
        dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=GMT8).timestamp() * 1000
    )


@pytest.mark.parametrize("epoch_s", [FIRST_BCD_S - 1, LAST_BCD_S + 1])
def test_a_time_outside_2000_to_2099_cannot_be_encoded(epoch_s: int) -> None:
    with pytest.raises(Jt808UsageError, match="year"):
        ms_to_bcd_time(epoch_s * 1000)
