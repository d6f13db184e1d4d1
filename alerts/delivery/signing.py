"""Webhook signatures and the retry schedule: pure functions, no I/O, no clock.

A receiver checks `X-Lienwatch-Signature: sha256=<hex>` by computing HMAC-SHA256 of the raw
request body with the shared secret and comparing in constant time (`verify`).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Lienwatch-Signature"
DELIVERY_HEADER = "X-Lienwatch-Delivery"


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def retry_at_ms(
    attempts_done: int, now_ms: int, max_attempts: int, base_ms: int, max_delay_ms: int
) -> int | None:
    """When to try again after `attempts_done` failed attempts (the latest at `now_ms`):
    base, 2 x base, 4 x base, ... capped; None once `max_attempts` have been made."""
    if attempts_done >= max_attempts:
        return None
    return now_ms + min(max_delay_ms, base_ms << max(0, attempts_done - 1))
