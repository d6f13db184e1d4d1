"""Idempotency keys of the HTTP API: the first answer to a request, kept for its retries.

A client that retries a POST with the same `Idempotency-Key` must get the first answer and
change nothing (a payment credited twice can take a car out of overdue watch). A row is
reserved before the request runs (`status` NULL), filled with the answer once it is known, or
released when the request failed in a way a retry may fix. SQL written once for both databases
(`store.statements`).
"""

from __future__ import annotations

from dataclasses import dataclass

from store.statements import StatementRunner


@dataclass(frozen=True, slots=True)
class KeptResponse:
    """A reserved or answered request: `status` is None while the first one still runs."""

    fingerprint: str
    status: int | None
    content_type: str | None
    body: bytes | None
    created_ms: int


class IdempotencyRecords:
    """Mixin of both adapters; `scope` is whose key it is (a digest of the caller's credential)."""

    def reserve_request(
        self: StatementRunner, scope: str, key: str, fingerprint: str, now_ms: int
    ) -> KeptResponse | None:
        """Reserves (scope, key) for this request: None when reserved now, else what is kept."""
        inserted = self._run(
            "reserve idempotency key",
            "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, created_ms)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (scope, idem_key) DO NOTHING",
            (scope, key, fingerprint, now_ms),
        )
        if inserted.rowcount == 1:
            return None
        found = self._run(
            "read idempotency key",
            "SELECT fingerprint, status, content_type, body, created_ms FROM idempotency_keys"
            " WHERE scope = ? AND idem_key = ?",
            (scope, key),
        ).rows
        if not found:  # released between the two statements: the caller may try again
            return KeptResponse(fingerprint, None, None, None, now_ms)
        fp, status, content_type, body, created = found[0]
        kept = None if body is None else bytes(body)
        return KeptResponse(fp, status, content_type, kept, created)

    def keep_response(
        self: StatementRunner, scope: str, key: str, status: int, content_type: str, body: bytes
    ) -> None:
        self._run(
            "keep idempotent response",
            "UPDATE idempotency_keys SET status = ?, content_type = ?, body = ?"
            " WHERE scope = ? AND idem_key = ?",
            (status, content_type, body, scope, key),
        )

    def release_request(self: StatementRunner, scope: str, key: str) -> None:
        """Forgets a reservation whose request failed before it had an answer worth keeping."""
        self._run(
            "release idempotency key",
            "DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ? AND status IS NULL",
            (scope, key),
        )

    def expire_requests(self: StatementRunner, before_ms: int) -> int:
        """Drops keys created before `before_ms`; returns how many."""
        return self._run(
            "expire idempotency keys",
            "DELETE FROM idempotency_keys WHERE created_ms < ?",
            (before_ms,),
        ).rowcount
