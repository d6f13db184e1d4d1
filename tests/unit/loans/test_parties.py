"""What a viewer sees of a borrower: the masks keep length and the allowed ends only."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from loans import Borrower, mask_tail, masked

digits = st.text(alphabet="0123456789X", min_size=0, max_size=24)


@given(value=digits, start=st.integers(0, 4), end=st.integers(0, 4))
def test_a_mask_keeps_the_length_and_only_the_ends_it_may(value: str, start: int, end: int) -> None:
    shown = mask_tail(value, keep_start=start, keep_end=end)
    assert shown is not None and len(shown) == len(value)
    if len(value) <= start + end:
        assert set(shown) <= {"*"}
    else:
        assert shown[:start] == value[:start]
        assert shown[len(value) - end :] == value[len(value) - end :]
        assert set(shown[start : len(value) - end]) == {"*"}


def test_a_viewer_sees_the_last_four_of_the_number_and_the_phones_ends() -> None:
    person = Borrower(3, 7, "Wang Wei", "110101199001011234", "13812345678", 0)
    shown = masked(person)
    assert (shown.id_number, shown.phone) == ("**************1234", "138****5678")
    assert (shown.id, shown.org, shown.name) == (3, 7, "Wang Wei")
    assert masked(Borrower(1, 1, "A", None, None, 0)).phone is None
    assert mask_tail("1234", keep_start=3) == "****"
