"""`Idempotency-Key` over SQLite and real PostgreSQL: a retried POST answers the first result
and changes nothing; the same key on another request is a 409; keys are per caller; a 5xx
releases the key; and the request body bound answers 413 before a route reads the body."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.api import ApiUnderTest, api_under_test, error

NOW = 1_719_720_000_000
LOAN = {
    "loan_no": "L-1",
    "borrower_name": "王五",
    "vehicle_id": "V1",
    "principal": "150000.00",
    "start_date": "2024-01-10",
    "due_day": 15,
    "paid_through": "2024-03-15",
}
PAY = "/api/v1/loans/L-1/payments"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiUnderTest]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    for under_test in api_under_test(url, tmp_path):
        under_test.context.clock_ms = lambda: NOW
        yield under_test


def paid_through(api: ApiUnderTest) -> str:
    return str(api.client.get("/api/v1/loans/L-1", headers=api.admin).json()["paid_through"])


def test_a_retried_payment_is_credited_once_and_answers_the_first_result(
    api: ApiUnderTest,
) -> None:
    assert api.client.post("/api/v1/loans", json=LOAN, headers=api.admin).status_code == 201
    officer = api.key("officer")
    once = {**officer, "Idempotency-Key": "pay-7f3a"}
    first = api.client.post(PAY, json={"installments": 1}, headers=once)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = api.client.post(PAY, json={"installments": 1}, headers=once)
        assert again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
    assert paid_through(api) == "2024-04-15"  # one installment, not four
    # Without a key every request is its own.
    api.client.post(PAY, json={"installments": 1}, headers=officer)
    assert paid_through(api) == "2024-05-15"


def test_the_same_key_with_another_request_is_a_409_and_changes_nothing(
    api: ApiUnderTest,
) -> None:
    api.client.post("/api/v1/loans", json=LOAN, headers=api.admin)
    once = {**api.admin, "Idempotency-Key": "k1"}
    assert api.client.post(PAY, json={"installments": 1}, headers=once).status_code == 200
    error(api.client.post(PAY, json={"installments": 2}, headers=once), 409,
          "idempotency_key_reused", "header.Idempotency-Key")  # fmt: skip
    error(api.client.post("/api/v1/loans/L-1/transition", json={"to": "overdue"}, headers=once),
          409, "idempotency_key_reused")  # fmt: skip
    assert paid_through(api) == "2024-04-15"
    loan = api.client.get("/api/v1/loans/L-1", headers=api.admin).json()
    assert loan["state"] == "active"


def test_keys_belong_to_their_caller(api: ApiUnderTest) -> None:
    api.client.post("/api/v1/loans", json=LOAN, headers=api.admin)
    one = {**api.key("officer", "one"), "Idempotency-Key": "same"}
    two = {**api.key("officer", "two"), "Idempotency-Key": "same"}
    assert api.client.post(PAY, json={"installments": 1}, headers=one).status_code == 200
    answer = api.client.post(PAY, json={"installments": 1}, headers=two)
    assert answer.status_code == 200 and "idempotent-replayed" not in answer.headers
    assert paid_through(api) == "2024-05-15"


def test_an_error_answer_is_kept_too_and_a_created_resource_is_not_created_twice(
    api: ApiUnderTest,
) -> None:
    once = {**api.admin, "Idempotency-Key": "create-L-1"}
    first = api.client.post("/api/v1/loans", json=LOAN, headers=once)
    assert first.status_code == 201
    replay = api.client.post("/api/v1/loans", json=LOAN, headers=once)
    assert (replay.status_code, replay.json()) == (201, first.json())
    # Without the key the same body meets the loan that exists: a 409, itself kept for its key.
    conflict = {**api.admin, "Idempotency-Key": "create-L-1-again"}
    error(api.client.post("/api/v1/loans", json=LOAN, headers=conflict), 409, "conflict")
    replayed = api.client.post("/api/v1/loans", json=LOAN, headers=conflict)
    assert replayed.status_code == 409 and replayed.headers["idempotent-replayed"] == "true"


def test_a_bad_key_is_a_400_naming_the_header(api: ApiUnderTest) -> None:
    for bad in (b"a b", "é".encode(), b"x" * 256, b"tab\there"):
        answer = api.client.post(
            "/api/v1/loans", json=LOAN, headers={**api.admin, "Idempotency-Key": bad}
        )
        error(answer, 400, "bad_request", "header.Idempotency-Key")
    assert api.client.get("/api/v1/loans/L-1", headers=api.admin).status_code == 404


def test_a_key_without_a_credential_is_a_plain_401(api: ApiUnderTest) -> None:
    answer = api.client.post("/api/v1/loans", json=LOAN, headers={"Idempotency-Key": "k"})
    error(answer, 401, "unauthorized")


def test_a_body_over_the_bound_is_refused_before_it_is_read(api: ApiUnderTest) -> None:
    bound = api.context.max_body_bytes
    huge = b'{"loan_no": "' + b"x" * bound + b'"}'
    answer = api.client.post(
        "/api/v1/loans", content=huge, headers={"content-type": "application/json"}
    )
    error(answer, 413, "too_large", "body")  # before authentication: no key was sent

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed bytes count
        for _ in range(bound // 4096 + 2):
            yield b"x" * 4096

    answer = api.client.post("/api/v1/loans", content=chunks(), headers=api.admin)
    error(answer, 413, "too_large", "body")
    fences = b'{"type": "FeatureCollection", "features": []}' + b" " * bound
    answer = api.client.post(
        "/api/v1/fences", content=fences, headers={**api.admin, "content-type": "application/json"}
    )
    assert answer.status_code != 413, answer.text  # fence imports have their own, larger bound
