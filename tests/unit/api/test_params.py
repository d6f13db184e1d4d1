"""Terminal ids and query times as the API reads them; bad values are 400s naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api import params
from api.errors import ApiError
from api.views import iso

T0 = 1_704_081_600_000  # 2024-01-01T12:00:00+08:00


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("13900000001", "013900000001"),  # an 11-digit SIM number
        ("013900000001", "013900000001"),
        ("1391234000100000001", "01391234000100000001"),  # a 2019 id
        (" 13900000001 ", "013900000001"),
    ],
)
def test_terminals_are_padded_as_the_gateway_stores_them(given: str, stored: str) -> None:
    assert params.terminal(given) == stored


@pytest.mark.parametrize("bad", ["", "12a4", "1" * 21, "١٢٣", "-1", "1.5"])
def test_a_bad_terminal_is_a_400_naming_it(bad: str) -> None:
    with pytest.raises(ApiError) as caught:
        params.terminal(bad)
    assert caught.value.status == 400
    assert caught.value.detail.startswith("terminal: ")


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T12:00:00+08:00",
        "2024-01-01T04:00:00Z",
        "2024-01-01T04:00:00.000+00:00",
        "2024-01-01T12:00:00 08:00",  # "+" decoded as a space in a query string
        "1704081600",
        "1704081600.0",
    ],
)
def test_times_with_an_offset_or_epoch_seconds_are_read(text: str) -> None:
    assert params.time_ms(text, "from") == T0


@pytest.mark.parametrize(
    "bad", ["2024-01-01T12:00:00", "yesterday", "", "2024-13-01T00:00:00Z", "1e400", "nan"]
)
def test_a_bad_time_is_a_400_naming_the_parameter(bad: str) -> None:
    with pytest.raises(ApiError) as caught:
        params.time_ms(bad, "to")
    assert caught.value.status == 400
    assert caught.value.detail.startswith("to: ")


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("-5980089535652.0290", 1),  # epoch seconds before year 1
        ("253402300799", 9999),  # 9999-12-31T23:59:59Z: no offset east of UTC could show it
        ("9999-12-31T23:00:00-08:00", 9999),
        ("0001-01-01T00:00:00+08:00", 1),
    ],
)
def test_a_time_beyond_the_calendar_is_its_nearest_end(text: str, year: int) -> None:
    """No position is stored before 1970 or after 9999: a range reaching past either end means
    the same as one stopping a day inside it, which every answer can show back."""
    shown = iso(params.time_ms(text, "to"))
    assert shown is not None and shown.startswith(f"{year:04d}-")


@given(st.integers(min_value=-(10**14), max_value=10**14))
def test_every_accepted_time_can_be_shown_back(ms: int) -> None:
    """Whatever `time_ms` accepts, the answers' ISO form writes in China's offset."""
    try:
        accepted = params.time_ms(f"{ms / 1000:.3f}", "from")
    except ApiError:
        return
    assert iso(accepted)
