"""Webhooks from the durable outbox to a real HTTP receiver on 127.0.0.1, on both stores:
signed bodies, retries with backoff, giving up, and a dead receiver not holding back others."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alerts.delivery.signing import SIGNATURE_HEADER, verify
from alerts.delivery.webhooks import WebhookDeliverer, WebhookPolicy
from alerts.model import Alert, AlertType
from organizations import EVERYWHERE, Scope, UnitKind
from store import Device, Store, WebhookState, migrate, open_store
from store.scoped import ScopedStore

T0 = 1_709_280_000_000
SECRET = "s3cret"


class Receiver:
    """An HTTP server recording POSTs; answers `statuses` in turn, then 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


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


def power_cut(i: int) -> Alert:
    return Alert(AlertType.POWER_CUT, "013900000001", "V1", T0 + i, details={"alarm": 256})


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hook"


def deliverer(url: str | None, tmp_path: Path, clock: Clock, **policy: object) -> WebhookDeliverer:
    settings = WebhookPolicy(secret=SECRET, timeout_s=2.0, **policy)  # type: ignore[arg-type]
    return WebhookDeliverer(lambda: open_store(url, tmp_path), settings, clock_ms=clock)


def test_a_new_alert_is_posted_signed_with_the_stored_json(
    store: Store, url: str | None, tmp_path: Path, receiver: Receiver
) -> None:
    (alert,) = store.add_alerts([power_cut(1)], T0, [receiver.url + "/hook"]).new
    worker = deliverer(url, tmp_path, Clock(T0))
    try:
        assert worker.run_once() == 1
    finally:
        worker.stop()
    ((path, headers, body),) = receiver.requests
    assert path == "/hook"
    assert json.loads(body) == alert.to_json()
    assert headers["Content-Type"] == "application/json"
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    (row,) = store.list_webhooks(alert.id)
    assert (row.state, row.attempts, row.last_error) == (WebhookState.DELIVERED, 1, None)


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    store: Store, url: str | None, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.statuses = [503, 500]
    store.add_alerts([power_cut(1)], T0, [receiver.url])
    clock = Clock(T0)
    worker = deliverer(url, tmp_path, clock, retry_base_ms=1000, retry_max_ms=60_000)
    try:
        worker.run_once()
        (row,) = store.list_webhooks()
        assert (row.state, row.attempts, row.last_error) == (WebhookState.PENDING, 1, "HTTP 503")
        assert row.next_attempt_ms == T0 + 1000
        clock.now_ms = T0 + 999
        assert worker.run_once() == 0  # not due yet
        clock.now_ms = T0 + 1000
        worker.run_once()
        (row,) = store.list_webhooks()
        assert (row.attempts, row.next_attempt_ms) == (2, T0 + 1000 + 2000)
        clock.now_ms = T0 + 3000
        worker.run_once()
    finally:
        worker.stop()
    (row,) = store.list_webhooks()
    assert (row.state, row.attempts) == (WebhookState.DELIVERED, 3)
    assert len(receiver.requests) == 3
    assert len({body for _, _, body in receiver.requests}) == 1  # the same signed body


def test_delivery_gives_up_after_the_last_attempt_and_records_it(
    store: Store,
    url: str | None,
    tmp_path: Path,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.statuses = [500, 500, 500]
    store.add_alerts([power_cut(1)], T0, [receiver.url])
    clock = Clock(T0)
    worker = deliverer(url, tmp_path, clock, max_attempts=2, retry_base_ms=10)
    try:
        worker.run_once()
        clock.now_ms += 10
        worker.run_once()
        clock.now_ms += 10_000
        assert worker.run_once() == 0
    finally:
        worker.stop()
    (row,) = store.list_webhooks()
    assert (row.state, row.attempts, row.last_error) == (WebhookState.FAILED, 2, "HTTP 500")
    assert worker.failed == 1
    assert any("given up after 2 attempts" in r.getMessage() for r in caplog.records)


def test_a_dead_receiver_costs_one_attempt_per_round_and_others_still_get_theirs(
    store: Store, url: str | None, tmp_path: Path, receiver: Receiver
) -> None:
    dead = closed_url()
    store.add_alerts([power_cut(i) for i in range(3)], T0, [dead, receiver.url])
    worker = deliverer(url, tmp_path, Clock(T0))
    try:
        assert worker.run_once() == 6
    finally:
        worker.stop()
    rows = store.list_webhooks()
    tried = [r for r in rows if r.url == dead and r.attempts == 1]
    assert len(tried) == 1 and tried[0].last_error is not None
    assert "ConnectionRefusedError" in tried[0].last_error or "URLError" in tried[0].last_error
    assert sorted(r.state for r in rows if r.url == receiver.url) == [WebhookState.DELIVERED] * 3
    assert len(receiver.requests) == 3


def test_the_thread_delivers_when_notified(
    store: Store, url: str | None, tmp_path: Path, receiver: Receiver
) -> None:
    worker = WebhookDeliverer(
        lambda: open_store(url, tmp_path), WebhookPolicy(secret=None, poll_s=30.0)
    )
    worker.start()
    try:
        store.add_alerts([power_cut(1)], time.time_ns() // 1_000_000, [receiver.url])
        worker.notify()
        deadline = time.monotonic() + 10
        while not receiver.requests:
            assert time.monotonic() < deadline, "no delivery"
            time.sleep(0.01)
    finally:
        worker.stop()
    ((_, headers, _),) = receiver.requests
    assert SIGNATURE_HEADER not in headers  # no secret configured: unsigned


def test_a_units_receiver_gets_its_subtrees_alerts_signed_with_its_own_secret(
    store: Store, url: str | None, tmp_path: Path, receiver: Receiver
) -> None:
    root = ScopedStore(store, EVERYWHERE, "admin", lambda: T0)
    acme = root.create_unit("Acme", UnitKind.TENANT, None)
    north = root.create_unit("North", UnitKind.BRANCH, acme.id)
    other = root.create_unit("Other", UnitKind.TENANT, None)
    for terminal, vehicle, unit in (("1", "V1", north), ("2", "V2", other)):
        root.provision(Device(terminal, vehicle_id=vehicle), org=unit.id, unbind=False,
                       check=lambda known: None)  # fmt: skip
    acme_admin = ScopedStore(store, Scope(acme.id, acme.path), "acme-admin", lambda: T0)
    added = acme_admin.add_endpoint(receiver.url + "/acme", "acme-secret", None)
    assert added is not None and added.org == acme.id
    assert acme_admin.add_endpoint(receiver.url + "/acme", "again", None) is None
    alerts = [
        Alert(AlertType.POWER_CUT, "1", "V1", T0),  # North's car: under Acme
        Alert(AlertType.POWER_CUT, "2", "V2", T0),  # Other's
    ]
    ours, theirs = store.add_alerts(alerts, T0, [receiver.url + "/platform"]).new
    assert (ours.org, ours.tenant, theirs.tenant) == (north.id, acme.id, other.id)
    # The receiver is on 127.0.0.1: a unit's receiver there needs private targets allowed.
    worker = deliverer(url, tmp_path, Clock(T0), allow_private=True)
    try:
        assert worker.run_once() == 3
    finally:
        worker.stop()
    got = sorted((path, json.loads(body)["id"]) for path, _, body in receiver.requests)
    assert got == [("/acme", ours.id), ("/platform", ours.id), ("/platform", theirs.id)]
    bodies = {(p, json.loads(b)["id"]): (h, b) for p, h, b in receiver.requests}
    headers, body = bodies[("/acme", ours.id)]
    assert verify("acme-secret", body, headers[SIGNATURE_HEADER])
    assert not verify(SECRET, body, headers[SIGNATURE_HEADER])
    headers, body = bodies[("/platform", ours.id)]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert acme_admin.remove_endpoint(added.id)
    assert ScopedStore(store, Scope(other.id, other.path), "o", lambda: T0).endpoints() == []
