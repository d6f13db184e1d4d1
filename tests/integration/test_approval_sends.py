"""The approve step of a dangerous command is all or nothing: either the command exists and the
request shows its `command_id`, or the request stays pending with the reason in `last_error`,
and the audit log says which. Real faults on both databases: a car moved out of the approver's
reach, a command queue on a database that does not know the tracker, one not migrated at all,
and two approvers (or an approver and a rejecter) racing for one request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.routes.approve import APPROVAL_CLAIM_MS
from api.stores import StoreAccess
from ingest.commands import CommandOutcome, CommandQueue
from ingest.metrics import GatewayMetrics
from ingest.store_calls import StoreCalls
from lienwatch.command_routing import CommandRouter
from organizations import EVERYWHERE
from store import CommandState, Store, migrate, open_store
from store.scoped import ApprovalError, ScopedStore
from tests.integration.test_orgs_api import T0_MS, Clock, Sender, key, unit
from tests.support.api import ApiUnderTest, api_under_test, error

TERMINAL = "013900000001"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(store_url: str | None, tmp_path: Path, clock: Clock) -> Iterator[ApiUnderTest]:
    for running in api_under_test(store_url, tmp_path / "api", send_command=Sender()):
        running.context.clock_ms = clock
        yield running


def _world(api: ApiUnderTest) -> dict[str, Any]:
    """A tenant with a branch holding one car; an officer and two admins."""
    acme = unit(api, "Acme", "tenant", None)
    north = unit(api, "North", "branch", acme)
    other = unit(api, "Other", "tenant", None)
    world = {
        "acme": acme,
        "north": north,
        "other": other,
        "officer": key(api, "north-officer", "officer", north),
        "acme_admin": key(api, "acme-admin", "admin", acme),
        "north_admin": key(api, "north-admin", "admin", north),
    }
    body = {"vehicle_id": "V1", "org": north}
    put = api.client.put(f"/api/v1/devices/{TERMINAL}", json=body, headers=world["acme_admin"])
    assert put.is_success, put.text
    return world


def _request_cut(api: ApiUnderTest, world: dict[str, Any]) -> int:
    asked = api.client.post(
        f"/api/v1/devices/{TERMINAL}/commands",
        json={"kind": "vehicle_control", "flags": 1},
        headers=world["officer"],
    )
    assert asked.status_code == 202, asked.text
    return int(asked.json()["id"])


def _approval(api: ApiUnderTest, world: dict[str, Any], approval_id: int) -> dict[str, Any]:
    answer = api.client.get(f"/api/v1/approvals/{approval_id}", headers=world["acme_admin"])
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _audit(api: ApiUnderTest, approval_id: int) -> list[tuple[str, str]]:
    entries = api.client.get("/api/v1/audit?limit=1000", headers=api.admin).json()
    return [(e["action"], e["actor"]) for e in entries if e["target"] == f"approval:{approval_id}"]


def _commands(api: ApiUnderTest, world: dict[str, Any]) -> list[dict[str, Any]]:
    listed = api.client.get(f"/api/v1/devices/{TERMINAL}/commands", headers=api.admin)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["commands"])


def test_a_car_moved_out_of_the_approvers_reach_is_not_commanded_and_stays_pending(
    api: ApiUnderTest,
) -> None:
    world = _world(api)
    approval_id = _request_cut(api, world)
    # The car goes to another tenant before the approval (the request stays with the branch).
    moved = api.client.post("/api/v1/vehicles/V1/move", json={"org": world["other"]},
                            headers=api.admin)  # fmt: skip
    assert moved.status_code == 200, moved.text
    approve = f"/api/v1/approvals/{approval_id}/approve"
    error(api.client.post(approve, headers=world["acme_admin"]), 404, "not_found")
    after = _approval(api, world, approval_id)
    assert after["state"] == "pending" and after["command_id"] is None
    assert after["decided_by"] is None and after["last_error"].startswith("not_found: no device")
    sender = api.context.send_command
    assert isinstance(sender, Sender) and sender.sent == []
    assert _audit(api, approval_id) == [
        ("command.request", "north-officer"),
        ("command.approve_failed", "acme-admin"),
    ]
    # Still pending: it can be rejected (or approved, were the car back).
    rejected = api.client.post(f"/api/v1/approvals/{approval_id}/reject", headers=api.admin)
    assert rejected.json()["state"] == "rejected"


def test_a_queue_that_refuses_the_command_leaves_the_request_pending_and_retryable(
    api: ApiUnderTest, tmp_path: Path
) -> None:
    world = _world(api)
    approval_id = _request_cut(api, world)
    # A gateway whose database does not know the tracker: its queue refuses the command.
    elsewhere = tmp_path / "elsewhere"
    migrate(None, elsewhere)
    queue = CommandQueue({}, StoreCalls(lambda: open_store(None, elsewhere)), GatewayMetrics())
    good = api.context.send_command
    api.context.send_command = queue.send
    approve = f"/api/v1/approvals/{approval_id}/approve"
    refused = error(api.client.post(approve, headers=world["north_admin"]), 409, "not_sent")
    assert "unknown terminal" in refused
    after = _approval(api, world, approval_id)
    assert (after["state"], after["command_id"]) == ("pending", None)
    assert "not queued" in after["last_error"] and "unknown terminal" in after["last_error"]
    assert _commands(api, world) == []
    # Retried through a working gateway: sent, approved, linked; the error is gone.
    api.context.send_command = good
    done = api.client.post(approve, headers=world["north_admin"])
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["state"] == "approved" and answer["last_error"] is None
    assert answer["command_id"] == answer["command"]["id"]
    assert [c["id"] for c in _commands(api, world)] == [answer["command_id"]]
    assert _audit(api, approval_id) == [
        ("command.request", "north-officer"),
        ("command.approve_failed", "north-admin"),
        ("command.approved", "north-admin"),
    ]
    entries = api.client.get("/api/v1/audit?limit=1000", headers=api.admin).json()
    sends = [e for e in entries if e["action"] == "command.send"]
    assert [e["target"] for e in sends] == [f"command:{answer['command_id']}"]


def test_a_command_database_that_fails_leaves_the_request_pending(
    api: ApiUnderTest, tmp_path: Path
) -> None:
    world = _world(api)
    approval_id = _request_cut(api, world)
    # Commands routed through a database that was never migrated: the enqueue fails.
    broken = tmp_path / "never-migrated"
    broken.mkdir()
    router = CommandRouter(StoreAccess(lambda: open_store(None, broken), threads=1), shared=True)
    api.context.send_command = router.send
    approve = f"/api/v1/approvals/{approval_id}/approve"
    error(api.client.post(approve, headers=world["acme_admin"]), 503, "schema")
    after = _approval(api, world, approval_id)
    assert (after["state"], after["command_id"]) == ("pending", None)
    assert after["last_error"].startswith("SchemaError")
    assert ("command.approve_failed", "acme-admin") in _audit(api, approval_id)
    assert ("command.approved", "acme-admin") not in _audit(api, approval_id)


def test_an_approval_that_answers_200_always_names_its_command(api: ApiUnderTest) -> None:
    world = _world(api)
    approval_id = _request_cut(api, world)

    async def offline(terminal: str, message: Any) -> CommandOutcome:
        return CommandOutcome(CommandState.FAILED)  # sent nowhere, but not refused: recorded

    api.context.send_command = offline
    done = api.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=api.admin)
    assert done.status_code == 200, done.text
    assert done.json()["command"]["state"] == "failed"
    assert _approval(api, world, approval_id)["command_id"] == done.json()["command"]["id"]


# -- the claim, on the store of each database --------------------------------------------------


@pytest.fixture
def store(store_url: str | None, tmp_path: Path) -> Iterator[Store]:
    migrate(store_url, tmp_path)
    opened = open_store(store_url, tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def _as(store: Store, actor: str, now: list[int]) -> ScopedStore:
    return ScopedStore(store, EVERYWHERE, actor, lambda: now[0])


def _pending(store: Store, now: list[int]) -> int:
    from store import Device

    store.upsert_device(Device(TERMINAL, 2013, "a", T0_MS, T0_MS))
    device = store.get_device(TERMINAL)
    assert device is not None
    officer = _as(store, "officer", now)
    return officer.request_approval(device, 0x8500, b"\x01", "{}", 3_600_000).id


def test_a_claimed_request_is_neither_approved_rejected_nor_expired_by_anyone_else(
    store: Store,
) -> None:
    now = [T0_MS]
    approval_id = _pending(store, now)
    now[0] = T0_MS + 3_600_000 - 60_000  # a minute before its deadline
    first = _as(store, "a", now).claim_approval(approval_id, APPROVAL_CLAIM_MS)
    assert first.claimed_by == "a" and first.state == "pending"
    for attempt in (
        lambda: _as(store, "b", now).claim_approval(approval_id, APPROVAL_CLAIM_MS),
        lambda: _as(store, "b", now).reject(approval_id),
    ):
        with pytest.raises(ApprovalError) as refused:
            attempt()
        assert refused.value.reason == "approval_in_progress"
    now[0] = T0_MS + 3_600_000 + 1  # past its deadline, still claimed: not expired under it
    assert _as(store, "b", now).approval(approval_id).state == "pending"  # type: ignore[union-attr]
    device = store.get_device(TERMINAL)
    assert device is not None
    approved, command_id = _as(store, "a", now).approve_sent(
        first, device, command_id=None, body=b"\x01", state=CommandState.ACKED,
        request="{}", reply=None,
    )  # fmt: skip
    assert (approved.state, approved.command_id) == ("approved", command_id)
    assert approved.decided_by == "a"
    assert approved.claimed_by is None and store.get_command(command_id) is not None


def test_a_lapsed_claim_lets_another_admin_approve_and_the_first_records_nothing(
    store: Store,
) -> None:
    now = [T0_MS]
    approval_id = _pending(store, now)
    first = _as(store, "a", now).claim_approval(approval_id, APPROVAL_CLAIM_MS)
    now[0] += APPROVAL_CLAIM_MS  # the first approver's process died mid-send
    second = _as(store, "b", now).claim_approval(approval_id, APPROVAL_CLAIM_MS)
    assert second.claimed_by == "b"
    device = store.get_device(TERMINAL)
    assert device is not None
    with pytest.raises(ApprovalError) as late:
        _as(store, "a", now).approve_sent(
            first, device, command_id=None, body=b"\x01", state=CommandState.ACKED,
            request="{}", reply=None,
        )  # fmt: skip
    assert late.value.reason == "decided"
    assert store.list_commands(TERMINAL, 10) == []  # the late one's record rolled back
    assert _as(store, "a", now).approval_failed(first, "late") is None  # not a's to release
    failed = _as(store, "b", now).approval_failed(second, "queue refused")
    assert failed is not None and (failed.state, failed.last_error) == ("pending", "queue refused")
    assert failed.claimed_by is None
