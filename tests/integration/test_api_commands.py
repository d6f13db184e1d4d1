"""Commands through the API on SQLite and real PostgreSQL: with a recording sender (outcomes,
encoding, the command log, bad requests) and end to end with a real gateway and a simulated
tracker on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.commands import CommandOutcome
from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.jt808 import ParamId
from ingest.jt808.ids import Edition
from ingest.jt808.messages import (
    LocationQuery,
    Message,
    SetParameters,
    TemporaryTracking,
    TerminalControl,
    TerminalGeneralResponse,
    VehicleControl,
)
from simulators.device import Device as SimulatedDevice
from simulators.device import Shuttle
from simulators.wire import Clock, run_tcp
from store import CommandState, Device, open_store
from tests.support.api import (
    ApiUnderTest,
    api_under_test,
    async_api_under_test,
    error,
    online_where,
)

A = "013900000001"
T0_MS = 1_735_689_600_000


class RecordingSender:
    """Stands in for `Gateway.send_command`: records messages, answers as told."""

    def __init__(self, api_store: Any = None) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.answer = "acked"
        self.open_store: Any = api_store

    async def __call__(self, terminal: str, message: Message) -> CommandOutcome:
        self.sent.append((terminal, message))
        if self.answer == "acked":
            reply = TerminalGeneralResponse(7, int(message.MSG_ID), 0)
            return CommandOutcome(CommandState.ACKED, reply)
        if self.answer == "queued":  # what the gateway does for an offline terminal
            store = self.open_store()
            try:
                command_id = store.enqueue_command(
                    terminal, int(message.MSG_ID), message.encode_body(), T0_MS
                )
            finally:
                store.close()
            return CommandOutcome(CommandState.QUEUED, command_id=command_id)
        return CommandOutcome(CommandState.FAILED)


@pytest.fixture
def sender(store_url: str | None, tmp_path: Path) -> RecordingSender:
    return RecordingSender(lambda: open_store(store_url, tmp_path))


@pytest.fixture
def api(store_url: str | None, tmp_path: Path, sender: RecordingSender) -> Iterator[ApiUnderTest]:
    for running in api_under_test(store_url, tmp_path, send_command=sender):
        store = running.store()
        try:
            store.upsert_device(Device(A, auth_code="c"))
        finally:
            store.close()
        yield running


def test_an_answered_command_gets_an_id_and_a_log_of_who_asked_and_the_answer(
    api: ApiUnderTest, sender: RecordingSender
) -> None:
    officer = api.key("officer", "alice")
    answer = api.client.post(
        f"/api/v1/devices/{A}/commands",
        json={"kind": "terminal_control", "command": "reset"},
        headers=officer,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert sender.sent == [(A, TerminalControl(4, ""))]
    assert body["state"] == "acked" and body["kind"] == "terminal_control"
    assert body["msg_id"] == "0x8105" and body["terminal"] == A
    assert body["issued_by"] == "alice"
    assert body["request"] == {"kind": "terminal_control", "command": 4, "params": ""}
    assert body["reply"] == {
        "msg_id": "0x0001",
        "answer_serial": 7,
        "answer_id": 0x8105,
        "result": 0,
    }
    again = api.client.get(f"/api/v1/commands/{body['id']}", headers=api.key("viewer"))
    assert again.json() == body


def test_a_command_for_an_offline_terminal_is_queued_with_202(
    api: ApiUnderTest, sender: RecordingSender
) -> None:
    sender.answer = "queued"
    officer = api.key("officer")
    answer = api.client.post(
        f"/api/v1/devices/{A}/commands", json={"kind": "query_location"}, headers=officer
    )
    assert answer.status_code == 202
    body = answer.json()
    assert body["state"] == "queued" and body["kind"] == "query_location"
    assert body["issued_by"] == "k-officer" and body["reply"] is None
    store = api.store()
    try:
        waiting = store.commands_to_send(A, T0_MS)
    finally:
        store.close()
    assert [c.id for c in waiting] == [body["id"]]  # exactly one queue entry, the gateway's


def test_a_failed_command_is_recorded_and_never_queued(
    api: ApiUnderTest, sender: RecordingSender
) -> None:
    sender.answer = "failed"
    answer = api.client.post(
        f"/api/v1/devices/{A}/commands", json={"kind": "0x8201"}, headers=api.key("officer")
    )
    assert answer.status_code == 200
    assert answer.json()["state"] == "failed"
    store = api.store()
    try:
        assert store.commands_to_send(A, T0_MS) == []
    finally:
        store.close()


def test_parameters_and_tracking_are_encoded_as_the_codec_does(
    api: ApiUnderTest, sender: RecordingSender
) -> None:
    officer = api.key("officer")
    post = api.client.post
    set_params = {
        "kind": "set_parameters",
        "params": {"default_interval_s": 30, "0x0013": "10.0.0.1:6808", "0xF001": 9},
    }
    requested = post(f"/api/v1/devices/{A}/commands", json=set_params, headers=officer)
    assert requested.status_code == 202  # a server address needs a second person
    assert requested.json()["state"] == "pending"
    approval = requested.json()["id"]
    answer = post(f"/api/v1/approvals/{approval}/approve", headers=api.admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "approved"
    answer = api.client.get(f"/api/v1/commands/{answer.json()['command_id']}", headers=officer)
    assert answer.json()["approved_by"] == "admin"
    known = SetParameters.of(
        {ParamId.DEFAULT_INTERVAL_S: 30, ParamId.SERVER_ADDRESS: "10.0.0.1:6808"}
    ).params
    expected = (*known, (0xF001, (9).to_bytes(4, "big")))
    assert sender.sent[-1] == (A, SetParameters(expected))
    assert answer.json()["request"]["params"] == {
        "0x0029": 30,
        "0x0013": "10.0.0.1:6808",
        "0xf001": 9,
    }
    track = {"kind": "track", "interval_s": 5, "validity_s": 600}
    assert post(f"/api/v1/devices/{A}/commands", json=track, headers=officer).status_code == 200
    assert sender.sent[-1] == (A, TemporaryTracking(5, 600))
    stop = {"kind": "track", "interval_s": 0}
    assert post(f"/api/v1/devices/{A}/commands", json=stop, headers=officer).status_code == 200
    assert sender.sent[-1] == (A, TemporaryTracking(0, 0))
    where = {"kind": "query_location"}
    assert post(f"/api/v1/devices/{A}/commands", json=where, headers=officer).status_code == 200
    assert sender.sent[-1] == (A, LocationQuery())
    listed = api.client.get(f"/api/v1/devices/{A}/commands?limit=2", headers=officer).json()
    assert [c["kind"] for c in listed["commands"]] == ["query_location", "track"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({"kind": "self_destruct"}, "kind"),
        ({"kind": "set_parameters"}, "params"),
        ({"kind": "set_parameters", "params": {}}, "params"),
        ({"kind": "set_parameters", "params": {"warp_speed": 1}}, "params.warp_speed"),
        ({"kind": "set_parameters", "params": {"0xZZ": 1}}, "params.0xZZ"),
        (
            {"kind": "set_parameters", "params": {"default_interval_s": "fast"}},
            "params.default_interval_s",
        ),
        ({"kind": "set_parameters", "params": {"server_address": 5}}, "params.server_address"),
        ({"kind": "set_parameters", "params": {"0x0029": 2**32}}, "params.0x0029"),
        ({"kind": "track", "interval_s": 70_000, "validity_s": 1}, "interval_s"),
        ({"kind": "track", "interval_s": 5}, "validity_s"),
        ({"kind": "terminal_control", "command": "explode"}, "command"),
        ({"kind": "terminal_control", "command": 0}, "command"),
        ({"kind": "terminal_control", "command": 4, "extra": 1}, "extra"),
        ({"kind": "query_location", "params": {}}, "params"),
    ],
)
def test_bad_command_requests_name_the_field_and_send_nothing(
    api: ApiUnderTest, sender: RecordingSender, body: dict[str, Any], field: str
) -> None:
    answer = api.client.post(f"/api/v1/devices/{A}/commands", json=body, headers=api.admin)
    error(answer, 400, "bad_request", field)
    assert sender.sent == []


def test_commands_to_unknown_devices_and_unknown_command_ids_answer_404(
    api: ApiUnderTest, sender: RecordingSender
) -> None:
    client, admin = api.client, api.admin
    where = {"kind": "query_location"}
    error(
        client.post("/api/v1/devices/013900000077/commands", json=where, headers=admin),
        404,
        "not_found",
    )
    error(
        client.post("/api/v1/devices/x/commands", json=where, headers=admin),
        400,
        "bad_request",
        "path.terminal",
    )
    error(client.get("/api/v1/commands/999999", headers=admin), 404, "not_found")
    error(client.get("/api/v1/commands/abc", headers=admin), 400, "bad_request", "path")
    error(client.get(f"/api/v1/commands/{2**70}", headers=admin), 400, "bad_request", "path")
    error(client.get("/api/v1/devices/013900000077/commands", headers=admin), 404, "not_found")
    assert sender.sent == []


def test_without_a_command_sender_commands_answer_503(
    store_url: str | None, tmp_path: Path
) -> None:
    for api in api_under_test(store_url, tmp_path):
        store = api.store()
        try:
            store.upsert_device(Device(A))
        finally:
            store.close()
        answer = api.client.post(
            f"/api/v1/devices/{A}/commands", json={"kind": "query_location"}, headers=api.admin
        )
        error(answer, 503, "commands_unavailable")


async def _until(condition: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_commands_reach_a_real_gateway_terminal_and_wait_while_it_is_offline(
    store_url: str | None, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal", max_bytes=1 << 26)
    # The API fixture migrates; the gateway starts after it, on the same store.
    async with async_api_under_test(store_url, tmp_path) as api:
        gateway = Gateway(
            GatewayConfig(port=0, auto_register=True, command_timeout_s=5),
            journal=journal,
            store_factory=lambda: open_store(store_url, tmp_path),
        )
        api.context.send_command = gateway.send_command
        api.context.online = online_where(lambda terminal: terminal in gateway.sessions)
        host, port = await gateway.start()
        stop = asyncio.Event()
        tracker = SimulatedDevice("13900000030", Shuttle(121.5, 31.3), start_ms=T0_MS)
        task = asyncio.create_task(run_tcp(tracker, host, port, Clock.start(1.0, T0_MS), stop))
        try:
            terminal = "013900000030"
            created = await api.client.post(
                "/api/v1/keys", json={"name": "bob", "role": "officer"}, headers=api.admin
            )
            officer = api.auth(created.json()["key"])
            await _until(lambda: terminal in gateway.sessions)
            # The gateway writes an auto-registered device to the store in the background.
            deadline = time.monotonic() + 15
            while (await api.client.get(f"/api/v1/devices/{terminal}", headers=officer)).is_error:
                assert time.monotonic() < deadline, "the registered device was never stored"
                await asyncio.sleep(0.05)
            url = f"/api/v1/devices/{terminal}/commands"
            set_interval = {"kind": "set_parameters", "params": {"default_interval_s": 5}}
            answer = await api.client.post(url, json=set_interval, headers=officer)
            assert answer.status_code == 200, answer.text
            assert answer.json()["state"] == "acked"
            assert answer.json()["reply"]["msg_id"] == "0x0001"
            assert tracker.params[ParamId.DEFAULT_INTERVAL_S] == 5
            where = await api.client.post(url, json={"kind": "query_location"}, headers=officer)
            reply = where.json()["reply"]
            assert reply["msg_id"] == "0x0201" and abs(reply["location"]["lon"] - 121.5) < 0.1
            kept = await api.client.get(f"/api/v1/commands/{where.json()['id']}", headers=officer)
            assert kept.json()["issued_by"] == "bob" and kept.json()["reply"] == reply
            device = await api.client.get(f"/api/v1/devices/{terminal}", headers=officer)
            assert device.json()["online"] is True
            stop.set()
            await task
            await _until(lambda: terminal not in gateway.sessions)
            queued = await api.client.post(url, json={"kind": "query_location"}, headers=officer)
            assert queued.status_code == 202 and queued.json()["state"] == "queued"
        finally:
            stop.set()
            await task
            await gateway.stop()
            journal.close()


async def test_an_approved_vehicle_control_reaches_a_2019_tracker_as_control_types(
    store_url: str | None, tmp_path: Path
) -> None:
    """The repossession command end to end: requested, approved by a second admin, sent by a
    real gateway to a JT/T 808-2019 tracker, which gets the 2019 body (control types) and
    answers 0x0500 with its location."""
    journal = Journal(tmp_path / "journal", max_bytes=1 << 26)
    async with async_api_under_test(store_url, tmp_path) as api:
        gateway = Gateway(
            GatewayConfig(port=0, auto_register=True, command_timeout_s=5),
            journal=journal,
            store_factory=lambda: open_store(store_url, tmp_path),
        )
        api.context.send_command = gateway.send_command
        host, port = await gateway.start()
        stop = asyncio.Event()
        terminal = "01390000003100000000"
        tracker = SimulatedDevice(
            terminal, Shuttle(121.5, 31.3), edition=Edition.V2019, start_ms=T0_MS
        )
        task = asyncio.create_task(run_tcp(tracker, host, port, Clock.start(1.0, T0_MS), stop))
        try:
            keys = {}
            for name, role in (("bob", "officer"), ("carol", "admin")):
                made = await api.client.post(
                    "/api/v1/keys", json={"name": name, "role": role}, headers=api.admin
                )
                keys[name] = api.auth(made.json()["key"])
            await _until(lambda: terminal in gateway.sessions)
            deadline = time.monotonic() + 15
            while True:
                seen = await api.client.get(f"/api/v1/devices/{terminal}", headers=keys["bob"])
                if seen.is_success and seen.json()["edition"] == 2019:
                    break
                assert time.monotonic() < deadline, "the registered device was never stored"
                await asyncio.sleep(0.05)
            url = f"/api/v1/devices/{terminal}/commands"
            # Relay bits have no 2019 control type: the API asks for the maker's types.
            relay_only = {"kind": "vehicle_control", "flags": 3}
            error(await api.client.post(url, json=relay_only, headers=keys["bob"]),
                  400, "bad_request", "controls")  # fmt: skip
            cut = {
                "kind": "vehicle_control",
                "flags": 3,
                "controls": [{"type": 1, "param": 1}, {"type": 0xF001, "param": 1}],
            }
            asked = await api.client.post(url, json=cut, headers=keys["bob"])
            assert asked.status_code == 202, asked.text
            assert asked.json()["request"]["controls"][1] == {"type": 0xF001, "param": 1}
            approve = f"/api/v1/approvals/{asked.json()['id']}/approve"
            done = await api.client.post(approve, headers=keys["carol"])
            assert done.status_code == 200, done.text
            command = done.json()["command"]
            assert command["state"] == "acked" and command["reply"]["msg_id"] == "0x0500"
            assert tracker.vehicle_controls == [
                VehicleControl(0, ((0x0001, 1), (0xF001, 1)), Edition.V2019)
            ]
        finally:
            stop.set()
            await task
            await gateway.stop()
            journal.close()
