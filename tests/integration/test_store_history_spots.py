"""Both stores: history read in windows of fix time (backtests), and candidate risk spots
written with their gathering alert, accepted into the spot library or dismissed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from alerts.model import Alert, AlertType
from store import Store, migrate, open_store
from store.history import pages
from store.interface import SpotCandidateError
from tests.integration.test_store_interface import T0, A, B, C, positions


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    migrate(url, tmp_path)
    opened = open_store(url, tmp_path)
    yield opened
    opened.close()


def _three_devices(store: Store) -> None:
    rows = [
        {"terminal": t, "t": i * 60_000, "lon": 121.0 + i / 1000, "lat": 31.0 + k, "status": 3}
        for i in range(120)
        for k, t in enumerate((C, A, B))
    ]
    store.write_positions(*positions(rows))


def test_positions_between_is_half_open_grouped_by_device_in_time_order(store: Store) -> None:
    _three_devices(store)
    page = store.positions_between(T0 + 10 * 60_000, T0 + 20 * 60_000)
    b = page.batch
    assert len(b) == 30 and page.cursor == 0
    assert sorted(page.terminals) == [A, B, C]
    assert bool((np.diff(b.device) >= 0).all())
    for d in range(3):
        times = b.time_ms[b.device == d]
        assert times.tolist() == [T0 + m * 60_000 for m in range(10, 20)]
    assert len(store.positions_between(T0 - 60_000, T0).batch) == 0


def test_history_pages_cover_every_row_once_whatever_the_window(store: Store) -> None:
    _three_devices(store)
    seen: list[tuple[str, int]] = []
    windows = list(pages(store, T0, T0 + 120 * 60_000, target_rows=7, first_window_ms=60_000))
    assert len(windows) > 5
    for w in windows:
        b = w.page.batch
        assert bool(((b.time_ms >= w.from_ms) & (b.time_ms < w.to_ms)).all())
        pairs = zip(b.device.tolist(), b.time_ms.tolist(), strict=True)
        seen += [(w.page.terminals[d], t) for d, t in pairs]
    assert len(seen) == len(set(seen)) == 360


def _gathering(vehicle: str, time_ms: int) -> Alert:
    visits = [{"vehicle_id": f"V{i}", "device_id": f"D{i}", "borrower": f"B{i}"} for i in range(5)]
    details = {"lon": 121.5, "lat": 31.3, "radius_m": 150, "borrowers": 5, "visits": visits}
    return Alert(AlertType.GATHERING, "D4", vehicle, time_ms, details=details)


def test_a_gathering_alert_writes_one_candidate_that_is_decided_once(
    store: Store,
) -> None:
    first = _gathering("V4", T0)
    store.add_alerts([first, Alert(AlertType.OFFLINE, A, "V9", T0)], T0)
    store.add_alerts([first], T0 + 1)  # the same incident again: no second candidate
    [candidate] = store.spot_candidates_in(None)
    assert (candidate.lon, candidate.lat, candidate.borrowers) == (121.5, 31.3, 5)
    assert candidate.status == "proposed" and candidate.proposed_ms == T0
    assert [v["vehicle_id"] for v in candidate.evidence] == [f"V{i}" for i in range(5)]
    done = store.mark_spot_candidate(
        candidate.id, status="accepted", fence_id="spot-1", by="admin", note="a new yard",
        now_ms=T0 + 5,
    )  # fmt: skip
    assert (done.status, done.fence_id, done.decided_by, done.note) == (
        "accepted",
        "spot-1",
        "admin",
        "a new yard",
    )
    assert store.spot_candidate_by_id(candidate.id) == done
    with pytest.raises(SpotCandidateError) as again:
        store.mark_spot_candidate(
            candidate.id, status="dismissed", fence_id=None, by="x", note=None, now_ms=T0
        )
    assert again.value.reason == "decided"


def test_dismissed_candidates_are_listed_by_status_and_a_missing_one_is_named(
    store: Store,
) -> None:
    store.add_alerts([_gathering("V1", T0), _gathering("V2", T0 + 1000)], T0)
    one, two = store.spot_candidates_in(None)
    store.mark_spot_candidate(
        two.id, status="dismissed", fence_id=None, by="admin", note=None, now_ms=T0
    )
    assert [c.id for c in store.spot_candidates_in(None, status="proposed")] == [one.id]
    assert [c.id for c in store.spot_candidates_in(None, status="dismissed")] == [two.id]
    assert [c.id for c in store.spot_candidates_in(None, after_id=one.id)] == [two.id]
    assert store.get_fence(f"spot-{two.id}") is None
    with pytest.raises(SpotCandidateError) as missing:
        store.mark_spot_candidate(
            999, status="dismissed", fence_id=None, by="x", note=None, now_ms=T0
        )
    assert missing.value.reason == "missing"
