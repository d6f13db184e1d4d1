"""The vectorized 0x0200 decode agrees with the scalar decode_frame, row by row."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.jt808 import Edition, FrameError, LocationReport, decode_frame, encode_frame
from ingest.jt808.batch import LOCATION, OTHER, REJECTED, decode_location_frames
from ingest.jt808.fields import ms_to_bcd_time
from ingest.jt808.messages import Heartbeat
from tests.conftest import PUBLIC_FRAMES, read_frames


def assert_agrees(frames: list[bytes], flagged: bool = True) -> None:
    cols = decode_location_frames(frames, flagged=flagged)
    assert len(cols) == len(frames)
    for i, frame in enumerate(frames):
        try:
            decoded = decode_frame(frame)
        except FrameError as exc:
            assert cols.kind[i] == REJECTED, (i, frame.hex())
            assert cols.error_code(i) == exc.code, (i, frame.hex(), exc)
            continue
        body = decoded.body
        header = decoded.header
        if not isinstance(body, LocationReport) or header.subpackaged or header.encryption:
            assert cols.kind[i] == OTHER, (i, frame.hex())
            continue
        assert cols.kind[i] == LOCATION, (i, frame.hex(), cols.error_code(i))
        assert cols.terminal(i) == header.terminal
        assert int(cols.serial[i]) == header.serial
        assert int(cols.edition[i]) == header.edition.value
        got = (
            cols.alarm[i],
            cols.status[i],
            cols.lat_e6[i],
            cols.lon_e6[i],
            cols.altitude_m[i],
            cols.speed_dkmh[i],
            cols.course[i],
        )
        want = (
            body.alarm,
            body.status,
            body.lat_e6,
            body.lon_e6,
            body.altitude_m,
            body.speed_dkmh,
            body.course,
        )
        assert tuple(int(v) for v in got) == want
        assert cols.lat[i] == body.lat and cols.lon[i] == body.lon
        if body.time_ms is None:
            assert not cols.time_valid[i]
        else:
            assert cols.time_valid[i] and int(cols.time_ms[i]) == body.time_ms
        assert cols.items_of(i) == body.extras
        assert cols.raw_tail.get(i, b"") == body.raw_tail


items = st.lists(
    st.tuples(st.integers(0, 255), st.binary(max_size=8)).map(lambda t: (t[0], t[1])),
    max_size=5,
).map(tuple)

reports = st.builds(
    LocationReport,
    alarm=st.integers(0, 2**32 - 1),
    status=st.integers(0, 2**32 - 1),
    lat_e6=st.integers(0, 2**32 - 1),
    lon_e6=st.integers(0, 2**32 - 1),
    altitude_m=st.integers(0, 0xFFFF),
    speed_dkmh=st.integers(0, 0xFFFF),
    course=st.integers(0, 0xFFFF),
    time_bcd=st.one_of(
        st.integers(946_656_000_000, 4_102_415_999_000).map(lambda ms: ms_to_bcd_time(ms)),
        st.binary(min_size=6, max_size=6),
    ),
    extras=items,
)

frames = st.builds(
    lambda report, terminal, serial, edition: encode_frame(
        report, terminal=terminal, serial=serial, edition=edition
    ),
    reports,
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.integers(0, 0xFFFF),
    st.sampled_from([Edition.V2013, Edition.V2019]),
)


def mutate(frame: bytes, data: st.DataObject) -> bytes:
    choice = data.draw(st.integers(0, 4))
    if choice == 0 or len(frame) < 3:
        return frame
    at = data.draw(st.integers(0, len(frame) - 1))
    if choice == 1:
        return frame[:at] + bytes([data.draw(st.integers(0, 255))]) + frame[at + 1 :]
    if choice == 2:
        return frame[:at] + frame[at + 1 :]
    if choice == 3:
        return frame[:at] + b"\x7d" + frame[at:]
    return frame[:at]


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, min_size=1, max_size=20), st.data())
def test_vectorized_decode_matches_scalar_on_generated_and_damaged_frames(
    batch: list[bytes], data: st.DataObject
) -> None:
    damaged = [mutate(frame, data) for frame in batch]
    assert_agrees(damaged)


@settings(max_examples=100, deadline=None)
@given(st.lists(frames, min_size=1, max_size=10))
def test_vectorized_decode_matches_scalar_on_payloads_without_flags(batch: list[bytes]) -> None:
    assert_agrees([frame[1:-1] for frame in batch], flagged=False)


def test_vectorized_decode_matches_scalar_on_every_public_fixture() -> None:
    rows = read_frames(PUBLIC_FRAMES)
    assert_agrees([bytes.fromhex(row["hex"]) for row in rows])


def test_other_messages_are_marked_for_the_scalar_path() -> None:
    frame = encode_frame(Heartbeat(), terminal="13900000001", serial=1)
    cols = decode_location_frames([frame])
    assert cols.kind[0] == OTHER


def test_terminals_maps_rows_to_distinct_ids() -> None:
    report = LocationReport.at(lon=121.5, lat=31.2, time_ms=1_700_000_000_000)
    ids = ["13900000001", "13900000002", "13900000001"]
    batch = [encode_frame(report, terminal=t, serial=i) for i, t in enumerate(ids)]
    batch.append(
        encode_frame(report, terminal="12345678901234567890", serial=9, edition=Edition.V2019)
    )
    index, names = decode_location_frames(batch).terminals()
    assert [names[i] for i in index] == [
        "013900000001",
        "013900000002",
        "013900000001",
        "12345678901234567890",
    ]
