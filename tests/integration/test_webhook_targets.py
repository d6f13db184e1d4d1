"""Units' webhook receivers cannot aim the platform at its own network (SSRF), on both stores:
refused when registered through the API, refused again at each delivery by the address the
host resolves to then, no redirect followed; allowed on a LAN deployment by its setting. The
receivers are real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alerts.delivery.webhooks import WebhookDeliverer, WebhookPolicy
from organizations import EVERYWHERE, UnitKind
from store import Device, Store, WebhookState, migrate, open_store
from store.scoped import ScopedStore
from tests.integration.test_webhooks import T0, Clock, Receiver, power_cut
from tests.support.api import ApiUnderTest, api_under_test, error


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def store(store_url: str | None, tmp_path: Path) -> Iterator[Store]:
    migrate(store_url, tmp_path)
    opened = open_store(store_url, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def api(store_url: str | None, tmp_path: Path) -> Iterator[ApiUnderTest]:
    yield from api_under_test(store_url, tmp_path)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",  # the database port
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.7/hook",
        "https://192.168.1.1/hook",
        "http://[::1]:8000/",
        "http://[::ffff:169.254.169.254]/",  # IPv4-mapped IPv6
        "http://2130706433:8000/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",  # hex, two parts
        "http://0177.0.0.1/",  # octal
        "http://0/",  # unspecified
        "http://224.0.0.1/",  # multicast
        "http://localhost:8000/",  # a name that resolves to loopback
        "http://user:pw@hooks.example.com/",  # credentials
    ],
)
def test_registering_a_receiver_on_the_platforms_network_is_refused(
    api: ApiUnderTest, url: str
) -> None:
    answer = api.client.post("/api/v1/webhooks", json={"url": url}, headers=api.admin)
    detail = error(answer, 400, "bad_webhook", "url")
    assert api.client.get("/api/v1/webhooks", headers=api.admin).json()["webhooks"] == []
    assert detail


def test_a_lan_deployment_may_register_private_receivers_but_never_credentials(
    api: ApiUnderTest,
) -> None:
    api.context.webhook_allow_private = True
    added = api.client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=api.admin
    )
    assert added.status_code == 201, added.text
    with_password = {"url": "http://user:pw@10.0.0.7/hook"}
    error(api.client.post("/api/v1/webhooks", json=with_password, headers=api.admin),
          400, "bad_webhook", "url")  # fmt: skip


def _unit_receiver(store: Store, url: str) -> None:
    """A unit's receiver written as the store keeps it (registered while private targets were
    allowed, or while its name resolved elsewhere), and one alert for it."""
    root = ScopedStore(store, EVERYWHERE, "admin", lambda: T0)
    acme = root.create_unit("Acme", UnitKind.TENANT, None)
    root.provision(Device("013900000001", vehicle_id="V1"), org=acme.id, unbind=False,
                   check=lambda known: None)  # fmt: skip
    assert root.add_endpoint(url, "unit-secret", acme.id) is not None


def _deliver(url: str | None, tmp_path: Path, allow_private: bool) -> WebhookDeliverer:
    policy = WebhookPolicy(secret="s", timeout_s=2.0, allow_private=allow_private)
    worker = WebhookDeliverer(lambda: open_store(url, tmp_path), policy, clock_ms=Clock(T0))
    try:
        worker.run_once()
    finally:
        worker.stop()
    return worker


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_each_delivery_checks_the_address_the_host_resolves_to(
    store: Store, store_url: str | None, tmp_path: Path, receiver: Receiver, host: str
) -> None:
    port = receiver.server.server_address[1]
    _unit_receiver(store, f"http://{host}:{port}/unit")
    store.add_alerts([power_cut(1)], T0, [receiver.url + "/platform"])
    _deliver(store_url, tmp_path, allow_private=False)
    # The operator's own URL is delivered; the unit's never leaves the platform.
    assert [path for path, _, _ in receiver.requests] == ["/platform"]
    unit = next(row for row in store.list_webhooks() if row.url.endswith("/unit"))
    assert unit.state is WebhookState.PENDING and unit.attempts == 1
    assert unit.last_error is not None and "loopback" in unit.last_error
    # Allowed on a LAN deployment: the retry goes through.
    store.add_alerts([power_cut(2)], T0, [])
    _deliver(store_url, tmp_path, allow_private=True)
    assert sorted(path for path, _, _ in receiver.requests) == ["/platform", "/unit"]


class _Redirector:
    """Answers every POST with a redirect to `target`."""

    def __init__(self, target: str) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(307)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_redirect_is_never_followed(
    store: Store, store_url: str | None, tmp_path: Path, receiver: Receiver
) -> None:
    redirector = _Redirector(receiver.url + "/internal")
    try:
        _unit_receiver(store, redirector.url)
        store.add_alerts([power_cut(1)], T0, [])
        _deliver(store_url, tmp_path, allow_private=True)
    finally:
        redirector.close()
    assert redirector.hits == 1 and receiver.requests == []
    (row,) = store.list_webhooks()
    assert (row.state, row.last_error) == (WebhookState.PENDING, "HTTP 307")
