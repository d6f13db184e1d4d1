"""Webhook signatures and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac

from alerts.delivery.signing import retry_at_ms, sign, verify


def test_the_signature_is_hmac_sha256_of_the_body_in_hex() -> None:
    body = b'{"id":1}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"
    assert verify("s3cret", body, sign("s3cret", body))
    assert not verify("other", body, sign("s3cret", body))
    assert not verify("s3cret", body + b" ", sign("s3cret", body))


def test_retries_back_off_exponentially_up_to_a_ceiling_then_stop() -> None:
    delays = [retry_at_ms(n, 1000, 6, 5_000, 30_000) for n in range(1, 7)]
    assert delays == [6_000, 11_000, 21_000, 31_000, 31_000, None]
    assert retry_at_ms(1, 0, 1, 5_000, 30_000) is None
