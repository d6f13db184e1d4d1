"""Device clocks: per device, learn how the fix times it sends relate to when they arrive, and
give each report the time the rules and the store should use.

Trackers send fix times that are wrong in a few known ways (contracts section 3): set to UTC
instead of GMT+8 (8 h behind; any whole-hour offset is a time-zone mistake), 1024 weeks early
(GPS week-number rollover), reset to an epoch (2000-01-01, or 1980-01-06, whose BCD year reads
as 2080), stuck, or in the future. They also send stored fixes late (backfill), which is none of
these: late is not wrong.

Per device the model keeps a learned correction: a whole number of hours, plus 1024 weeks for a
rollover. It changes only when the device's reports agree on another one: `confirm` consecutive
reports (backfill batches left out) whose offset (receive time - device time) lies within
`match_ms` of the same value, each within `jitter_ms` of the one before, over at least
`confirm_ms` of receive time. A wrong clock looks like that; a burst of stored fixes does not,
since its offset falls by the recording interval at every report. A report 1024 weeks behind is
corrected at once (nobody stores 19-year-old fixes): only whole hours are ambiguous.

Each row then gets its device time plus the correction when that lands in [receive -
`horizon_ms`, receive + `ahead_ms`]: a live or late fix (CLOCK_CORRECTED when the correction is
not 0). Otherwise the row has no usable time: a clock near a reset epoch (within
`reset_window_ms` after it) or older than the horizon of 5 years (CLOCK_RESET), one ahead
(FUTURE), or one that repeats a single time for `stuck_ms` of receive time (CLOCK_STUCK). Such
a row takes its receive time (or the next millisecond after the device's previous unusable row,
when that is later; never a whole second, where the fix times trackers send lie, so no two rows
share a store key) and stays out of the location rules; the device's own time
stays in `device_time_ms`.

Rows of one device must come in arrival order. How they are cut into batches does not change
any result (a property test checks it), so replay over a file makes the gateway's live choices.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from positions import Flag, PositionBatch
from trajectory.segments import (
    device_order,
    first_of_device,
    last_of_device,
    latest_marker,
    running_max,
)
from trajectory.state import grown

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ROLLOVER_MS = 1024 * 7 * DAY_MS  # GPS week-number rollover
# RTC reset epochs: 1980-01-06 (the GPS epoch; JT808's two-digit BCD year reads it as 2080) and
# 2000-01-01, as GMT+8 wall times read by the decoder (midnight there is 16:00 UTC the day before).
RESET_EPOCHS_MS = (315_936_000_000, 946_656_000_000, 3_471_696_000_000)
_NO_TIME = np.iinfo(np.int64).min
_I64 = npt.NDArray[np.int64]


class ClockState(enum.IntEnum):
    """What a device's clock is doing, as of its latest report (`name.lower()` in the API)."""

    OK = 0
    CORRECTED_HOURS = 1
    ROLLOVER = 2
    RESET = 3
    STUCK = 4
    FUTURE = 5

    @property
    def label(self) -> str:
        return self.name.lower()


CLOCK_STATES = tuple(s.label for s in ClockState)


@dataclass(frozen=True, slots=True)
class ClockSettings:
    """Thresholds of the clock model (module docstring)."""

    match_ms: int = 30_000
    jitter_ms: int = 10_000
    confirm: int = 3
    confirm_ms: int = 20_000
    max_hours: int = 14
    ahead_ms: int = 5 * 60_000
    horizon_ms: int = 5 * 365 * DAY_MS
    stuck_ms: int = 90_000
    reset_window_ms: int = 400 * DAY_MS


@dataclass(slots=True)
class ClockCounts:
    """Rows each outcome flagged, for the replay summary and metrics."""

    corrected: int = 0
    reset: int = 0
    stuck: int = 0
    future: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "clock_corrected": self.corrected,
            "clock_reset": self.reset,
            "clock_stuck": self.stuck,
            "clock_future": self.future,
        }


@dataclass
class DeviceClocks:
    """Per-device clock state in columns indexed by dense device index."""

    settings: ClockSettings = field(default_factory=ClockSettings)
    counts: ClockCounts = field(default_factory=ClockCounts)
    correction_ms: _I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    # The run of agreeing reports that may become the correction: its value, length, first
    # receive time and the last offset in it (length 0: no run).
    run_value_ms: _I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    run_length: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    run_from_ms: _I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    run_offset_ms: _I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    # The device's last time as sent, and when it was first received (a stuck clock).
    device_ms: _I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    device_from_ms: _I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    # Per device: the time given to its latest unusable row (they are kept strictly rising).
    spread_ms: _I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    # The state of the latest report and the receive time since which it holds (-1: none yet).
    state: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))
    since_ms: _I64 = field(default_factory=lambda: np.zeros(0, np.int64))

    def ensure(self, n_devices: int) -> None:
        self.correction_ms = grown(self.correction_ms, n_devices, 0)
        self.run_value_ms = grown(self.run_value_ms, n_devices, 0)
        self.run_length = grown(self.run_length, n_devices, 0)
        self.run_from_ms = grown(self.run_from_ms, n_devices, 0)
        self.run_offset_ms = grown(self.run_offset_ms, n_devices, 0)
        self.device_ms = grown(self.device_ms, n_devices, _NO_TIME)
        self.device_from_ms = grown(self.device_from_ms, n_devices, 0)
        self.spread_ms = grown(self.spread_ms, n_devices, _NO_TIME)
        self.state = grown(self.state, n_devices, -1)
        self.since_ms = grown(self.since_ms, n_devices, -1)

    def seed(
        self,
        device: npt.NDArray[np.intp],
        state: npt.NDArray[np.int8],
        correction_ms: _I64,
        since_ms: _I64,
    ) -> None:
        """Clocks as they were learned before a restart (the store keeps each device's), so a
        device on UTC has its first reports after it corrected too, not left 8 h behind until
        `confirm` new ones agree again. Only learned corrections count: an unusable clock is
        judged again on the next report anyway."""
        keep = (state == ClockState.CORRECTED_HOURS) | (state == ClockState.ROLLOVER)
        device = device[keep]
        if not len(device):
            return
        self.ensure(int(device.max()) + 1)
        self.correction_ms[device] = correction_ms[keep]
        self.state[device] = state[keep]
        self.since_ms[device] = since_ms[keep]

    def apply(self, batch: PositionBatch) -> PositionBatch:
        """`batch` (rows in arrival order, any device interleaving) with `time_ms` and `flags`
        set from `device_time_ms` and `recv_ms`; the row order stays as it is."""
        if not len(batch):
            return batch
        device = batch.device
        grouped = len(device) < 2 or bool((device[1:] >= device[:-1]).all())
        order = None if grouped else device_order(device)
        if order is None:
            time_ms, flags = self.apply_grouped(
                device, batch.device_time_ms, batch.recv_ms, batch.flags
            )
        else:
            sorted_time, sorted_flags = self.apply_grouped(
                device[order], batch.device_time_ms[order], batch.recv_ms[order], batch.flags[order]
            )
            time_ms, flags = np.empty_like(sorted_time), np.empty_like(sorted_flags)
            time_ms[order], flags[order] = sorted_time, sorted_flags
        return PositionBatch(**{**batch.columns(), "time_ms": time_ms, "flags": flags})

    def apply_grouped(
        self,
        device: npt.NDArray[np.int32],
        device_ms: _I64,
        recv_ms: _I64,
        flags: npt.NDArray[np.uint16],
    ) -> tuple[_I64, npt.NDArray[np.uint16]]:
        """(time, flags) for rows grouped by device in arrival order; updates the state."""
        n = len(device)
        flags = flags.copy()
        if n == 0:
            return np.zeros(0, np.int64), flags
        self.ensure(int(device.max()) + 1)
        s = self.settings
        first = first_of_device(device)
        last = last_of_device(device)
        offset = recv_ms - device_ms
        bad_time = (flags & np.uint16(Flag.BAD_TIME)) != 0
        correction, value, evidence = self._learn(device, offset, recv_ms, flags, first)
        # A report 1024 weeks (and whole hours) behind is a week rollover, never a stored fix:
        # corrected at once, before its device's correction is learned.
        rolled = evidence & (value >= ROLLOVER_MS - (s.max_hours + 1) * HOUR_MS)
        correction = np.where(rolled & (offset - correction > s.horizon_ms), value, correction)

        rest = offset - correction
        # Only a row more than a day from its arrival can be near a reset epoch or past the
        # horizon: those few are looked at closely.
        odd = np.flatnonzero(bad_time | (rest < -s.ahead_ms) | (rest > DAY_MS))
        reset = np.zeros(n, np.bool_)
        future = np.zeros(n, np.bool_)
        if len(odd):
            sent, late, broken = device_ms[odd], rest[odd], bad_time[odd]
            near_epoch = np.zeros(len(odd), np.bool_)
            for epoch in RESET_EPOCHS_MS:
                near_epoch |= (sent >= epoch - DAY_MS) & (sent < epoch + s.reset_window_ms)
            reset[odd] = ~broken & (near_epoch | (late > s.horizon_ms))
            future[odd] = ~broken & ~reset[odd] & (late < -s.ahead_ms)
        stuck = self._stuck(device, device_ms, recv_ms, first)
        if len(odd):
            stuck &= ~(bad_time | reset | future)
        unusable = np.flatnonzero(bad_time | reset | future | stuck)
        corrected = correction != 0
        time_ms = device_ms + correction
        if len(unusable):
            corrected[unusable] = False
            time_ms[unusable] = self._spread(device[unusable], recv_ms[unusable])
        special = len(unusable) > 0 or bool(corrected.any())
        if special:
            flags[corrected] |= np.uint16(Flag.CLOCK_CORRECTED)
            flags[reset] |= np.uint16(Flag.CLOCK_RESET)
            flags[future] |= np.uint16(Flag.FUTURE)
            flags[stuck] |= np.uint16(Flag.CLOCK_STUCK)
            self.counts.corrected += int(corrected.sum())
            self.counts.reset += int(reset.sum())
            self.counts.stuck += int(stuck.sum())
            self.counts.future += int(future.sum())
            code = row_states(flags, time_ms, device_ms)
        else:
            code = np.zeros(n, np.int8)

        d_last = device[last]
        prev_code = np.empty(n, np.int8)
        prev_code[1:] = code[:-1]
        prev_code[first] = self.state[device[first]]
        change = code != prev_code
        anchor = latest_marker(change | first)[last]
        self.since_ms[d_last] = np.where(change[anchor], recv_ms[anchor], self.since_ms[d_last])
        self.state[d_last] = code[last]
        self.correction_ms[d_last] = correction[last]
        return time_ms, flags

    def _learn(
        self,
        device: npt.NDArray[np.int32],
        offset: _I64,
        recv_ms: _I64,
        flags: npt.NDArray[np.uint16],
        first: npt.NDArray[np.bool_],
    ) -> tuple[_I64, _I64, npt.NDArray[np.bool_]]:
        """The correction in force at each row, each row's nearest candidate and whether the
        row is evidence for it; carries the runs of agreeing reports."""
        s = self.settings
        rollover = offset > ROLLOVER_MS - (s.max_hours + 1) * HOUR_MS
        base = np.where(rollover, ROLLOVER_MS, 0)
        hours = np.rint((offset - base) / HOUR_MS)
        hours = np.clip(hours, -(s.max_hours + 1), s.max_hours + 1).astype(np.int64)
        value = base + hours * HOUR_MS
        skip = np.uint16(Flag.BACKFILL | Flag.BAD_TIME)
        evidence = (np.abs(hours) <= s.max_hours) & (np.abs(offset - value) <= s.match_ms)
        evidence &= (flags & skip) == 0

        e = np.flatnonzero(evidence)
        correction = self.correction_ms[device]
        if len(e) == 0:
            return correction, value, evidence
        if (value[e] == correction[e]).all():
            # The usual batch: every report agrees with its device's correction, so none
            # changes, and no run towards another value is left pending.
            self.run_length[device[e]] = 0
            return correction, value, evidence
        e_dev, e_val, e_off, e_recv = device[e], value[e], offset[e], recv_ms[e]
        e_first = first_of_device(e_dev)
        prev_val = np.empty_like(e_val)
        prev_off = np.empty_like(e_off)
        prev_val[1:], prev_off[1:] = e_val[:-1], e_off[:-1]
        carried = e_first & (self.run_length[e_dev] > 0)
        prev_val[e_first] = self.run_value_ms[e_dev[e_first]]
        prev_off[e_first] = self.run_offset_ms[e_dev[e_first]]
        goes_on = (e_val == prev_val) & (np.abs(e_off - prev_off) <= s.jitter_ms)
        goes_on &= ~e_first | carried
        starts = ~goes_on
        anchor = latest_marker(starts | e_first)
        within = np.arange(len(e)) - anchor
        from_carried = ~starts[anchor]
        length = within + 1 + np.where(from_carried, self.run_length[e_dev], 0)
        run_from = np.where(from_carried, self.run_from_ms[e_dev], e_recv[anchor])
        confirmed = (length >= s.confirm) & (e_recv - run_from >= s.confirm_ms)

        if confirmed.any():
            marker = np.zeros(len(device), np.bool_)
            marker[e[confirmed]] = True
            at = latest_marker(marker | first)
            correction = np.where(marker[at], value[at], correction)
        e_last = last_of_device(e_dev)
        d = e_dev[e_last]
        self.run_value_ms[d] = e_val[e_last]
        # A run of the correction in force is no candidate: kept as none (as the usual batch
        # above leaves it), so the state is the same however the rows were batched.
        pending = e_val[e_last] != correction[e[e_last]]
        self.run_length[d] = np.where(pending, np.minimum(length[e_last], 2**31 - 1), 0)
        self.run_from_ms[d] = run_from[e_last]
        self.run_offset_ms[d] = e_off[e_last]
        return correction, value, evidence

    def _stuck(
        self,
        device: npt.NDArray[np.int32],
        device_ms: _I64,
        recv_ms: _I64,
        first: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.bool_]:
        """Rows repeating the device's previous time `stuck_ms` or more after it first came."""
        prev = np.empty_like(device_ms)
        prev[1:] = device_ms[:-1]
        prev[first] = self.device_ms[device[first]]
        same: npt.NDArray[np.bool_] = np.asarray(device_ms == prev, dtype=np.bool_)
        last = last_of_device(device)
        if not same.any():  # the usual batch: every time new
            self.device_ms[device[last]] = device_ms[last]
            self.device_from_ms[device[last]] = recv_ms[last]
            return same
        anchor = latest_marker(~same | first)
        since = np.where(same[anchor], self.device_from_ms[device[anchor]], recv_ms[anchor])
        self.device_ms[device[last]] = device_ms[last]
        self.device_from_ms[device[last]] = since[last]
        return np.asarray(same & (recv_ms - since >= self.settings.stuck_ms), dtype=np.bool_)

    def _spread(self, device: npt.NDArray[np.int32], recv_ms: _I64) -> _I64:
        """Times for unusable rows grouped by device: each its receive time, or the next free
        time after the device's previous unusable row when that is later (carried across
        batches), never on a whole second. The store keeps one row per device and time: these
        times stay distinct from each other however the rows were cut into flushes, and from
        every fix time a tracker sends (whole seconds), so none replaces another row."""
        n = len(device)
        first = first_of_device(device)
        start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        rank = np.arange(n, dtype=np.int64) - start
        carried = np.where(self.spread_ms == _NO_TIME, _NO_TIME, _tick(self.spread_ms) + 1)
        _, upto = running_max(device, _tick(recv_ms) - rank, carried)
        times = _untick(upto + rank)
        last = last_of_device(device)
        self.spread_ms[device[last]] = times[last]
        return times

    def states(self, devices: npt.ArrayLike) -> tuple[npt.NDArray[np.int8], _I64, _I64]:
        """(state, offset, since) of the given device indexes; state -1 for a device not seen.
        The offset is the learned correction."""
        idx = np.asarray(devices, dtype=np.intp)
        self.ensure(int(idx.max()) + 1 if len(idx) else 0)
        return self.state[idx], self.correction_ms[idx], self.since_ms[idx]


def row_states(
    flags: npt.NDArray[np.uint16], time_ms: _I64, device_time_ms: _I64
) -> npt.NDArray[np.int8]:
    """The `ClockState` code each stored row shows, from its flags and its two times; what the
    store keeps as a device's clock state (its latest row's)."""
    code = np.zeros(len(flags), np.int8)
    corrected = (flags & np.uint16(Flag.CLOCK_CORRECTED)) != 0
    rolled = time_ms - device_time_ms > ROLLOVER_MS - 15 * HOUR_MS
    code[corrected] = ClockState.CORRECTED_HOURS
    code[corrected & rolled] = ClockState.ROLLOVER
    code[(flags & np.uint16(Flag.CLOCK_RESET | Flag.BAD_TIME)) != 0] = ClockState.RESET
    code[(flags & np.uint16(Flag.CLOCK_STUCK)) != 0] = ClockState.STUCK
    code[(flags & np.uint16(Flag.FUTURE)) != 0] = ClockState.FUTURE
    return code


def _tick(time_ms: _I64) -> _I64:
    """Times numbered over the milliseconds that are not whole seconds (999 a second); a whole
    second counts as the millisecond after it."""
    second, ms = np.divmod(time_ms, 1000)
    return second * 999 + np.maximum(ms, 1) - 1


def _untick(tick: _I64) -> _I64:
    second, within = np.divmod(tick, 999)
    return second * 1000 + within + 1
