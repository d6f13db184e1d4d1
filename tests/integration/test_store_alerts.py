"""Alerts and the webhook outbox through the store interface, on SQLite and real PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.lifecycle import AlertState, TransitionError
from alerts.model import Alert, AlertType
from store import AlertNotFoundError, Store, WebhookState, migrate, open_store

T0 = 1_709_280_000_000  # 2024-03-01T08:00:00Z
NOW = T0 + 3_600_000
A, B = "013900000001", "013900000002"


def alert(
    kind: AlertType = AlertType.POWER_CUT,
    device: str = A,
    vehicle: str = "V1",
    t: int = 0,
    fence: str | None = None,
    **details: object,
) -> Alert:
    return Alert(kind, device, vehicle, T0 + t, fence, details=dict(details))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    found: str | None = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    migrate(found, tmp_path)
    return found


@pytest.fixture
def store(url: str | None, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(url, tmp_path)
    yield opened
    opened.close()


def test_added_alerts_come_back_open_with_ids_in_the_order_offered(store: Store) -> None:
    offered = [
        alert(AlertType.HOTSPOT_DWELL, t=1_250, fence="pawn-17", entered="x", dwell_s=1800),
        alert(AlertType.OFFLINE, device=B, vehicle="V2", t=0, last_report="y"),
    ]
    added = store.add_alerts(offered, NOW)
    assert [s.alert for s in added.stored] == offered
    assert added.new == added.stored
    assert all(s.state is AlertState.OPEN for s in added.stored)
    assert added.stored[0].id < added.stored[1].id
    assert [(s.opened_ms, s.updated_ms) for s in added.stored] == [(NOW, NOW)] * 2
    for stored in added.stored:
        assert store.get_alert(stored.id) == stored


def test_adding_an_incident_again_returns_the_stored_row_and_reports_nothing_new(
    store: Store,
) -> None:
    first = store.add_alerts([alert(t=0), alert(t=60_000)], NOW)
    again = store.add_alerts([alert(t=60_000), alert(t=120_000), alert(t=0)], NOW + 5_000)
    assert [s.id for s in again.stored] == [
        first.stored[1].id,
        again.new[0].id,
        first.stored[0].id,
    ]
    assert [s.alert.time_ms for s in again.new] == [T0 + 120_000]
    assert again.stored[0].opened_ms == NOW  # the original row, untouched
    assert len(store.list_alerts()) == 3


def test_the_same_incident_twice_in_one_call_is_stored_once(store: Store) -> None:
    added = store.add_alerts([alert(), alert()], NOW)
    assert added.stored[0].id == added.stored[1].id
    assert len(added.new) == 1


def test_incidents_differing_in_any_key_part_are_separate_alerts(store: Store) -> None:
    base = alert(AlertType.GEOFENCE_ENTER, fence="z1")
    variants = [
        base,
        alert(AlertType.GEOFENCE_EXIT, fence="z1"),
        alert(AlertType.GEOFENCE_ENTER, fence="z2"),
        alert(AlertType.GEOFENCE_ENTER, fence=None),
        alert(AlertType.GEOFENCE_ENTER, device=B, fence="z1"),
        alert(AlertType.GEOFENCE_ENTER, vehicle="V9", fence="z1"),
        alert(AlertType.GEOFENCE_ENTER, t=1, fence="z1"),
    ]
    assert len(store.add_alerts(variants, NOW).new) == len(variants)


def test_a_restart_re_adding_the_alerts_never_duplicates_them(
    url: str | None, tmp_path: Path
) -> None:
    offered = [alert(t=i * 1000) for i in range(5)]
    first = open_store(url, tmp_path)
    ids = [s.id for s in first.add_alerts(offered, NOW).stored]
    first.close()
    second = open_store(url, tmp_path)
    try:
        again = second.add_alerts(offered, NOW + 1)
        assert [s.id for s in again.stored] == ids
        assert again.new == []
        assert len(second.list_alerts(limit=100)) == 5
    finally:
        second.close()


def test_details_fence_and_millisecond_times_round_trip_exactly(store: Store) -> None:
    given = alert(
        AlertType.HOTSPOT_REPEAT,
        t=123,
        fence="当铺-1",
        visits=["pawn-1", "当铺-1"],
        nested={"a": [1, 2.5, None, True]},
    )
    (stored,) = store.add_alerts([given], NOW + 7).stored
    got = store.get_alert(stored.id)
    assert got is not None
    assert got.alert == given
    assert got.alert.time_ms == T0 + 123
    assert got.opened_ms == NOW + 7
    no_fence = store.add_alerts([alert(t=5)], NOW).stored[0]
    assert store.get_alert(no_fence.id) is not None
    assert store.get_alert(no_fence.id).alert.fence_id is None  # type: ignore[union-attr]


def test_list_filters_by_type_since_vehicle_and_state(store: Store) -> None:
    added = store.add_alerts(
        [
            alert(AlertType.POWER_CUT, vehicle="V1", t=0),
            alert(AlertType.OFFLINE, vehicle="V1", t=10_000),
            alert(AlertType.POWER_CUT, vehicle="V2", device=B, t=20_000),
            alert(AlertType.POWER_CUT, vehicle="V1", t=30_000),
        ],
        NOW,
    ).stored
    store.transition_alert(added[3].id, AlertState.ACKNOWLEDGED, "ops", None, NOW + 1)

    def ids(**filters: object) -> list[int]:
        return [s.id for s in store.list_alerts(**filters)]  # type: ignore[arg-type]

    all_ids = [s.id for s in added]
    assert ids() == all_ids
    assert ids(alert_type="power_cut") == [all_ids[0], all_ids[2], all_ids[3]]
    assert ids(vehicle_id="V1") == [all_ids[0], all_ids[1], all_ids[3]]
    assert ids(since_ms=T0 + 10_000) == all_ids[1:]
    assert ids(state=AlertState.ACKNOWLEDGED) == [all_ids[3]]
    assert ids(state=AlertState.OPEN, alert_type="power_cut", vehicle_id="V1") == [all_ids[0]]
    assert ids(alert_type="gps_jump") == []


def test_pages_follow_the_after_id_cursor_without_gaps_or_repeats(store: Store) -> None:
    added = store.add_alerts([alert(t=i) for i in range(7)], NOW).stored
    seen: list[int] = []
    cursor = 0
    while page := store.list_alerts(after_id=cursor, limit=3):
        assert len(page) <= 3
        seen += [s.id for s in page]
        cursor = page[-1].id
    assert seen == [s.id for s in added]
    with pytest.raises(ValueError, match="limit"):
        store.list_alerts(limit=0)


def test_acknowledge_then_resolve_records_who_when_and_the_latest_note(store: Store) -> None:
    (stored,) = store.add_alerts([alert()], NOW).stored
    acked = store.transition_alert(stored.id, AlertState.ACKNOWLEDGED, "li", "calling", NOW + 1)
    assert (acked.state, acked.acknowledged_by, acked.acknowledged_ms, acked.note) == (
        AlertState.ACKNOWLEDGED,
        "li",
        NOW + 1,
        "calling",
    )
    resolved = store.transition_alert(stored.id, AlertState.RESOLVED, "wang", None, NOW + 2)
    assert resolved.note == "calling"  # no new note keeps the last one
    assert (resolved.resolved_by, resolved.resolved_ms, resolved.updated_ms) == (
        "wang",
        NOW + 2,
        NOW + 2,
    )
    assert store.get_alert(stored.id) == resolved


def test_invalid_transitions_raise_a_clear_error_and_change_nothing(store: Store) -> None:
    (stored,) = store.add_alerts([alert()], NOW).stored
    store.transition_alert(stored.id, AlertState.ACKNOWLEDGED, "li", None, NOW + 1)
    with pytest.raises(TransitionError, match="already acknowledged"):
        store.transition_alert(stored.id, AlertState.ACKNOWLEDGED, "wang", "again", NOW + 2)
    after = store.get_alert(stored.id)
    assert after is not None
    assert (after.acknowledged_by, after.note, after.updated_ms) == ("li", None, NOW + 1)
    store.transition_alert(stored.id, AlertState.RESOLVED, "li", None, NOW + 3)
    with pytest.raises(TransitionError, match="resolved alert is final"):
        store.transition_alert(stored.id, AlertState.RESOLVED, "li", None, NOW + 4)
    with pytest.raises(AlertNotFoundError, match="no alert 999999"):
        store.transition_alert(999_999, AlertState.RESOLVED, "li", None, NOW)
    assert store.get_alert(999_999) is None


def test_concurrent_acknowledgements_let_exactly_one_win(url: str | None, tmp_path: Path) -> None:
    setup = open_store(url, tmp_path)
    (stored,) = setup.add_alerts([alert()], NOW).stored
    setup.close()
    outcomes: list[str] = []
    lock = threading.Lock()

    def acknowledge(actor: str) -> None:
        store = open_store(url, tmp_path)
        try:
            store.transition_alert(stored.id, AlertState.ACKNOWLEDGED, actor, None, NOW)
            result = "ok"
        except TransitionError:
            result = "refused"
        finally:
            store.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=acknowledge, args=(f"u{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]


def test_new_alerts_get_one_outbox_row_per_webhook_url_in_the_same_write(store: Store) -> None:
    urls = ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]
    added = store.add_alerts([alert(), alert(t=1)], NOW, urls)
    again = store.add_alerts([alert()], NOW + 1, urls)
    assert again.new == []
    rows = store.list_webhooks()
    assert [(r.alert_id, r.url) for r in rows] == [
        (added.stored[0].id, urls[0]),
        (added.stored[0].id, urls[1]),
        (added.stored[1].id, urls[0]),
        (added.stored[1].id, urls[1]),
    ]
    first = rows[0]
    assert (first.state, first.attempts, first.next_attempt_ms) == (WebhookState.PENDING, 0, NOW)
    assert json.loads(first.body) == added.stored[0].to_json()
    assert [r.id for r in store.list_webhooks(added.stored[1].id)] == [rows[2].id, rows[3].id]


def test_due_webhooks_are_claimed_for_a_lease_then_retried_delivered_or_given_up(
    store: Store,
) -> None:
    store.add_alerts([alert(), alert(t=1), alert(t=2)], NOW, ["http://127.0.0.1:1/hook"])
    claimed = store.due_webhooks(NOW, limit=2, lease_ms=30_000)
    assert len(claimed) == 2
    assert all(d.next_attempt_ms == NOW + 30_000 for d in claimed)
    # Leased rows are not handed out again; the third is.
    (third,) = store.due_webhooks(NOW + 1, limit=10)
    assert third.id not in {c.id for c in claimed}
    ok, retry = claimed
    store.finish_webhook_attempt(ok.id, NOW + 5, error=None, retry_at_ms=None)
    store.finish_webhook_attempt(retry.id, NOW + 5, error="HTTP 503", retry_at_ms=NOW + 10_000)
    assert store.due_webhooks(NOW + 9_999, limit=10) == []
    (again,) = store.due_webhooks(NOW + 10_000, limit=10, lease_ms=1)
    assert (again.id, again.attempts, again.last_error) == (retry.id, 1, "HTTP 503")
    store.finish_webhook_attempt(again.id, NOW + 11_000, error="timeout", retry_at_ms=None)
    by_id = {d.id: d for d in store.list_webhooks()}
    assert (by_id[ok.id].state, by_id[ok.id].attempts) == (WebhookState.DELIVERED, 1)
    assert (by_id[retry.id].state, by_id[retry.id].attempts) == (WebhookState.FAILED, 2)
    assert by_id[retry.id].last_error == "timeout"
    # The third was claimed and never finished (a crash): due again once its lease is over.
    assert [d.id for d in store.due_webhooks(NOW + 1 + 60_000, limit=10)] == [third.id]
    with pytest.raises(Exception, match="no delivery"):
        store.finish_webhook_attempt(999_999, NOW, error=None, retry_at_ms=None)
