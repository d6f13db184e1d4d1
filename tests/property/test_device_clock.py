"""The device clock model over generated fleets of faulty clocks: any split of the stream into
batches gives the same times, flags and states (what makes replay reproduce the gateway), and
no row ever gets a time ahead of its arrival."""

from __future__ import annotations

import itertools
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from positions import Flag, PositionBatch
from trajectory.clock import HOUR_MS, ROLLOVER_MS, ClockSettings, DeviceClocks, row_states

NOW = 1_710_000_000_000
RESET = 946_656_000_000
KINDS = ("ok", "utc", "hours", "rollover", "reset", "stuck", "future", "backfill", "late")
# CI runs the default count; a hunt for rare cases sets CLOCK_EXAMPLES (e.g. 2000).
SETTINGS = settings(
    max_examples=int(os.environ.get("CLOCK_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def device_stream(draw: st.DrawFn, device: int) -> dict[str, np.ndarray]:
    kind = draw(st.sampled_from(KINDS))
    n = draw(st.integers(1, 40))
    gaps = np.asarray(draw(st.lists(st.integers(0, 60_000), min_size=n, max_size=n)), np.int64)
    recv = NOW + draw(st.integers(0, 600_000)) + np.cumsum(gaps)
    lag = np.asarray(draw(st.lists(st.integers(0, 4_000), min_size=n, max_size=n)), np.int64)
    flags = np.zeros(n, np.int64)
    if kind == "ok":
        dev = recv - lag
    elif kind == "utc":
        dev = recv - lag - 8 * HOUR_MS
    elif kind == "hours":
        dev = recv - lag + draw(st.integers(-14, 14)) * HOUR_MS
    elif kind == "rollover":
        dev = recv - lag - ROLLOVER_MS - draw(st.integers(0, 9)) * HOUR_MS
    elif kind == "reset":
        dev = RESET + np.cumsum(gaps)
    elif kind == "stuck":
        dev = np.full(n, int(recv[0]) - 1_000)
    elif kind == "future":
        dev = recv + draw(st.integers(10, 10_000)) * 60_000
    else:  # stored fixes sent late: a burst (backfill batches) or plain reports
        dev = recv - draw(st.integers(0, 72)) * HOUR_MS - np.arange(n)[::-1] * 30_000
        if kind == "backfill":
            flags[:] = int(Flag.BACKFILL)
    return {"device": np.full(n, device), "recv_ms": recv, "device_time_ms": dev, "flags": flags}


@st.composite
def fleets(draw: st.DrawFn) -> tuple[PositionBatch, list[int]]:
    parts = [draw(device_stream(d)) for d in range(draw(st.integers(1, 5)))]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(cols["recv_ms"], kind="stable")  # arrival order across devices
    cols = {k: v[order] for k, v in cols.items()}
    batch = PositionBatch.from_columns({**cols, "time_ms": cols["device_time_ms"]})
    cuts = sorted(draw(st.lists(st.integers(0, len(batch)), max_size=6)))
    return batch, cuts


def run(batch: PositionBatch, cuts: list[int]) -> tuple[PositionBatch, DeviceClocks]:
    clocks = DeviceClocks()
    bounds = [0, *cuts, len(batch)]
    parts = [clocks.apply(batch.take(np.arange(a, b))) for a, b in itertools.pairwise(bounds)]
    return PositionBatch.concat(parts), clocks


@SETTINGS
@given(fleets())
def test_any_batching_gives_the_same_times_flags_and_states(
    case: tuple[PositionBatch, list[int]],
) -> None:
    batch, cuts = case
    whole, one = run(batch, [])
    split, many = run(batch, cuts)
    assert whole.time_ms.tolist() == split.time_ms.tolist()
    assert whole.flags.tolist() == split.flags.tolist()
    devices = np.arange(int(batch.device.max()) + 1)
    for a, b in zip(one.states(devices), many.states(devices), strict=True):
        assert a.tolist() == b.tolist()


@SETTINGS
@given(fleets())
def test_no_row_is_dated_ahead_of_its_arrival_and_the_device_time_is_kept(
    case: tuple[PositionBatch, list[int]],
) -> None:
    batch, _ = case
    out, _ = run(batch, [])
    ahead = ClockSettings().ahead_ms
    assert (out.time_ms <= out.recv_ms + ahead + len(out)).all()
    assert (out.device_time_ms == batch.device_time_ms).all()
    usable = out.valid()
    # Every row the location rules may use is within the backfill horizon of its arrival.
    assert (out.recv_ms[usable] - out.time_ms[usable] <= ClockSettings().horizon_ms).all()
    codes = row_states(out.flags, out.time_ms, out.device_time_ms)
    assert ((codes >= 3) == ~usable).all()  # reset, stuck, future: exactly the unusable rows


@SETTINGS
@given(st.integers(-14, 14), st.integers(4, 30), st.integers(20_000, 60_000))
def test_a_steady_whole_hour_offset_is_learned_and_every_later_fix_lands_on_arrival(
    hours: int, n: int, every_ms: int
) -> None:
    recv = NOW + np.arange(n, dtype=np.int64) * every_ms
    dev = recv - 2_000 + hours * HOUR_MS
    clocks = DeviceClocks()
    out = clocks.apply(
        PositionBatch.from_columns(
            {"device": np.zeros(n), "time_ms": dev, "device_time_ms": dev, "recv_ms": recv}
        )
    )
    settled = np.flatnonzero(recv - recv[0] >= ClockSettings().confirm_ms)
    settled = settled[settled >= 2]
    assert (out.time_ms[settled] == recv[settled] - 2_000).all()
    assert int(clocks.states([0])[1][0]) == -hours * HOUR_MS
