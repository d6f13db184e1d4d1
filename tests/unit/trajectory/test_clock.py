"""The device clock model on the faults real trackers show (contracts section 3)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from positions import Flag, PositionBatch
from trajectory.clock import (
    HOUR_MS,
    ROLLOVER_MS,
    ClockSettings,
    ClockState,
    DeviceClocks,
    row_states,
)

NOW = 1_710_000_000_000  # 2024-03-09
S = 1000


def rows(
    device_ms: npt.ArrayLike, recv_ms: npt.ArrayLike, flags: int = 0, device: int = 0
) -> PositionBatch:
    dev = np.asarray(device_ms, np.int64)
    return PositionBatch.from_columns(
        {
            "device": np.full(len(dev), device),
            "time_ms": dev,
            "device_time_ms": dev,
            "recv_ms": np.asarray(recv_ms, np.int64),
            "flags": np.full(len(dev), flags),
        }
    )


def off_the_second(recv_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The time an unusable row takes: its receive time, moved off a whole second (where the
    fix times trackers send lie) by a millisecond."""
    return recv_ms + (recv_ms % 1000 == 0)


def every(seconds: int, count: int, start: int = NOW) -> npt.NDArray[np.int64]:
    return start + np.arange(count, dtype=np.int64) * seconds * S


def state(clocks: DeviceClocks, device: int = 0) -> tuple[str, int, int]:
    code, offset, since = clocks.states([device])
    return ClockState(int(code[0])).label, int(offset[0]), int(since[0])


def test_a_correct_clock_changes_nothing() -> None:
    recv = every(30, 20)
    clocks = DeviceClocks()
    out = clocks.apply(rows(recv - 2 * S, recv))
    assert (out.time_ms == recv - 2 * S).all() and (out.flags == 0).all()
    assert state(clocks) == ("ok", 0, NOW)


def test_a_utc_clock_is_corrected_by_8_hours_once_its_reports_agree() -> None:
    recv = every(30, 10)
    clocks = DeviceClocks()
    out = clocks.apply(rows(recv - 8 * HOUR_MS - 1500, recv))
    fixed = (out.flags & Flag.CLOCK_CORRECTED) != 0
    # Three reports over at least 20 s of receive time confirm the offset: the third and on.
    assert fixed.tolist() == [False, False] + [True] * 8
    assert (out.time_ms[fixed] == recv[fixed] - 1500).all()
    assert (out.device_time_ms == recv - 8 * HOUR_MS - 1500).all()  # the device's time kept
    assert not out.flags[~fixed].any()  # before: late fixes, still usable
    assert state(clocks) == ("corrected_hours", 8 * HOUR_MS, int(recv[2]))


def test_a_seeded_correction_applies_from_the_first_report_and_reset_seeds_nothing() -> None:
    recv = every(30, 3)
    clocks = DeviceClocks()
    clocks.seed(
        np.array([0, 1]),
        np.array([ClockState.CORRECTED_HOURS, ClockState.RESET], np.int8),
        np.array([8 * HOUR_MS, 5 * HOUR_MS], np.int64),
        np.array([NOW - 600 * S, NOW - 600 * S], np.int64),
    )
    out = clocks.apply(rows(recv - 8 * HOUR_MS - 1500, recv))
    assert (out.flags & Flag.CLOCK_CORRECTED).all()
    assert (out.time_ms == recv - 1500).all()
    assert state(clocks) == ("corrected_hours", 8 * HOUR_MS, NOW - 600 * S)
    late = clocks.apply(rows(recv[:1] - 5 * HOUR_MS, recv[:1], device=1))
    assert late.flags.tolist() == [0]  # an unusable clock's offset is not a correction
    assert late.time_ms.tolist() == [recv[0] - 5 * HOUR_MS]


def test_a_week_rollover_is_corrected_with_its_time_zone_error() -> None:
    recv = every(10, 12)
    clocks = DeviceClocks()
    out = clocks.apply(rows(recv - ROLLOVER_MS - 8 * HOUR_MS - 700, recv))
    assert (out.time_ms[-5:] == recv[-5:] - 700).all()
    assert state(clocks)[:2] == ("rollover", ROLLOVER_MS + 8 * HOUR_MS)
    codes = row_states(out.flags, out.time_ms, out.device_time_ms)
    assert codes[-1] == ClockState.ROLLOVER


def test_a_clock_that_is_fixed_goes_back_to_ok() -> None:
    clocks = DeviceClocks()
    recv = every(30, 10)
    clocks.apply(rows(recv - 8 * HOUR_MS, recv))
    later = every(30, 10, start=int(recv[-1]) + 30 * S)
    out = clocks.apply(rows(later - S, later))
    # Until three reports agree on no offset, the old correction puts them 8 h ahead: future.
    assert ((out.flags & Flag.FUTURE) != 0).tolist() == [True, True] + [False] * 8
    assert (out.time_ms[2:] == later[2:] - S).all()
    assert state(clocks)[:2] == ("ok", 0)


@pytest.mark.parametrize(
    "epoch_ms",
    [946_656_000_000, 3_471_696_000_000],  # 2000-01-01, and 1980-01-06 read as 2080 from BCD
    ids=["2000-01-01", "1980-01-06"],
)
def test_a_reset_clock_is_flagged_and_takes_the_receive_time(epoch_ms: int) -> None:
    recv = every(30, 5)
    clocks = DeviceClocks()
    out = clocks.apply(rows(epoch_ms + np.arange(5) * 30 * S, recv))
    assert ((out.flags & Flag.CLOCK_RESET) != 0).all()
    assert (out.time_ms == off_the_second(recv)).all()
    assert not out.valid().any()
    assert state(clocks)[0] == "reset"


def test_old_fixes_are_backfill_but_a_clock_beyond_the_horizon_counts_as_reset() -> None:
    recv = every(1, 5)
    clocks = DeviceClocks()
    for age in (48 * HOUR_MS, 3 * 365 * 24 * HOUR_MS):  # two days, three years: still fixes
        old = clocks.apply(rows(recv - age, recv))
        assert (old.time_ms == recv - age).all() and (old.flags == 0).all()
    ancient = clocks.apply(rows(recv - 8 * 365 * 24 * HOUR_MS, recv + 10 * S))
    assert ((ancient.flags & Flag.CLOCK_RESET) != 0).all()


def test_a_week_rollover_is_corrected_from_its_first_report() -> None:
    """Nobody stores 19-year-old fixes: unlike whole hours, 1024 weeks needs no confirming."""
    recv = every(30, 2)
    out = DeviceClocks().apply(rows(recv - ROLLOVER_MS - 600, recv))
    assert (out.time_ms == recv - 600).all()
    assert ((out.flags & Flag.CLOCK_CORRECTED) != 0).all()


def test_a_future_fix_takes_the_receive_time() -> None:
    recv = every(30, 3)
    clocks = DeviceClocks()
    out = clocks.apply(rows(recv + 2 * 24 * HOUR_MS, recv))
    assert ((out.flags & Flag.FUTURE) != 0).all()
    assert (out.time_ms == off_the_second(recv)).all()
    assert state(clocks)[0] == "future"


def test_a_stuck_clock_is_flagged_once_it_repeats_one_time_past_the_resend_window() -> None:
    recv = every(30, 6)
    clocks = DeviceClocks()
    out = clocks.apply(rows(np.full(6, NOW - S), recv))
    stuck = (out.flags & Flag.CLOCK_STUCK) != 0
    # 0, 30 and 60 s after the first: what a resent report looks like; from 90 s on, stuck.
    assert stuck.tolist() == [False, False, False, True, True, True]
    assert (out.time_ms[stuck] == off_the_second(recv[stuck])).all()
    assert state(clocks)[0] == "stuck"


def test_a_burst_of_stored_fixes_passing_an_hour_mark_changes_no_correction() -> None:
    """Fixes recorded every 30 s over 10 h, sent 5 a second: their offsets fall through 8 h
    (and every other whole hour) without staying there."""
    n = 1200
    device = NOW - 10 * HOUR_MS + np.arange(n) * 30 * S
    recv = NOW + np.arange(n) * 200
    clocks = DeviceClocks()
    out = clocks.apply(rows(device, recv))
    assert (out.time_ms == device).all() and (out.flags == 0).all()
    assert state(clocks)[:2] == ("ok", 0)


def test_backfill_batches_do_not_teach_an_offset() -> None:
    recv = every(30, 10)
    clocks = DeviceClocks()
    out = clocks.apply(rows(recv - 3 * HOUR_MS, recv, flags=int(Flag.BACKFILL)))
    assert (out.time_ms == recv - 3 * HOUR_MS).all()
    assert state(clocks)[:2] == ("ok", 0)


def test_unusable_rows_of_one_receive_time_stay_distinct() -> None:
    recv = np.full(4, NOW)
    clocks = DeviceClocks()
    out = clocks.apply(rows(946_656_000_000 + np.arange(4) * S, recv, flags=int(Flag.BACKFILL)))
    assert out.time_ms.tolist() == [NOW + 1, NOW + 2, NOW + 3, NOW + 4]


def test_unusable_rows_stay_distinct_across_flushes_a_millisecond_apart() -> None:
    """Two flushes 1 ms apart each holding several rows of a future clock: none may take a time
    another row of the device has (the store keeps one row per device and time)."""
    clocks = DeviceClocks()
    future = NOW + 3_600 * S
    first = clocks.apply(rows(future + np.arange(3) * S, np.full(3, NOW)))
    second = clocks.apply(rows(future + np.arange(3, 5) * S, np.full(2, NOW + 1)))
    later = clocks.apply(rows([future + 9 * S], [NOW + 50]))
    times = [*first.time_ms.tolist(), *second.time_ms.tolist(), *later.time_ms.tolist()]
    # NOW is a whole second, where tracker fix times lie: the first takes the next millisecond.
    assert times == [NOW + 1, NOW + 2, NOW + 3, NOW + 4, NOW + 5, NOW + 50]
    assert clocks.apply(rows([future + 20 * S], [NOW + 999])).time_ms.tolist() == [NOW + 999]
    # The next one lands after a whole second, not on it.
    assert clocks.apply(rows([future + 21 * S], [NOW + 999])).time_ms.tolist() == [NOW + 1001]


def test_rows_of_many_devices_keep_their_order_and_their_own_state() -> None:
    recv = every(30, 6)
    utc = rows(recv - 8 * HOUR_MS, recv, device=1)
    ok = rows(recv - S, recv, device=0)
    mixed = PositionBatch.concat([utc, ok]).take(np.argsort(np.r_[recv, recv], kind="stable"))
    clocks = DeviceClocks()
    out = clocks.apply(mixed)
    assert out.device.tolist() == mixed.device.tolist()
    assert (out.time_ms[out.device == 0] == recv - S).all()
    assert state(clocks, 1)[:2] == ("corrected_hours", 8 * HOUR_MS)
    assert state(clocks, 0)[:2] == ("ok", 0)


def test_reports_every_second_are_corrected_after_20_seconds() -> None:
    recv = every(1, 40)
    out = DeviceClocks().apply(rows(recv - 8 * HOUR_MS - 300, recv))
    fixed = (out.flags & Flag.CLOCK_CORRECTED) != 0
    assert fixed.tolist() == [False] * 20 + [True] * 20


def test_a_lag_beyond_the_match_window_teaches_nothing() -> None:
    recv = every(30, 10)
    clocks = DeviceClocks()
    out = clocks.apply(rows(recv - 8 * HOUR_MS - 45_000, recv))
    assert not (out.flags & Flag.CLOCK_CORRECTED).any()
    assert state(clocks)[:2] == ("ok", 0)


def test_settings_are_the_thresholds_used() -> None:
    clocks = DeviceClocks(ClockSettings(confirm=5, confirm_ms=0))
    recv = every(1, 6)
    out = clocks.apply(rows(recv - 8 * HOUR_MS, recv))
    assert ((out.flags & Flag.CLOCK_CORRECTED) != 0).tolist() == [False] * 4 + [True] * 2
