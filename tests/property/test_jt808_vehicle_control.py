"""0x8500 vehicle control in both editions: the 2013 flag byte, the 2019 list of control types
(JT/T 808-2019: a WORD count, then per type its WORD id and its parameter; the door, type
0x0001, takes a BYTE: 0 unlock, 1 lock). Round trips, the body the frame's edition picks, and
refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.jt808.codec import decode_frame, encode_frame
from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.ids import Edition
from ingest.jt808.messages import VehicleControl
from tests.support.jt808_strategies import vehicle_controls

u8 = st.integers(0, 0xFF)
TERMINAL = {Edition.V2013: "013912345678", Edition.V2019: "01391234567800000000"}


@given(vehicle_controls(Edition.V2019))
def test_a_2019_body_decodes_to_the_control_types_it_was_made_of(control: VehicleControl) -> None:
    body = control.encode_body()
    assert int.from_bytes(body[:2], "big") == len(control.controls)
    assert len(body) == 2 + 3 * len(control.controls)
    assert VehicleControl.decode(body, Edition.V2019) == control


@given(u8, st.sampled_from([Edition.V2011, Edition.V2013]))
def test_a_2013_body_is_the_flag_byte(flags: int, edition: Edition) -> None:
    control = VehicleControl(flags, edition=edition)
    assert control.encode_body() == bytes([flags])
    assert VehicleControl.decode(bytes([flags]), edition) == control


@given(st.integers(0, 1), st.lists(st.tuples(st.integers(0, 0xFFFF), u8), max_size=5))
def test_the_frames_edition_picks_the_body(door: int, maker: list[tuple[int, int]]) -> None:
    """One message, two trackers: a 2013 one gets the flag byte, a 2019 one the types."""
    controls = ((0x0001, door), *maker)
    control = VehicleControl(door, controls)
    old = decode_frame(encode_frame(control, terminal=TERMINAL[Edition.V2013], serial=1))
    assert old.body == VehicleControl(door, edition=Edition.V2013)
    new = decode_frame(
        encode_frame(control, terminal=TERMINAL[Edition.V2019], serial=1, edition=Edition.V2019)
    )
    assert new.body == VehicleControl(0, controls, Edition.V2019)


@given(st.integers(0, 1))
def test_without_control_types_a_2019_tracker_gets_the_doors_from_flag_bit_0(door: int) -> None:
    body = VehicleControl(door, edition=Edition.V2019).encode_body()
    assert body == bytes([0x00, 0x01, 0x00, 0x01, door])


@given(st.integers(2, 0xFF))
def test_relay_bits_without_control_types_are_refused_for_2019_never_dropped(flags: int) -> None:
    with pytest.raises(Jt808UsageError, match="0xF001-0xFFFF"):
        VehicleControl(flags, edition=Edition.V2019).encode_body()


def test_a_published_2019_body_decodes() -> None:
    """Door unlock, then maker type 0xF001 with parameter 1 (a body other JT/T 808-2019
    libraries produce for the same two types)."""
    decoded = VehicleControl.decode(bytes.fromhex("0002000100f00101"), Edition.V2019)
    assert decoded.controls == ((0x0001, 0), (0xF001, 1))


@given(st.binary(max_size=40))
def test_a_2019_body_without_types_or_entries_that_do_not_add_up_is_refused(body: bytes) -> None:
    count = int.from_bytes(body[:2], "big")
    if len(body) >= 2 and count > 0 and len(body) == 2 + 3 * count:
        assert VehicleControl.decode(body, Edition.V2019).encode_body() == body
        return
    with pytest.raises(FrameError):
        VehicleControl.decode(body, Edition.V2019)


def test_out_of_range_values_are_usage_errors() -> None:
    with pytest.raises(Jt808UsageError):
        VehicleControl(0, ((0x10000, 1),), Edition.V2019).encode_body()
    with pytest.raises(Jt808UsageError):
        VehicleControl(0, ((1, 256),), Edition.V2019).encode_body()
    with pytest.raises(Jt808UsageError):
        VehicleControl(256).encode_body()
