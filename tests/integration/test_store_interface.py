"""One behaviour suite for the store interface, run against SQLite and real PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from positions import Flag, PositionBatch
from store import (
    CommandState,
    Device,
    DeviceClock,
    Store,
    StoreError,
    migrate,
    open_store,
    sqlite_path,
)
from store.selection import thin

T0 = 1_709_280_000_000  # 2024-03-01T08:00:00Z
A, B, C = "013900000001", "013900000002", "013900000003"


def positions(rows: list[dict[str, Any]]) -> tuple[PositionBatch, list[str]]:
    """A batch from dicts with `terminal`, `t` (ms after T0) and any other column."""
    terminals = list(dict.fromkeys(r["terminal"] for r in rows))
    columns: dict[str, list[Any]] = {"device": [], "time_ms": [], "recv_ms": []}
    extra = sorted({k for r in rows for k in r} - {"terminal", "t"})
    for name in extra:
        columns[name] = []
    for r in rows:
        columns["device"].append(terminals.index(r["terminal"]))
        columns["time_ms"].append(T0 + r["t"])
        columns["recv_ms"].append(T0 + r.get("recv_ms", r["t"] + 500))
        for name in extra:
            if name != "recv_ms":
                columns[name].append(r.get(name, 0))
    return PositionBatch.from_columns(columns), terminals


def track_of(n: int, terminal: str = A, step_ms: int = 10_000) -> tuple[PositionBatch, list[str]]:
    return positions(
        [
            {"terminal": terminal, "t": i * step_ms, "lon": 121.0 + i / 1000, "lat": 31.0}
            for i in range(n)
        ]
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    migrate(url, tmp_path)
    opened = open_store(url, tmp_path)
    yield opened
    opened.close()


def test_written_positions_read_back_exactly_in_their_track(store: Store) -> None:
    batch, terminals = positions(
        [
            {
                "terminal": A,
                "t": i * 1000,
                "lon": 121.5 + i * 1e-6,
                "lat": -31.25,
                "speed_kmh": 60.5,
                "course": 359,
                "altitude_m": -12,
                "alarm": 0xFFFFFFFF,
                "status": 3,
                "flags": int(Flag.BACKFILL | Flag.BATCH),
            }
            for i in range(5)
        ]
    )
    result = store.write_positions(batch, terminals)
    assert (result.offered, result.inserted) == (5, 5)
    got = store.track(A, T0, T0 + 10_000)
    for name, column in batch.columns().items():
        np.testing.assert_array_equal(getattr(got, name), column, err_msg=name)


def test_rewriting_the_same_positions_stores_them_once(store: Store) -> None:
    batch, terminals = track_of(20)
    store.write_positions(batch, terminals)
    again = store.write_positions(batch, terminals)
    resent, _ = positions([{"terminal": A, "t": 0, "recv_ms": 99_000, "lon": 1.0}])
    third = store.write_positions(resent, [A])
    assert (again.inserted, third.inserted) == (0, 0)
    got = store.track(A, T0, T0 + 10**9)
    assert len(got) == 20
    assert got.lon[0] == batch.lon[0]  # the first write wins


def test_duplicates_inside_one_batch_give_one_row(store: Store) -> None:
    batch, terminals = positions([{"terminal": A, "t": 0}, {"terminal": A, "t": 0}])
    assert store.write_positions(batch, terminals).inserted == 1
    assert len(store.track(A, T0, T0 + 1)) == 1


def test_latest_stays_the_newest_fix_under_late_and_out_of_order_writes(store: Store) -> None:
    newer, terminals = positions([{"terminal": A, "t": 50_000, "lon": 2.0}])
    older, _ = positions([{"terminal": A, "t": 10_000, "lon": 1.0}])
    mixed, mixed_terminals = positions(
        [
            {"terminal": B, "t": 30_000, "lon": 3.0},
            {"terminal": B, "t": 20_000, "lon": 4.0},
            {"terminal": A, "t": 40_000, "lon": 5.0},
        ]
    )
    store.write_positions(newer, terminals)
    store.write_positions(older, terminals)
    store.write_positions(mixed, mixed_terminals)
    latest = store.latest([A, B, C])
    assert latest.device.tolist() == [0, 1]
    assert latest.lon.tolist() == [2.0, 3.0]
    assert latest.time_ms.tolist() == [T0 + 50_000, T0 + 30_000]


def test_latest_ignores_newer_fixes_flagged_unusable(store: Store) -> None:
    good, terminals = positions([{"terminal": A, "t": 0, "lon": 1.0}])
    store.write_positions(good, terminals)
    unusable = (
        Flag.INVALID_FIX,
        Flag.IMPLAUSIBLE,
        Flag.FUTURE,
        Flag.BAD_TIME,
        Flag.CLOCK_RESET,
        Flag.CLOCK_STUCK,
    )
    for flag in unusable:
        bad, _ = positions([{"terminal": A, "t": 1000 * int(flag), "lon": 9.0, "flags": flag}])
        store.write_positions(bad, [A])
    late_backfill, _ = positions([{"terminal": A, "t": 500_000, "lon": 2.0, "flags": 1}])
    store.write_positions(late_backfill, [A])
    assert store.latest([A]).lon.tolist() == [2.0]
    assert len(store.track(A, T0, T0 + 10**9)) == 8  # every position is stored all the same


def test_a_fix_dated_in_the_future_never_stays_the_latest(store: Store) -> None:
    """One stored before fixes ahead of their arrival were flagged (or by a writer that does
    not flag them) gives way to the next valid fix, though that one's time is older."""
    ahead, terminals = positions([{"terminal": A, "t": 30 * 86_400_000, "recv_ms": 0, "lon": 9.0}])
    store.write_positions(ahead, terminals)
    assert store.latest([A]).lon.tolist() == [9.0]
    now, _ = positions([{"terminal": A, "t": 1_000, "lon": 1.0}])
    store.write_positions(now, terminals)
    assert store.latest([A]).lon.tolist() == [1.0]
    older, _ = positions([{"terminal": A, "t": 0, "lon": 2.0}])
    store.write_positions(older, terminals)  # a late fix still moves nothing back
    assert store.latest([A]).lon.tolist() == [1.0]


def test_both_fix_times_are_stored_and_read_back(store: Store) -> None:
    rows, terminals = positions(
        [{"terminal": A, "t": 1_000, "device_time_ms": T0 + 1_000 - 8 * 3_600_000, "flags": 256}]
    )
    store.write_positions(rows, terminals)
    for got in (store.track(A, T0, T0 + 10_000), store.latest([A])):
        assert got.time_ms.tolist() == [T0 + 1_000]
        assert got.device_time_ms.tolist() == [T0 + 1_000 - 8 * 3_600_000]
    page = store.positions_since(0, 10)
    assert page.batch.device_time_ms.tolist() == [T0 + 1_000 - 8 * 3_600_000]


def test_a_device_clock_state_is_its_latest_reports_and_since_when(store: Store) -> None:
    hours = 8 * 3_600_000
    ok, terminals = positions(
        [{"terminal": A, "t": i * 1_000, "recv_ms": i * 1_000 + 300} for i in range(3)]
    )
    store.write_positions(ok, terminals)
    assert store.device_clocks([A, B]) == {A: DeviceClock("ok", 0, T0 + 300, T0 + 2_300)}
    utc, _ = positions(
        [
            {
                "terminal": A,
                "t": i * 1_000,
                "recv_ms": i * 1_000 + 300,
                "device_time_ms": T0 + i * 1_000 - hours,
                "flags": int(Flag.CLOCK_CORRECTED),
            }
            for i in range(3, 6)
        ]
    )
    store.write_positions(utc, terminals)
    corrected = DeviceClock("corrected_hours", hours, T0 + 3_300, T0 + 5_300)
    assert store.device_clocks([A]) == {A: corrected}
    more, _ = positions(
        [
            {
                "terminal": A,
                "t": 6_000,
                "recv_ms": 6_300,
                "device_time_ms": T0 + 6_000 - hours,
                "flags": int(Flag.CLOCK_CORRECTED),
            }
        ]
    )
    store.write_positions(more, terminals)
    assert store.device_clocks([A])[A].since_ms == T0 + 3_300  # the same state goes on
    reset, _ = positions(
        [
            {
                "terminal": A,
                "t": 7_000,
                "recv_ms": 7_000,
                "device_time_ms": 946_656_000_000,
                "flags": int(Flag.CLOCK_RESET),
            }
        ]
    )
    store.write_positions(reset, terminals)
    assert store.device_clocks([A]) == {
        A: DeviceClock("reset", T0 + 7_000 - 946_656_000_000, T0 + 7_000, T0 + 7_000)
    }


def test_track_covers_from_inclusive_to_exclusive_for_one_device(store: Store) -> None:
    batch, terminals = track_of(10)
    other, other_terminals = track_of(10, terminal=B)
    store.write_positions(batch, terminals)
    store.write_positions(other, other_terminals)
    got = store.track(A, T0 + 20_000, T0 + 50_000)
    assert got.time_ms.tolist() == [T0 + 20_000, T0 + 30_000, T0 + 40_000]
    assert set(got.device.tolist()) == {0}
    assert len(store.track(C, T0, T0 + 10**9)) == 0


def test_track_thins_to_one_fix_per_interval_and_at_most_n_points(store: Store) -> None:
    batch, terminals = track_of(100)  # one fix every 10 s
    store.write_positions(batch, terminals)
    per_minute = store.track(A, T0, T0 + 10**9, interval_ms=60_000)
    assert np.all(np.diff(per_minute.time_ms // 60_000) == 1)
    assert len(per_minute) == len(np.unique(batch.time_ms // 60_000))
    at_most = store.track(A, T0, T0 + 10**9, max_points=7)
    assert len(at_most) == 7
    assert at_most.time_ms[0] == batch.time_ms[0]
    assert at_most.time_ms[-1] == batch.time_ms[-1]


def test_a_track_is_read_in_pages_and_a_limit_stops_the_reading(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store import postgres, sqlite

    monkeypatch.setattr(postgres, "TRACK_PAGE_ROWS", 7)
    monkeypatch.setattr(sqlite, "TRACK_PAGE_ROWS", 7)
    batch, terminals = track_of(100)
    store.write_positions(batch, terminals)
    whole = store.track(A, T0, T0 + 10**9)
    assert whole.time_ms.tolist() == batch.time_ms.tolist()  # pages join without gap or repeat
    assert store.track(A, T0, T0 + 10**9, limit=30).time_ms.tolist() == whole.time_ms[:31].tolist()
    assert len(store.track(A, T0, T0 + 10**9, limit=100)) == 100
    per_minute = store.track(A, T0, T0 + 10**9, interval_ms=60_000, max_points=5)
    assert (
        per_minute.time_ms.tolist()
        == thin(whole, interval_ms=60_000, max_points=5).time_ms.tolist()
    )


def test_cursor_pages_through_every_position_once_in_store_order(store: Store) -> None:
    first, first_terminals = track_of(7)
    second, second_terminals = track_of(5, terminal=B)
    store.write_positions(first, first_terminals)
    store.write_positions(second, second_terminals)
    store.write_positions(first, first_terminals)  # a replay adds nothing to the stream
    seen: list[tuple[str, int]] = []
    cursor = 0
    while True:
        page = store.positions_since(cursor, 4)
        if not len(page.batch):
            assert page.cursor == cursor
            break
        assert page.cursor > cursor
        cursor = page.cursor
        seen += [
            (page.terminals[d], t)
            for d, t in zip(page.batch.device.tolist(), page.batch.time_ms.tolist(), strict=True)
        ]
    expected = [(A, int(t)) for t in first.time_ms] + [(B, int(t)) for t in second.time_ms]
    assert seen == expected


def test_devices_are_created_by_writes_and_kept_by_upserts(store: Store) -> None:
    store.upsert_device(Device(A, edition=2013, auth_code="abc", registered_ms=T0))
    store.upsert_device(Device(A, vehicle_id="V1"))  # None keeps what is stored
    batch, terminals = positions([{"terminal": B, "t": 0, "recv_ms": 1000}])
    store.write_positions(batch, terminals)
    assert store.get_device(A) == Device(A, 2013, "abc", T0, None, "V1")
    assert store.get_device(B) == Device(B, last_seen_ms=T0 + 1000)
    assert store.get_device(C) is None
    assert [d.terminal for d in store.list_devices()] == [A, B]


def test_a_recorded_identity_is_kept_by_upserts_and_replaced_only_by_reprovisioning(
    store: Store,
) -> None:
    store.upsert_device(Device(A, auth_code="abc", vehicle_id="V1"))
    store.upsert_device(Device(A, maker_id="M1", model="X1", terminal_id="ID1"))
    store.upsert_device(Device(A, imei="860000000000001"))
    # Another identity offered by an upsert changes nothing already recorded.
    store.upsert_device(Device(A, maker_id="EVIL", model="E", terminal_id="E", imei="1"))
    kept = Device(A, None, "abc", None, None, "V1", "M1", "X1", "ID1", "860000000000001")
    assert store.get_device(A) == kept
    assert store.list_devices() == [kept]
    assert store.find_devices(vehicle_id="V1") == [kept]

    # Replaced hardware: identity and code set exactly as given, the rest stays.
    given = store.reprovision_device(Device(A, auth_code="fixed", maker_id="M2", model="X2"))
    assert given == Device(A, None, "fixed", None, None, "V1", "M2", "X2", None, None)
    cleared = store.reprovision_device(Device(A))
    assert cleared == Device(A, vehicle_id="V1")
    assert store.get_device(A) == cleared
    assert store.reprovision_device(Device(B)) is None
    assert store.get_device(B) is None


def test_last_seen_only_moves_forward(store: Store) -> None:
    batch, terminals = positions([{"terminal": A, "t": 0, "recv_ms": 5000}])
    store.write_positions(batch, terminals)
    store.touch_devices([A], T0 + 1000)
    old, _ = positions([{"terminal": A, "t": -9000, "recv_ms": 2000}])
    store.write_positions(old, [A])
    store.upsert_device(Device(A, last_seen_ms=T0))
    device = store.get_device(A)
    assert device is not None
    assert device.last_seen_ms == T0 + 5000
    store.touch_devices([A], T0 + 8000)
    device = store.get_device(A)
    assert device is not None
    assert device.last_seen_ms == T0 + 8000


def test_command_queue_keeps_commands_until_sent_and_acknowledged(store: Store) -> None:
    store.upsert_device(Device(A))
    first = store.enqueue_command(A, 0x8103, b"\x01\x02", now_ms=T0)
    second = store.enqueue_command(A, 0x8201, b"", now_ms=T0 + 1)
    waiting = store.commands_to_send(A, now_ms=T0 + 2)
    assert [(c.id, c.msg_id, c.body) for c in waiting] == [
        (first, 0x8103, b"\x01\x02"),
        (second, 0x8201, b""),
    ]
    store.mark_command(first, CommandState.SENT, now_ms=T0 + 3, serial=77)
    sent = store.get_command(first)
    assert sent is not None
    assert (sent.state, sent.attempts, sent.serial, sent.updated_ms) == (
        CommandState.SENT,
        1,
        77,
        T0 + 3,
    )
    store.mark_command(first, CommandState.ACKED, now_ms=T0 + 4)
    assert [c.id for c in store.commands_to_send(A, now_ms=T0 + 5)] == [second]
    acked = store.get_command(first)
    assert acked is not None
    assert (acked.state, acked.serial) == (CommandState.ACKED, 77)


def test_commands_past_their_deadline_expire_instead_of_being_sent(store: Store) -> None:
    store.upsert_device(Device(A))
    stale = store.enqueue_command(A, 0x8103, b"x", now_ms=T0, expires_ms=T0 + 60_000)
    fresh = store.enqueue_command(A, 0x8103, b"y", now_ms=T0, expires_ms=T0 + 600_000)
    assert [c.id for c in store.commands_to_send(A, now_ms=T0 + 60_000)] == [fresh]
    expired = store.get_command(stale)
    assert expired is not None
    assert expired.state is CommandState.EXPIRED


def test_commands_for_unknown_terminals_or_ids_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown terminal"):
        store.enqueue_command(C, 0x8103, b"", now_ms=T0)
    with pytest.raises(StoreError, match="no command 12345"):
        store.mark_command(12345, CommandState.ACKED, now_ms=T0)
    assert store.get_command(12345) is None


DAY_MS = 86_400_000
MIDNIGHT = T0 - 8 * 3_600_000  # 2024-03-01T00:00:00Z


def test_retention_drops_positions_of_the_days_before_the_cutoff_and_keeps_the_latest(
    store: Store,
) -> None:
    days = [MIDNIGHT - T0 + d * DAY_MS + 3_600_000 for d in range(3)]  # 01:00 on three days
    batch, terminals = positions(
        [{"terminal": A, "t": t, "lon": 121.0, "lat": 31.0, "status": 3} for t in days]
    )
    store.write_positions(batch, terminals)
    assert store.drop_positions_before(MIDNIGHT + DAY_MS) >= 1
    kept = store.track(A, MIDNIGHT - DAY_MS, MIDNIGHT + 3 * DAY_MS)
    assert kept.time_ms.tolist() == [T0 + t for t in days[1:]]
    assert store.latest([A]).time_ms.tolist() == [T0 + days[2]]
    assert store.drop_positions_before(MIDNIGHT + DAY_MS) == 0  # nothing older is left


def test_sqlite_rows_stored_before_the_clock_migration_read_their_fix_time(
    tmp_path: Path,
) -> None:
    migrate(None, tmp_path)
    store = open_store(None, tmp_path)
    batch, terminals = track_of(2)
    store.write_positions(batch, terminals)
    with sqlite3.connect(sqlite_path(tmp_path)) as conn:  # as the old schema left them
        conn.execute("UPDATE positions SET device_time_ms = NULL")
        conn.execute("UPDATE latest_positions SET device_time_ms = NULL")
    for got in (store.track(A, T0, T0 + 10**6), store.latest([A])):
        assert got.device_time_ms.tolist() == got.time_ms.tolist()
    store.close()
