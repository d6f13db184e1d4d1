"""Webhook delivery from the durable outbox (tile38's hooks: write first, deliver after).

`Store.add_alerts` writes one outbox row per alert and URL in the alert's own transaction, so
a crash never loses a webhook. This deliverer, on its own thread with its own store, claims due
rows (each for a lease, so a crash mid-attempt retries it later), POSTs the stored body signed
with HMAC-SHA256, and records the outcome: delivered on 2xx, else retried with exponential
backoff, and marked failed after `max_attempts`. Once a URL fails in a round its other rows
wait for the next round instead of each waiting out the same timeout.

A unit's receiver (registered through the API: its rows carry the receiver's own secret) is
POSTed through `targets.pinned_post`: refused at every attempt when its host is or resolves to
a private, loopback, link-local... address (unless the policy allows private targets), connected
to the address checked, no redirect followed. The platform's own URLs (settings) are not checked.

As an `AlertSink` it only wakes the thread: the alerts it is handed are already in the outbox.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerts.delivery.ports import WebhookOutbox
from alerts.delivery.signing import DELIVERY_HEADER, SIGNATURE_HEADER, retry_at_ms, sign
from alerts.delivery.targets import pinned_post
from alerts.lifecycle import StoredAlert
from alerts.outbox import WebhookDelivery

log = logging.getLogger("lienwatch.alerts")

# (url, body, headers, timeout_s) -> HTTP status; raises OSError when no answer came.
Post = Callable[[str, bytes, dict[str, str], float], int]


def http_post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:  # an answer, just not 2xx
        return int(exc.code)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    secret: str | None = None
    max_attempts: int = 8
    timeout_s: float = 5.0
    retry_base_ms: int = 5_000
    retry_max_ms: int = 3_600_000
    lease_ms: int = 60_000
    batch: int = 100
    poll_s: float = 5.0  # look for due retries at least this often
    # Units' receivers (registered through the API) may be private addresses: for deployments
    # whose receivers are on their own LAN (LIENWATCH_WEBHOOK_ALLOW_PRIVATE).
    allow_private: bool = False


class WebhookDeliverer:
    """Drains the webhook outbox on one thread; `notify` wakes it (thread-safe)."""

    def __init__(
        self,
        store_factory: Callable[[], WebhookOutbox],
        policy: WebhookPolicy | None = None,
        *,
        post: Post = http_post,
        unit_post: Post | None = None,
        clock_ms: Callable[[], int] = _now_ms,
        outage_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self.policy = policy or WebhookPolicy()
        # A unit's receiver (a tenant admin's URL) goes through the target check at every
        # attempt, connected to the address it checked, no redirect followed (targets.py); the
        # platform's own URLs (the operator's settings) through `post`.
        self._unit_post = unit_post or functools.partial(
            pinned_post, allow_private=self.policy.allow_private
        )
        self._store_factory = store_factory
        self._store: WebhookOutbox | None = None
        # Errors that mean the outbox is unreachable for now (the store's own error class, handed
        # in by the composition root): warned about once and retried, not logged as a failure.
        self._outage_errors = outage_errors
        self._post = post
        self._clock_ms = clock_ms
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store_down = False
        self.delivered = 0
        self.failed = 0

    @property
    def name(self) -> str:
        return "webhooks"

    # -- as an AlertSink ----------------------------------------------------------------------
    async def send(self, alerts: Sequence[StoredAlert]) -> None:
        self.notify()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.stop)  # may wait out one attempt's timeout

    # -- the thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                busy = self.run_once() >= self.policy.batch
            except self._outage_errors as exc:
                if not self._store_down:
                    log.warning("webhook outbox unreachable (%s): retrying", exc)
                    self._store_down = True
                busy = False
            except Exception:  # a bug must not end deliveries for good
                log.exception("webhook delivery round failed; going on")
                busy = False
            if not busy:
                self._wake.wait(self.policy.poll_s)

    def run_once(self) -> int:
        """Claims and attempts one batch of due deliveries; returns how many were claimed."""
        store = self._open()
        due = store.due_webhooks(self._clock_ms(), self.policy.batch, self.policy.lease_ms)
        if self._store_down:
            log.warning("webhook outbox reachable again")
            self._store_down = False
        failed_urls: set[str] = set()
        for delivery in due:
            if self._stop.is_set():
                break
            if delivery.url in failed_urls:
                continue  # leased: comes back after the lease, without spending an attempt
            error = self._attempt(delivery)
            if error is not None:
                failed_urls.add(delivery.url)
            self._record(store, delivery, error)
        return len(due)

    def _open(self) -> WebhookOutbox:
        if self._store is None:
            self._store = self._store_factory()
        return self._store

    def _attempt(self, delivery: WebhookDelivery) -> str | None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "lienwatch-webhook",
            DELIVERY_HEADER: str(delivery.id),
        }
        secret = delivery.secret or self.policy.secret  # a unit's receiver has its own
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, delivery.body)
        post = self._post if delivery.secret is None else self._unit_post
        try:
            status = post(delivery.url, delivery.body, headers, self.policy.timeout_s)
        except (OSError, ValueError) as exc:  # refused, timed out, bad URL
            return f"{type(exc).__name__}: {exc}"
        return None if 200 <= status < 300 else f"HTTP {status}"

    def _record(self, store: WebhookOutbox, delivery: WebhookDelivery, error: str | None) -> None:
        now = self._clock_ms()
        retry = None
        if error is not None:
            p = self.policy
            retry = retry_at_ms(
                delivery.attempts + 1, now, p.max_attempts, p.retry_base_ms, p.retry_max_ms
            )
            if retry is None:
                self.failed += 1
                log.error(
                    "webhook %d for alert %d to %s given up after %d attempts: %s",
                    delivery.id,
                    delivery.alert_id,
                    delivery.url,
                    delivery.attempts + 1,
                    error,
                )
        else:
            self.delivered += 1
        store.finish_webhook_attempt(delivery.id, now, error=error, retry_at_ms=retry)
