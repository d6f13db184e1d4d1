"""Field codecs: civil-date arithmetic, terminal ids and fixed-width text."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.jt808.errors import Jt808UsageError
from ingest.jt808.fields import (
    civil_from_days,
    days_from_civil,
    decode_fixed,
    encode_fixed,
    terminal_from_bytes,
    terminal_to_bytes,
)

EPOCH = dt.date(1970, 1, 1)


@settings(max_examples=500, deadline=None)
@given(day=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31)))
def test_civil_day_numbers_match_the_calendar(day: dt.date) -> None:
    number = (day - EPOCH).days
    assert days_from_civil(day.year, day.month, day.day) == number
    assert civil_from_days(number) == (day.year, day.month, day.day)


def test_bcd_terminal_ids_keep_every_digit() -> None:
    assert terminal_from_bytes(bytes.fromhex("000000000001")) == "000000000001"
    assert terminal_to_bytes("1", 6) == bytes.fromhex("000000000001")
    assert terminal_to_bytes("12345678901234567890", 10).hex() == "12345678901234567890"


@pytest.mark.parametrize("bad", ["", "12a", "１２３", "-1"])
def test_a_terminal_id_that_is_not_ascii_digits_is_refused(bad: str) -> None:
    with pytest.raises(Jt808UsageError):
        terminal_to_bytes(bad, 6)


def test_fixed_width_text_is_padded_with_nul_and_read_back_without_padding() -> None:
    assert encode_fixed("AB", 5, "maker id") == b"AB\x00\x00\x00"
    assert decode_fixed(b"AB\x00\x00\x00") == "AB"
    assert decode_fixed(b"AB   ") == "AB"
    assert decode_fixed("测试".encode("gbk") + b"\x00") == "测试"
    with pytest.raises(Jt808UsageError, match="maker id"):
        encode_fixed("ABCDEF", 5, "maker id")
