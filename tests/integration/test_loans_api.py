"""`/api/v1/loans` over SQLite and real PostgreSQL: roles, create, filters and paging, the
loan with its car's devices and alerts, payments, transitions (409 naming from and to),
collection actions and their log; bad input is a 400 naming the field, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.lifecycle import AlertState
from alerts.model import Alert, AlertType
from tests.support.api import ApiUnderTest, api_under_test, error

# 2024-06-30T12:00:00+08:00: the API's "today" is 2024-06-30 in GMT+8.
NOW = 1_719_720_000_000
A, B = "013900000001", "013900000002"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiUnderTest]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    for under_test in api_under_test(url, tmp_path):
        under_test.context.clock_ms = lambda: NOW
        yield under_test


def loan_body(loan_no: str = "L-1", vehicle: str = "V1", **extra: Any) -> dict[str, Any]:
    return {
        "loan_no": loan_no,
        "borrower_name": "王五",
        "vehicle_id": vehicle,
        "principal": "150000.00",
        "start_date": "2024-01-10",
        "due_day": 15,
        **extra,
    }


def create(api: ApiUnderTest, **body: Any) -> dict[str, Any]:
    answer = api.client.post("/api/v1/loans", json=loan_body(**body), headers=api.admin)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_admins_create_officers_act_viewers_read(api: ApiUnderTest) -> None:
    viewer, officer = api.key("viewer"), api.key("officer")
    error(api.client.post("/api/v1/loans", json=loan_body(), headers=officer), 403, "forbidden")
    created = create(api, paid_through="2024-05-15", branch="sh")
    assert created["loan_no"] == "L-1" and created["id"] > 0
    assert created["principal"] == "150000.00" and created["currency"] == "CNY"
    assert created["state"] == "active" and created["stage"] is None
    assert created["next_due_date"] == "2024-06-15"
    assert (created["as_of"], created["dpd"], created["bucket"]) == ("2024-06-30", 15, "M1")
    assert created["created_at"] == "2024-06-30T12:00:00+08:00"
    assert created["monitored"] is True
    assert api.client.get("/api/v1/loans/L-1", headers=viewer).status_code == 200
    move = {"to": "overdue"}
    error(api.client.post("/api/v1/loans/L-1/transition", json=move, headers=viewer), 403,
          "forbidden")  # fmt: skip
    answer = api.client.post("/api/v1/loans/L-1/transition", json=move, headers=officer)
    assert answer.status_code == 200, answer.text
    assert answer.json()["loan"]["state"] == "overdue"
    assert answer.json()["action"]["actor"] == "k-officer"
    error(api.client.post("/api/v1/loans", json=loan_body(), headers=api.admin), 409, "conflict")


def test_the_list_filters_by_state_bucket_stage_vehicle_and_branch_and_pages(
    api: ApiUnderTest,
) -> None:
    create(api, loan_no="L-a", vehicle="V1", paid_through="2024-05-15", branch="sh")  # M1
    create(api, loan_no="L-b", vehicle="V2", branch="bj")  # due 2024-02-15: M4+
    create(api, loan_no="L-c", vehicle="V3", paid_through="2024-06-15")  # M0
    client, headers = api.client, api.admin

    def numbers(query: str) -> list[str]:
        answer = client.get(f"/api/v1/loans{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        return [loan["loan_no"] for loan in answer.json()]

    assert numbers("") == ["L-a", "L-b", "L-c"]
    assert numbers("?bucket=M1") == ["L-a"]
    assert numbers("?bucket=M4%2B") == ["L-b"]
    assert numbers("?bucket=M4+") == ["L-b"]  # the + arrives as a space
    assert numbers("?bucket=m0") == ["L-c"]
    assert numbers("?vehicle_id=V2") == ["L-b"]
    assert numbers("?branch=sh") == ["L-a"]
    client.post("/api/v1/loans/L-b/transition", json={"to": "overdue"}, headers=headers)
    action = {"stage": "visit", "channel": "visit", "outcome": "refused"}
    client.post("/api/v1/loans/L-b/actions", json=action, headers=headers)
    assert numbers("?state=overdue&stage=visit") == ["L-b"]
    assert numbers("?state=active") == ["L-a", "L-c"]
    page = client.get("/api/v1/loans?limit=2", headers=headers)
    assert [x["loan_no"] for x in page.json()] == ["L-a", "L-b"]
    cursor = page.headers["x-next-after-id"]
    assert 'rel="next"' in page.headers["link"]
    assert numbers(f"?limit=2&after_id={cursor}") == ["L-c"]
    error(
        client.get("/api/v1/loans?bucket=M9", headers=headers), 400, "bad_request", "query.bucket"
    )
    error(
        client.get("/api/v1/loans?state=gone", headers=headers), 400, "bad_request", "query.state"
    )
    error(client.get("/api/v1/loans?stage=x", headers=headers), 400, "bad_request", "query.stage")
    error(client.get("/api/v1/loans?limit=0", headers=headers), 400, "bad_request", "query.limit")


def test_a_loan_shows_its_car_s_devices_latest_positions_and_unresolved_alerts(
    api: ApiUnderTest,
) -> None:
    create(api, paid_through="2024-06-15")
    for terminal in (A, B):
        put = api.client.put(
            f"/api/v1/devices/{terminal}", json={"vehicle_id": "V1"}, headers=api.admin
        )
        assert put.status_code == 201
    api.write(A, [{"time_ms": NOW - 60_000, "lon": 121.5, "lat": 31.2}])
    store = api.store()
    try:
        added = store.add_alerts(
            [
                Alert(AlertType.POWER_CUT, A, "V1", NOW - 30_000, None, "critical"),
                Alert(AlertType.OFFLINE, B, "V1", NOW - 20_000, None, "medium"),
                Alert(AlertType.OFFLINE, "013900000009", "V9", NOW - 10_000, None, "medium"),
            ],
            NOW,
        )
        store.transition_alert(added.stored[1].id, AlertState.RESOLVED, "ops", None, NOW)
    finally:
        store.close()
    viewer = api.key("viewer")
    body = api.client.get("/api/v1/loans/L-1", headers=viewer).json()
    assert (body["dpd"], body["bucket"]) == (0, "M0")
    devices = {d["terminal"]: d for d in body["devices"]}
    assert set(devices) == {A, B}
    assert devices[A]["latest"]["lon"] == 121.5 and devices[A]["online"] is True
    assert devices[B]["latest"] is None and devices[B]["online"] is False
    assert "auth_code" not in devices[A]  # viewers do not see auth codes
    assert [a["type"] for a in body["alerts"]] == ["power_cut"]  # resolved and other cars' out
    error(api.client.get("/api/v1/loans/L-404", headers=viewer), 404, "not_found")
    error(
        api.client.get("/api/v1/loans/bad%20no", headers=viewer), 400, "bad_request", "path.loan_no"
    )


def test_payments_move_paid_through_and_bring_an_overdue_loan_back(api: ApiUnderTest) -> None:
    create(api, paid_through="2024-04-15")  # next due 2024-05-15: 46 days past due
    client, officer = api.client, api.key("officer")
    client.post("/api/v1/loans/L-1/transition", json={"to": "overdue"}, headers=officer)
    answer = client.post("/api/v1/loans/L-1/payments", json={"installments": 1}, headers=officer)
    assert answer.status_code == 200, answer.text
    loan = answer.json()["loan"]
    assert (loan["paid_through"], loan["state"], loan["dpd"]) == ("2024-05-15", "overdue", 15)
    answer = client.post(
        "/api/v1/loans/L-1/payments",
        json={"paid_through": "2024-06-15", "note": "paid at branch"},
        headers=officer,
    )
    body = answer.json()
    assert (body["loan"]["state"], body["loan"]["dpd"], body["loan"]["bucket"]) == (
        "active",
        0,
        "M0",
    )
    assert body["action"]["kind"] == "payment"
    assert body["action"]["details"]["state"] == {"from": "overdue", "to": "active"}
    assert body["action"]["note"] == "paid at branch"
    pay = "/api/v1/loans/L-1/payments"
    error(client.post(pay, json={"paid_through": "2024-03-15"}, headers=officer), 400,
          "bad_request", "body.paid_through")  # fmt: skip
    error(client.post(pay, json={}, headers=officer), 400, "bad_request", "body")
    error(client.post(pay, json={"paid_through": "2024-07-15", "installments": 2},
                      headers=officer), 400, "bad_request", "body")  # fmt: skip
    error(client.post(pay, json={"paid_through": "soon"}, headers=officer), 400, "bad_request",
          "body.paid_through")  # fmt: skip
    error(client.post(pay, json={"installments": 0}, headers=officer), 400, "bad_request",
          "body.installments")  # fmt: skip
    client.post("/api/v1/loans/L-1/transition", json={"to": "settled"}, headers=officer)
    detail = error(client.post(pay, json={"installments": 1}, headers=officer), 409,
                   "loan_closed")  # fmt: skip
    assert "settled" in detail
    error(client.post("/api/v1/loans/L-404/payments", json={"installments": 1},
                      headers=officer), 404, "not_found")  # fmt: skip


def test_an_invalid_transition_is_a_409_naming_from_and_to(api: ApiUnderTest) -> None:
    create(api)
    move = "/api/v1/loans/L-1/transition"
    detail = error(api.client.post(move, json={"to": "disposed"}, headers=api.admin), 409,
                   "invalid_transition")  # fmt: skip
    assert "from active to disposed" in detail
    error(api.client.post(move, json={"to": "frozen"}, headers=api.admin), 400, "bad_request",
          "body.to")  # fmt: skip
    for state in ("overdue", "repossessed", "disposed", "written_off"):
        answer = api.client.post(move, json={"to": state}, headers=api.admin)
        assert answer.status_code == 200, answer.text
    loan = answer.json()["loan"]
    assert (loan["state"], loan["stage"], loan["monitored"], loan["dpd"]) == (
        "written_off",
        "write_off",
        False,
        None,
    )
    detail = error(api.client.post(move, json={"to": "active"}, headers=api.admin), 409,
                   "invalid_transition")  # fmt: skip
    assert "written_off is final" in detail


def test_collection_actions_are_logged_with_the_actor_and_move_the_stage(
    api: ApiUnderTest,
) -> None:
    create(api)
    client = api.client
    alice = api.key("officer", "alice")
    url = "/api/v1/loans/L-1/actions"
    steps = [
        {"stage": "reminder", "channel": "sms", "outcome": "no_answer"},
        {"stage": "phone", "channel": "phone", "outcome": "promised_to_pay", "note": "周五还款"},
        {"stage": "reminder", "channel": "sms", "outcome": "contacted"},
    ]
    stages = []
    for step in steps:
        answer = client.post(url, json=step, headers=alice)
        assert answer.status_code == 201, answer.text
        stages.append(answer.json()["loan"]["stage"])
    assert stages == ["reminder", "phone", "phone"]
    log = client.get(url, headers=api.key("viewer")).json()
    assert [(a["kind"], a["stage"], a["channel"], a["outcome"], a["actor"]) for a in log] == [
        ("collection", "reminder", "sms", "no_answer", "alice"),
        ("collection", "phone", "phone", "promised_to_pay", "alice"),
        ("collection", "reminder", "sms", "contacted", "alice"),
    ]
    assert log[1]["note"] == "周五还款" and log[0]["at"] == "2024-06-30T12:00:00+08:00"
    page = client.get(f"{url}?limit=2", headers=api.admin)
    assert len(page.json()) == 2
    rest = client.get(f"{url}?after_id={page.headers['x-next-after-id']}", headers=api.admin)
    assert [a["outcome"] for a in rest.json()] == ["contacted"]
    for bad, field in (
        ({"stage": "pray", "channel": "sms", "outcome": "paid"}, "body.stage"),
        ({"stage": "phone", "channel": "pigeon", "outcome": "paid"}, "body.channel"),
        ({"stage": "phone", "channel": "sms"}, "body.outcome"),
        ({"stage": "phone", "channel": "sms", "outcome": "paid", "note": "a\x00b"}, "body.note"),
        ({"stage": "phone", "channel": "sms", "outcome": "paid", "extra": 1}, "body.extra"),
    ):
        error(client.post(url, json=bad, headers=alice), 400, "bad_request", field)
    error(client.get("/api/v1/loans/L-404/actions", headers=alice), 404, "not_found")


def test_bad_loan_bodies_get_a_400_naming_the_field(api: ApiUnderTest) -> None:
    for extra, field in (
        ({"due_day": 31}, "body.due_day"),
        ({"principal": "-5"}, "body.principal"),
        ({"principal": "1.234"}, "body.principal"),
        ({"start_date": "2024-13-01"}, "body.start_date"),
        ({"currency": "yuan"}, "body.currency"),
        ({"grace_days": -1}, "body.grace_days"),
        ({"loan_no": "has space"}, "body.loan_no"),
        ({"borrower_name": "\x00"}, "body.borrower_name"),
        ({"paid_through": "2023-12-01"}, "body.paid_through"),
    ):
        answer = api.client.post("/api/v1/loans", json=loan_body(**extra), headers=api.admin)
        error(answer, 400, "bad_request", field)
    as_json = {**api.admin, "content-type": "application/json"}
    answer = api.client.post("/api/v1/loans", content=b"{not json", headers=as_json)
    error(answer, 400, "bad_request", "body")
    lone_surrogate = json.dumps(loan_body(borrower_name="x")).replace('"x"', '"\\ud800"')
    answer = api.client.post("/api/v1/loans", content=lone_surrogate.encode(), headers=as_json)
    error(answer, 400, "bad_request", "body.borrower_name")
    assert api.client.get("/api/v1/loans", headers=api.admin).json() == []
